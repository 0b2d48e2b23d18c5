"""One treatment course: planning CT, structure set, plans, doses, records, registered MR and PET/CT.

The course's quirks (a lost slice, a TomoTherapy-style dose, a boost exported without dose, a dangling
record, a trial plan, a second structure set) are built here and reported to the manifest as they happen.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, replace

from rtbank.dicom.synth.common import ds_text
from rtbank.dicom.synth.context import Study, clock_time, dicom_date, weekdays_from
from rtbank.dicom.synth.doses import DoseGrid, plan_dose_gy, rt_dose
from rtbank.dicom.synth.images import ImageGrid, ImageSeries, ct_series, mr_series, pet_series
from rtbank.dicom.synth.phantom import Anatomy, Organ, Pose, registration_matrix
from rtbank.dicom.synth.plans import ELEKTA_MLC, VARIAN_MLC, Plan, PlanSpec, rt_plan
from rtbank.dicom.synth.records import treatment_record
from rtbank.dicom.synth.registrations import spatial_registration
from rtbank.dicom.synth.result import PatientArchive, PlanFacts
from rtbank.dicom.synth.scenario import CourseScenario
from rtbank.dicom.synth.shapes import Shape
from rtbank.dicom.synth.sites import Target, scan_range, targets
from rtbank.dicom.synth.structures import StructureSet, course_rois, structure_set

SITE_LABELS = {"head_neck": "HN", "thorax": "Lung", "pelvis": "Pros", "brain": "Brain", "spine": "Th"}


@dataclass
class Planning:
    """The planning session of a course: CT, its pose, targets in the planning frame, structure set."""

    ct: ImageSeries
    pose: Pose
    targets: list[Target]
    structure_set: StructureSet
    rt_study: Study
    anatomy: Anatomy

    def span_mm(self) -> tuple[float, float]:
        """Inferior and superior end of the planning CT in the anatomy frame, mm."""
        tz = self.pose.translation[2]
        return (min(self.ct.grid.zs) - tz, max(self.ct.grid.zs) - tz)

    def ptvs(self) -> list[tuple[Shape, float]]:
        return [(moved(t.shape, self.pose), t.dose_gy) for t in self.targets if t.kind == "PTV"]


def moved(shape: Shape, pose: Pose) -> Shape:
    """``shape`` (anatomy frame) in the frame of a session whose pose is a pure translation."""
    tx, ty, tz = pose.translation
    return shape.moved(tx, ty, tz)


def build_course(out: PatientArchive, anatomy: Anatomy, course: CourseScenario) -> list[str]:
    """Generate ``course`` into ``out``; returns the UIDs of everything it wrote (for decoy reports)."""
    first = len(out.objects)
    planning = _planning(out, anatomy, course)
    main = _main_plan(out, planning, course)
    if "trial_plan" in course.quirks:
        _trial_plan(out, planning, course, main)
    if "second_structure_set" in course.quirks:
        _second_structure_set(out, planning, course)
    if course.with_mr:
        _registered_mr(out, planning, course)
    if course.with_petct:
        _registered_petct(out, planning, course)
    return [str(g.dataset.SOPInstanceUID) for g in out.objects[first:]]


def _planning(out: PatientArchive, anatomy: Anatomy, course: CourseScenario) -> Planning:
    ctx, rng = out.context, out.context.rng
    level = course.spine_level_mm * anatomy.height_scale
    course_targets = targets(course.site, course.prescription, anatomy, rng, level)
    lesions = [Organ("GTV", t.shape, 55, 900, 9.0, "GTV") for t in course_targets if t.kind == "GTV"]
    imaged = anatomy.with_organs(lesions)
    ct, pose = _planning_ct(out, imaged, course, scan_range(course.site, anatomy, level))
    inst = ctx.institution
    rt_study = (
        ct.series.study if inst.rt_in_ct_study else ctx.new_study("radiotherapy", course.plan_day, "RT Plan")
    )
    rois = course_rois(
        course.site, anatomy, course_targets, inst.roi_style, course.prescription.fractions, rng
    )
    ss_day = course.ct_day + dt.timedelta(days=1)
    ss_series = ctx.new_series(
        rt_study,
        "RTSTRUCT",
        "Structure set",
        inst.tps,
        ct.series.frame_of_reference_uid,
        ss_day,
        preferred_number=3,
    )
    label = f"{SITE_LABELS[course.site.key]}{course.number}"
    ss = structure_set(ctx, ss_series, ct, rois, label, dicom_date(ss_day), clock_time(rng, 8, 16))
    out.add_structure_set(ss)
    return Planning(ct, pose, course_targets, ss, rt_study, imaged)


def _planning_ct(
    out: PatientArchive, imaged: Anatomy, course: CourseScenario, span: tuple[float, float]
) -> tuple[ImageSeries, Pose]:
    """The planning CT (and a 4D average in its frame), the patient placed on the couch at random."""
    ctx, rng = out.context, out.context.rng
    site, (low, high) = course.site, span
    centre = round(rng.uniform(-350, 150) * 2) / 2
    pose = Pose(
        translation=(
            round(rng.uniform(-8, 8), 1),
            round(rng.uniform(-20, 20), 1),
            centre - 0.5 * (low + high),
        )
    )
    grid = _planning_grid(ctx.full_size, site.fov_mm, low, high, pose, site.key, rng)
    study = ctx.new_study("planning-ct", course.ct_day, f"CT RT {site.description}")
    for_uid = ctx.uid("frame", "planning", course.number)
    description = f"RT {site.description} {grid.thickness_mm:g}mm"
    series = ctx.new_series(study, "CT", description, ctx.institution.ct_scanner, for_uid, preferred_number=2)
    series.body_part = site.body_part
    drop = len(grid.zs) // 2 if "missing_slice" in course.quirks else None
    ct = ct_series(ctx, series, imaged, pose, grid, course.ct_day, drop_slice=drop)
    out.add_images(ct)
    if drop is not None:
        out.anomaly(
            "missing_slice",
            ct.missing,
            f"slice {drop + 1} of {len(grid.zs)} (z = {ds_text(grid.zs[drop])} mm) of CT series {series.uid} "
            "is not in the archive; the structure set and registrations still reference it",
        )
    if course.with_4d_average:
        average = ctx.new_series(study, "CT", "Ave-IP 4DCT", ctx.institution.ct_scanner, for_uid)
        average.body_part = site.body_part
        out.add_images(ct_series(ctx, average, imaged, pose, grid, course.ct_day))
    return ct, pose


def _planning_grid(
    full_size: bool, fov_mm: float, low: float, high: float, pose: Pose, site: str, rng: random.Random
) -> ImageGrid:
    thick = ("head_neck", "brain")
    if full_size:
        thickness = rng.choice((2.0, 2.5, 3.0))
        count = int(round((high - low) / thickness))
    else:
        thickness = rng.choice((2.0, 2.5, 3.0) if site in thick else (3.0, 4.0))
        count = min(80, max(40, int(round((high - low) / thickness))))
    length = (count - 1) * thickness
    top = round((0.5 * (low + high) + 0.5 * length + pose.translation[2]) * 2) / 2
    return ImageGrid.axial(fov_mm, 512 if full_size else 128, top, count, thickness)


def _plan_spec(
    planning: Planning,
    course: CourseScenario,
    label: str,
    levels: list[tuple[int, float]],
    fractions: int,
    ptv_shapes: list[Shape],
    approved: bool = True,
) -> PlanSpec:
    centre = ptv_shapes[0].centre()
    return PlanSpec(
        label=label,
        name=f"{course.site.description} {label}",
        intent=course.prescription.intent,
        levels=tuple(levels),
        fractions=fractions,
        isocentre=(round(centre[0], 1), round(centre[1], 1), round(centre[2], 1)),
        ptvs=tuple(ptv_shapes),
        technique=course.technique,
        machine=course.machine,
        mlc=VARIAN_MLC,
        approved=approved,
        structure_set_uid=planning.structure_set.uid,
    )


def _ptv_levels(planning: Planning) -> list[tuple[int, float]]:
    numbers = {r.standard: r.number for r in planning.structure_set.rois}
    return [
        (numbers[f"PTV_{round(t.dose_gy * 100)}"], t.dose_gy) for t in planning.targets if t.kind == "PTV"
    ]


def _main_plan(out: PatientArchive, planning: Planning, course: CourseScenario) -> Plan:
    ctx, rng = out.context, out.context.rng
    rx = course.prescription
    label = f"{SITE_LABELS[course.site.key]}{course.number}_{rx.dose_gy:g}"
    spec = _plan_spec(
        planning, course, label, _ptv_levels(planning), rx.fractions, [s for s, _ in planning.ptvs()]
    )
    spec = _with_machine_mlc(out, spec)
    plan_series = ctx.new_series(
        planning.rt_study,
        "RTPLAN",
        label,
        ctx.institution.tps,
        planning.ct.series.frame_of_reference_uid,
        course.plan_day,
        preferred_number=4,
    )
    plan = rt_plan(ctx, plan_series, spec, dicom_date(course.plan_day), clock_time(rng, 9, 17), rng)
    out.add(plan.generated)
    facts = _facts(planning, course, plan, rx.dose_gy)
    out.plans.append(facts)
    tomo = "dose_references_structure_set" in course.quirks
    dose_uid = _dose(out, planning, plan, [(s, gy) for s, gy in planning.ptvs()], tomo)
    facts.doses.append(dose_uid)
    if tomo:
        out.anomaly(
            "dose_references_structure_set",
            [dose_uid],
            f"RTDOSE of plan {label} references structure set {planning.structure_set.uid} and no plan "
            "(TomoTherapy style)",
        )
    if course.treated:
        _records(out, planning, plan, facts, course.fraction_days, 1, "dangling_record" in course.quirks)
    if "plan_without_dose" in course.quirks:
        _boost(out, planning, course, plan)
    return plan


def _with_machine_mlc(out: PatientArchive, spec: PlanSpec) -> PlanSpec:
    elekta = out.context.institution.record_and_verify.manufacturer == "Elekta"
    return replace(spec, mlc=ELEKTA_MLC if elekta else VARIAN_MLC)


def _facts(
    planning: Planning, course: CourseScenario, plan: Plan, gy: float, treated: bool | None = None
) -> PlanFacts:
    return PlanFacts(
        plan=plan,
        intent=plan.spec.intent,
        treated=course.treated if treated is None else treated,
        structure_set=planning.structure_set.uid,
        planning_ct_series=planning.ct.series.uid,
        prescription_gy=gy,
        course=course.number,
        site=course.site.key,
    )


def _dose(
    out: PatientArchive,
    planning: Planning,
    plan: Plan,
    ptvs: list[tuple[Shape, float]],
    tomo: bool,
    hot_spot: float = 1.02,
) -> str:
    ctx = out.context
    grid = dose_grid(planning.ct, planning.anatomy, planning.pose, ctx.full_size)
    body = moved(planning.anatomy.body.shape, planning.pose)
    dose = plan_dose_gy(ptvs, body, grid, hot_spot)
    series = ctx.new_series(
        planning.rt_study,
        "RTDOSE",
        f"Dose {plan.spec.label}",
        ctx.institution.tps,
        planning.ct.series.frame_of_reference_uid,
        preferred_number=5,
    )
    day = plan.date
    generated = rt_dose(
        ctx,
        series,
        grid,
        dose,
        ctx.institution.dose_bits,
        None if tomo else plan.uid,
        planning.structure_set.uid if tomo else None,
        day,
        plan.time,
    )
    out.add(generated)
    return str(generated.dataset.SOPInstanceUID)


def dose_grid(ct: ImageSeries, anatomy: Anatomy, pose: Pose, full_size: bool) -> DoseGrid:
    """A dose grid over the body within the CT's extent, coarser than the CT (mm)."""
    tx, ty, tz = pose.translation
    sections = [anatomy.body.shape.section(z - tz) for z in ct.grid.zs]
    xs = [s.cx + tx + d * s.a for s in sections if s for d in (-1, 1)]
    ys = [s.cy + ty + d * s.b for s in sections if s for d in (-1, 1)]
    spacing = 2.5 if full_size else (4.0 if ct.grid.pixel_mm < 3.0 else 5.0)
    lo_x, hi_x = max(min(xs) - 5, ct.grid.xs[0]), min(max(xs) + 5, ct.grid.xs[-1])
    lo_y, hi_y = max(min(ys) - 5, ct.grid.ys[0]), min(max(ys) + 5, ct.grid.ys[-1])
    return DoseGrid.covering((lo_x, hi_x), (lo_y, hi_y), (min(ct.grid.zs), max(ct.grid.zs)), spacing)


