from django.apps import AppConfig


def _may_view_images(access: object, project: object) -> bool:
    return bool(access.has(project, "images"))  # type: ignore[attr-defined]


class ViewerConfig(AppConfig):
    """The plan viewer: slice and geometry endpoints, static JS."""

    name = "rtbank.viewer"
    label = "viewer"
    # "Open in viewer" links on the projects area's pages, for people holding ``images`` there.
    plan_panels = [("viewer/panels/plan.html", _may_view_images)]
    subject_panels = [("viewer/panels/subject.html", _may_view_images)]
