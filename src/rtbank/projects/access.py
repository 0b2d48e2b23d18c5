"""The one access helper: every read of patient data by a person goes through here.

For a user and any object (project, subject, patient, instance, plan, ROI, DVH) it decides whether and in
what role they may see it, and writes the read — or the refusal — to the access log. Views, API calls and
exports never query patient data directly; they ask an :class:`Access` for querysets and objects.

The rules (brief, "Contracts"):

* permissions come only from live grants: not expired, on a project that is renewed and not archived;
* an instance belongs to a project when its patient is a whole-patient subject of the project, or it is a
  member of the plan bundle of a plan assigned to the project;
* outsiders (no live grant on any project holding the object) get 404, people with some grant there but
  not the permission asked for get 403;
* site admins see the unassigned inbox (to route data) and project data only through their own grants.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from rtbank.catalog.indexing import audit_return_q
from rtbank.catalog.models import Instance, InstanceState, Patient, PlanBundleMember
from rtbank.projects.models import (
    AccessLog,
    ExportJob,
    Grant,
    Permission,
    Project,
    ProjectPlan,
    ProjectStatus,
    ProjectSubject,
)

ALLOWED, DENIED, NOT_FOUND = "allowed", "denied", "not_found"
PLAN_KINDS = ("plan", "ion_plan")


def is_site_admin(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_superuser)


def today() -> dt.date:
    return timezone.localdate()


def search_fingerprint(text: str) -> str:
    """What the access log keeps of a search: a keyed hash, never the words (they may be patient IDs).

    An auditor who wants to know whether anyone searched for a given ID computes the same fingerprint (the
    access-log page does, from its "searched for" field) — the log itself names nobody.
    """
    import hashlib
    import hmac

    from django.conf import settings

    normalised = " ".join(text.lower().split())
    return hmac.new(
        settings.SECRET_KEY.encode(), b"rtbank-search:" + normalised.encode(), hashlib.sha256
    ).hexdigest()[:20]


def active_projects(on: dt.date | None = None) -> QuerySet[Project]:
    """Projects that are renewed and not archived (their grants give something)."""
    return Project.objects.filter(renew_by__gte=on or today()).exclude(status=ProjectStatus.ARCHIVED)


def live_grants(user: Any, on: dt.date | None = None) -> QuerySet[Grant]:
    """Grants that give something today: unexpired, on a renewed project that is not archived."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Grant.objects.none()
    day = on or today()
    return Grant.objects.filter(user=user, expires_on__gte=day, project__renew_by__gte=day).exclude(
        project__status=ProjectStatus.ARCHIVED
    )


