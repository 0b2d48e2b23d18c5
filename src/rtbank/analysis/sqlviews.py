"""The documented SQL views (``docs/sql.md``): the analysis tables as a researcher queries them.

One SQL text per view, the same on SQLite and PostgreSQL (no vendor functions: the curve points view
cuts the fixed-width curve text with ``SUBSTR`` and counts points with a recursive CTE). Every view is
scoped to projects and names patients by project subject ID only.

Migration ``analysis.0002`` creates them. Because SQLite rebuilds a table to alter it (and refuses to
rename a table a view refers to) and PostgreSQL refuses to change a column type a view uses, the
views are dropped before every ``migrate`` and created again after it (``pre_migrate`` /
``post_migrate`` in :mod:`rtbank.analysis.apps`), so other areas' migrations never trip over them and
the views always match this module.
"""

from __future__ import annotations

from typing import Any

_PROJECT_PLANS = """
CREATE VIEW rtbank_project_plans AS
SELECT p.code AS project, pp.project_id, pp.subject_id, i.id AS plan_id, i.sop_instance_uid AS plan_uid,
       rp.label AS plan_label, rp.name AS plan_name, ps.intent, rp.technique, rp.machine,
       rp.fractions_planned, rp.prescription_gy, ps.treated, ps.fractions_delivered, ps.first_treatment,
       ps.last_treatment, ps.planned_mu, ps.delivered_mu, ps.interruptions, ps.missed_weekdays,
       ps.abnormal_terminations, ps.complete, ps.flags AS completeness_flags
FROM (
    SELECT s.project_id, s.subject_id, i.id AS plan_id
    FROM projects_projectsubject s
    JOIN catalog_study st ON st.patient_id = s.patient_id
    JOIN catalog_series se ON se.study_id = st.id
    JOIN catalog_instance i ON i.series_id = se.id
    WHERE s.whole_patient AND i.kind IN ('plan', 'ion_plan')
    UNION
    SELECT s.project_id, s.subject_id, pl.plan_id
    FROM projects_projectplan pl
    JOIN projects_projectsubject s ON s.id = pl.subject_id
) pp
JOIN projects_project p ON p.id = pp.project_id
JOIN catalog_instance i ON i.id = pp.plan_id AND i.state = 'current'
LEFT JOIN catalog_rtplan rp ON rp.instance_id = i.id
LEFT JOIN analysis_plansummary ps ON ps.plan_id = i.id
"""

_PROJECT_SUBJECTS = """
CREATE VIEW rtbank_project_subjects AS
SELECT p.code AS project, s.project_id, s.subject_id, s.whole_patient, s.assigned_via,
       pc.complete, pc.flags AS completeness_flags
FROM projects_projectsubject s
JOIN projects_project p ON p.id = s.project_id
LEFT JOIN analysis_patientcompleteness pc ON pc.patient_id = s.patient_id
"""

_ROI_MAPPING = """
CREATE VIEW rtbank_roi_mapping AS
SELECT p.code AS project, m.project_id, COALESCE(inst.code, '') AS institution, m.roi_name, m.status,
       m.standard_name, m.candidates
FROM analysis_roinamemapping m
JOIN projects_project p ON p.id = m.project_id
LEFT JOIN institutions_institution inst ON inst.id = m.institution_key
"""

_PLAN_ROIS = """
CREATE VIEW rtbank_plan_rois AS
SELECT pl.project, pl.project_id, pl.subject_id, pl.plan_id, pl.plan_uid, pl.plan_label,
       ss.id AS structure_set_id, r.id AS roi_id, r.number AS roi_number, r.name AS roi_name,
       r.interpreted_type, COALESCE(m.status, 'unmatched') AS mapping_status,
       COALESCE(m.standard_name, '') AS standard_name,
       (SELECT COUNT(*) FROM catalog_roi r2
        JOIN analysis_roinamemapping m2 ON m2.roi_name = r2.name AND m2.project_id = pl.project_id
             AND m2.institution_key = COALESCE(ss.institution_id, 0)
        WHERE r2.structure_set_id = ss.id AND r2.contour_count > 0 AND m2.standard_name = m.standard_name
       ) AS standard_matches
FROM rtbank_project_plans pl
JOIN catalog_rtplan rp ON rp.instance_id = pl.plan_id
JOIN catalog_instance ss ON ss.sop_instance_uid = rp.structure_set_uid AND ss.state = 'current'
     AND ss.kind = 'structure_set'
JOIN catalog_roi r ON r.structure_set_id = ss.id AND r.contour_count > 0
LEFT JOIN analysis_roinamemapping m ON m.project_id = pl.project_id
     AND m.institution_key = COALESCE(ss.institution_id, 0) AND m.roi_name = r.name
"""

_DVH_ROIS = """
CREATE VIEW rtbank_dvh_rois AS
SELECT pr.project, pr.project_id, pr.subject_id, pr.plan_uid, pr.plan_label, pr.standard_name,
       pr.standard_matches, pr.mapping_status, pr.roi_name, pr.roi_number, rd.volume_cc, rd.covered_volume_cc,
       rd.flags, rd.dose_step_gy, rd.curve_points, rd.curve, pd.engine_version, pd.computed_at
FROM rtbank_plan_rois pr
JOIN analysis_plandvh pd ON pd.plan_id = pr.plan_id AND pd.state = 'ok'
JOIN analysis_roidvh rd ON rd.plan_dvh_id = pd.plan_id AND rd.roi_id = pr.roi_id
"""

