"""The analysis area's stage after each patient's analysis (in ``ingest.pipeline.AFTER_ANALYSIS``).

In order: the mapping verdicts of the patient's ROI names (for every project with rules), completeness
and delivery of the patient's series and plans, DVH work rows for plans whose inputs changed, and
protocol QA of the patient's plans in the projects holding them.
"""

from __future__ import annotations

from rtbank.analysis import calculation, checks, mapping, qa
from rtbank.catalog.models import InstanceState, Roi


def after_analysis(patient_id: int) -> None:
    names = set(
        Roi.objects.filter(
            structure_set__instance__series__study__patient_id=patient_id,
            structure_set__instance__state=InstanceState.CURRENT,
        ).values_list("name", flat=True)
    )
    mapping.refresh_names(names)
    checks.check_patient(patient_id)
    calculation.enqueue_patient(patient_id)
    qa.evaluate_patient(patient_id, notify=True)
