"""Image volumes from a series of slices: ordering, pixel decoding, and the voxel ↔ patient mapping.

Conventions
-----------
* Slices are ordered by their position along the slice normal (the cross product of the row and column
  direction cosines), never by Instance Number, which scanners and TPS exports number either way.
* A volume's voxel array is indexed ``voxels[k, j, i]``; axis ``i`` runs along :attr:`VolumeGeometry.i`,
  ``j`` along ``.j`` and ``k`` along ``.k``. Each :class:`Axis` holds a unit direction in patient
  coordinates (DICOM LPS) and the node positions along it, in mm (``dot(point, direction)``), strictly
  increasing. In-plane axes are uniform; the slice axis may have gaps (a lost slice).
* **Canonical** volumes are those whose axes are +x, +y, +z: every series whose rows and columns follow
  patient axes (axial, sagittal or coronal acquisitions; head- or feet-first, supine, prone or decubitus)
  is transposed and flipped into that form on reading, exactly, without interpolation. Oblique series
  keep their own axes and are sampled through :meth:`ImageVolume.sample`.
* Voxel values are in modality units (Rescale Slope/Intercept applied): HU for CT, the PET Units
  (e.g. Bq/ml) for PET, scanner units for MR. Integer values that fit are kept as int16.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from pydicom.dataset import Dataset
from scipy import ndimage

_COSINE_TOLERANCE = 1e-3  # ~0.06°: rounding in real files, not a tilt
_SAME_POSITION_MM = 0.01


@dataclass(frozen=True)
class SliceGeometry:
    """Where one image slice lies: Image Position/Orientation (Patient), Pixel Spacing, matrix size.

    Attributes
    ----------
    position_mm : tuple of float
        Image Position (Patient): centre of the first transmitted pixel, mm.
    orientation : tuple of float
        Image Orientation (Patient): row direction cosines (along which the column index grows), then
        column direction cosines.
    spacing_mm : tuple of float
        Pixel Spacing: (between rows, between columns), mm.
    rows, columns : int
    """

    position_mm: tuple[float, float, float]
    orientation: tuple[float, float, float, float, float, float]
    spacing_mm: tuple[float, float]
    rows: int
    columns: int

    @classmethod
    def from_dataset(cls, ds: Dataset) -> SliceGeometry:
        """Read the geometry of a single-frame image.

        Raises
        ------
        ValueError
            If the image lacks position, orientation or spacing, or is multi-frame.
        """
        uid = str(ds.get("SOPInstanceUID", "?"))
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise ValueError(f"image {uid} is multi-frame; the viewer reads single-frame series only")
        return cls.from_values(
            ds.get("ImagePositionPatient"),
            ds.get("ImageOrientationPatient"),
            ds.get("PixelSpacing"),
            ds.get("Rows"),
            ds.get("Columns"),
            uid,
        )

    @classmethod
    def from_values(
        cls,
        position: object,
        orientation: object,
        spacing: object,
        rows: object,
        columns: object,
        uid: str = "?",
    ) -> SliceGeometry:
        """Build from the raw attribute values (a dataset's or the catalog's)."""
        try:
            ipp = tuple(float(v) for v in position)  # type: ignore[attr-defined]
            iop = tuple(float(v) for v in orientation)  # type: ignore[attr-defined]
            ps = tuple(float(v) for v in spacing)  # type: ignore[attr-defined]
            size = (int(rows), int(columns))  # type: ignore[call-overload]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"image {uid} lacks Image Position/Orientation, Pixel Spacing or size") from exc
        if len(ipp) != 3 or len(iop) != 6 or len(ps) != 2 or min(ps) <= 0 or min(size) <= 0:
            raise ValueError(f"image {uid} has malformed geometry attributes")
        return cls(ipp, iop, ps, *size)

    @property
    def row_cosines(self) -> np.ndarray:
        return _unit(np.array(self.orientation[:3]))

    @property
    def column_cosines(self) -> np.ndarray:
        return _unit(np.array(self.orientation[3:]))

    @property
    def normal(self) -> np.ndarray:
        return _unit(np.cross(self.row_cosines, self.column_cosines))

    def key(self) -> tuple[object, ...]:
        """What all slices of one volume share (orientation to 1e-3, spacing to 1 µm, size)."""
        return (
            tuple(np.round(self.orientation, 3)),
            tuple(np.round(self.spacing_mm, 3)),
            self.rows,
            self.columns,
        )


@dataclass(frozen=True, eq=False)
class Axis:
    """Node positions (mm) along one unit direction in patient coordinates.

    ``rim_mm`` is how far beyond the first and last node a voxel still reaches (half a spacing).
    """

    direction: np.ndarray
    positions_mm: np.ndarray
    rim_mm: float

    def __post_init__(self) -> None:
        if len(self.positions_mm) > 1 and not np.all(np.diff(self.positions_mm) > 0):
            raise ValueError("axis positions must increase strictly")

    @property
    def count(self) -> int:
        return len(self.positions_mm)

    @property
    def uniform(self) -> bool:
        gaps = np.diff(self.positions_mm)
        return len(gaps) == 0 or bool(np.allclose(gaps, gaps[0], atol=1e-3))

    @property
    def typical_step_mm(self) -> float:
        """The median spacing (the only one for a uniform axis); twice the rim for a single node."""
        gaps = np.diff(self.positions_mm)
        return float(np.median(gaps)) if len(gaps) else 2 * self.rim_mm

    def index_of(self, coords_mm: np.ndarray) -> np.ndarray:
        """Fractional node index of positions along the axis; NaN beyond the outer half voxel."""
        c = np.asarray(coords_mm, dtype=float)
        p = self.positions_mm
        if len(p) == 1:
            index = np.zeros(c.shape)
        elif self.uniform:
            index = (c - p[0]) / (p[1] - p[0])
        else:
            index = np.interp(c, p, np.arange(len(p), dtype=float), left=-1.0, right=float(len(p)))
            below, above = c < p[0], c > p[-1]
            index = np.where(below, (c - p[0]) / (p[1] - p[0]), index)
            index = np.where(above, len(p) - 1 + (c - p[-1]) / (p[-1] - p[-2]), index)
        outside = (c < p[0] - self.rim_mm - 1e-6) | (c > p[-1] + self.rim_mm + 1e-6)
        return np.where(outside, np.nan, index)

    def flipped(self) -> Axis:
        """The same nodes seen along the opposite direction (positions negated, order reversed)."""
        return Axis(-self.direction, -self.positions_mm[::-1].copy(), self.rim_mm)


@dataclass(frozen=True, eq=False)
class VolumeGeometry:
    """The three axes of a voxel array ``[k, j, i]``."""

    i: Axis
    j: Axis
    k: Axis

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.k.count, self.j.count, self.i.count

    @property
    def is_canonical(self) -> bool:
        """Axes are +x, +y, +z (so ``voxels[k, j, i]`` is at ``x_mm[i], y_mm[j], z_mm[k]``)."""
        return all(
            np.allclose(a.direction, e) for a, e in zip((self.i, self.j, self.k), np.eye(3), strict=True)
        )

    def to_index(self, points_mm: np.ndarray) -> np.ndarray:
        """Fractional (k, j, i) of points (..., 3) in patient mm; NaN where outside the volume."""
        pts = np.asarray(points_mm, dtype=float)
        return np.stack([a.index_of(pts @ a.direction) for a in (self.k, self.j, self.i)], axis=-1)

    def to_patient(self, index_kji: np.ndarray) -> np.ndarray:
        """Patient mm of fractional (k, j, i) indices (..., 3), linear between nodes."""
        idx = np.asarray(index_kji, dtype=float)
        total = np.zeros(idx.shape[:-1] + (3,))
        for n, axis in enumerate((self.k, self.j, self.i)):
            nodes = np.arange(axis.count, dtype=float)
            coord = (
                np.interp(idx[..., n], nodes, axis.positions_mm)
                if axis.count > 1
                else np.full(idx.shape[:-1], axis.positions_mm[0])
            )
            total += coord[..., None] * axis.direction
        return total


@dataclass(frozen=True, eq=False)
class SeriesLayout:
    """How a series' slices form a volume, known before any pixel is read.

    Attributes
    ----------
    geometry : VolumeGeometry
        Of the canonical volume when the series is axis-aligned, else of the stored order.
    order : tuple of int
        Indices into the given slices, in order along the slice normal (slices left out are absent).
    transpose : tuple of int or None
        Axis permutation taking the stacked array ``[slice, row, column]`` to the canonical ``[z, y, x]``.
    flips : tuple of bool
        After transposing, which of the (z, y, x) axes to reverse.
    slice_axis : int
        Patient axis the slice normal follows (0 x, 1 y, 2 z), or -1 for an oblique series.
    notes : tuple of str
        Slices left out, duplicate positions.
    """

    geometry: VolumeGeometry
    order: tuple[int, ...]
    transpose: tuple[int, int, int] | None
    flips: tuple[bool, bool, bool]
    slice_axis: int
    notes: tuple[str, ...] = ()

    @classmethod
    def from_slices(cls, slices: Sequence[SliceGeometry], thickness_mm: float | None = None) -> SeriesLayout:
        """Order slices along their normal and work out the canonical form.

        Slices that do not share the most common orientation, spacing and size (a localizer filed in the
        series) are left out, as is the second of two slices at the same position; both are noted.

        Raises
        ------
        ValueError
            With no slices.
        """
        if not slices:
            raise ValueError("no image slices")
        notes: list[str] = []
        common, _ = Counter(s.key() for s in slices).most_common(1)[0]
        kept = [n for n, s in enumerate(slices) if s.key() == common]
        if len(kept) < len(slices):
            notes.append(f"{len(slices) - len(kept)} slice(s) with another orientation or size left out")
        first = slices[kept[0]]
        normal = first.normal
        along = {n: float(np.dot(slices[n].position_mm, normal)) for n in kept}
        ordered = sorted(kept, key=lambda n: along[n])
        unique = [ordered[0]]
        for n in ordered[1:]:
            if along[n] - along[unique[-1]] > _SAME_POSITION_MM:
                unique.append(n)
        if len(unique) < len(ordered):
            notes.append(f"{len(ordered) - len(unique)} slice(s) at an already used position left out")
        origin = np.array(slices[unique[0]].position_mm)
        row_step, col_step = first.spacing_mm
        positions_k = np.array([along[n] for n in unique])
        rim_k = _slice_rim(positions_k, thickness_mm, min(row_step, col_step))
        geometry = VolumeGeometry(
            i=Axis(
                first.row_cosines,
                float(origin @ first.row_cosines) + col_step * np.arange(first.columns),
                col_step / 2,
            ),
            j=Axis(
                first.column_cosines,
                float(origin @ first.column_cosines) + row_step * np.arange(first.rows),
                row_step / 2,
            ),
            k=Axis(normal, positions_k, rim_k),
        )
        transpose, flips, slice_axis, geometry = _canonical(geometry)
        return cls(geometry, tuple(unique), transpose, flips, slice_axis, tuple(notes))

    @property
    def canonical(self) -> bool:
        return self.transpose is not None

    def arrange(self, stacked: np.ndarray) -> np.ndarray:
        """Stacked ``[slice, row, column]`` pixels (in :attr:`order`) to the volume's voxel array."""
        if self.transpose is None:
            return stacked
        out = stacked.transpose(self.transpose)
        flip_axes = tuple(n for n, f in enumerate(self.flips) if f)
        return np.flip(out, flip_axes) if flip_axes else out

    def arrange_slice(self, pixels: np.ndarray) -> np.ndarray:
        """One slice's ``[row, column]`` pixels as the canonical ``[y, x]`` plane (axial series only)."""
        if self.slice_axis != 2 or self.transpose is None:
            raise ValueError("single slices can be arranged only for axial series")
        # The stacked array's axes 1, 2 land on canonical y, x; transpose[1:] says which went where.
        out = pixels.T if self.transpose[1] == 2 else pixels
        if self.flips[1]:
            out = out[::-1, :]
        if self.flips[2]:
            out = out[:, ::-1]
        return out

    def slice_position(self, canonical_k: int) -> int:
        """For an axial series: which of :attr:`order` holds canonical z index ``canonical_k``."""
        if self.slice_axis != 2:
            raise ValueError("slice positions map to files only for axial series")
        count = len(self.order)
        return count - 1 - canonical_k if self.flips[0] else canonical_k