def _records(
    out: PatientArchive,
    planning: Planning,
    plan: Plan,
    facts: PlanFacts,
    days: list[dt.date],
    first_fraction: int,
    dangling: bool,
) -> None:
    ctx, rng = out.context, out.context.rng
    series = ctx.new_series(
        planning.rt_study,
        "RTRECORD",
        f"Treatment records {plan.spec.label}",
        ctx.institution.record_and_verify,
        day=days[0],
        preferred_number=6,
    )
    if dangling:
        lost = ctx.uid("deleted-plan", plan.uid)
        record = treatment_record(ctx, series, plan, 1, dicom_date(days[0]), rng, plan_uid=lost)
        out.add(record)
        out.anomaly(
            "dangling_record",
            [str(record.dataset.SOPInstanceUID)],
            f"treatment record references RT plan {lost}, which is not in the archive",
        )
    for number, day in enumerate(days, start=first_fraction):
        record = treatment_record(ctx, series, plan, number, dicom_date(day), rng)
        out.add(record)
        facts.records.append(str(record.dataset.SOPInstanceUID))
        facts.record_dates.append(dicom_date(day))


def _boost(out: PatientArchive, planning: Planning, course: CourseScenario, main: Plan) -> None:
    """A sequential boost on the innermost target, treated after the main plan, exported without dose."""
    ctx, rng = out.context, out.context.rng
    fractions = rng.choice((4, 5, 8))
    gy = 2.0 * fractions
    inner = next(t for t in planning.targets if t.kind in {"GTV", "CTV"})
    label = f"{main.spec.label[:11]}_bst"
    shape = moved(inner.shape.grown(4), planning.pose)
    spec = _plan_spec(planning, course, label, [(_ptv_levels(planning)[0][0], gy)], fractions, [shape])
    spec = _with_machine_mlc(out, spec)
    day = course.plan_day + dt.timedelta(days=1)
    series = ctx.new_series(
        planning.rt_study,
        "RTPLAN",
        label,
        ctx.institution.tps,
        planning.ct.series.frame_of_reference_uid,
        day,
    )
    plan = rt_plan(ctx, series, spec, dicom_date(day), clock_time(rng, 9, 17), rng)
    out.add(plan.generated)
    facts = _facts(planning, course, plan, gy)
    out.plans.append(facts)
    out.anomaly(
        "plan_without_dose", [plan.uid], f"boost plan {label} was treated but its dose was never exported"
    )
    if course.treated:
        last = course.fraction_days[-1] if course.fraction_days else day
        days = weekdays_from(last + dt.timedelta(days=1), fractions)
        _records(out, planning, plan, facts, days, 1, dangling=False)


