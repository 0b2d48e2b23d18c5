"""Authorisation-matrix entries of the audit pages (merged into :mod:`tests.projects.url_matrix`).

Every audit page needs the ``audit`` permission on the project: in the matrix world only manager_A holds it
on A (viewer_A and analyst_A get 403, everyone else 404; the suspended role is tried on its suspended
project S). The audit itself is one of A's plan with one participant whose copy is made at once.
"""

from __future__ import annotations

from typing import Any

from tests.projects.url_matrix import Case
from tests.projects.world import PATIENT_ID, World

AUDITOR = frozenset({"manager_A"})
AUDIT_NAME = "AUDITSENT audit"


def _audit(w: World) -> Any:
    """An audit of A's plan (one participant, structure set only) with its copy made (once)."""
    if "audit" not in w.extra:
        from rtbank.audits import copies, services
        from rtbank.projects.access import Access

        audit = services.create_audit(
            Access(w.users["manager_A"]),
            w.projects["A"],
            name=AUDIT_NAME,
            plans=[w.plan_uid],
            participants=1,
            contents=["structure_set"],
        )
        participant = audit.participants.get()
        copies.store_copy(participant, copies.make_copy(participant), user_id=None, actor="test")
        w.extra["audit"] = audit
    return w.extra["audit"]


def audit_kwargs(w: World, role: str) -> dict[str, Any]:
    return {"code": w.project_for(role).code, "pk": _audit(w).pk}


def participant_kwargs(w: World, role: str) -> dict[str, Any]:
    audit = _audit(w)
    return {**audit_kwargs(w, role), "participant": audit.participants.get().pk}


def _project_kwargs(w: World, role: str) -> dict[str, Any]:
    _audit(w)
    return {"code": w.project_for(role).code}


def _created(w: World) -> bool:
    from rtbank.audits.models import Audit

    return Audit.objects.filter(name="new audit").exists()


def _queued(w: World) -> bool:
    from rtbank.work.models import WorkItem

    return WorkItem.objects.filter(kind="audit_copy", state="pending").exists()


def _closed(w: World) -> bool:
    from rtbank.audits.models import Audit

    return Audit.objects.filter(name=AUDIT_NAME, state="closed").exists()


def _new_audit(w: World, role: str) -> dict[str, Any]:
    return {"name": "new audit", "plans": [w.plan_uid], "contents": ["structure_set"], "participants": "2"}


AUDIT_URLS: dict[str, list[Case]] = {
    "audit_list": [Case(kwargs=_project_kwargs, ok=AUDITOR, contains=(AUDIT_NAME,))],
    "audit_new": [
        Case(
            kwargs=_project_kwargs,
            ok=AUDITOR,
            contains=(PATIENT_ID,),
            note="manager_A holds identifiers: cases are offered by Patient ID",
        ),
        Case(
            kwargs=_project_kwargs, method="POST", data=_new_audit, ok=AUDITOR, ok_status=302, effect=_created
        ),
    ],
    "audit_detail": [Case(kwargs=audit_kwargs, ok=AUDITOR, contains=(AUDIT_NAME, "AUDIT"))],
    "audit_copies": [
        Case(
            kwargs=audit_kwargs,
            method="POST",
            data=lambda w, r: {"action": "make"},
            ok=AUDITOR,
            ok_status=302,
            effect=_queued,
        )
    ],
    "audit_download": [
        Case(
            kwargs=participant_kwargs,
            ok=AUDITOR,
            sees=set(),
            note="the anonymised copy: no identifier of A's patient inside",
        )
    ],
    "audit_returns": [Case(kwargs=audit_kwargs, ok=AUDITOR, contains=("Nothing returned yet",))],
    "audit_report": [Case(kwargs=audit_kwargs, ok=AUDITOR, contains=("QA report",))],
    "audit_report_csv": [Case(kwargs=audit_kwargs, ok=AUDITOR, contains=("dice",))],
    "audit_close": [
        Case(
            kwargs=audit_kwargs,
            method="POST",
            data=lambda w, r: {},
            ok=AUDITOR,
            ok_status=302,
            effect=_closed,
        )
    ],
}
