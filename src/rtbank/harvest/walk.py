"""``harvest_walk``: finding treatment records, and the paper's ten steps per treated plan.

Each function runs one work row's DICOM part (outside any transaction) and returns what the row's
commit must record. The meaning is :func:`rtbank.dicom.plan_bundle.plan_bundle`'s, step by step:

1 plan · 2 structure sets the plan references · 3 doses referencing the plan (or, plan-less, its structure
set; or named by the plan) · 4 all records of the plan (also outside the window) · 5 the image of the first
contour of the first non-empty ROI (else the series the structure set names) · 6 its whole series ·
7 registrations of the patient touching that series, its images or its frame · 8 CT/MR/PET series in the
planning frame · 9 image series the registrations reference · 10 CT/MR/PET series in their frames.

Record finding has a stated fallback chain (``query_levels``): ``image`` (C-FIND records by TreatmentDate,
one chunk per day), ``series`` (record series by SeriesDate, looking back ``series_lookback_days``, then the
records' dates read from answers or headers), ``patient`` (every patient with records, all their records).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from rtbank.harvest import dimse
from rtbank.harvest.models import HarvestObject, HarvestPlan, HarvestSeries
from rtbank.harvest.session import Session
from rtbank.harvest.sources import SourceSettings

STEPS = (
    "s01_plan",
    "s02_structure_set",
    "s03_doses",
    "s04_records",
    "s05_contour_image",
    "s06_planning_series",
    "s07_registrations",
    "s08_frame_series",
    "s09_registered_images",
    "s10_registered_frames",
)
RECORD_KINDS = ("record", "ion_record", "brachy_record", "summary_record")
REGISTRATION_KINDS = ("registration", "deformable_registration")


@dataclass
class Found:
    """Records found by one discovery row: plan UID → (patient, record UIDs, dates)."""

    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    patients: list[str] = field(default_factory=list)  # for the patient walk: patients to enqueue
    level: str = ""

    def add(self, record: HarvestObject) -> None:
        for kind, target in record.refs or []:
            if kind != "plan":
                continue
            entry = self.plans.setdefault(target, {"patient": record.patient_id, "records": [], "dates": []})
            entry["records"].append(record.sop_instance_uid)
            if record.treatment_date:
                entry["dates"].append(record.treatment_date.isoformat())


# --- finding the records -----------------------------------------------------------------------------------
def probe(s: Session) -> str:
    """Choose the first usable level of the source's fallback chain (window mode)."""
    run, node = s.run, s.record_node
    conf = SourceSettings.of(node)
    lookback = run.date_from - dt.timedelta(days=conf.series_lookback_days)
    try:
        series = s.find(
            node,
            "SERIES",
            {
                "Modality": "RTRECORD",
                "SeriesDate": _range(lookback, run.date_to),
                "StudyInstanceUID": "",
                "SeriesInstanceUID": "",
                "PatientID": "",
            },
        )
    except dimse.QueryRefused:
        series = None
    for level in conf.query_levels:
        if level == "image" and _image_level_works(s, series):
            return "image"
        if level == "series" and series is not None:
            return "series"
        if level == "patient":
            return "patient"
    raise dimse.Transient(f"{node.name}: none of the query levels {', '.join(conf.query_levels)} works")


def _image_level_works(s: Session, series: list[Any] | None) -> bool:
    """True when the source matches TreatmentDate at image level (checked on a record it really holds)."""
    node = s.record_node
    if not series:
        return series is not None  # no record series at all: nothing to miss at image level
    for answer in series[:3]:
        keys = {
            "StudyInstanceUID": str(answer.StudyInstanceUID),
            "SeriesInstanceUID": str(answer.SeriesInstanceUID),
            "SOPInstanceUID": "",
            "TreatmentDate": "",
        }
        try:
            records = s.find(node, "IMAGE", keys)
        except dimse.QueryRefused:
            return False
        dated = [r for r in records if r.get("TreatmentDate")]
        if not dated:
            continue
        day = str(dated[0].TreatmentDate)
        try:
            matches = s.find(
                node,
                "IMAGE",
                {
                    "Modality": "RTRECORD",
                    "TreatmentDate": day,
                    "SOPInstanceUID": "",
                    "StudyInstanceUID": "",
                    "SeriesInstanceUID": "",
                },
            )
        except dimse.QueryRefused:
            return False
        return any(str(m.get("SOPInstanceUID", "")) == str(dated[0].SOPInstanceUID) for m in matches) and all(
            str(m.get("TreatmentDate", day)) == day for m in matches
        )
    return False


