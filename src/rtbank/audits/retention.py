"""What the audits area retains (cleanup never deletes it): every case's objects and every return."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from rtbank.audits.models import AuditDataset, ReturnedObject
from rtbank.catalog.indexing import audit_return_q
from rtbank.catalog.models import Instance, PlanBundleMember


def retained_instances() -> QuerySet:
    """Instance ids: the objects of cases (whole patients, or plans with their bundles), all returned data."""
    whole = AuditDataset.objects.filter(plan__isnull=True).values("patient_id")
    plans = AuditDataset.objects.filter(plan__isnull=False).values("plan_id")
    bundled = PlanBundleMember.objects.filter(plan_id__in=plans).values("member_id")
    returned = ReturnedObject.objects.values("instance_id")
    return Instance.objects.filter(
        Q(series__study__patient_id__in=whole)
        | Q(pk__in=plans)
        | Q(pk__in=bundled)
        | Q(pk__in=returned)
        | audit_return_q("series__study__patient__")
    ).values("pk")
