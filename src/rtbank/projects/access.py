"""The one access helper: every read of patient data by a person goes through here.

It answers, for a user and an object, whether they may see it and in what role, and records the read
(or the refusal) in the access log. Views never query patient data directly; they ask this module for
querysets and objects. Outsiders get 404 (the object's existence is not revealed), users who know of the
object but lack the permission get 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from rtbank.catalog.models import Instance, InstanceState, Patient
from rtbank.projects.models import AccessLog


def is_site_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.is_active and getattr(user, "is_superuser", False))


@dataclass(frozen=True)
class Viewer:
    """A person looking at data, with the request context the access log needs."""

    user: Any
    remote_addr: str = ""

    @classmethod
    def of(cls, request: HttpRequest) -> Viewer:
        return cls(request.user, request.META.get("REMOTE_ADDR", ""))

    @property
    def label(self) -> str:
        return self.user.get_username() if self.user.is_authenticated else "anonymous"


def visible_patients(viewer: Viewer) -> QuerySet[Patient]:
    """Patients the viewer may list. Site admins see all (routing data); others none until projects."""
    if is_site_admin(viewer.user):
        return Patient.objects.all()
    return Patient.objects.none()


def patient_for(viewer: Viewer, pk: int, action: str) -> Patient:
    """The patient ``pk`` if the viewer may see it (access-logged either way), else :class:`Http404`."""
    patient = visible_patients(viewer).filter(pk=pk).first()
    record(viewer, action, "patient", pk, "allowed" if patient else "not_found")
    if patient is None:
        raise Http404("no such patient")
    return patient


def patient_instances(patient: Patient) -> QuerySet[Instance]:
    return Instance.objects.filter(series__study__patient=patient, state=InstanceState.CURRENT)


def record(viewer: Viewer, action: str, object_type: str, object_id: object, outcome: str,
           project: Any = None, **details: Any) -> None:
    """Write one access-log row."""
    AccessLog.objects.create(
        user=viewer.user if viewer.user.is_authenticated else None,
        actor=viewer.label,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        project=project,
        outcome=outcome,
        remote_addr=viewer.remote_addr,
        details=details,
    )