def find_chunk(s: Session, level: str, first: dt.date, last: dt.date) -> Found:
    """Records of the window chunk [first, last] at ``level`` (image or series)."""
    node, run = s.record_node, s.run
    found = Found(level=level)
    if level == "image":
        answers = s.find(
            node,
            "IMAGE",
            {
                "Modality": "RTRECORD",
                "TreatmentDate": _range(first, last),
                "PatientID": "",
                "StudyInstanceUID": "",
                "SeriesInstanceUID": "",
                "SOPInstanceUID": "",
                "SOPClassUID": "",
                "InstanceNumber": "",
                "ReferencedRTPlanSequence": [],
            },
        )
        series_rows = _series_of_answers(s, answers)
        records = _store_records(s, series_rows, answers)
    else:
        answers = s.find(
            node,
            "SERIES",
            {
                "Modality": "RTRECORD",
                "SeriesDate": _range(first, last),
                "PatientID": "",
                "StudyInstanceUID": "",
                "SeriesInstanceUID": "",
            },
        )
        records = []
        for row in _series_of_answers(s, answers).values():
            records += s.list_series(row)
    s.content(records)
    for record in records:
        if record.treatment_date and _in_window(run, record.treatment_date):
            found.add(record)
    return found


def find_patient(s: Session, patient: str) -> Found:
    """All records of one patient (patient mode, and the last fallback), in the window if one is given."""
    node, run = s.record_node, s.run
    found = Found(level="patient")
    rows = s._series_rows(node, patient, "RTRECORD")
    records: list[HarvestObject] = []
    for row in rows:
        records += s.list_series(row)
    s.content(records)
    for record in records:
        if record.treatment_date is None and (run.date_from or run.date_to):
            continue
        if record.treatment_date is None or _in_window(run, record.treatment_date):
            found.add(record)
    return found


def list_patients(s: Session) -> list[str]:
    answers = s.find(
        s.record_node, "STUDY", {"ModalitiesInStudy": "RTRECORD", "PatientID": "", "StudyInstanceUID": ""}
    )
    return sorted({str(a.PatientID) for a in answers if a.get("PatientID")})


def _series_of_answers(s: Session, answers: list[Any]) -> dict[str, HarvestSeries]:
    rows = {}
    for a in answers:
        uid = str(a.get("SeriesInstanceUID", ""))
        if uid and uid not in rows:
            rows[uid] = HarvestSeries(
                run=s.run,
                patient_id=str(a.get("PatientID", "")),
                study_uid=str(a.get("StudyInstanceUID", "")),
                series_uid=uid,
                modality="RTRECORD",
                node=s.record_node,
            )
    HarvestSeries.objects.bulk_create(list(rows.values()), ignore_conflicts=True)
    return {r.series_uid: r for r in HarvestSeries.objects.filter(run=s.run, series_uid__in=list(rows))}


def _store_records(s: Session, series: dict[str, HarvestSeries], answers: list[Any]) -> list[HarvestObject]:
    for uid, row in series.items():
        s._store_answers(row, [a for a in answers if str(a.get("SeriesInstanceUID", "")) == uid])
    uids = [str(a.SOPInstanceUID) for a in answers if a.get("SOPInstanceUID")]
    return list(HarvestObject.objects.filter(run=s.run, sop_instance_uid__in=uids))


def _in_window(run: Any, day: dt.date) -> bool:
    return (run.date_from is None or day >= run.date_from) and (run.date_to is None or day <= run.date_to)


def _range(first: dt.date, last: dt.date) -> str:
    return f"{first:%Y%m%d}-{last:%Y%m%d}" if first != last else f"{first:%Y%m%d}"