def _trial_plan(out: PatientArchive, planning: Planning, course: CourseScenario, main: Plan) -> None:
    """An alternative plan of the same course, never approved or delivered, with its own dose."""
    ctx, rng = out.context, out.context.rng
    label = f"{main.spec.label[:10]}_trial"
    spec = _plan_spec(
        planning,
        course,
        label,
        list(main.spec.levels),
        main.spec.fractions,
        list(main.spec.ptvs),
        approved=False,
    )
    spec = _with_machine_mlc(out, spec)
    series = ctx.new_series(
        planning.rt_study,
        "RTPLAN",
        label,
        ctx.institution.tps,
        planning.ct.series.frame_of_reference_uid,
        course.plan_day,
    )
    plan = rt_plan(ctx, series, spec, main.date, clock_time(rng, 9, 17), rng)
    out.add(plan.generated)
    facts = _facts(planning, course, plan, course.prescription.dose_gy, treated=False)
    out.plans.append(facts)
    dose_uid = _dose(out, planning, plan, [(s, gy) for s, gy in planning.ptvs()], tomo=False, hot_spot=1.06)
    facts.doses.append(dose_uid)
    out.decoy("trial_plan", [plan.uid], detail=f"alternative to {main.spec.label}, never delivered")
    out.decoy("trial_dose", [dose_uid], detail=f"dose of trial plan {label}")


