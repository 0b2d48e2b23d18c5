"""Keeping plan bundles current: recomputed per patient whenever objects of the patient arrive."""

from __future__ import annotations

from django.utils import timezone

from rtbank.catalog.models import PlanBundleMember, RTPlan
from rtbank.catalog.rtindex import CatalogIndex
from rtbank.dicom.plan_bundle import PlanBundle, plan_bundle


def refresh_patient_bundles(patient_id: int) -> dict[str, PlanBundle]:
    """Recompute every current plan's bundle of ``patient_id`` and store the membership rows."""
    index = CatalogIndex(patient_id)
    bundles: dict[str, PlanBundle] = {}
    now = timezone.now()
    for plan_uid in index.plans():
        bundle = plan_bundle(plan_uid, index)
        bundles[plan_uid] = bundle
        plan_pk = index.pk_of[plan_uid]
        wanted = {
            index.pk_of[uid]: role.value for uid, role in bundle.instances.items() if uid in index.pk_of
        }
        existing = dict(PlanBundleMember.objects.filter(plan_id=plan_pk).values_list("member_id", "role"))
        stale = [pk for pk in existing if pk not in wanted or existing[pk] != wanted[pk]]
        if stale:
            PlanBundleMember.objects.filter(plan_id=plan_pk, member_id__in=stale).delete()
        PlanBundleMember.objects.bulk_create(
            [
                PlanBundleMember(plan_id=plan_pk, member_id=pk, role=role)
                for pk, role in wanted.items()
                if pk not in existing or pk in stale
            ],
            batch_size=500,
        )
        RTPlan.objects.filter(instance_id=plan_pk).update(
            planning_series_uid=bundle.planning_series_uid,
            bundle_missing=[[role.value, uid] for role, uid in bundle.missing],
            bundle_updated_at=now,
        )
    return bundles