@dataclass(frozen=True, eq=False)
class ImageVolume:
    """Voxels in modality units with their geometry.

    Attributes
    ----------
    voxels : numpy.ndarray
        ``[k, j, i]``; int16 when every value is an integer in range, else float32.
    layout : SeriesLayout
    modality : str
    frame_of_reference_uid : str
    units : str
        ``HU`` for CT, the PET Units, else "".
    """

    voxels: np.ndarray
    layout: SeriesLayout
    modality: str = ""
    frame_of_reference_uid: str = ""
    units: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def geometry(self) -> VolumeGeometry:
        return self.layout.geometry

    @property
    def nbytes(self) -> int:
        return int(self.voxels.nbytes)

    @classmethod
    def from_datasets(cls, datasets: Sequence[Dataset]) -> ImageVolume:
        """Assemble the volume of one series' single-frame images (any order, compressed or not).

        Raises
        ------
        ValueError
            Without images, with multi-frame images, or images lacking geometry.
        """
        if not datasets:
            raise ValueError("no images")
        layout = SeriesLayout.from_slices(
            [SliceGeometry.from_dataset(ds) for ds in datasets], _thickness(datasets[0])
        )
        chosen = [datasets[n] for n in layout.order]
        return cls.from_pixels([partial(modality_pixels, ds) for ds in chosen], layout, chosen[0])

    @classmethod
    def from_pixels(
        cls, readers: Sequence[Callable[[], np.ndarray]], layout: SeriesLayout, first: Dataset
    ) -> ImageVolume:
        """Build from one pixel reader per slice of ``layout.order`` (modality values, ``[row, column]``)."""
        planes = [read() for read in readers]
        integral = all(p.dtype == np.int16 for p in planes)
        stacked = np.stack(planes).astype(np.int16 if integral else np.float32, copy=False)
        voxels = np.ascontiguousarray(layout.arrange(stacked))
        modality = str(first.get("Modality", ""))
        units = "HU" if modality == "CT" else str(first.get("Units", "") or "") if modality == "PT" else ""
        return cls(voxels, layout, modality, str(first.get("FrameOfReferenceUID", "")), units, layout.notes)

    def sample(self, points_mm: np.ndarray) -> np.ndarray:
        """Trilinear values at points (..., 3) in this volume's frame (mm); NaN outside the volume.

        Inside the outer half voxel the edge value is kept, as for dose grids.
        """
        pts = np.asarray(points_mm, dtype=float)
        index = self.geometry.to_index(pts.reshape(-1, 3))
        outside = np.isnan(index).any(axis=1)
        shape = np.array(self.voxels.shape, dtype=float)
        coords = np.clip(np.nan_to_num(index), 0, shape - 1).T
        values = ndimage.map_coordinates(
            self.voxels, coords, order=1, mode="nearest", prefilter=False, output=np.float32
        )
        values[outside] = np.nan
        return values.reshape(pts.shape[:-1])


