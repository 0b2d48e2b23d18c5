from django.apps import AppConfig


def _may_view(access: object, project: object) -> bool:
    return access.has(project, "view")  # type: ignore[attr-defined]


class AnalysisConfig(AppConfig):
    """RT analysis: DVH service, metrics, ROI name mapping, completeness, protocol QA, CSV."""

    name = "rtbank.analysis"
    label = "analysis"
    # Sections on the projects area's pages (rtbank.web.panels).
    project_panels = [("analysis/panels/project.html", _may_view)]
    subject_panels = [("analysis/panels/subject.html", _may_view)]
    plan_panels = [("analysis/panels/plan.html", _may_view)]
    nav_items = [("TG-263", "analysis_tg263", lambda request: request.user.is_superuser)]

    def ready(self) -> None:
        from rtbank.analysis import calculation, system_checks  # noqa: F401 - registers the system check
        from rtbank.work.registry import Poller, WorkKind, register_kind, register_poller

        # One plan per batch: the DVH is calculated in `prepare`, outside the batch transaction.
        register_kind(
            WorkKind(
                calculation.DVH,
                calculation.handle,
                batch_size=1,
                order=50,
                lease_s=900,
                prepare=calculation.prepare,
            )
        )
        register_poller(Poller("dvh-engine-version", calculation.poll_outdated_engine, every_s=600))

        from django.db.models.signals import post_migrate, pre_migrate

        from rtbank.analysis import sqlviews

        # Schema upkeep, not business logic: the SQL views step aside while any migration runs.
        pre_migrate.connect(sqlviews.before_migrate, sender=self, dispatch_uid="rtbank-analysis-views-drop")
        post_migrate.connect(sqlviews.after_migrate, sender=self, dispatch_uid="rtbank-analysis-views-create")
