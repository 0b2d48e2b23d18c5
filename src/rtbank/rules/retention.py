"""Retained data — what cleanup never deletes (brief, invariant I5) — asked of each area that retains data.

An object is retained when

* it belongs to a project: a whole-patient subject's data, an assigned plan or a member of its plan
  bundle (:func:`rtbank.projects.access.instances_in` for every project, whatever its status), or an
  earlier version of such an object;
* an area declares it retained: any app whose ``AppConfig`` has ``retained_instances`` (a dotted path or a
  callable returning a queryset of ``Instance`` ids, e.g. ``Instance.objects.filter(...).values("pk")``) —
  the audits area declares the objects of its cases and returns;
* until the harvest area declares its answer (``retained_instances`` on its AppConfig, e.g. its
  ``rtbank.harvest.services.retained_instance_ids``), the harvest rule is asked here of its tables, erring
  on the side of keeping: every object that arrived through a harvest run (``provenance['harvest_run']``)
  except runs marked not kept, and every object a kept run wanted.

The answer is a queryset (a subquery), so the cleanup can exclude retained data in SQL on any archive size.
"""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.module_loading import import_string

from rtbank.catalog.models import Instance, PlanBundleMember
from rtbank.projects.models import ProjectPlan, ProjectSubject

Provider = Callable[[], QuerySet]


def providers() -> dict[str, Provider]:
    """Each area's answer (app label → callable returning a queryset of ``Instance`` ids)."""
    found: dict[str, Provider] = {}
    for config in apps.get_app_configs():
        declared = getattr(config, "retained_instances", None)
        if declared is None:
            continue
        found[config.label] = import_string(declared) if isinstance(declared, str) else declared
    return found


def in_any_project() -> Q:
    """Objects in a project (any status: closed and archived projects keep their data)."""
    whole = ProjectSubject.objects.filter(whole_patient=True, patient=OuterRef("series__study__patient"))
    assigned = ProjectPlan.objects.filter(plan=OuterRef("pk"))
    bundled = PlanBundleMember.objects.filter(member=OuterRef("pk"), plan__project_plans__isnull=False)
    return Q(Exists(whole)) | Q(Exists(assigned)) | Q(Exists(bundled))


def retained_q() -> Q:
    """A filter on ``Instance``: true for every retained object."""
    q = in_any_project()
    declared = providers()
    for provide in declared.values():
        q |= Q(pk__in=provide())
    if "harvest" not in declared:
        q |= _harvested()
    # Earlier versions of a retained object are its history: kept with it.
    retained_uids = Instance.objects.filter(in_any_project()).values("sop_instance_uid")
    q |= Q(sop_instance_uid__in=retained_uids)
    return q


def _harvested() -> Q:
    """Harvested objects, asked of the harvest tables when the area has not declared its own answer."""
    try:
        run_model = apps.get_model("harvest", "HarvestRun")
        object_model = apps.get_model("harvest", "HarvestObject")
    except LookupError:
        return Q(provenance__has_key="harvest_run")
    dropped = list(run_model.objects.filter(keep=False).values_list("pk", flat=True))
    q = Q(provenance__has_key="harvest_run")
    if dropped:  # ids as a list: a JSON key compared with a subquery is not portable (PostgreSQL jsonb)
        q &= ~Q(provenance__harvest_run__in=dropped)
    wanted = object_model.objects.filter(run__keep=True, wanted=True).values("sop_instance_uid")
    return q | Q(sop_instance_uid__in=wanted)


def retained_instances() -> QuerySet[Instance]:
    return Instance.objects.filter(retained_q())


def is_retained(instance_ids: list[int]) -> set[int]:
    """Which of ``instance_ids`` are retained."""
    return set(Instance.objects.filter(pk__in=instance_ids).filter(retained_q()).values_list("pk", flat=True))
