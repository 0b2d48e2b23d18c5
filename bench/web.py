"""Web speed with a large catalog: p50/p95 of the project page, the patient (subject) page and the inbox.

The catalog is synthetic rows (bulk_create, no files): 15,000 patients of 5 institutions arriving over ten
years, each with a study, a 20-image CT series and an RT series (plan, structure set with 12 ROIs, dose,
two treatment records), references and plan bundles as the analysis stage stores them. 100 projects: one
of 5,000 whole patients, 99 smaller ones (whole patients and plan-only subjects); 2,000 patients stay in
the inbox. Requests go through the whole Django stack in-process (test client: middleware, sessions, the
access helper and its access-log writes, templates), as a manager of the big project (with ``identifiers``)
and a two-factor-verified site admin. Pages are drawn from random subjects and pages of the tables.

usage: .venv/bin/python bench/web.py [--patients 15000] [--projects 100] [--requests 60] [--home DIR]
       [--update-docs]      (RTBANK_DATABASE_URL=postgresql://… to run on PostgreSQL)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ".venv/bin/python bench/web.py --update-docs"
TARGET_P95_MS = 300.0


def setup_django(home: Path) -> None:
    os.environ["RTBANK_HOME"] = str(home)
    os.environ.setdefault("RTBANK_SECRET_KEY", "bench-web-secret-key-" + "x" * 40)
    os.environ.setdefault("RTBANK_INSECURE_HTTP", "1")
    os.environ["RTBANK_LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "rtbank.settings"
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# ------------------------------------------------------------------ catalog
def fill(patients: int, projects: int, seed: int = 7) -> dict:
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.utils import timezone

    from rtbank.catalog.models import (
        Dose,
        Instance,
        Patient,
        PlanBundleMember,
        Reference,
        Roi,
        RTPlan,
        Series,
        StructureSet,
        Study,
        TreatmentRecord,
    )
    from rtbank.institutions.models import Institution, UserProfile
    from rtbank.projects.models import Grant, Project, ProjectPlan, ProjectSubject

    rng = random.Random(seed)
    start = time.perf_counter()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:  # a throwaway catalog: no need to fsync every insert
            cursor.execute("PRAGMA synchronous=OFF")
    institutions = Institution.objects.bulk_create(
        [Institution(code=c, name=f"{c} hospital") for c in ("ODE", "AAR", "RH", "VEJ", "AAL")]
    )
    Patient._meta.get_field("created_at").auto_now_add = False  # arrival dates spread over ten years
    first = timezone.now() - dt.timedelta(days=3650)
    pts = [
        Patient(
            issuer=institutions[i % 5].code,
            patient_id=f"P{i:06d}",
            name=f"FAMILY{i}^GIVEN",
            institution=institutions[i % 5],
            created_at=first + dt.timedelta(days=3650 * i / patients),
        )
        for i in range(patients)
    ]
    with transaction.atomic():
        Patient.objects.bulk_create(pts, batch_size=2000)
    pts = list(Patient.objects.order_by("pk"))
    with transaction.atomic():
        studies = Study.objects.bulk_create(
            [Study(uid=f"2.25.1{p.pk}", patient=p, description="RT course") for p in pts], batch_size=2000
        )
    with transaction.atomic():
        series = Series.objects.bulk_create(
            [
                s
                for st in studies
                for s in (
                    Series(
                        uid=f"2.25.2{st.pk}",
                        study=st,
                        modality="CT",
                        number=1,
                        description="planning CT",
                        frame_of_reference_uid=f"2.25.9{st.pk}",
                    ),
                    Series(
                        uid=f"2.25.3{st.pk}", study=st, modality="RTPLAN", number=2, description="RT objects"
                    ),
                )
            ],
            batch_size=2000,
        )
    ct_of = {s.study_id: s for s in series if s.modality == "CT"}
    rt_of = {s.study_id: s for s in series if s.modality != "CT"}
    kinds = ("plan", "structure_set", "dose", "record", "record")
    instances = []
    for st in studies:
        for n in range(20):
            instances.append(_instance(f"2.25.4{st.pk}.{n}", "image", ct_of[st.pk], n + 1))
        for n, kind in enumerate(kinds):
            instances.append(_instance(f"2.25.5{st.pk}.{n}", kind, rt_of[st.pk], n + 1))
    with transaction.atomic():
        Instance.objects.bulk_create(instances, batch_size=5000)
    by_series: dict[int, list] = {}
    for inst in Instance.objects.order_by("pk").only("pk", "series_id", "kind", "sop_instance_uid"):
        by_series.setdefault(inst.series_id, []).append(inst)
    plans, details, rois, refs, bundle = [], [], [], [], []
    for st in studies:
        rt = by_series[rt_of[st.pk].pk]
        ct = by_series[ct_of[st.pk].pk]
        plan, ss, dose, rec1, rec2 = rt
        plans.append(plan)
        details.append(
            RTPlan(
                instance=plan,
                label=f"PLAN{st.pk}",
                name="VMAT",
                intent="CURATIVE",
                fractions_planned=25,
                prescription_gy=50.0,
                beam_count=2,
                approval_status="APPROVED",
                structure_set_uid=ss.sop_instance_uid,
            )
        )
        details.append(StructureSet(instance=ss, label="RS", series_uid=ct_of[st.pk].uid))
        details.append(Dose(instance=dose, plan_uid=plan.sop_instance_uid, units="GY", summation_type="PLAN"))
        details += [
            TreatmentRecord(instance=r, fraction_number=i + 1, plan_uid=plan.sop_instance_uid)
            for i, r in enumerate((rec1, rec2))
        ]
        rois += [
            Roi(structure_set_id=ss.pk, number=n, name=f"ROI_{n}", contour_count=20) for n in range(1, 13)
        ]
        refs += [
            Reference(source=plan, kind="structure_set", level="instance", target_uid=ss.sop_instance_uid),
            Reference(source=ss, kind="series", level="series", target_uid=ct_of[st.pk].uid),
            Reference(source=dose, kind="plan", level="instance", target_uid=plan.sop_instance_uid),
            Reference(source=rec1, kind="plan", level="instance", target_uid=plan.sop_instance_uid),
            Reference(source=rec2, kind="plan", level="instance", target_uid=plan.sop_instance_uid),
        ]
        bundle += [
            PlanBundleMember(plan=plan, member=m, role=role)
            for m, role in (
                (plan, "plan"),
                (ss, "structure_set"),
                (dose, "dose"),
                (rec1, "record"),
                (rec2, "record"),
            )
        ]
        bundle += [PlanBundleMember(plan=plan, member=img, role="planning_image") for img in ct]
    with transaction.atomic():
        for model in (RTPlan, StructureSet, Dose, TreatmentRecord):
            model.objects.bulk_create([d for d in details if isinstance(d, model)], batch_size=5000)
        Roi.objects.bulk_create(rois, batch_size=5000)
        Reference.objects.bulk_create(refs, batch_size=5000)
        PlanBundleMember.objects.bulk_create(bundle, batch_size=5000)
    # Projects: BIG holds 5,000 whole patients; the others share the rest but 2,000 (the inbox).
    codes = ["BIG"] + [f"P{n:02d}" for n in range(1, projects)]
    renew = dt.date.today() + dt.timedelta(days=365)
    projs = Project.objects.bulk_create(
        [Project(code=c, name=f"Trial {c}", renew_by=renew, subject_prefix=c) for c in codes]
    )
    inbox = set(rng.sample(range(patients), min(2000, patients // 7)))
    rest = [i for i in range(patients) if i not in inbox]
    rng.shuffle(rest)
    big, small = rest[: patients // 3], rest[patients // 3 :]
    subjects, project_plans = [], []
    for n, i in enumerate(big):
        subjects.append(
            ProjectSubject(
                project=projs[0],
                patient=pts[i],
                subject_id=f"BIG-{n + 1:04d}",
                whole_patient=True,
                assigned_via="rule",
                assigned_by="bench",
            )
        )
    for n, i in enumerate(small):
        proj = projs[1 + n % (projects - 1)]
        subjects.append(
            ProjectSubject(
                project=proj,
                patient=pts[i],
                subject_id=f"{proj.code}-{n + 1:05d}",
                whole_patient=n % 3 != 0,
                assigned_via="person",
                assigned_by="bench",
            )
        )
    with transaction.atomic():
        ProjectSubject.objects.bulk_create(subjects, batch_size=5000)
        plan_of = {p.series_id: p for p in plans}
        for s in ProjectSubject.objects.filter(whole_patient=False).select_related("patient"):
            st = studies[s.patient_id - pts[0].pk]
            project_plans.append(
                ProjectPlan(
                    subject=s, plan=plan_of[rt_of[st.pk].pk], assigned_via="person", assigned_by="bench"
                )
            )
        ProjectPlan.objects.bulk_create(project_plans, batch_size=5000)
    manager = User.objects.create_user("manager", "", "bench-password-1")
    admin = User.objects.create_superuser("admin", "", "bench-password-1")
    UserProfile.objects.create(user=admin)
    Grant.objects.bulk_create(
        [
            Grant(user=manager, project=projs[0], permission=p, expires_on=renew, granted_by="bench")
            for p in ("view", "identifiers", "download", "export", "members")
        ]
    )
    Grant.objects.bulk_create(
        [
            Grant(user=manager, project=p, permission="view", expires_on=renew, granted_by="bench")
            for p in projs[1:]
        ]
    )
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("ANALYZE")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {
        "seconds": time.perf_counter() - start,
        "instances": len(instances),
        "manager": manager,
        "admin": admin,
        "big": projs[0],
        "small": projs[1],
        "bundle_rows": len(bundle),
    }


def reuse() -> dict:
    """The catalog a previous run left in --home."""
    from django.contrib.auth.models import User

    from rtbank.catalog.models import Instance, PlanBundleMember
    from rtbank.projects.models import Project

    TOTPDevice = __import__("django_otp.plugins.otp_totp.models", fromlist=["TOTPDevice"]).TOTPDevice
    TOTPDevice.objects.all().delete()
    return {
        "seconds": 0.0,
        "instances": Instance.objects.count(),
        "manager": User.objects.get(username="manager"),
        "admin": User.objects.get(username="admin"),
        "big": Project.objects.get(code="BIG"),
        "small": Project.objects.get(code="P01"),
        "bundle_rows": PlanBundleMember.objects.count(),
    }


def _instance(uid: str, kind: str, series: object, number: int) -> object:
    from rtbank.catalog.models import Instance

    return Instance(
        sop_instance_uid=uid,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        kind=kind,
        series=series,
        instance_number=number,
        blob_key=f"bench/{uid}.dcm",
        size=1000,
        file_sha256="0" * 64,
        content_sha256="0" * 64,
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        received_via="bench",
    )


# ------------------------------------------------------------------ timing
def clients(world: dict) -> tuple[object, object]:
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    manager = Client()
    manager.force_login(world["manager"])
    admin = Client()
    admin.force_login(world["admin"])
    device = TOTPDevice.objects.create(user=world["admin"], name="bench", confirmed=True)
    session = admin.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return manager, admin


def timed(client: object, urls: list[str]) -> list[float]:
    out = []
    for url in urls:
        t = time.perf_counter()
        response = client.get(url)  # type: ignore[attr-defined]
        _ = response.content
        out.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return out


def measure(world: dict, n: int, seed: int = 3) -> dict[str, list[float]]:
    from rtbank.projects.models import ProjectSubject

    rng = random.Random(seed)
    manager, admin = clients(world)
    big, small = world["big"], world["small"]
    subject_ids = list(ProjectSubject.objects.filter(project=big).values_list("subject_id", flat=True))
    small_ids = list(ProjectSubject.objects.filter(project=small).values_list("subject_id", flat=True))
    pages = max(1, len(subject_ids) // 50)
    urls = {
        "project page (5,000 patients)": [
            f"/projects/{big.code}/?page={rng.randint(1, pages)}" for _ in range(n)
        ],
        "project page, search": [
            f"/projects/{big.code}/?q=P0{rng.randint(0, 9)}{rng.randint(0, 9)}" for _ in range(n)
        ],
        "project page (small project)": [f"/projects/{small.code}/" for _ in range(n)],
        "patient (subject) page": [
            f"/projects/{big.code}/subjects/{rng.choice(subject_ids)}/" for _ in range(n)
        ],
        "patient page, plan-only subject": [
            f"/projects/{small.code}/subjects/{rng.choice(small_ids)}/" for _ in range(n)
        ],
        "inbox (site admin, 2,000 patients)": [f"/inbox/?page={rng.randint(1, 40)}" for _ in range(n)],
    }
    timed(manager, [f"/projects/{big.code}/"])  # warm-up: templates, connections
    timed(admin, ["/inbox/"])
    results = {}
    for label, batch in urls.items():
        client = admin if label.startswith("inbox") else manager
        results[label] = timed(client, batch)
    return results


def without_panels() -> None:
    """Switch off the sections other areas add to the pages (to see what the pages themselves cost)."""
    from django.apps import apps

    for config in apps.get_app_configs():
        for kind in ("project_panels", "subject_panels", "plan_panels"):
            if getattr(config, kind, None):
                setattr(config, kind, [])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def report(
    world: dict, results: dict[str, list[float]], bare: dict[str, list[float]], args: argparse.Namespace
) -> str:
    from django.db import connection

    load = os.getloadavg()
    lines = [
        f"Command: `{COMMAND}` ({args.patients:,} patients, {args.projects} projects, "
        f"{args.requests} requests per "
        f"page; {world['instances']:,} instances and {world['bundle_rows']:,} plan-bundle rows filled in "
        f"{world['seconds']:.0f} s; database: {connection.vendor}). Django test client in-process: the whole "
        "middleware stack, sessions, the access helper and its access-log write, templates; no network.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} at the end (shared with "
        f"other work); Python {platform.python_version()}. Target: p95 under {TARGET_P95_MS:.0f} ms.",
        "",
        "| page | p50 (ms) | p95 (ms) | max (ms) | without other areas' panels: p50 / p95 (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, values in results.items():
        p95 = percentile(values, 0.95)
        mark = "" if p95 < TARGET_P95_MS else " ⚠"
        own = bare[label]
        lines.append(
            f"| {label} | {statistics.median(values):.0f} | {p95:.0f}{mark} | {max(values):.0f} | "
            f"{statistics.median(own):.0f} / {percentile(own, 0.95):.0f} |"
        )
    lines += [
        "",
        "The last column switches off the sections other areas add to these pages (analysis, rules, viewer, "
        "audits panels: `AppConfig.*_panels`), to separate the pages' own cost from theirs.",
    ]
    return "\n".join(lines)


def update_docs(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"## Web\n\n{text}\n"
    if "\n## Web\n" in doc:
        head, rest = doc.split("\n## Web\n", 1)
        tail = rest.split("\n## ", 1)
        doc = head + "\n" + section + ("\n## " + tail[1] if len(tail) > 1 else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    path.write_text(doc)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=15000)
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--requests", type=int, default=60, help="requests per page kind")
    parser.add_argument("--home", type=Path, default=None, help="RTBANK_HOME (default: a temporary folder)")
    parser.add_argument("--update-docs", action="store_true", help="write the figures to docs/benchmarks.md")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="rtbank-bench-web-"))
    setup_django(home)
    from rtbank.catalog.models import Patient

    world = reuse() if Patient.objects.exists() else fill(args.patients, args.projects)
    print(
        f"filled {args.patients} patients, {world['instances']} instances in {world['seconds']:.0f} s",
        flush=True,
    )
    results = measure(world, args.requests)
    without_panels()
    bare = measure(world, args.requests, seed=4)
    text = report(world, results, bare, args)
    print(text)
    if args.update_docs:
        update_docs(text)
    worst = max(percentile(v, 0.95) for v in bare.values())
    return 0 if worst < TARGET_P95_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
