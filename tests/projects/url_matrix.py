"""The authorisation matrix: one entry per URL name of the whole site (every app), tried by every role.

``test_authorization_matrix.py`` discovers every URL pattern from the resolver and fails when a name has no
entry here — so a new URL cannot ship without saying who may use it. To add yours::

    "my_view": [Case(kwargs=lambda w, role: {"code": w.project_for(role).code}, ok={"viewer_A", ...})],

A :class:`Case` is one request per role (a fresh client each) against the real objects of :mod:`world`:

* ``kwargs(world, role)`` builds the URL's arguments — use ``world.project_for(role)`` for project URLs, so
  the suspended role is tried on its own (suspended) project S, which holds A's patient too;
* ``ok`` are the roles that must get ``ok_status`` (the positive control: at least one role must be listed,
  or ``positive`` must make its own request and return a response with ``ok_status``);
* every other role must get no 2xx, and no 2xx response to a role outside ``sees`` may contain any of
  ``world.SENTINELS`` (A's patient ID, name, ROI name, plan label, subject ID) — lists, searches and exports
  included;
* ``method``/``data`` send a POST (run inside a rolled-back transaction); ``effect(world)`` says whether it
  took effect — it must for ``ok`` roles and must not for the others;
* ``contains`` must appear in the positive responses (proof that real objects were shown).

Roles: anonymous, nogrant, viewer_A, analyst_A, manager_A (+identifiers, ODE uploader/data manager), member_B
(manager of B, AAR uploader/data manager), site_admin, expired_A, suspended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from rtbank.projects.models import Grant, ProjectSubject, Upload
from tests.conftest import DATA
from tests.projects.world import PATIENT_ID, PLAN_LABEL, ROLES, World

LOGGED_IN = frozenset(ROLES) - {"anonymous"}
ON_A = frozenset({"viewer_A", "analyst_A", "manager_A"})
NO_ARGS: Callable[[World, str], dict[str, Any]] = lambda w, role: {}  # noqa: E731


@dataclass
class Case:
    kwargs: Callable[[World, str], dict[str, Any]] = NO_ARGS
    ok: frozenset[str] | set[str] = frozenset()
    ok_status: int = 200
    method: str = "GET"
    data: Callable[[World, str], dict[str, Any]] | None = None
    query: str = ""
    sees: frozenset[str] | set[str] | None = None  # roles that may see A's data here; default: ok ∩ ON_A
    effect: Callable[[World], bool] | None = None
    contains: tuple[str, ...] = ()
    positive: Callable[[World], Any] | None = None
    status_for: Callable[[World], int] | None = (
        None  # the expected success status, when it depends on the world
    )
    no_positive: str = ""  # why no role can succeed here (only Django's own admin plumbing)
    note: str = ""

    def may_see(self) -> set[str]:
        return set(self.sees) if self.sees is not None else set(self.ok) & ON_A


def project(w: World, role: str) -> dict[str, Any]:
    return {"code": w.project_for(role).code}


def subject(w: World, role: str) -> dict[str, Any]:
    return {"code": w.project_for(role).code, "subject_id": w.subject_id_for(role)}


def plan(w: World, role: str) -> dict[str, Any]:
    return {"code": w.project_for(role).code, "uid": w.plan_uid}


def own_job(w: World, role: str) -> dict[str, Any]:
    """A role's own export job where it has one (made while its grant was live), else A's manager's."""
    return {"pk": (w.jobs.get(role) or w.jobs["manager_A"]).pk}


def _upload_data(w: World, role: str) -> dict[str, Any]:
    data = (DATA / "rt-utils/ct_1.dcm").read_bytes()
    return {"files": SimpleUploadedFile("ct_1.dcm", data, "application/dicom"), "project": "A"}


def _unverified_admin_verify(w: World) -> Any:
    from tests.web.clients import client_for

    return client_for(w.users["site_admin"], second_factor=False).get("/login/verify/")


def _inbox_assigned(w: World) -> bool:
    return ProjectSubject.objects.filter(patient=w.inbox_ode).exists()


def _granted(w: World) -> bool:
    return Grant.objects.filter(user=w.users["nogrant"]).exists()


