"""What generating one patient produces: its objects and the facts the manifest reports about them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtbank.dicom.synth.context import Generated, PatientContext
from rtbank.dicom.synth.images import ImageSeries
from rtbank.dicom.synth.plans import Plan
from rtbank.dicom.synth.structures import StructureSet


@dataclass
class PlanFacts:
    """The generator's own knowledge of a plan (the manifest's ``plans`` entry before the walk)."""

    plan: Plan
    intent: str
    treated: bool
    structure_set: str | None
    planning_ct_series: str | None
    prescription_gy: float
    doses: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    record_dates: list[str] = field(default_factory=list)
    course: int = 0
    site: str = ""
    harvest: dict[str, list[str]] = field(default_factory=lambda: {"instances": [], "series": []})

    def entry(self) -> dict[str, Any]:
        spec = self.plan.spec
        return {
            "sop_instance_uid": self.plan.uid,
            "label": spec.label,
            "name": spec.name,
            "intent": self.intent.lower(),
            "treated": self.treated,
            "record_dates": list(self.record_dates),
            "fractions_planned": spec.fractions,
            "prescription_gy": self.prescription_gy,
            "structure_set": self.structure_set,
            "doses": list(self.doses),
            "records": list(self.records),
            "planning_ct_series": self.planning_ct_series,
            "course": self.course,
            "site": self.site,
            "technique": spec.technique,
            "machine": spec.machine,
            "approval": "APPROVED" if spec.approved else "UNAPPROVED",
            "harvest_expected": {key: list(values) for key, values in self.harvest.items()},
        }


@dataclass
class PatientArchive:
    """All objects of one patient in creation order, with plans, decoys, anomalies and ROIs."""

    context: PatientContext
    objects: list[Generated] = field(default_factory=list)
    plans: list[PlanFacts] = field(default_factory=list)
    decoys: list[dict[str, Any]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    rois: list[dict[str, Any]] = field(default_factory=list)

    def add(self, *generated: Generated) -> None:
        self.objects.extend(generated)

    def add_images(self, image: ImageSeries) -> None:
        self.objects.extend(image.objects)

    def add_structure_set(self, structure_set: StructureSet) -> None:
        self.objects.append(structure_set.generated)
        for roi in structure_set.rois:
            self.rois.append(
                {
                    "structure_set": structure_set.uid,
                    "number": roi.number,
                    "name": roi.name,
                    "standard": roi.standard,
                    "type": roi.roi_type,
                    "empty": roi.empty,
                    "empty_kind": roi.empty_kind or None,
                }
            )

    def decoy(self, kind: str, uids: list[str], series: list[str] | None = None, detail: str = "") -> None:
        self.decoys.append({"kind": kind, "uids": list(uids), "series": list(series or []), "detail": detail})

    def anomaly(self, kind: str, uids: list[str], detail: str) -> None:
        self.anomalies.append({"kind": kind, "uids": list(uids), "detail": detail})
