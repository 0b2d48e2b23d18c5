from django.apps import AppConfig


def _may_audit(access: object, project: object) -> bool:
    return access.has(project, "audit")  # type: ignore[attr-defined]


class AuditsConfig(AppConfig):
    """Audits: individually anonymised copies, distribution, collection of returns, QA of returns."""

    name = "rtbank.audits"
    label = "audits"
    # What cleanup never deletes: the audits' cases and everything participants sent back.
    retained_instances = "rtbank.audits.retention.retained_instances"
    # A section on the project page (rtbank.web.panels): the project's audits, for people with `audit`.
    project_panels = [("audits/panels/project.html", _may_audit)]

    def ready(self) -> None:
        from rtbank.audits import copies, qa
        from rtbank.audits.collection import QA
        from rtbank.work.registry import WorkKind, register_kind

        # Copies and scores are computed in `prepare`, outside the batch transaction; one row per batch.
        register_kind(
            WorkKind(
                copies.COPY,
                copies.finish_copy,
                batch_size=1,
                order=60,
                lease_s=3600,
                prepare=copies.prepare_copies,
            )
        )
        register_kind(WorkKind(QA, qa.finish_qa, batch_size=1, order=65, lease_s=3600, prepare=qa.prepare_qa))
