"""The plan bundle's meaning, step by step, on a small in-memory archive."""

from __future__ import annotations

from collections import defaultdict

from rtbank.dicom.plan_bundle import IndexedObject, Role, plan_bundle
from rtbank.dicom.references import RefKind


class MemoryIndex:
    """An RtIndex over plain objects: the same questions the catalog and the harvester answer."""

    def __init__(self) -> None:
        self.objects: dict[str, IndexedObject] = {}
        self.modality: dict[str, str] = {}
        self.refs: list[tuple[str, RefKind, str]] = []
        self.first_image: dict[str, str] = {}

    def add(self, uid: str, kind: str, series: str, frame: str = "", modality: str = "CT", refs=()) -> None:
        self.objects[uid] = IndexedObject(uid, kind, series, frame)
        self.modality[series] = modality
        self.refs += [(uid, k, t) for k, t in refs]

    def get(self, uid):
        return self.objects.get(uid)

    def targets(self, source, kind):
        return [t for s, k, t in self.refs if s == source and k == kind]

    def sources(self, target, kind, source_kinds):
        return sorted(
            s
            for s, k, t in self.refs
            if t == target and k == kind and self.objects.get(s) and self.objects[s].kind in source_kinds
        )

    def series_instances(self, series):
        return sorted(u for u, o in self.objects.items() if o.series_uid == series)

    def image_series_in_frame(self, frame):
        found = defaultdict(bool)
        for o in self.objects.values():
            if (
                o.kind == "image"
                and o.frame_of_reference_uid == frame
                and self.modality[o.series_uid] in ("CT", "MR", "PT")
            ):
                found[o.series_uid] = True
        return sorted(found)

    def first_contour_image(self, ss):
        return self.first_image.get(ss, "")


def archive() -> MemoryIndex:
    ix = MemoryIndex()
    for i in range(3):
        ix.add(f"ct{i}", "image", "CT-SERIES", "FOR-PLAN")
    ix.add("pet0", "image", "PET", "FOR-PLAN", "PT")  # PET of a PET/CT on the planning frame
    ix.add("mr0", "image", "MR", "FOR-MR", "MR")
    ix.add("mr1", "image", "MR", "FOR-MR", "MR")
    ix.add("ct-mr-frame", "image", "CT-ON-MR", "FOR-MR")  # shares the MR's frame (step 10)
    ix.add("diag0", "image", "DIAG", "FOR-DIAG")  # unregistered diagnostic series
    ix.add(
        "ss",
        "structure_set",
        "SS",
        refs=[
            (RefKind.IMAGE, "ct1"),
            (RefKind.SERIES, "CT-SERIES"),
            (RefKind.FRAME_OF_REFERENCE, "FOR-PLAN"),
        ],
    )
    ix.first_image["ss"] = "ct1"
    ix.add(
        "ss2", "structure_set", "SS2", refs=[(RefKind.FRAME_OF_REFERENCE, "FOR-PLAN")]
    )  # second structure set
    ix.add("plan", "plan", "PLANS", refs=[(RefKind.STRUCTURE_SET, "ss")])
    ix.add("trial", "plan", "PLANS", refs=[(RefKind.STRUCTURE_SET, "ss")])
    ix.add("dose", "dose", "DOSES", refs=[(RefKind.PLAN, "plan")])
    ix.add("trial-dose", "dose", "DOSES", refs=[(RefKind.PLAN, "trial"), (RefKind.STRUCTURE_SET, "ss")])
    ix.add("tomo-dose", "dose", "DOSES", refs=[(RefKind.STRUCTURE_SET, "ss")])
    ix.add("rec1", "record", "RECS", refs=[(RefKind.PLAN, "plan")])
    ix.add("rec2", "record", "RECS", refs=[(RefKind.PLAN, "plan")])
    ix.add(
        "reg",
        "registration",
        "REGS",
        refs=[
            (RefKind.FRAME_OF_REFERENCE, "FOR-PLAN"),
            (RefKind.FRAME_OF_REFERENCE, "FOR-MR"),
            (RefKind.IMAGE, "mr0"),
            (RefKind.IMAGE, "ct0"),
        ],
    )
    return ix


def test_the_bundle_follows_the_ten_steps() -> None:
    bundle = plan_bundle("plan", archive())
    roles = bundle.instances
    assert roles["plan"] == Role.PLAN and roles["ss"] == Role.STRUCTURE_SET
    assert {u for u, r in roles.items() if r == Role.DOSE} == {"dose", "tomo-dose"}  # not the trial's dose
    assert {u for u, r in roles.items() if r == Role.RECORD} == {"rec1", "rec2"}
    assert {u for u, r in roles.items() if r == Role.PLANNING_IMAGES} == {"ct0", "ct1", "ct2"}
    assert roles["reg"] == Role.REGISTRATION
    assert roles["pet0"] == Role.FRAME_IMAGES
    assert roles["mr0"] == roles["mr1"] == Role.REGISTERED_IMAGES
    assert roles["ct-mr-frame"] == Role.REGISTERED_FRAME_IMAGES
    for decoy in ("trial", "trial-dose", "ss2", "diag0"):
        assert decoy not in roles
    assert bundle.planning_series_uid == "CT-SERIES" and bundle.missing == []


def test_missing_objects_are_listed_not_fatal() -> None:
    ix = archive()
    del ix.objects["ct1"], ix.objects["ss"]
    bundle = plan_bundle("plan", ix)
    assert (Role.STRUCTURE_SET, "ss") in bundle.missing
    assert bundle.instances.keys() >= {"plan", "dose", "rec1", "rec2"}


def test_the_series_named_by_the_structure_set_is_the_fallback_for_a_missing_contour_image() -> None:
    ix = archive()
    ix.first_image["ss"] = "gone"
    bundle = plan_bundle("plan", ix)
    assert (Role.PLANNING_IMAGES, "gone") in bundle.missing
    assert bundle.planning_series_uid == "CT-SERIES"


def test_a_plan_that_is_not_stored_is_reported() -> None:
    bundle = plan_bundle("nope", archive())
    assert bundle.instances == {} and bundle.missing == [(Role.PLAN, "nope")]