def _second_structure_set(out: PatientArchive, planning: Planning, course: CourseScenario) -> None:
    """Automatic organ contours on the same CT: same frame of reference, referenced by no plan."""
    ctx, rng = out.context, out.context.rng
    organs = [
        r for r in planning.structure_set.rois if r.roi_type not in {"GTV", "CTV", "PTV"} and not r.empty
    ]
    day = course.ct_day + dt.timedelta(days=1)
    series = ctx.new_series(
        planning.rt_study,
        "RTSTRUCT",
        "AutoSeg",
        ctx.institution.tps,
        planning.ct.series.frame_of_reference_uid,
        day,
    )
    renumbered = [
        type(r)(n, r.name, r.standard, r.roi_type, r.colour, r.shape) for n, r in enumerate(organs, 1)
    ]
    ss = structure_set(
        ctx, series, planning.ct, renumbered, "AutoSeg", dicom_date(day), clock_time(rng, 8, 16)
    )
    out.add_structure_set(ss)
    out.decoy("second_structure_set", [ss.uid], detail="automatic contours on the planning CT")


def _registered_mr(out: PatientArchive, planning: Planning, course: CourseScenario) -> None:
    ctx, rng = out.context, out.context.rng
    inst = ctx.institution
    day = course.ct_day - dt.timedelta(days=rng.randrange(1, 15))
    study = ctx.new_study("mr", day, f"MR {course.site.description}")
    low, high = planning.span_mm()
    pose = Pose.random(rng, rng.uniform(-80, 80) - 0.5 * (low + high), 3.0)
    thickness = rng.choice((3.0, 4.0) if ctx.full_size else (4.0, 5.0))
    grid = ImageGrid.around(
        min(course.site.fov_mm, 400),
        256 if ctx.full_size else 128,
        0.5 * (low + high) + pose.translation[2],
        0.8 * (high - low),
        thickness,
        120 if ctx.full_size else 40,
    )
    for_uid = ctx.uid("frame", "mr", course.number)
    field_t = 3.0 if "MAGNETOM Vida" in inst.mr_scanner.model or "Architect" in inst.mr_scanner.model else 1.5
    t1 = ctx.new_series(study, "MR", "T1 TSE tra", inst.mr_scanner, for_uid, preferred_number=3)
    t1.body_part = course.site.body_part
    mr = mr_series(ctx, t1, planning.anatomy, pose, grid, field_t)
    out.add_images(mr)
    if course.with_second_mr:
        t2 = ctx.new_series(study, "MR", "T2 TSE tra", inst.mr_scanner, for_uid)
        t2.body_part = course.site.body_part
        out.add_images(mr_series(ctx, t2, planning.anatomy, pose, grid, field_t, weighting="T2"))
    _registration(out, planning, mr, pose, course)