def _reused(w: World) -> bool:
    return ProjectSubject.objects.filter(project=w.projects["B"], patient=w.patient).exists()


URL_MATRIX: dict[str, list[Case]] = {
    # --- web: public, accounts ---------------------------------------------------------------------
    "home": [Case(ok=LOGGED_IN, ok_status=302, note="redirects to the project list")],
    "healthz": [Case(ok=frozenset(ROLES), note="no patient data")],
    "login": [Case(ok={"anonymous"}, note="logged-in people are sent on")],
    "login_verify": [
        Case(
            ok=set(),
            positive=_unverified_admin_verify,
            note="only for a session that still owes its second factor",
        )
    ],
    "logout": [Case(method="POST", data=lambda w, r: {}, ok=LOGGED_IN | {"anonymous"}, ok_status=302)],
    "account": [Case(ok=LOGGED_IN)],
    "two_factor_setup": [
        Case(ok=LOGGED_IN - {"site_admin"}, note="a verified admin is sent to the account page")
    ],
    "password_change": [Case(ok=LOGGED_IN)],
    "notifications": [Case(ok=LOGGED_IN)],
    "notifications_read": [Case(method="POST", data=lambda w, r: {}, ok=LOGGED_IN, ok_status=302)],
    # --- inbox -----------------------------------------------------------------------------------------
    "inbox": [
        Case(ok=LOGGED_IN, contains=()),
        Case(
            ok=LOGGED_IN, query=f"q={PATIENT_ID}", note="searching for A's patient finds nothing in any inbox"
        ),
    ],
    "inbox_patient": [
        Case(
            kwargs=lambda w, r: {"pk": w.inbox_ode.pk},
            ok={"manager_A", "site_admin"},
            contains=("PHANTOM_EXAMPLE",),
        ),
        Case(
            kwargs=lambda w, r: {"pk": w.patient.pk},
            ok=set(),
            note="A's patient is not in the inbox for anyone (positive control: the case above)",
        ),
    ],
    "inbox_assign": [
        Case(
            method="POST",
            data=lambda w, r: {"project": "A", "patients": [w.inbox_ode.pk]},
            ok={"manager_A", "site_admin"},
            ok_status=302,
            effect=_inbox_assigned,
        )
    ],
    # --- upload ------------------------------------------------------------------------------------------
    "upload": [
        Case(ok={"manager_A", "member_B"}),
        Case(
            method="POST",
            data=_upload_data,
            ok={"manager_A"},
            ok_status=302,
            effect=lambda w: Upload.objects.filter(project__code="A").exists(),
            note="member_B uploads for AAR but holds no assign on A",
        ),
    ],
    "upload_detail": [Case(kwargs=lambda w, r: {"pk": w.upload.pk}, ok={"manager_A"}, contains=("x.dcm",))],
    "access_log": [
        Case(
            ok={"site_admin"},
            sees=set(),
            contains=("access_log",),
            note="the audit trail names internal ids and subject IDs, never patient IDs or names",
        )
    ],
    # --- projects ------------------------------------------------------------------------------------------
    "project_list": [Case(ok=LOGGED_IN, contains=()), Case(ok=LOGGED_IN, query="q=A")],
    "project_detail": [
        Case(kwargs=project, ok=ON_A, contains=("A-0001", PLAN_LABEL)),
        Case(
            kwargs=project,
            ok=ON_A,
            query=f"q={PATIENT_ID}&institution=ODE",
            note="a search by Patient ID finds the subject only for holders of identifiers",
        ),
    ],
    "project_subject": [Case(kwargs=subject, ok=ON_A, contains=("A-0001",))],
    "project_plan": [Case(kwargs=plan, ok=ON_A, contains=(PLAN_LABEL,))],
    "project_plans_csv": [Case(kwargs=project, ok={"analyst_A", "manager_A"}, contains=(PLAN_LABEL,))],
    "project_export": [
        Case(
            kwargs=project,
            method="POST",
            data=lambda w, r: {"scope": "all"},
            ok={"manager_A"},
            contains=(PATIENT_ID,),
            note="manager_A holds identifiers: folders by Patient ID",
        ),
        Case(
            kwargs=project,
            method="POST",
            data=lambda w, r: {"scope": "all", "mode": "job"},
            ok={"manager_A"},
            ok_status=302,
            effect=lambda w: w.projects["A"].exports.count() > 2,
        ),
    ],
    "project_members": [
        Case(kwargs=project, ok={"manager_A", "site_admin"}, sees=set(), contains=("viewer_A",)),
        Case(
            kwargs=project,
            method="POST",
            ok={"manager_A", "site_admin"},
            ok_status=302,
            effect=_granted,
            data=lambda w, r: {
                "action": "add",
                "username": "nogrant",
                "role": "viewer",
                "until": w.extra["until"],
            },
        ),
    ],
    "project_reuse": [
        Case(kwargs=lambda w, r: {"code": "B"}, ok={"site_admin"}, sees=set()),
        Case(
            kwargs=lambda w, r: {"code": "B"},
            method="POST",
            ok={"site_admin"},
            ok_status=200,
            sees=set(),
            effect=_reused,
            data=lambda w, r: {"source": "A", "subjects": "A-0001", "agreement": "DUA-1"},
            note="the admin sees only the new subject ID in B",
        ),
    ],
    "exports": [Case(ok=LOGGED_IN)],
    "export_detail": [Case(kwargs=own_job, ok={"manager_A"}, sees=set())],
    "export_download": [Case(kwargs=own_job, ok={"manager_A"}, contains=(PATIENT_ID,))],
}


