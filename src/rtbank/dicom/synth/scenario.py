"""What happens to one patient: courses, sites, prescriptions, dates, images, and the archive's quirks.

Decisions only, no DICOM: :mod:`rtbank.dicom.synth.patient` turns a :class:`PatientScenario` into objects.
The first three patients of every archive share all quirks between them (patient ``i`` gets quirk ``j`` when
``j ≡ i (mod 3)``, or all of them in a one-patient archive), so even a small archive shows every irregularity;
later patients get each quirk by chance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rtbank.dicom.synth.context import PatientContext, weekdays_from
from rtbank.dicom.synth.sites import PRESCRIPTIONS, SITES, Prescription, Site

# Irregularities of real archives; those before "unregistered_series" concern the first course.
QUIRKS: tuple[str, ...] = (
    "missing_slice",
    "dose_references_structure_set",
    "plan_without_dose",
    "dangling_record",
    "trial_plan",
    "second_structure_set",
    "unregistered_series",
    "qa_phantom",
    "untreated_course",
)
COURSE_QUIRKS = frozenset(QUIRKS[:6])
QUIRK_CHANCE = 0.15
PRIMARY_SITES = ("head_neck", "thorax", "pelvis")
MR_CHANCE = {"head_neck": 0.7, "thorax": 0.1, "pelvis": 0.8, "brain": 0.4, "spine": 0.4}
PET_CHANCE = {"head_neck": 0.5, "thorax": 0.8, "pelvis": 0.05, "brain": 0.0, "spine": 0.1}


@dataclass
class CourseScenario:
    """One treatment course.

    Attributes
    ----------
    treated
        False for a course that was planned but never delivered (no records).
    delivered
        Fractions delivered of the main plan (fewer than planned when treatment stopped early).
    fraction_days
        Treatment days of the delivered fractions.
    quirks
        Course-level irregularities (subset of :data:`COURSE_QUIRKS`).
    """

    number: int
    site: Site
    prescription: Prescription
    technique: str
    machine: str
    ct_day: dt.date
    plan_day: dt.date
    treated: bool
    delivered: int
    fraction_days: list[dt.date]
    with_mr: bool
    with_second_mr: bool
    with_petct: bool
    with_4d_average: bool
    spine_level_mm: float = 0.0
    quirks: frozenset[str] = frozenset()


@dataclass
class PatientScenario:
    courses: list[CourseScenario]
    quirks: frozenset[str]

    @property
    def first_day(self) -> dt.date:
        return self.courses[0].ct_day


def forced_quirks(index: int, patients: int) -> frozenset[str]:
    """The quirks patient ``index`` is given whatever the dice say (the first three share them all)."""
    groups = min(patients, 3)
    if index < groups:
        return frozenset(q for j, q in enumerate(QUIRKS) if j % groups == index)
    return frozenset()


def scenario(ctx: PatientContext, patients: int, institution_count: int) -> PatientScenario:
    """Decide the patient's history from ``ctx.rng``."""
    rng = ctx.rng
    quirks = set(forced_quirks(ctx.index, patients))
    if ctx.index >= min(patients, 3):
        quirks |= {q for q in QUIRKS if rng.random() < QUIRK_CHANCE}
    first = PRIMARY_SITES[(ctx.index + ctx.index // max(institution_count, 1)) % 3]
    plan = _course_sites(ctx, first)
    if "untreated_course" in quirks:
        if len(plan) == 3:
            plan = plan[:2]
        plan.append(_follow_up(first, len(plan), rng.random()))
    courses: list[CourseScenario] = []
    day = ctx.first_day
    for number, (site_key, intent) in enumerate(plan, start=1):
        treated = not ("untreated_course" in quirks and number == len(plan))
        course = _course(ctx, number, SITES[site_key], intent, day, treated, quirks if number == 1 else set())
        courses.append(course)
        last = course.fraction_days[-1] if course.fraction_days else course.plan_day
        day = last + dt.timedelta(days=rng.randrange(30, 500))
    return PatientScenario(courses, frozenset(quirks))


def _course_sites(ctx: PatientContext, first: str) -> list[tuple[str, str]]:
    rng = ctx.rng
    intent = "PALLIATIVE" if first == "thorax" and rng.random() < 0.2 else "CURATIVE"
    count = rng.choices((1, 2, 3), weights=(50, 35, 15))[0]
    if ctx.index < 3:
        count = (2, 2, 1)[ctx.index]
    sites = [(first, intent)]
    for k in range(1, count):
        sites.append(_follow_up(first, k, rng.random()))
    return sites


def _follow_up(first: str, k: int, draw: float) -> tuple[str, str]:
    """The site and intent of follow-up course ``k`` (1-based after the first)."""
    if k == 1 and first == "thorax":
        return ("brain", "PROPHYLACTIC")
    if k == 1:
        return ("spine", "PALLIATIVE") if draw < 0.7 else ("thorax", "PALLIATIVE")
    return ("brain", "PALLIATIVE") if draw < 0.5 else ("spine", "PALLIATIVE")


def _course(
    ctx: PatientContext,
    number: int,
    site: Site,
    intent: str,
    ct_day: dt.date,
    treated: bool,
    quirks: set[str],
) -> CourseScenario:
    rng = ctx.rng
    inst = ctx.institution
    prescription = rng.choice(PRESCRIPTIONS[(site.key, intent)])
    if intent == "CURATIVE":
        technique = inst.technique
    elif site.key == "brain":
        technique = "3DCRT_LAT"
    else:
        technique = "VMAT" if inst.technique == "VMAT" and rng.random() < 0.5 else "3DCRT_AP_PA"
    plan_day = ct_day + dt.timedelta(days=rng.randrange(3, 9))
    start = plan_day + dt.timedelta(days=rng.randrange(2, 7))
    delivered = prescription.fractions
    if treated and prescription.fractions > 5 and rng.random() < 0.08:
        delivered = rng.randrange(1, prescription.fractions)
    forced = ctx.index < 3
    return CourseScenario(
        number=number,
        site=site,
        prescription=prescription,
        technique=technique,
        machine=rng.choice(inst.machines),
        ct_day=ct_day,
        plan_day=plan_day,
        treated=treated,
        delivered=delivered if treated else 0,
        fraction_days=weekdays_from(start, delivered) if treated else [],
        with_mr=rng.random() < MR_CHANCE[site.key] or (forced and number == 1 and ctx.index == 0),
        with_second_mr=rng.random() < 0.5,
        with_petct=rng.random() < PET_CHANCE[site.key] or (forced and number == 1 and ctx.index == 1),
        with_4d_average=site.key == "thorax" and (rng.random() < 0.3 or forced),
        spine_level_mm=rng.uniform(-540, -360),
        quirks=frozenset(q for q in quirks if q in COURSE_QUIRKS),
    )