@dataclass
class Access:
    """Access decisions for one user (one per request; grants are read once and cached)."""

    user: Any
    remote_addr: str = ""
    _perms: dict[int, set[str]] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, request: HttpRequest) -> Access:
        cached = getattr(request, "_rtbank_access", None)
        if cached is None:
            cached = cls(request.user, request.META.get("REMOTE_ADDR", ""))
            request._rtbank_access = cached  # type: ignore[attr-defined]
        return cached

    # --- permissions ---------------------------------------------------------------------------------
    @property
    def permissions(self) -> dict[int, set[str]]:
        """Project id → live permission names."""
        if self._perms is None:
            perms: dict[int, set[str]] = {}
            for project_id, permission in live_grants(self.user).values_list("project_id", "permission"):
                perms.setdefault(project_id, set()).add(permission)
            self._perms = perms
        return self._perms

    @property
    def label(self) -> str:
        return (
            self.user.get_username() if self.user is not None and self.user.is_authenticated else "anonymous"
        )

    @property
    def site_admin(self) -> bool:
        return is_site_admin(self.user)

    def has(self, project: Project | int, permission: str) -> bool:
        project_id = project if isinstance(project, int) else project.pk
        return permission in self.permissions.get(project_id, set())

    def projects(self, permission: str | None = None) -> QuerySet[Project]:
        """Projects where the user holds ``permission`` (any live grant when ``None``)."""
        ids = [pid for pid, perms in self.permissions.items() if permission is None or permission in perms]
        return Project.objects.filter(pk__in=ids)

    def project(self, code: str, permission: str, action: str) -> Project:
        """The project ``code`` if the user holds ``permission`` there: else 404 (outsider) or 403."""
        project = Project.objects.filter(code=code).first()
        if project is None or project.pk not in self.permissions:
            self.record(action, "project", code, NOT_FOUND, permission=permission)
            raise Http404("no such project")
        if not self.has(project, permission):
            self.record(action, "project", code, DENIED, project=project, permission=permission)
            raise PermissionDenied(f"you need the '{permission}' permission on {project.code}")
        return project

    # --- data in projects ----------------------------------------------------------------------------
    def subjects(self, project: Project) -> QuerySet[ProjectSubject]:
        """Subjects of a project the caller has already checked with :meth:`project`."""
        return ProjectSubject.objects.filter(project=project)

    def subject(self, project: Project, subject_id: str, action: str) -> ProjectSubject:
        subject = (
            ProjectSubject.objects.filter(project=project, subject_id=subject_id)
            .select_related("patient")
            .first()
        )
        self.record(
            action,
            "subject",
            subject.patient_id if subject else subject_id,
            ALLOWED if subject else NOT_FOUND,
            project=project,
            subject=subject_id,
        )
        if subject is None:
            raise Http404("no such subject")
        return subject

    def instances(self, project: Project) -> QuerySet[Instance]:
        """Current instances that belong to ``project`` (whole-patient subjects and plan bundles)."""
        return instances_in(project)

    def instance(self, uid: str, permission: str, action: str) -> tuple[Instance, list[Project]]:
        """An instance (by SOP Instance UID) and the projects through which the user holds ``permission``
        on it."""
        instance = Instance.objects.filter(sop_instance_uid=uid, state=InstanceState.CURRENT).first()
        holding = projects_holding(instance) if instance else []
        known = [p for p in holding if p.pk in self.permissions]
        allowed = [p for p in known if self.has(p, permission)]
        if not known:
            self.record(
                action, "instance", instance.pk if instance else uid, NOT_FOUND, permission=permission
            )
            raise Http404("no such object")
        if not allowed:
            self.record(action, "instance", instance.pk, DENIED, project=known[0], permission=permission)
            raise PermissionDenied(f"you need the '{permission}' permission on a project holding this object")
        self.record(action, "instance", instance.pk, ALLOWED, project=allowed[0], permission=permission)
        return instance, allowed

    def patient_label(self, project: Project, subject: ProjectSubject) -> str:
        """What identifies the patient to this user: the real Patient ID with ``identifiers``, else the
        subject ID."""
        if self.has(project, Permission.IDENTIFIERS):
            return subject.patient.patient_id
        return subject.subject_id

    def shows_identifiers(self, project: Project) -> bool:
        return self.has(project, Permission.IDENTIFIERS)

    # --- the unassigned inbox ------------------------------------------------------------------------
    def inbox_patients(self) -> QuerySet[Patient]:
        """Patients with data in no project, for site admins (all) and data managers (their institution)."""
        unassigned = Patient.objects.exclude(Exists(ProjectSubject.objects.filter(patient=OuterRef("pk"))))
        unassigned = unassigned.exclude(
            audit_return_q()
        )  # returned audit data is not clinical: never in the inbox
        if self.site_admin:
            return unassigned
        profile = getattr(self.user, "profile", None) if self.user.is_authenticated else None
        if profile and profile.institution_id and profile.has_role("data_manager"):
            return unassigned.filter(institution_id=profile.institution_id)
        return Patient.objects.none()

    def inbox_patient(self, pk: int, action: str) -> Patient:
        patient = self.inbox_patients().filter(pk=pk).first()
        self.record(action, "patient", pk, ALLOWED if patient else NOT_FOUND)
        if patient is None:
            raise Http404("no such patient in your inbox")
        return patient

    # --- what a person may do beyond reading ----------------------------------------------------------
    def may_assign(self, project: Project) -> bool:
        """Assign data to ``project``: site admins route to any collecting project; others need ``assign``."""
        if project.status != ProjectStatus.COLLECTING or project.is_suspended(today()):
            return False
        return self.site_admin or self.has(project, Permission.ASSIGN)

    def assignable_projects(self) -> QuerySet[Project]:
        collecting = active_projects().filter(status=ProjectStatus.COLLECTING)
        return (
            collecting
            if self.site_admin
            else collecting.filter(pk__in=list(self.projects(Permission.ASSIGN).values_list("pk", flat=True)))
        )

    def upload_institution(self) -> Any:
        """The institution this person uploads for (``uploader`` role), else ``None``."""
        profile = (
            getattr(self.user, "profile", None)
            if self.user is not None and self.user.is_authenticated
            else None
        )
        if profile is None or not profile.institution_id or not profile.has_role("uploader"):
            return None
        return profile.institution

    def upload_projects(self) -> QuerySet[Project]:
        """Projects an upload may go straight into: assignable, with the uploader's institution
        participating."""
        institution = self.upload_institution()
        if institution is None:
            return Project.objects.none()
        return self.assignable_projects().filter(institutions=institution)

    def members_project(self, code: str, action: str) -> Project:
        """A project whose members this person manages: ``members`` permission, or a site admin."""
        if self.site_admin:
            project = Project.objects.filter(code=code).first()
            self.record(action, "project", code, ALLOWED if project else NOT_FOUND, project=project)
            if project is None:
                raise Http404("no such project")
            return project
        return self.project(code, Permission.MEMBERS, action)

    def require_site_admin(self, action: str, object_type: str = "page") -> None:
        """Pages only site admins use (the access log, reuse): 403 for everyone else, logged."""
        if not self.site_admin:
            self.record(action, object_type, "", DENIED)
            raise PermissionDenied("only site admins may do this")

    # --- instances of a project, and how patients are named -----------------------------------------
    def subject_instances(self, project: Project, subject: ProjectSubject) -> QuerySet[Instance]:
        """The current instances ``project`` holds of one subject (never the rest of the patient's data)."""
        return instances_in(project, patient=subject.patient_id)

    def plan(self, project: Project, uid: str, action: str) -> Instance:
        """A plan the project holds, by SOP Instance UID (404 otherwise; logged either way)."""
        plan = (
            Instance.objects.filter(sop_instance_uid=uid, state=InstanceState.CURRENT, kind__in=PLAN_KINDS)
            .select_related("series__study")
            .first()
        )
        if (
            plan is not None
            and not instances_in(project, kinds=PLAN_KINDS, patient=plan.series.study.patient_id)
            .filter(pk=plan.pk)
            .exists()
        ):
            plan = None
        self.record(
            action, "instance", plan.pk if plan else uid, ALLOWED if plan else NOT_FOUND, project=project
        )
        if plan is None:
            raise Http404("no such plan in this project")
        return plan

    def export_instances(self, project: Project, subject_ids: Iterable[str] = ()) -> QuerySet[Instance]:
        """What a download of ``project`` contains (the caller checked ``download``): all or some subjects."""
        instances = instances_in(project)
        wanted = list(subject_ids)
        if wanted:
            patients = ProjectSubject.objects.filter(project=project, subject_id__in=wanted).values(
                "patient_id"
            )
            instances = instances.filter(series__study__patient_id__in=patients)
        return instances

    def labeller(self, project: Project) -> Callable[[Patient], str]:
        """Patient → the name exports and CSVs use: the subject ID, or the Patient ID with ``identifiers``."""
        subject_ids = dict(
            ProjectSubject.objects.filter(project=project).values_list("patient_id", "subject_id")
        )
        if self.shows_identifiers(project):
            return lambda patient: patient.patient_id
        return lambda patient: subject_ids.get(patient.pk, f"{project.code}-unknown-{patient.pk}")

    def export_job(self, pk: int, action: str) -> ExportJob:
        """One of the person's own export jobs, while they still hold ``download`` on its project."""
        job = (
            ExportJob.objects.filter(pk=pk, user_id=getattr(self.user, "pk", None))
            .select_related("project")
            .first()
        )
        if job is None or job.project_id not in self.permissions:
            self.record(action, "export", pk, NOT_FOUND)
            raise Http404("no such export")
        if not self.has(job.project, Permission.DOWNLOAD):
            self.record(
                action, "export", pk, DENIED, project=job.project, permission=Permission.DOWNLOAD.value
            )
            raise PermissionDenied("you need the 'download' permission on this project")
        return job

    # --- the access log ------------------------------------------------------------------------------
    def record(
        self,
        action: str,
        object_type: str,
        object_id: object,
        outcome: str,
        project: Project | None = None,
        **details: Any,
    ) -> None:
        AccessLog.objects.create(
            user=self.user if self.user is not None and self.user.is_authenticated else None,
            actor=self.label,
            action=action[:32],
            object_type=object_type,
            object_id=str(object_id)[:100],
            project=project,
            outcome=outcome,
            remote_addr=self.remote_addr,
            details=details,
        )

    def record_search(
        self,
        action: str,
        object_type: str,
        object_id: object,
        query: str,
        project: Project | None = None,
        **details: Any,
    ) -> None:
        """A list or search view: logged with the search's fingerprint (see :func:`search_fingerprint`)."""
        if query:
            details["search"] = search_fingerprint(query)
        self.record(action, object_type, object_id, ALLOWED, project=project, **details)

    def record_many(
        self,
        action: str,
        object_type: str,
        object_ids: Iterable[object],
        outcome: str,
        project: Project | None = None,
        **details: Any,
    ) -> int:
        """One access-log row per object (e.g. each patient of an export), written in one statement."""
        user = self.user if self.user is not None and self.user.is_authenticated else None
        rows = [
            AccessLog(
                user=user,
                actor=self.label,
                action=action[:32],
                object_type=object_type,
                object_id=str(object_id)[:100],
                project=project,
                outcome=outcome,
                remote_addr=self.remote_addr,
                details=details,
            )
            for object_id in object_ids
        ]
        AccessLog.objects.bulk_create(rows, batch_size=500)
        return len(rows)


