from django.apps import AppConfig


def _outbox_visible(request: object) -> bool:
    from rtbank.projects.access import Access

    access = Access.of(request)  # type: ignore[arg-type]
    return access.site_admin


def _cleanup_visible(request: object) -> bool:
    from rtbank.projects.access import is_site_admin

    user = getattr(request, "user", None)
    profile = getattr(user, "profile", None)
    return is_site_admin(user) or bool(profile and profile.has_role("data_manager"))


class RulesConfig(AppConfig):
    """Trigger rules, the forwarding outbox, the cleanup service."""

    name = "rtbank.rules"
    label = "rules"
    nav_items = [
        ("Site rules", "site_rules", _outbox_visible),
        ("Outbox", "outbox", _outbox_visible),
        ("Cleanup", "cleanup_report", _cleanup_visible),
    ]

    # Sections on the projects area's pages (rtbank.web.panels): predicate(access, project).
    project_panels = [
        (
            "rules/panels/project.html",
            lambda access, project: access.has(project, "rules") or access.has(project, "forward"),
        )
    ]
    subject_panels = [("rules/panels/subject.html", lambda access, project: access.has(project, "view"))]
    plan_panels = [("rules/panels/plan.html", lambda access, project: access.has(project, "view"))]

    def ready(self) -> None:
        from django.conf import settings

        from rtbank.rules import cleanup, engine, forwarding, outbox
        from rtbank.work.registry import WorkKind, register_kind

        register_kind(WorkKind(engine.RULES, engine.evaluate_item, batch_size=8, order=30))
        register_kind(
            WorkKind(
                outbox.FORWARD,
                forwarding.finish_forward,
                batch_size=1,
                order=70,
                lease_s=settings.FORWARD_LEASE_S,
                prepare=forwarding.prepare_forward,
                backoff=(settings.FORWARD_BACKOFF_S, settings.FORWARD_BACKOFF_CAP_S),
            )
        )
        register_kind(WorkKind(cleanup.CLEANUP, cleanup.cleanup_item, batch_size=1, order=95))