def modality_pixels(ds: Dataset) -> np.ndarray:
    """A single-frame image's pixels in modality units (Rescale Slope/Intercept applied).

    Compressed transfer syntaxes (JPEG, JPEG-LS, JPEG 2000, RLE) decode through pydicom's plugins
    (pylibjpeg). Returns int16 when every value is an integer within int16 range, else float32.
    """
    raw = ds.pixel_array
    if raw.ndim != 2:
        raise ValueError(
            f"image {ds.get('SOPInstanceUID', '?')}: expected one grey plane, got shape {raw.shape}"
        )
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if slope == int(slope) and intercept == int(intercept):
        values = raw.astype(np.int32) * int(slope) + int(intercept)
        if values.size and values.min() >= -32768 and values.max() <= 32767:
            return values.astype(np.int16)
        return values.astype(np.float32)
    return (raw.astype(np.float32) * np.float32(slope) + np.float32(intercept)).astype(np.float32)


# --------------------------------------------------------------------- helpers
def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    if norm == 0:
        raise ValueError("zero direction cosines")
    return v / norm


def _thickness(ds: Dataset) -> float | None:
    value = ds.get("SliceThickness")
    try:
        return float(value) if value not in (None, "") and float(value) > 0 else None
    except (TypeError, ValueError):
        return None