def instances_in(
    project: Project, *, kinds: Iterable[str] | None = None, patient: Patient | int | None = None
) -> QuerySet[Instance]:
    """Current instances of ``project``: all data of whole-patient subjects, and assigned plans' bundles.

    Built as one ``id IN (… UNION ALL …)`` subquery driven from the project's own (small) rows — subjects,
    assigned plans, bundle members — so its cost follows the project's size, not the catalog's. Narrow it
    here rather than afterwards when you can: ``kinds`` (e.g. ``PLAN_KINDS``) and ``patient`` are applied
    inside each branch; a ``.filter()`` on the result still works, but runs over the whole project first.
    """
    patient_id = patient.pk if isinstance(patient, Patient) else patient
    whole = ProjectSubject.objects.filter(project=project, whole_patient=True)
    plans = ProjectPlan.objects.filter(subject__project=project)
    if patient_id is not None:
        whole, plans = whole.filter(patient_id=patient_id), plans.filter(subject__patient_id=patient_id)
    of_whole = Instance.objects.filter(series__study__patient_id__in=whole.values("patient_id"))
    bundled = PlanBundleMember.objects.filter(plan_id__in=plans.values("plan_id"))
    if kinds is not None:
        kinds = list(kinds)
        of_whole, bundled, plans = (
            of_whole.filter(kind__in=kinds),
            bundled.filter(member__kind__in=kinds),
            plans.filter(plan__kind__in=kinds),
        )
    members = of_whole.values("pk").union(bundled.values("member_id"), plans.values("plan_id"), all=True)
    return Instance.objects.filter(state=InstanceState.CURRENT, pk__in=members)


def projects_holding(instance: Instance) -> list[Project]:
    """Every project that holds ``instance`` (whatever the viewer's grants)."""
    patient_id = instance.series.study.patient_id if instance.series_id else None
    whole = Q(subjects__whole_patient=True, subjects__patient_id=patient_id)
    plans = Q(subjects__plans__plan__bundle_members__member=instance) | Q(subjects__plans__plan=instance)
    return list(Project.objects.filter(whole | plans).distinct())
