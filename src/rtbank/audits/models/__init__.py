"""Audits: studies, their datasets and participants, the restricted pseudonym maps, returns and their QA."""

from rtbank.audits.models.audit import (
    TARGET_TYPES,
    Audit,
    AuditDataset,
    AuditState,
    Content,
    CopyState,
    Participant,
)
from rtbank.audits.models.maps import PseudonymousPatient, PseudonymousUid
from rtbank.audits.models.returns import Against, PlanMetric, ReturnedObject, RoiAgreement

__all__ = [
    "TARGET_TYPES",
    "Against",
    "Audit",
    "AuditDataset",
    "AuditState",
    "Content",
    "CopyState",
    "Participant",
    "PlanMetric",
    "PseudonymousPatient",
    "PseudonymousUid",
    "ReturnedObject",
    "RoiAgreement",
]