# --- Django's admin (site admins only; it holds no patient-data model) --------------------------------------
# --- rules area: trigger rules, outbox, manual sends, firings, cleanup report (owner: rules) ----------------
def _destination(w: World) -> Any:
    from rtbank.institutions.models import Node

    node = Node.objects.filter(name="PROTONS").first()
    if node is None:
        node = Node.objects.create(
            name="PROTONS", ae_title="PROTONS", host="127.0.0.1", port=1, roles=["dest"]
        )
        w.projects["A"].destinations.add(node)
    return node


def _a_rule(w: World) -> Any:
    """An enabled rule of A that matches A's plan (so the dry run has a target to show or hide)."""
    from rtbank.rules.models import Rule

    return Rule.objects.get_or_create(
        project=w.projects["A"],
        name="RULESENT rule",
        defaults={
            "enabled": True,
            "created_by": "test",
            "actions": [{"type": "assign"}],
            "conditions": {"type": "all", "conditions": [{"type": "modality", "values": ["RTPLAN"]}]},
        },
    )[0]


def _site_rule(w: World) -> Any:
    from rtbank.rules.models import Rule

    return Rule.objects.get_or_create(
        project=None,
        name="SITESENT rule",
        defaults={
            "enabled": True,
            "created_by": "test",
            "scope": "patient",
            "actions": [{"type": "assign", "project": w.projects["B"].pk}],
            "conditions": {"type": "all", "conditions": [{"type": "modality", "values": ["RTPLAN"]}]},
        },
    )[0]


def _failed_forward(w: World) -> Any:
    """A forward of A's plan bundle whose work row has failed at its cap."""
    from rtbank.rules import outbox
    from rtbank.rules.models import Forward
    from rtbank.work.models import WorkItem

    forward = Forward.objects.filter(project=w.projects["A"]).first()
    if forward is None:
        forward = outbox.send_plan(_destination(w), w.plan, project=w.projects["A"], actor="manager_A")
        WorkItem.objects.filter(kind="forward", key=str(forward.pk)).update(
            state="failed", last_error="refused"
        )
    return forward


