"""Evaluating rules: after each analysis of a patient, and when a person applies a rule to stored data.

For every enabled rule whose project is collecting and renewed (site-wide rules always), the patient's
matching objects are turned into *targets* — the patient (scope ``patient``), or each plan whose bundle
holds a matching object (scope ``plan``; a matching object no plan references yet waits, and the rule
fires when the plan arrives) — and the rule's actions run once per target (:mod:`rtbank.rules.actions`).
Because analysis runs again whenever late objects of the patient arrive, a plan's late dose and records
join the assignment (bundle membership) and an ``only_new`` forward sends them; nothing fires twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from rtbank.catalog.models import Instance, InstanceState, PlanBundleMember
from rtbank.eventlog.models import Outcome
from rtbank.eventlog.services import log_event
from rtbank.projects.models import ProjectStatus
from rtbank.rules.conditions import parse
from rtbank.rules.matching import AttributeReader, Match, eligible_q, matching
from rtbank.rules.models import Rule, RuleScope
from rtbank.work import services as work
from rtbank.work.models import WorkItem
from rtbank.work.registry import Batch

logger = logging.getLogger("rtbank.rules")
RULES = "rules"  # work kind: evaluate the rules for one patient (apply to stored data)
PLAN_KINDS = ("plan", "ion_plan")


@dataclass(frozen=True)
class Target:
    key: str  # patient:<id>, plan:<instance id>, or patient:<id> for objects waiting for a plan
    patient_id: int
    plan_id: int | None
    matched_id: int
    waiting: bool = False  # matched, but no plan references the objects yet


def active_rules() -> list[Rule]:
    """Enabled rules that may fire today (a project rule only while its project collects and is renewed)."""
    today = timezone.localdate()
    rules = []
    for rule in Rule.objects.filter(enabled=True).select_related("project").order_by("pk"):
        project = rule.project
        if project is not None and (
            project.status != ProjectStatus.COLLECTING or project.is_suspended(today)
        ):
            continue
        rules.append(rule)
    return rules


def evaluate_patient(patient_id: int, rules: list[Rule] | None = None) -> int:
    """Run every active rule on one patient's stored objects (the ``AFTER_ANALYSIS`` stage). Returns
    firings."""
    from rtbank.rules.actions import fire, settle_waiting

    rules = active_rules() if rules is None else rules
    if not rules:
        return 0
    reader = AttributeReader([])
    base = Instance.objects.filter(series__study__patient_id=patient_id)
    fired = 0
    for rule in rules:
        try:
            with transaction.atomic():
                reader.add_paths(parse(rule.conditions).attribute_paths())
                matches, _ = matching(rule, base, reader=reader)
                found = targets(rule, matches)
                for target in found:
                    fired += fire(rule, target)
                if rule.scope == RuleScope.PLAN and not any(t.waiting for t in found):
                    settle_waiting(rule, patient_id)
        except DatabaseError:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken rule must not stop analysis
            logger.exception("rule %s on patient %s failed", rule.pk, patient_id)
            log_event(
                "rules",
                "rule_failed",
                outcome=Outcome.ERROR,
                object_type="rule",
                object_id=rule.pk,
                message=f"patient #{patient_id}: {type(exc).__name__}: {exc}"[:500],
            )
    return fired


def targets(rule: Rule, matches: list[Match]) -> list[Target]:
    """What the rule's actions act on, for these matching objects."""
    if not matches:
        return []
    if rule.scope == RuleScope.PATIENT:
        first: dict[int, Match] = {}
        for m in matches:
            first.setdefault(m.patient_id, m)
        return [Target(f"patient:{p}", p, None, m.instance_id) for p, m in sorted(first.items())]
    by_id = {m.instance_id: m for m in matches}
    plans: dict[int, Match] = {m.instance_id: m for m in matches if m.kind in PLAN_KINDS}
    members = PlanBundleMember.objects.filter(member_id__in=list(by_id), plan__state=InstanceState.CURRENT)
    for plan_id, member_id in members.values_list("plan_id", "member_id").order_by("plan_id", "member_id"):
        plans.setdefault(plan_id, by_id[member_id])
    found = [
        Target(f"plan:{plan_id}", m.patient_id, plan_id, m.instance_id)
        for plan_id, m in sorted(plans.items())
    ]
    placed = {m.instance_id for m in plans.values()} | set(members.values_list("member_id", flat=True))
    waiting: dict[int, Match] = {}
    for m in matches:
        if m.instance_id not in placed:
            waiting.setdefault(m.patient_id, m)
    found += [
        Target(f"patient:{p}", p, None, m.instance_id, waiting=True) for p, m in sorted(waiting.items())
    ]
    return found


def target_objects(target: Target) -> QuerySet[Instance]:
    """The current objects an action on ``target`` affects."""
    current = Instance.objects.filter(state=InstanceState.CURRENT, series__isnull=False)
    if target.plan_id is not None:
        members = PlanBundleMember.objects.filter(plan_id=target.plan_id).values("member_id")
        return current.filter(pk__in=members) | current.filter(pk=target.plan_id)
    return current.filter(series__study__patient_id=target.patient_id)


def outside_project(rule: Rule, target: Target) -> int:
    """How many objects of the target a project rule may not take (from elsewhere, not to its AE title)."""
    if rule.project_id is None:
        return 0
    return target_objects(target).exclude(eligible_q(rule.project)).count()


# --- applying a rule to data already stored ---------------------------------------------------------------
def apply_to_stored(rule: Rule) -> int:
    """Queue an evaluation of every patient with matching stored objects; returns the number of patients."""
    matches, _ = matching(rule)
    patients = sorted({m.patient_id for m in matches})
    for patient_id in patients:
        work.enqueue(RULES, f"patient:{patient_id}", {"patient": patient_id, "rule": rule.pk})
    return len(patients)


def evaluate_item(item: WorkItem, batch: Batch) -> dict[str, Any]:
    """Work handler of kind ``rules``: evaluate the rules on one patient."""
    fired = evaluate_patient(int(item.payload["patient"]))
    return {"fired": fired}


def group_by_patient(matches: list[Match]) -> dict[int, list[Match]]:
    grouped: dict[int, list[Match]] = defaultdict(list)
    for m in matches:
        grouped[m.patient_id].append(m)
    return grouped