def _registered_petct(out: PatientArchive, planning: Planning, course: CourseScenario) -> None:
    ctx, rng = out.context, out.context.rng
    inst = ctx.institution
    day = course.ct_day - dt.timedelta(days=rng.randrange(3, 22))
    study = ctx.new_study("pet-ct", day, "PET/CT FDG")
    low, high = planning.span_mm()
    pose = Pose.random(rng, rng.uniform(-900, -600) - 0.5 * (low + high), 2.0)
    centre, length = 0.5 * (low + high) + pose.translation[2], high - low
    thickness, most = (3.0, 150) if ctx.full_size else (5.0, 50)
    for_uid = ctx.uid("frame", "petct", course.number)
    ct_grid = ImageGrid.around(500, 512 if ctx.full_size else 128, centre, length, thickness, most)
    ct_part = ctx.new_series(study, "CT", "CT AC low dose", inst.pet_scanner, for_uid, preferred_number=2)
    ct_part.body_part = course.site.body_part
    ct = ct_series(ctx, ct_part, planning.anatomy, pose, ct_grid, day)
    out.add_images(ct)
    pet_grid = ImageGrid.around(600, 200 if ctx.full_size else 128, centre, length, thickness, most)
    pet = ctx.new_series(study, "PT", "PET AC", inst.pet_scanner, for_uid, preferred_number=4)
    pet.body_part = course.site.body_part
    out.add_images(pet_series(ctx, pet, planning.anatomy, pose, pet_grid, clock_time(rng, 7, 8)))
    _registration(out, planning, ct, pose, course)


def _registration(
    out: PatientArchive, planning: Planning, moving: ImageSeries, pose: Pose, course: CourseScenario
) -> None:
    ctx, rng = out.context, out.context.rng
    day = course.ct_day + dt.timedelta(days=1)
    series = ctx.new_series(
        planning.rt_study,
        "REG",
        f"REG {moving.series.description}",
        ctx.institution.tps,
        planning.ct.series.frame_of_reference_uid,
        day,
    )
    series.body_part = course.site.body_part
    matrix = registration_matrix(pose, planning.pose)
    out.add(
        spatial_registration(
            ctx, series, planning.ct, moving, matrix, dicom_date(day), clock_time(rng, 8, 16)
        )
    )
