"""What the viewer shows for a deep link: the objects a plan, structure set or image series brings along,
cut down to what the user's projects hold.

The viewer never shows other objects of the same patient: everything here is intersected with the
instances of the projects through which the user holds ``images`` on the linked object
(:meth:`rtbank.projects.access.Access.instances`).

* a **plan**: its bundle (structure set, doses, planning CT, registrations and the images they register,
  series sharing the planning frame of reference), as :mod:`rtbank.dicom.plan_bundle` defines it;
* a **structure set**: its image series, doses that reference it, registrations of that series or frame
  and the images they register;
* an **image series**: the series, registrations of it or its frame and the images they register.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.db.models import Q

from rtbank.catalog.models import (
    Instance,
    InstanceState,
    PlanBundleMember,
    Reference,
    RTPlan,
    Series,
    StructureSet,
)
from rtbank.dicom.imaging import SeriesLayout, SliceGeometry
from rtbank.dicom.sop import VOLUME_MODALITIES
from rtbank.projects.access import PLAN_KINDS, Access
from rtbank.projects.models import Project

_IMAGE_ROLES = ("planning_images", "frame_images", "registered_images", "registered_frame_images")
_FIELDS = (
    "pk",
    "sop_instance_uid",
    "kind",
    "blob_key",
    "position",
    "orientation",
    "pixel_spacing",
    "rows",
    "columns",
    "slice_thickness",
    "frames",
    "series__uid",
    "series__modality",
    "series__frame_of_reference_uid",
    "series__description",
    "institution_id",
)


@dataclass(frozen=True)
class ImageFile:
    pk: int
    sop_instance_uid: str
    blob_key: str
    geometry: SliceGeometry | None


@dataclass
class ImageSeries:
    """An image series as the viewer uses it (only the instances the user may see)."""

    uid: str
    modality: str
    frame_of_reference_uid: str
    description: str
    role: str
    files: list[ImageFile] = field(default_factory=list)
    _layout: SeriesLayout | None = None

    @property
    def signature(self) -> tuple[str, ...]:
        """What makes the volume unique: the files' blob keys (a late or corrected slice changes it)."""
        return tuple(sorted(f.blob_key for f in self.files))

    @property
    def layout(self) -> SeriesLayout:
        """Slice order and canonical geometry from the catalog's geometry values (no file is read)."""
        if self._layout is None:
            usable = [f for f in self.files if f.geometry is not None]
            if not usable:
                raise ValueError(f"series {self.uid} has no image with position and orientation")
            layout = SeriesLayout.from_slices([f.geometry for f in usable])  # type: ignore[misc]
            self.files = usable
            self._layout = layout
        return self._layout


@dataclass
class ObjectFile:
    pk: int
    sop_instance_uid: str
    blob_key: str
    institution_id: int | None


@dataclass
class ViewerDataset:
    root_uid: str
    root_kind: str  # "plan" | "structure_set" | "series"
    projects: list[Project]
    plan: RTPlan | None = None
    primary: ImageSeries | None = None
    others: list[ImageSeries] = field(default_factory=list)
    structure_set: ObjectFile | None = None
    doses: list[ObjectFile] = field(default_factory=list)
    registrations: list[ObjectFile] = field(default_factory=list)

    def series(self, uid: str) -> ImageSeries | None:
        for s in [self.primary, *self.others]:
            if s is not None and s.uid == uid:
                return s
        return None


def root_instance(uid: str) -> Instance | None:
    """The instance a deep link names: a plan or structure set, or the first image of a series."""
    instance = Instance.objects.filter(sop_instance_uid=uid, state=InstanceState.CURRENT).first()
    if instance is not None:
        return instance
    series = Series.objects.filter(uid=uid).first()
    if series is None:
        return None
    return series.instances.filter(state=InstanceState.CURRENT, kind="image").order_by("pk").first()


def root_kind(instance: Instance, uid: str) -> str | None:
    if instance.sop_instance_uid == uid:
        if instance.kind in PLAN_KINDS:
            return "plan"
        return "structure_set" if instance.kind == "structure_set" else None
    return "series"


def resolve(acc: Access, root: Instance, kind: str, uid: str, projects: list[Project]) -> ViewerDataset:
    """The dataset of ``root`` as the user may see it through ``projects`` (those granting ``images``)."""
    visible = reduce(or_, (Q(pk__in=acc.instances(p).values("pk")) for p in projects))
    dataset = ViewerDataset(uid, kind, projects)
    if kind == "plan":
        _plan(dataset, root, visible)
    elif kind == "structure_set":
        _structure_set(dataset, root, visible)
    else:
        _series(dataset, root, visible)
    return dataset


