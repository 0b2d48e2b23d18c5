"""One synthetic patient: courses, an unregistered diagnostic series, a QA phantom study, all in memory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace

from pydicom.dataset import Dataset

from rtbank.dicom.synth.context import PatientContext, Study, clock_time
from rtbank.dicom.synth.course import build_course, dose_grid, moved
from rtbank.dicom.synth.doses import plan_dose_gy, rt_dose
from rtbank.dicom.synth.images import ImageGrid, ImageSeries, ct_series, mr_series
from rtbank.dicom.synth.naming import Institution
from rtbank.dicom.synth.phantom import Anatomy, Pose, personal_anatomy, qa_phantom
from rtbank.dicom.synth.plans import Plan, PlanSpec, rt_plan
from rtbank.dicom.synth.result import PatientArchive, PlanFacts
from rtbank.dicom.synth.scenario import CourseScenario, PatientScenario, scenario
from rtbank.dicom.synth.shapes import Shape
from rtbank.dicom.synth.sites import scan_range
from rtbank.dicom.synth.structures import StructureSet, phantom_rois, structure_set
from rtbank.dicom.synth.walk import ReferenceIndex

IMAGE_MODALITIES = frozenset({"CT", "MR", "PT"})


def generate_patient(
    seed: int,
    index: int,
    institution: Institution,
    patients: int = 1,
    institution_count: int = 1,
    full_size: bool = False,
) -> PatientArchive:
    """Generate patient ``index`` of an archive of ``patients`` patients, in memory.

    Parameters
    ----------
    seed, index
        Together they determine every value and UID of the patient.
    institution
        The clinic the patient is treated at.
    patients, institution_count
        Size of the archive the patient belongs to (they choose which quirks and site the patient gets).
    full_size
        512 × 512 CT with realistic slice counts.

    Returns
    -------
    PatientArchive
        The datasets in creation order and the facts the manifest reports (plans with their expected
        harvest, decoys, anomalies, ROIs).
    """
    ctx = PatientContext(seed, index, institution, full_size)
    story = scenario(ctx, patients, institution_count)
    anatomy = personal_anatomy(ctx.rng)
    out = PatientArchive(ctx)
    if "unregistered_series" in story.quirks:
        _unregistered_series(out, anatomy, story)
    for course in story.courses:
        start = len(out.objects)
        uids = build_course(out, anatomy, course)
        if not course.treated:
            series = _image_series(out, start)
            out.decoy(
                "untreated_course", uids, series, detail=f"course {course.number} was planned, never treated"
            )
    if "qa_phantom" in story.quirks:
        main = next(f.plan for f in out.plans if f.course == 1)
        _qa_phantom(out, story.courses[0], main)
    references = ReferenceIndex(g.dataset for g in out.objects)
    for facts in out.plans:
        if facts.treated:
            facts.harvest = references.harvest(facts.plan.uid)
    return out


def patient_datasets(
    seed: int, index: int, institution: Institution, full_size: bool = False
) -> Iterator[Dataset]:
    """The datasets of one patient (of a one-patient archive, so it shows every quirk), in creation order."""
    for generated in generate_patient(seed, index, institution, full_size=full_size).objects:
        yield generated.dataset


def _image_series(out: PatientArchive, start: int) -> list[str]:
    seen: dict[str, None] = {}
    for generated in out.objects[start:]:
        if generated.series.modality in IMAGE_MODALITIES:
            seen.setdefault(generated.series.uid, None)
    return list(seen)


def _unregistered_series(out: PatientArchive, anatomy: Anatomy, story: PatientScenario) -> None:
    """A diagnostic CT (or pelvic MR) from radiology, in its own frame of reference, never registered."""
    ctx, rng = out.context, out.context.rng
    inst = ctx.institution
    course = story.courses[0]
    day = course.ct_day - dt.timedelta(days=rng.randrange(20, 200))
    low, high = scan_range(course.site, anatomy, course.spine_level_mm * anatomy.height_scale)
    pose = Pose.random(rng, rng.uniform(-200, 200) - 0.5 * (low + high), 3.0)
    thickness, most = (2.0, 150) if ctx.full_size else (5.0, 40)
    grid = ImageGrid.around(
        min(course.site.fov_mm, 420),
        512 if ctx.full_size else 128,
        0.5 * (low + high) + pose.translation[2],
        high - low,
        thickness,
        most,
    )
    for_uid = ctx.uid("frame", "diagnostic")
    if course.site.key == "pelvis":
        study = ctx.new_study("diagnostic-mr", day, "MR pelvis")
        series = ctx.new_series(study, "MR", "T2 tra", inst.mr_scanner, for_uid, preferred_number=5)
        series.body_part = course.site.body_part
        image = mr_series(ctx, series, anatomy, pose, grid, 1.5, weighting="T2")
    else:
        study = ctx.new_study("diagnostic-ct", day, f"CT {course.site.description} with contrast")
        series = ctx.new_series(study, "CT", "Venous phase 4mm", inst.ct_scanner, for_uid, preferred_number=3)
        series.body_part = course.site.body_part
        image = ct_series(ctx, series, anatomy, pose, grid, day)
    out.add_images(image)
    uids = [str(g.dataset.SOPInstanceUID) for g in image.objects]
    out.decoy(
        "unregistered_series",
        uids,
        [series.uid],
        detail="diagnostic series never registered to a planning CT",
    )


def _qa_phantom(out: PatientArchive, course: CourseScenario, main: Plan) -> None:
    """Patient-specific QA: the main plan recalculated on a phantom, and a machine QA open field."""
    start = len(out.objects)
    session = _phantom_session(out, course.plan_day + dt.timedelta(days=1))
    iso = session.pose.translation
    shift = tuple(i - m for i, m in zip(iso, main.spec.isocentre, strict=True))
    ptvs = tuple(s.moved(*shift) for s in main.spec.ptvs)
    verification = replace(
        main.spec,
        label=f"QA_{main.spec.label}"[:16],
        name=f"Verification of {main.spec.label}",
        intent="VERIFICATION",
        levels=(),
        fractions=1,
        isocentre=iso,
        ptvs=ptvs,
        approved=True,
        structure_set_uid=session.structure_set.uid,
    )
    machine_qa = replace(
        verification,
        label="OF10x10",
        name="Open field 10 x 10",
        intent="MACHINE_QA",
        ptvs=(),
        technique="OPEN_FIELD",
    )
    per_fraction = [(s, gy / main.spec.fractions) for s, (_, gy) in zip(ptvs, main.spec.levels, strict=False)]
    _qa_plan(out, session, verification, course, main.spec.dose_per_fraction_gy, per_fraction)
    _qa_plan(out, session, machine_qa, course, 0.0, [])
    uids = [str(g.dataset.SOPInstanceUID) for g in out.objects[start:]]
    detail = f"verification of {main.spec.label} and machine QA"
    out.decoy("qa_phantom", uids, [session.ct.series.uid], detail=detail)


@dataclass
class _PhantomSession:
    study: Study
    ct: ImageSeries
    structure_set: StructureSet
    pose: Pose
    phantom: Anatomy


def _phantom_session(out: PatientArchive, day: dt.date) -> _PhantomSession:
    """The QA phantom's CT (own frame of reference) and structure set, under the patient's ID."""
    ctx, rng = out.context, out.context.rng
    inst = ctx.institution
    study = ctx.new_study("qa-phantom", day, "Patient QA phantom")
    phantom = qa_phantom()
    pose = Pose(translation=(0.0, round(rng.uniform(-5, 5), 1), round(rng.uniform(-200, 200) * 2) / 2))
    thickness, most = (2.0, 150) if ctx.full_size else (4.0, 50)
    grid = ImageGrid.around(400, 512 if ctx.full_size else 128, pose.translation[2], 300.0, thickness, most)
    for_uid = ctx.uid("frame", "qa-phantom")
    series = ctx.new_series(study, "CT", "QA phantom", inst.ct_scanner, for_uid, preferred_number=2)
    ct = ct_series(ctx, series, phantom, pose, grid, day)
    out.add_images(ct)
    rois = phantom_rois(phantom, inst.roi_style, rng)
    ss_series = ctx.new_series(study, "RTSTRUCT", "QA phantom", inst.tps, for_uid, preferred_number=3)
    ss = structure_set(ctx, ss_series, ct, rois, "QA_Phantom", study.date, clock_time(rng, 8, 16))
    out.add_structure_set(ss)
    return _PhantomSession(study, ct, ss, pose, phantom)


def _qa_plan(
    out: PatientArchive,
    session: _PhantomSession,
    spec: PlanSpec,
    course: CourseScenario,
    gy: float,
    per_fraction: list[tuple[Shape, float]],
) -> None:
    """A QA plan on the phantom, with a dose when it has targets (``per_fraction``: PTVs and Gy)."""
    ctx, rng = out.context, out.context.rng
    inst, study, for_uid = ctx.institution, session.study, session.ct.series.frame_of_reference_uid
    series = ctx.new_series(study, "RTPLAN", spec.name, inst.tps, for_uid, preferred_number=4)
    plan = rt_plan(ctx, series, spec, study.date, clock_time(rng, 9, 17), rng)
    out.add(plan.generated)
    facts = PlanFacts(
        plan,
        spec.intent,
        treated=False,
        structure_set=session.structure_set.uid,
        planning_ct_series=session.ct.series.uid,
        prescription_gy=round(gy, 4),
        course=course.number,
        site="qa_phantom",
    )
    out.plans.append(facts)
    if per_fraction:
        grid = dose_grid(session.ct, session.phantom, session.pose, ctx.full_size)
        dose = plan_dose_gy(per_fraction, moved(session.phantom.body.shape, session.pose), grid)
        dose_series = ctx.new_series(study, "RTDOSE", f"Dose {spec.label}", inst.tps, for_uid)
        generated = rt_dose(
            ctx, dose_series, grid, dose, inst.dose_bits, plan.uid, None, study.date, plan.time
        )
        out.add(generated)
        facts.doses.append(str(generated.dataset.SOPInstanceUID))