def _after(made: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """URL arguments, once the objects the page should show exist."""
    return kwargs


def _rule_kwargs(w: World, role: str) -> dict[str, Any]:
    return {"code": w.project_for(role).code, "pk": _a_rule(w).pk}


def _send_data(w: World, role: str) -> dict[str, Any]:
    return {"subject": w.subject_id_for(role), "node": _destination(w).pk}


def _rule_form(w: World, role: str) -> dict[str, Any]:
    _destination(w)
    return {
        "name": "new trigger",
        "scope": "plan",
        "match": "all",
        "c0_type": "roi",
        "c0_subject": "TRIAL_*",
        "c0_test": "empty",
        "assign": "on",
        "assign_project": w.projects["A"].pk,
    }


def _rules_named(name: str) -> Callable[[World], bool]:
    def effect(w: World) -> bool:
        from rtbank.rules.models import Rule

        return Rule.objects.filter(name=name).exists()

    return effect


def _queued(kind: str) -> Callable[[World], bool]:
    def effect(w: World) -> bool:
        from rtbank.work.models import WorkItem

        return WorkItem.objects.filter(kind=kind, state="pending").exists()

    return effect


def _forwards(w: World) -> bool:
    from rtbank.rules.models import Forward

    return Forward.objects.filter(
        project=w.projects["A"], requested_by="manager_A", user__isnull=False
    ).exists()


def _rule_gone(site: bool) -> Callable[[World], bool]:
    def effect(w: World) -> bool:
        from rtbank.rules.models import Rule

        return not Rule.objects.filter(name="SITESENT rule" if site else "RULESENT rule").exists()

    return effect


SITE_ONLY = {"site_admin"}
URL_MATRIX.update(
    {
        "project_rules": [
            Case(
                kwargs=lambda w, r: _after(_a_rule(w), project(w, r)),
                ok={"manager_A"},
                contains=("RULESENT",),
            )
        ],
        "project_rule_new": [
            Case(kwargs=project, ok={"manager_A"}),
            Case(
                kwargs=project,
                method="POST",
                data=_rule_form,
                ok={"manager_A"},
                ok_status=302,
                effect=_rules_named("new trigger"),
            ),
        ],
        "project_rule": [Case(kwargs=_rule_kwargs, ok={"manager_A"}, contains=("RULESENT",))],
        "project_rule_edit": [
            Case(kwargs=_rule_kwargs, ok={"manager_A"}, contains=("RULESENT",)),
            Case(
                kwargs=_rule_kwargs,
                method="POST",
                data=_rule_form,
                ok={"manager_A"},
                ok_status=302,
                effect=_rules_named("new trigger"),
            ),
        ],
        "project_rule_dry_run": [
            Case(
                kwargs=_rule_kwargs,
                ok={"manager_A"},
                contains=(PATIENT_ID,),
                note="manager_A holds identifiers: the Patient ID; counts only to others",
            )
        ],
        "project_rule_apply": [
            Case(
                kwargs=_rule_kwargs,
                method="POST",
                data=lambda w, r: {},
                ok={"manager_A"},
                ok_status=302,
                effect=_queued("rules"),
            )
        ],
        "project_rule_delete": [
            Case(
                kwargs=_rule_kwargs,
                method="POST",
                data=lambda w, r: {},
                ok={"manager_A"},
                ok_status=302,
                effect=_rule_gone(site=False),
            )
        ],
        "project_outbox": [
            Case(
                kwargs=lambda w, r: _after(_failed_forward(w), project(w, r)),
                ok={"manager_A"},
                contains=("PROTONS", "Resubmit"),
            )
        ],
        "project_send": [
            Case(kwargs=project, ok={"manager_A"}),
            Case(
                kwargs=project,
                method="POST",
                data=_send_data,
                ok={"manager_A"},
                ok_status=302,
                effect=_forwards,
            ),
        ],
        "forward_resubmit": [
            Case(
                kwargs=lambda w, r: {"pk": _failed_forward(w).pk},
                method="POST",
                data=lambda w, r: {},
                ok={"manager_A"},
                ok_status=302,
                effect=_queued("forward"),
            )
        ],
        "subject_firings": [Case(kwargs=subject, ok=ON_A, contains=("A-0001",))],
        "outbox": [
            Case(
                kwargs=lambda w, r: _after(_failed_forward(w), {}),
                ok=SITE_ONLY,
                sees=set(),
                contains=("PROTONS",),
            )
        ],
        "site_rules": [
            Case(
                kwargs=lambda w, r: _after(_site_rule(w), {}),
                ok=SITE_ONLY,
                sees=set(),
                contains=("SITESENT",),
            )
        ],
        "site_rule_new": [
            Case(ok=SITE_ONLY, sees=set()),
            Case(
                method="POST",
                data=_rule_form,
                ok=SITE_ONLY,
                ok_status=302,
                sees=set(),
                effect=_rules_named("new trigger"),
            ),
        ],
        "site_rule": [
            Case(
                kwargs=lambda w, r: {"pk": _site_rule(w).pk}, ok=SITE_ONLY, sees=set(), contains=("SITESENT",)
            )
        ],
        "site_rule_edit": [Case(kwargs=lambda w, r: {"pk": _site_rule(w).pk}, ok=SITE_ONLY, sees=set())],
        "site_rule_dry_run": [
            Case(
                kwargs=lambda w, r: {"pk": _site_rule(w).pk},
                ok=SITE_ONLY,
                sees=set(),
                contains=("not shown", "2018_Comp_SRS-Brain"),
                note="the admin sees inbox patients; A's patient only as a count",
            )
        ],
        "site_rule_apply": [
            Case(
                kwargs=lambda w, r: {"pk": _site_rule(w).pk},
                method="POST",
                data=lambda w, r: {},
                ok=SITE_ONLY,
                ok_status=302,
                sees=set(),
                effect=_queued("rules"),
            )
        ],
        "site_rule_delete": [
            Case(
                kwargs=lambda w, r: {"pk": _site_rule(w).pk},
                method="POST",
                data=lambda w, r: {},
                ok=SITE_ONLY,
                ok_status=302,
                sees=set(),
                effect=_rule_gone(site=True),
            )
        ],
        "cleanup_report": [
            Case(
                ok={"site_admin", "manager_A", "member_B"},
                sees=set(),
                note="site admins and data managers (manager_A of ODE, member_B of AAR)",
            )
        ],
    }
)


def admin_cases(name: str) -> list[Case]:
    """Cases for one ``admin:*`` URL name: only the site admin gets in, and no page shows A's patient."""
    short = name.split(":", 1)[1]
    admin_only = {"site_admin"}
    fixed = {
        "index": Case(ok=admin_only),
        "jsi18n": Case(ok=admin_only),
        "password_change": Case(ok=admin_only),
        "password_change_done": Case(ok=admin_only),
        "login": Case(
            ok=frozenset(ROLES) - {"site_admin"}, sees=set(), note="the form (or 'not authorised')"
        ),
        "logout": Case(method="POST", data=lambda w, r: {}, ok=frozenset(ROLES), ok_status=302),
        "app_list": Case(kwargs=lambda w, r: {"app_label": "institutions"}, ok=admin_only),
        "autocomplete": Case(
            ok=set(), no_positive="needs a ModelAdmin with autocomplete fields; rtbank has none"
        ),
        "view_on_site": Case(
            kwargs=_view_on_site, ok=set(), no_positive="no admin model has get_absolute_url"
        ),
        "auth_user_password_change": Case(kwargs=lambda w, r: {"id": w.users["nogrant"].pk}, ok=admin_only),
        "otp_totp_totpdevice_config": Case(
            kwargs=lambda w, r: {"pk": _first("otp_totp", "totpdevice")}, ok=admin_only
        ),
        "otp_totp_totpdevice_qrcode": Case(
            kwargs=lambda w, r: {"pk": _first("otp_totp", "totpdevice")}, ok=admin_only
        ),
    }
    if short in fixed:
        return [fixed[short]]
    for action in ("changelist", "add", "change", "delete", "history"):
        if short.endswith("_" + action):
            app_model = short[: -len(action) - 1]
            return [_model_case(app_model, action)]
    raise KeyError(f"no rule for admin URL {name}: add one to tests/projects/url_matrix.py")


def _model_of(app_model: str) -> Any:
    from django.apps import apps

    for model in apps.get_models():
        if f"{model._meta.app_label}_{model._meta.model_name}" == app_model:
            return model
    raise LookupError(app_model)


def _first(app_label: str, model_name: str) -> int:
    return _model_of(f"{app_label}_{model_name}").objects.order_by("pk").values_list("pk", flat=True).first()


def _view_on_site(w: World, role: str) -> dict[str, Any]:
    from django.contrib.contenttypes.models import ContentType

    from rtbank.institutions.models import Institution

    return {
        "content_type_id": ContentType.objects.get_for_model(Institution).pk,
        "object_id": Institution.objects.first().pk,
    }


def _model_case(app_model: str, action: str) -> Case:
    def kwargs(w: World, role: str) -> dict[str, Any]:
        if action in ("changelist", "add"):
            return {}
        return {"object_id": _model_of(app_model).objects.order_by("pk").values_list("pk", flat=True).first()}

    def status(w: World) -> int:
        from django.contrib import admin
        from django.test import RequestFactory

        model = _model_of(app_model)
        model_admin = admin.site._registry[model]
        request = RequestFactory().get("/")
        request.user = w.users["site_admin"]
        obj = model.objects.order_by("pk").first()
        allowed = {
            "changelist": model_admin.has_view_or_change_permission(request),
            "add": model_admin.has_add_permission(request),
            "change": model_admin.has_view_or_change_permission(request, obj),
            "delete": model_admin.has_delete_permission(request, obj),
            "history": model_admin.has_view_or_change_permission(request, obj),
        }[action]
        return 200 if allowed else 403

    return Case(
        kwargs=kwargs,
        ok={"site_admin"},
        status_for=status,
        sees=set(),
        note="403 for the site admin where the ModelAdmin forbids the action (read-only logs)",
    )


def matrix() -> dict[str, list[Case]]:
    """URL_MATRIX plus a generated entry for every admin URL the resolver knows."""
    from tests.projects.test_authorization_matrix import url_names

    full = dict(URL_MATRIX)
    for name in url_names():
        if name.startswith("admin:"):
            full[name] = admin_cases(name)
    return full


# --- analysis area: DVHs, ROI mapping, overview matrix, completeness, delivery, protocol QA, CSV
# (owner: analysis)
ANALYSIS_EXPORT = frozenset({"analyst_A", "manager_A"})  # `export` on A


def _analysed(w: World) -> World:
    """Project A with a mapping rule for its hostile ROI, a protocol, and the DVHs calculated (once)."""
    if "analysis" not in w.extra:
        from rtbank.analysis import mapping, services
        from rtbank.work.worker import run_until_idle

        a = w.projects["A"]
        mapping.add_rule(a, "=HYPERLINK*", "HostileRoi", actor="test")
        services.add_required_roi(a, "HostileRoi")
        services.add_constraint(a, "HostileRoi Dmax < 1000 Gy", actor="test")
        run_until_idle(["dvh"])  # the world files data only; its plans' DVHs wait as work rows until now
        w.extra["analysis"] = True
    return w


def analysed(w: World, role: str) -> dict[str, Any]:
    return project(_analysed(w), role)


def _analysis_effect(check: str) -> Callable[[World], bool]:
    def effect(w: World) -> bool:
        from rtbank.analysis.models import ProjectAnalysis, RequiredRoi, RoiMappingRule, Tg263Name

        a = w.projects["A"]
        return {
            "metrics": lambda: ProjectAnalysis.objects.filter(
                project=a, metrics=["D95%", "V20Gy[%]"]
            ).exists(),
            "rule": lambda: RoiMappingRule.objects.filter(project=a, pattern="GTV*").exists(),
            "roi": lambda: RequiredRoi.objects.filter(project=a, standard_name="Brainstem").exists(),
            "tg263": lambda: Tg263Name.objects.filter(name="Heart").exists(),
        }[check]()

    return effect


def _tg263_file(w: World, role: str) -> dict[str, Any]:
    return {
        "file": SimpleUploadedFile("tg263.csv", b"TG263-Primary Name,Description\nHeart,Heart\n", "text/csv")
    }


URL_MATRIX.update(
    {
        "analysis_overview": [
            Case(kwargs=analysed, ok=ON_A, contains=("DVHs", "1 / 1")),
            Case(
                kwargs=analysed,
                method="POST",
                data=lambda w, r: {"metrics": "D95%, V20Gy[%]"},
                ok={"manager_A"},
                ok_status=302,
                effect=_analysis_effect("metrics"),
                note="changing the metric list needs `rules`",
            ),
        ],
        "analysis_matrix": [Case(kwargs=analysed, ok=ON_A, contains=(PLAN_LABEL, "HostileRoi"))],
        "analysis_mapping": [
            Case(kwargs=analysed, ok=ON_A, contains=("HostileRoi",)),
            Case(
                kwargs=analysed,
                method="POST",
                data=lambda w, r: {"action": "add", "pattern": "GTV*", "standard_name": "GTV"},
                ok={"manager_A"},
                ok_status=302,
                effect=_analysis_effect("rule"),
            ),
        ],
        "analysis_mapping_csv": [Case(kwargs=analysed, ok=ON_A, contains=("HostileRoi",), note="rules only")],
        "analysis_completeness": [Case(kwargs=analysed, ok=ON_A, contains=(PLAN_LABEL,))],
        "analysis_plans": [Case(kwargs=analysed, ok=ON_A, contains=(PLAN_LABEL, "curative"))],
        "analysis_qa": [
            Case(kwargs=analysed, ok=ON_A, contains=(PLAN_LABEL, "HostileRoi Dmax")),
            Case(
                kwargs=analysed,
                method="POST",
                data=lambda w, r: {"action": "add_roi", "standard_name": "Brainstem"},
                ok={"manager_A"},
                ok_status=302,
                effect=_analysis_effect("roi"),
            ),
        ],
        "analysis_metrics_csv": [
            Case(kwargs=analysed, ok=ANALYSIS_EXPORT, contains=(PLAN_LABEL, "HostileRoi"))
        ],
        "analysis_curves_csv": [
            Case(kwargs=analysed, ok=ANALYSIS_EXPORT, contains=(PLAN_LABEL, "HostileRoi"))
        ],
        "analysis_plans_csv": [Case(kwargs=analysed, ok=ANALYSIS_EXPORT, contains=(PLAN_LABEL,))],
        "analysis_qa_csv": [Case(kwargs=analysed, ok=ANALYSIS_EXPORT, contains=(PLAN_LABEL, "HostileRoi"))],
        "analysis_tg263": [
            Case(ok={"site_admin"}, sees=set(), note="the TG-263 list holds no patient data"),
            Case(
                method="POST",
                data=_tg263_file,
                ok={"site_admin"},
                ok_status=302,
                sees=set(),
                effect=_analysis_effect("tg263"),
            ),
        ],
    }
)


# --- viewer: the plan viewer's page and endpoints (owner: viewer) -------------------------------------------
# A's plan has no CT in this world, so A's viewer page, manifest (ROIs, dose facts) and DVHs are the positive
# controls for analyst_A and manager_A (both hold `images` on A); viewer_A holds only `view` (403). The
# endpoints that need images get their positive control from a plan with a CT in a project of its own.
VIEWER_A = frozenset({"analyst_A", "manager_A"})


def _viewer_root(w: World, role: str) -> dict[str, Any]:
    return {"uid": w.plan_uid}


def _viewer_plane(view: str) -> Callable[[World, str], dict[str, Any]]:
    def kwargs(w: World, role: str) -> dict[str, Any]:
        return {"uid": w.plan_uid, "view": view, "index": 0}

    return kwargs


def _viewer_image(w: World, role: str) -> dict[str, Any]:
    return {"uid": w.plan_uid, "series_uid": _viewer_data(w)["ct"], "view": "axial", "index": 0}


def _viewer_data(w: World) -> dict[str, Any]:
    """A synthetic spine plan (CT, structure set, dose) in project VW, where analyst_A holds `images`."""
    if "viewer" not in w.extra:
        from rtbank.catalog.models import Instance
        from rtbank.projects.services import add_project, assign_plan, grant
        from tests.viewer import synthetic

        spine = synthetic.plan("spine")
        synthetic.load(spine.files)
        renew = w.projects["A"].renew_by
        project = add_project("VW", name="Viewer positive control", renew_by=renew, actor="test")
        # The rules area's trigger rules of this world may have filed the new patient already: reuse.
        assign_plan(
            project,
            Instance.objects.get(sop_instance_uid=spine.uid),
            actor="admin",
            actor_is_site_admin=True,
            agreement="viewer positive control",
        )
        grant(w.users["analyst_A"], project, ["view", "images"], renew, actor="test")
        w.extra["viewer"] = {"plan": spine.uid, "ct": spine.ct_series_uid}
    return w.extra["viewer"]


def _viewer_positive(path: str) -> Callable[[World], Any]:
    def positive(w: World) -> Any:
        from tests.web.clients import client_for

        data = _viewer_data(w)
        return client_for(w.users["analyst_A"]).get(f"/viewer/{data['plan']}/{path.format(**data)}")

    return positive


URL_MATRIX.update(
    {
        "viewer": [Case(kwargs=_viewer_root, ok=VIEWER_A, contains=(PLAN_LABEL,))],
        "viewer_slash": [Case(kwargs=_viewer_root, ok=VIEWER_A, contains=(PLAN_LABEL,))],
        "viewer_manifest": [
            Case(
                kwargs=_viewer_root,
                ok=VIEWER_A,
                contains=(PLAN_LABEL, "HYPERLINK"),
                note="no CT in this world: ROIs and dose facts, images reported missing",
            )
        ],
        "viewer_dvh": [Case(kwargs=_viewer_root, ok=VIEWER_A, contains=('"status"',))],
        "viewer_image": [
            Case(
                kwargs=_viewer_image,
                ok=set(),
                positive=_viewer_positive("image/{ct}/axial/0"),
                note="A has no images: refused or not found for everyone; positive control on VW",
            )
        ],
        "viewer_geometry": [
            Case(kwargs=_viewer_plane("axial"), ok=set(), positive=_viewer_positive("geometry/axial/3")),
        ],
        "viewer_dose": [
            Case(kwargs=_viewer_plane("coronal"), ok=set(), positive=_viewer_positive("dose/axial/3")),
        ],
        "viewer_dose_at": [
            Case(
                kwargs=_viewer_root,
                query="x=0&y=0&z=0",
                ok=set(),
                positive=_viewer_positive("dose-at?x=0&y=0&z=0"),
            )
        ],
    }
)


# --- audits area: entries kept next to the area's tests (owner: audits) -------------------------------------
from tests.audits.url_matrix import AUDIT_URLS  # noqa: E402 - it builds on the Case defined above

URL_MATRIX.update(AUDIT_URLS)


# --- harvest area: site admins only (owner: harvest) --------------------------------------------------------
def _harvest_run(w: World, role: str) -> dict[str, Any]:
    """A harvest run over A's patient from a record-and-verify node (made once per world)."""
    if "harvest_run" not in w.extra:
        from rtbank.harvest.models import HarvestRun
        from rtbank.institutions.services import add_node

        source = add_node(
            "RVSRC",
            ae_title="RVSRC",
            host="127.0.0.1",
            port=11112,
            institution_code=None,
            roles=["harvest"],
            actor="test",
        )
        w.extra["harvest_run"] = HarvestRun.objects.create(
            source=source, patients=[PATIENT_ID], created_by="site_admin"
        ).pk
    return {"pk": w.extra["harvest_run"]}


def _harvest_runs(w: World, role: str) -> dict[str, Any]:
    _harvest_run(w, role)  # made here, outside the rolled-back transaction of a POST
    return {}


def _harvest_start(w: World, role: str) -> dict[str, Any]:
    return {"source": "RVSRC", "from": "2020-01-01", "to": "2020-12-31"}


def _harvest_started(w: World) -> bool:
    from rtbank.harvest.models import HarvestRun

    return HarvestRun.objects.filter(date_from="2020-01-01").exists()


URL_MATRIX.update(
    {
        "harvest_runs": [
            Case(ok={"site_admin"}, sees={"site_admin"}, note="harvest runs are for site admins"),
            Case(
                kwargs=_harvest_runs,
                method="POST",
                data=_harvest_start,
                ok={"site_admin"},
                ok_status=302,
                sees={"site_admin"},
                effect=_harvest_started,
            ),
        ],
        "harvest_run": [
            Case(kwargs=_harvest_run, ok={"site_admin"}, sees={"site_admin"}, contains=("RVSRC",))
        ],
        "harvest_run_csv": [Case(kwargs=_harvest_run, ok={"site_admin"}, sees={"site_admin"})],
    }
)
