"""The SQL catalog: the DICOM hierarchy, RT objects and the references between them."""

from rtbank.catalog.models.hierarchy import Instance, InstanceState, Patient, Series, Study
from rtbank.catalog.models.rt import (
    Dose,
    PlanBundleMember,
    Reference,
    Registration,
    Roi,
    RTPlan,
    StructureSet,
    TreatmentRecord,
)

__all__ = [
    "Dose",
    "Instance",
    "InstanceState",
    "Patient",
    "PlanBundleMember",
    "RTPlan",
    "Reference",
    "Registration",
    "Roi",
    "Series",
    "StructureSet",
    "Study",
    "TreatmentRecord",
]
