from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    """Research projects, grants, data assignment, the one access helper and the access log."""

    name = "rtbank.projects"
    label = "projects"
    nav_items = [
        ("Projects", "project_list", lambda request: request.user.is_authenticated),
        ("Exports", "exports", lambda request: _has_exports(request)),
    ]
    # Sections other areas add to the project, subject and plan pages: see rtbank.web.panels.
    project_panels: list = []
    subject_panels: list = []
    plan_panels: list = []

    def ready(self) -> None:
        from rtbank.projects import exports, uploads
        from rtbank.work.registry import WorkKind, register_kind

        register_kind(WorkKind(uploads.UPLOAD_ASSIGN, uploads.assign_upload, batch_size=1, order=50))
        register_kind(WorkKind(exports.EXPORT, exports.run_export_step, batch_size=1, order=70, lease_s=600))


def _has_exports(request) -> bool:  # noqa: ANN001
    from rtbank.projects.access import Access
    from rtbank.projects.models import ExportJob

    acc = Access.of(request)
    if any("download" in perms for perms in acc.permissions.values()):
        return True
    return ExportJob.objects.filter(user=request.user).exists()