# --- the ten steps --------------------------------------------------------------------------------------
@dataclass
class StepOutcome:
    next_step: str | None
    plan_updates: dict[str, Any] = field(default_factory=dict)


def run_step(s: Session, plan: HarvestPlan, step: str) -> StepOutcome:
    s.step = step
    return globals()[step](s, plan)


def _next(step: str) -> str | None:
    i = STEPS.index(step)
    return STEPS[i + 1] if i + 1 < len(STEPS) else None


def _by_uid(objs: list[HarvestObject]) -> dict[str, HarvestObject]:
    return {o.sop_instance_uid: o for o in objs}


def _plan_obj(s: Session, plan: HarvestPlan) -> HarvestObject | None:
    return _by_uid(s.inventory(plan.patient_id, "RTPLAN")).get(plan.plan_uid)


def _targets(obj: HarvestObject, kind: str) -> list[str]:
    return [t for k, t in obj.refs or [] if k == kind]


def s01_plan(s: Session, plan: HarvestPlan) -> StepOutcome:
    obj = _plan_obj(s, plan)
    if obj is None:
        return StepOutcome(None, {"state": "absent"})
    s.content([obj])
    s.retrieve([obj])
    return StepOutcome(_next("s01_plan"))


def _structure_sets(s: Session, plan: HarvestPlan) -> list[HarvestObject]:
    obj = _plan_obj(s, plan)
    if obj is None:
        return []
    s.content([obj])
    structs = _by_uid(s.inventory(plan.patient_id, "RTSTRUCT"))
    return [structs[uid] for uid in _targets(obj, "structure_set") if uid in structs]


def s02_structure_set(s: Session, plan: HarvestPlan) -> StepOutcome:
    found = _structure_sets(s, plan)
    s.content(found)
    s.retrieve(found)
    return StepOutcome(_next("s02_structure_set"))


def s03_doses(s: Session, plan: HarvestPlan) -> StepOutcome:
    plan_obj = _plan_obj(s, plan)
    named = set(_targets(plan_obj, "dose")) if plan_obj else set()
    structs = {o.sop_instance_uid for o in _structure_sets(s, plan)}
    doses = s.content(s.inventory(plan.patient_id, "RTDOSE"))
    wanted = []
    for dose in doses:
        plans, ss = _targets(dose, "plan"), _targets(dose, "structure_set")
        if plan.plan_uid in plans or dose.sop_instance_uid in named or (not plans and structs & set(ss)):
            wanted.append(dose)
    s.retrieve(wanted)
    return StepOutcome(_next("s03_doses"))


def s04_records(s: Session, plan: HarvestPlan) -> StepOutcome:
    records = s.content(s.inventory(plan.patient_id, "RTRECORD"))
    wanted = []
    for record in records:
        if record.kind in RECORD_KINDS and plan.plan_uid in _targets(record, "plan"):
            wanted.append(record)
    s.retrieve(wanted)
    return StepOutcome(_next("s04_records"))


def s05_contour_image(s: Session, plan: HarvestPlan) -> StepOutcome:
    """Find the planning series: the first contour's image, else the series the structure set names."""
    series_by_uid = {r.series_uid: r for r in s.image_series(plan.patient_id)}
    for ss in _structure_sets(s, plan):
        named = [series_by_uid[u] for u in _targets(ss, "series") if u in series_by_uid]
        if ss.first_contour_image:
            for row in named + [r for r in series_by_uid.values() if r not in named]:
                members = _by_uid(s.list_series(row))
                if ss.first_contour_image in members:
                    image = members[ss.first_contour_image]
                    frame = image.frame_uid or row.frame_uid
                    return StepOutcome(
                        _next("s05_contour_image"),
                        {"planning_series_uid": row.series_uid, "frame_of_reference_uid": frame},
                    )
        for row in named:
            members = s.list_series(row)
            if members:
                frame = members[0].frame_uid or row.frame_uid
                return StepOutcome(
                    _next("s05_contour_image"),
                    {"planning_series_uid": row.series_uid, "frame_of_reference_uid": frame},
                )
    return StepOutcome(None, {"state": "walked"})  # no planning images at the source: nothing more to follow