# --------------------------------------------------------------------- per root kind
def _plan(dataset: ViewerDataset, plan: Instance, visible: Q) -> None:
    dataset.plan = RTPlan.objects.filter(instance=plan).first()
    members = PlanBundleMember.objects.filter(plan=plan).filter(
        member__in=Instance.objects.filter(visible, state=InstanceState.CURRENT)
    )
    roles = dict(members.values_list("member_id", "role"))
    rows = Instance.objects.filter(pk__in=list(roles)).values_list(*_FIELDS)
    by_series: dict[str, ImageSeries] = {}
    structure_sets: list[ObjectFile] = []
    for row in rows:
        role = roles[row[0]]
        if role in _IMAGE_ROLES and row[2] == "image" and row[12] in VOLUME_MODALITIES:
            _add_image(by_series, row, role)
        elif role == "structure_set":
            structure_sets.append(_object(row))
        elif role == "dose":
            dataset.doses.append(_object(row))
        elif role == "registration" and row[2] == "registration":
            dataset.registrations.append(_object(row))
    wanted_ss = dataset.plan.structure_set_uid if dataset.plan else ""
    dataset.structure_set = next(
        (s for s in structure_sets if s.sop_instance_uid == wanted_ss),
        structure_sets[0] if structure_sets else None,
    )
    planning = dataset.plan.planning_series_uid if dataset.plan else ""
    frame = (
        StructureSet.objects.filter(instance_id=dataset.structure_set.pk)
        .values_list("frame_of_reference_uid", flat=True)
        .first()
        if dataset.structure_set
        else ""
    )
    _split_series(dataset, by_series, planning, frame or "")


def _structure_set(dataset: ViewerDataset, ss: Instance, visible: Q) -> None:
    row = Instance.objects.filter(pk=ss.pk).values_list(*_FIELDS).get()
    dataset.structure_set = _object(row)
    info = StructureSet.objects.filter(instance=ss).first()
    series_uid = ""
    if info is not None and info.first_contour_image_uid:
        series_uid = (
            Instance.objects.filter(
                sop_instance_uid=info.first_contour_image_uid, state=InstanceState.CURRENT
            )
            .values_list("series__uid", flat=True)
            .first()
            or ""
        )
    series_uid = series_uid or (info.series_uid if info else "")
    doses = Instance.objects.filter(
        visible, state=InstanceState.CURRENT, kind="dose", dose__structure_set_uid=ss.sop_instance_uid
    )
    dataset.doses = [_object(r) for r in doses.values_list(*_FIELDS)]
    _around_series(dataset, series_uid, visible)


def _series(dataset: ViewerDataset, image: Instance, visible: Q) -> None:
    _around_series(dataset, dataset.root_uid, visible)


def _around_series(dataset: ViewerDataset, series_uid: str, visible: Q) -> None:
    """The primary series, the registrations that name it or its frame, and the images they register."""
    images = Instance.objects.filter(visible, state=InstanceState.CURRENT, kind="image")
    by_series: dict[str, ImageSeries] = {}
    for row in images.filter(series__uid=series_uid).values_list(*_FIELDS):
        _add_image(by_series, row, "planning_images")
    primary = by_series.get(series_uid)
    if primary is not None:
        targets = [series_uid] + ([primary.frame_of_reference_uid] if primary.frame_of_reference_uid else [])
        registrations = Instance.objects.filter(
            visible,
            state=InstanceState.CURRENT,
            kind="registration",
            pk__in=Reference.objects.filter(target_uid__in=targets).values("source_id"),
        )
        dataset.registrations = [_object(r) for r in registrations.values_list(*_FIELDS)]
        registered = Reference.objects.filter(
            source_id__in=[r.pk for r in dataset.registrations], kind="series"
        ).values_list("target_uid", flat=True)
        frames = Reference.objects.filter(
            source_id__in=[r.pk for r in dataset.registrations], kind="frame_of_reference"
        ).values_list("target_uid", flat=True)
        others = images.filter(
            Q(series__uid__in=list(registered))
            | Q(series__frame_of_reference_uid__in=list(frames))
            | Q(series__frame_of_reference_uid=primary.frame_of_reference_uid)
        )
        for row in others.exclude(series__uid=series_uid).values_list(*_FIELDS):
            if row[12] in VOLUME_MODALITIES:
                _add_image(by_series, row, "registered_images")
    _split_series(dataset, by_series, series_uid)


# --------------------------------------------------------------------- helpers
def _add_image(by_series: dict[str, ImageSeries], row: tuple, role: str) -> None:
    pk, uid, _kind, blob_key, position, orientation, spacing, rows, columns, _thick, frames = row[:11]
    series_uid, modality, frame, description = row[11:15]
    series = by_series.get(series_uid)
    if series is None:
        series = by_series[series_uid] = ImageSeries(
            series_uid, modality, frame or "", description or "", role
        )
    geometry = None
    if (frames or 1) == 1:
        try:
            geometry = SliceGeometry.from_values(position, orientation, spacing, rows, columns, uid)
        except ValueError:
            geometry = None
    series.files.append(ImageFile(pk, uid, blob_key, geometry))


def _object(row: tuple) -> ObjectFile:
    return ObjectFile(row[0], row[1], row[3], row[15])


def _split_series(
    dataset: ViewerDataset, by_series: dict[str, ImageSeries], primary_uid: str, frame_uid: str = ""
) -> None:
    """The primary (planning) series and the others. When the planning series is not known, the CT with
    most slices in the structure set's frame of reference stands in; a known planning series that is not
    stored leaves no primary (contours and dose must never be drawn on images of another frame)."""
    if not primary_uid and frame_uid:
        same_frame = [s for s in by_series.values() if s.frame_of_reference_uid == frame_uid]
        ranked = sorted(same_frame, key=lambda s: (s.modality != "CT", -len(s.files), s.uid))
        primary_uid = ranked[0].uid if ranked else ""
    dataset.primary = by_series.get(primary_uid)
    dataset.others = sorted(
        (s for uid, s in by_series.items() if uid != primary_uid),
        key=lambda s: (s.modality, s.description, s.uid),
    )