def _slice_rim(positions: np.ndarray, thickness_mm: float | None, pixel_mm: float) -> float:
    if len(positions) > 1:
        return float(np.min(np.diff(positions))) / 2
    return (thickness_mm or pixel_mm) / 2


def _canonical(
    geometry: VolumeGeometry,
) -> tuple[tuple[int, int, int] | None, tuple[bool, bool, bool], int, VolumeGeometry]:
    """Permutation and flips that make an axis-aligned geometry +x, +y, +z; identity for oblique ones."""
    axes = (geometry.k, geometry.j, geometry.i)  # stacked array order
    patient_axis, signs = [], []
    for axis in axes:
        a = int(np.argmax(np.abs(axis.direction)))
        snapped = np.zeros(3)
        snapped[a] = np.sign(axis.direction[a])
        if not np.allclose(axis.direction, snapped, atol=_COSINE_TOLERANCE):
            return None, (False, False, False), -1, geometry
        patient_axis.append(a)
        signs.append(snapped[a])
    if sorted(patient_axis) != [0, 1, 2]:
        return None, (False, False, False), -1, geometry
    # canonical array order is (z, y, x): stacked axis n goes to position 2 - patient_axis[n]
    transpose = tuple(patient_axis.index(2 - pos) for pos in range(3))
    flips = tuple(bool(signs[transpose[pos]] < 0) for pos in range(3))
    by_patient = {}
    for axis, a, sign in zip(axes, patient_axis, signs, strict=True):
        snapped_axis = Axis(np.eye(3)[a] * sign, axis.positions_mm, axis.rim_mm)
        by_patient[a] = snapped_axis.flipped() if sign < 0 else snapped_axis
    canonical = VolumeGeometry(i=by_patient[0], j=by_patient[1], k=by_patient[2])
    return transpose, flips, patient_axis[0], canonical  # type: ignore[return-value]