def _series_members(s: Session, series_uid: str) -> list[HarvestObject]:
    row = HarvestSeries.objects.filter(run=s.run, series_uid=series_uid).first()
    return s.list_series(row) if row else []


def s06_planning_series(s: Session, plan: HarvestPlan) -> StepOutcome:
    s.retrieve(_series_members(s, plan.planning_series_uid))
    return StepOutcome(_next("s06_planning_series"))


def _registrations(s: Session, plan: HarvestPlan) -> list[HarvestObject]:
    planning = {o.sop_instance_uid for o in _series_members(s, plan.planning_series_uid)}
    regs = s.content(s.inventory(plan.patient_id, "REG"))
    found = []
    for reg in regs:
        if reg.kind not in REGISTRATION_KINDS:
            continue
        if (
            plan.planning_series_uid in _targets(reg, "series")
            or (
                plan.frame_of_reference_uid
                and plan.frame_of_reference_uid in _targets(reg, "frame_of_reference")
            )
            or planning & set(_targets(reg, "image"))
        ):
            found.append(reg)
    return found


def s07_registrations(s: Session, plan: HarvestPlan) -> StepOutcome:
    s.retrieve(_registrations(s, plan))
    return StepOutcome(_next("s07_registrations"))


def _in_frames(s: Session, plan: HarvestPlan, frames: set[str]) -> list[HarvestSeries]:
    return [r for r in s.image_series(plan.patient_id) if r.frame_uid and r.frame_uid in frames]


def s08_frame_series(s: Session, plan: HarvestPlan) -> StepOutcome:
    if plan.frame_of_reference_uid:
        for row in _in_frames(s, plan, {plan.frame_of_reference_uid}):
            s.retrieve(s.list_series(row))
    return StepOutcome(_next("s08_frame_series"))


def _registered_series(s: Session, plan: HarvestPlan) -> set[str]:
    series_rows = {r.series_uid: r for r in s.image_series(plan.patient_id)}
    bundle_series = {plan.planning_series_uid} | {
        r.series_uid for r in _in_frames(s, plan, {plan.frame_of_reference_uid})
    }
    found: set[str] = set()
    images: set[str] = set()
    for reg in _registrations(s, plan):
        for uid in _targets(reg, "series"):
            if uid in series_rows and s.list_series(series_rows[uid]):
                found.add(uid)
        images |= set(_targets(reg, "image"))
    if images:
        found |= _series_holding(s, plan.patient_id, images, series_rows)
    return found - bundle_series


def _series_holding(
    s: Session, patient: str, images: set[str], series_rows: dict[str, HarvestSeries]
) -> set[str]:
    """The image series holding any of ``images``; lists (C-FIND) only as many series as it takes."""
    located = dict(
        HarvestObject.objects.filter(
            run=s.run, patient_id=patient, sop_instance_uid__in=list(images)
        ).values_list("sop_instance_uid", "series_uid")
    )
    left = images - set(located)
    for row in series_rows.values():
        if not left:
            break
        if row.listed:
            continue  # its instances are in ``located`` already
        members = {o.sop_instance_uid for o in s.list_series(row)}
        located.update((uid, row.series_uid) for uid in left & members)
        left -= members
    return {series for series in located.values() if series in series_rows}


def s09_registered_images(s: Session, plan: HarvestPlan) -> StepOutcome:
    for uid in sorted(_registered_series(s, plan)):
        s.retrieve(_series_members(s, uid))
    return StepOutcome(_next("s09_registered_images"))


def s10_registered_frames(s: Session, plan: HarvestPlan) -> StepOutcome:
    registered = _registered_series(s, plan)
    frames = {
        r.frame_uid for r in HarvestSeries.objects.filter(run=s.run, series_uid__in=registered) if r.frame_uid
    }
    for reg in _registrations(s, plan):
        frames |= set(_targets(reg, "frame_of_reference"))
    frames.discard(plan.frame_of_reference_uid)
    for row in _in_frames(s, plan, frames):
        s.retrieve(s.list_series(row))
    return StepOutcome(None, {"state": "walked"})
