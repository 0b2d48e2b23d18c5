from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import Progress

from rtbank.catalog.models import Instance, InstanceState, Patient
from rtbank.catalog.services import export_tree
from rtbank.commands import Failure, RtbankCommand
from rtbank.projects.access import instances_in
from rtbank.projects.models import AccessLog, Project, ProjectSubject


class Command(RtbankCommand):
    help = (
        "Export raw DICOM as a readable folder tree (patient/study/series/file.dcm): "
        "`export --out DIR [--project P] [--patient ID]`."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--out", required=True, type=Path, help="output folder")
        parser.add_argument(
            "--project",
            default=None,
            help="only this project's data (its plan bundles and whole patients), folders named by "
            "project subject ID",
        )
        parser.add_argument(
            "--identifiers",
            action="store_true",
            help="with --project: name folders by Patient ID instead of subject ID",
        )
        parser.add_argument(
            "--patient", default=None, help="only this Patient ID (with --project: its subject ID)"
        )
        parser.add_argument(
            "--issuer", default=None, help="issuer (institution code) when the Patient ID is ambiguous"
        )

    def handle(
        self,
        *args: Any,
        out: Path,
        project: str | None,
        identifiers: bool,
        patient: str | None,
        issuer: str | None,
        **options: Any,
    ) -> None:
        if project:
            instances, patient_ids, label, proj = self._project(project, patient, identifiers)
        else:
            instances, patient_ids, label, proj = self._patients(patient, issuer)
        instances = instances.select_related("series__study__patient").order_by(
            "series__study__patient_id", "series_id", "instance_number", "pk"
        )
        total = instances.count()
        with Progress(transient=True) as bar:
            task = bar.add_task("exporting", total=total)
            n = export_tree(
                instances.iterator(chunk_size=500),
                out,
                lambda i: bar.update(task, completed=i),
                subject_label=label,
            )
        AccessLog.objects.bulk_create(
            AccessLog(
                actor=self.actor,
                action="export",
                object_type="patient",
                object_id=str(pk),
                outcome="allowed",
                project=proj,
                details={"out": str(out), "files": n},
            )
            for pk in patient_ids
        )
        self.stdout.write(f"exported {n} files to {out}")

    def _patients(self, patient: str | None, issuer: str | None) -> tuple[Any, list[int], Any, None]:
        patients = Patient.objects.all()
        if patient:
            patients = patients.filter(patient_id=patient)
            if issuer:
                patients = patients.filter(issuer=issuer)
            if not patients.exists():
                raise Failure(f"no patient with ID {patient!r}", code=2)
            if patients.count() > 1:
                raise Failure(f"Patient ID {patient!r} exists for several issuers; add --issuer", code=2)
        instances = Instance.objects.filter(state=InstanceState.CURRENT, series__study__patient__in=patients)
        return instances, list(patients.values_list("pk", flat=True)), None, None

    def _project(
        self, code: str, subject: str | None, identifiers: bool
    ) -> tuple[Any, list[int], Any, Project]:
        """A project's data exactly as the web export gives it (the CLI is the operator's trusted tool)."""
        proj = Project.objects.filter(code=code).first()
        if proj is None:
            raise Failure(f"no project {code!r}", code=2)
        subjects = ProjectSubject.objects.filter(project=proj)
        if subject:
            subjects = subjects.filter(subject_id=subject) | subjects.filter(patient__patient_id=subject)
            if not subjects.exists():
                raise Failure(f"no subject or Patient ID {subject!r} in {code}", code=2)
        labels = dict(subjects.values_list("patient_id", "subject_id"))
        instances = instances_in(proj).filter(series__study__patient_id__in=list(labels))
        label = (lambda p: p.patient_id) if identifiers else (lambda p: labels.get(p.pk, f"patient-{p.pk}"))
        return instances, sorted(labels), label, proj
