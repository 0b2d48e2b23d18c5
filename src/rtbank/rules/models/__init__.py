"""Trigger rules and their firings, the forwarding outbox, and the cleanup service's records."""

from rtbank.rules.models.cleanup import CleanupNotice, CleanupRun, ExpiryNotice, NoticeState, TrashedInstance
from rtbank.rules.models.outbox import Forward, ForwardedInstance, ForwardScope
from rtbank.rules.models.rules import AttributeValue, FiringOutcome, Rule, RuleFiring, RuleScope

__all__ = [
    "AttributeValue",
    "CleanupNotice",
    "CleanupRun",
    "ExpiryNotice",
    "FiringOutcome",
    "Forward",
    "ForwardScope",
    "ForwardedInstance",
    "NoticeState",
    "Rule",
    "RuleFiring",
    "RuleScope",
    "TrashedInstance",
]