_DVH_METRICS = """
CREATE VIEW rtbank_dvh_metrics AS
SELECT pr.project, pr.project_id, pr.subject_id, pr.plan_uid, pr.plan_label, pr.standard_name,
       pr.standard_matches, pr.mapping_status, pr.roi_name, pr.roi_number, d.name AS metric, d.value, d.unit,
       pd.engine_version
FROM rtbank_plan_rois pr
JOIN analysis_plandvh pd ON pd.plan_id = pr.plan_id AND pd.state = 'ok'
JOIN analysis_roidvh rd ON rd.plan_dvh_id = pd.plan_id AND rd.roi_id = pr.roi_id
JOIN analysis_dvhmetric d ON d.roi_dvh_id = rd.id
"""

_DVH_CURVES = """
CREATE VIEW rtbank_dvh_curves AS
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 399)
SELECT dr.project, dr.project_id, dr.subject_id, dr.plan_uid, dr.plan_label, dr.standard_name,
       dr.standard_matches, dr.mapping_status, dr.roi_name, dr.roi_number, k.n AS point,
       k.n * dr.dose_step_gy AS dose_gy,
       CAST(SUBSTR(dr.curve, 1 + 12 * k.n, 12) AS DOUBLE PRECISION) AS volume_cc,
       CASE WHEN CAST(SUBSTR(dr.curve, 1, 12) AS DOUBLE PRECISION) > 0
            THEN 100.0 * CAST(SUBSTR(dr.curve, 1 + 12 * k.n, 12) AS DOUBLE PRECISION)
                 / CAST(SUBSTR(dr.curve, 1, 12) AS DOUBLE PRECISION)
       END AS volume_pct
FROM rtbank_dvh_rois dr
JOIN k ON k.n < dr.curve_points
"""

_PROTOCOL_QA = """
CREATE VIEW rtbank_protocol_qa AS
SELECT pl.project, pl.project_id, pl.subject_id, pl.plan_uid, pl.plan_label, q.standard_name,
       CASE WHEN q.constraint_id IS NULL THEN 'required_roi' ELSE 'constraint' END AS item,
       c.metric, c.operator, c."limit" AS limit_value, c.unit, c.minor_limit, q.status, q.value, q.detail,
       q.evaluated_at
FROM analysis_qaresult q
JOIN rtbank_project_plans pl ON pl.plan_id = q.plan_id AND pl.project_id = q.project_id
LEFT JOIN analysis_doseconstraint c ON c.id = q.constraint_id
"""

# In dependency order: each view only uses views above it.
VIEWS: list[tuple[str, str]] = [
    ("rtbank_project_plans", _PROJECT_PLANS),
    ("rtbank_project_subjects", _PROJECT_SUBJECTS),
    ("rtbank_roi_mapping", _ROI_MAPPING),
    ("rtbank_plan_rois", _PLAN_ROIS),
    ("rtbank_dvh_rois", _DVH_ROIS),
    ("rtbank_dvh_metrics", _DVH_METRICS),
    ("rtbank_dvh_curves", _DVH_CURVES),
    ("rtbank_protocol_qa", _PROTOCOL_QA),
]
CREATE = [sql.strip() for _, sql in VIEWS]
DROP = [f"DROP VIEW IF EXISTS {name}" for name, _ in reversed(VIEWS)]
VIEWS_MIGRATION = ("analysis", "0002_sql_views")


def drop_views(connection: Any) -> None:
    with connection.cursor() as cursor:
        for statement in DROP:
            cursor.execute(statement)


def create_views(connection: Any) -> None:
    drop_views(connection)
    with connection.cursor() as cursor:
        for statement in CREATE:
            cursor.execute(statement)


def views_migration_applied(connection: Any) -> bool:
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connection)
    return (
        recorder.has_table()
        and recorder.migration_qs.filter(app=VIEWS_MIGRATION[0], name=VIEWS_MIGRATION[1]).exists()
    )


def before_migrate(using: str = "default", **_: Any) -> None:
    """``pre_migrate``: views out of the way of every table change."""
    from django.db import connections

    drop_views(connections[using])


def after_migrate(using: str = "default", **_: Any) -> None:
    """``post_migrate``: views back, as this module defines them (once their migration is applied).

    ``post_migrate`` also follows every ``flush`` (tests), which leaves the views alone: they are only made
    when one is missing, i.e. after ``pre_migrate`` dropped them.
    """
    from django.db import connections

    connection = connections[using]
    if views_migration_applied(connection) and not existing_views(connection) >= {name for name, _ in VIEWS}:
        create_views(connection)


def existing_views(connection: Any) -> set[str]:
    with connection.cursor() as cursor:
        return {t.name for t in connection.introspection.get_table_list(cursor) if t.type == "v"}
