"""Models of the analysis area: stored DVHs, ROI name mapping, completeness, delivery, protocol QA."""

from rtbank.analysis.models.dvh import DvhMetric, DvhState, PlanDvh, RoiDvh
from rtbank.analysis.models.mapping import (
    NO_INSTITUTION,
    MappingStatus,
    RoiMappingRule,
    RoiNameMapping,
    Tg263Name,
)
from rtbank.analysis.models.protocol import (
    QA_SEVERITY,
    ConstraintUnit,
    DoseConstraint,
    PlanQa,
    ProjectAnalysis,
    QaResult,
    QaStatus,
    RequiredRoi,
)
from rtbank.analysis.models.status import IntentClass, PatientCompleteness, PlanSummary, SeriesCompleteness

__all__ = [
    "NO_INSTITUTION",
    "QA_SEVERITY",
    "ConstraintUnit",
    "DoseConstraint",
    "DvhMetric",
    "DvhState",
    "IntentClass",
    "MappingStatus",
    "PatientCompleteness",
    "PlanDvh",
    "PlanQa",
    "PlanSummary",
    "ProjectAnalysis",
    "QaResult",
    "QaStatus",
    "RequiredRoi",
    "RoiDvh",
    "RoiMappingRule",
    "RoiNameMapping",
    "SeriesCompleteness",
    "Tg263Name",
]
