from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import Progress

from rtbank.catalog.models import Instance, InstanceState, Patient
from rtbank.catalog.services import export_tree
from rtbank.commands import Failure, RtbankCommand
from rtbank.projects.models import AccessLog


class Command(RtbankCommand):
    help = "Export raw DICOM as a readable folder tree (patient/study/series/file.dcm)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--out", required=True, type=Path, help="output folder")
        parser.add_argument("--patient", default=None, help="only this Patient ID")
        parser.add_argument("--issuer", default=None, help="issuer (institution code) when the Patient ID is ambiguous")

    def handle(self, *args: Any, out: Path, patient: str | None, issuer: str | None, **options: Any) -> None:
        patients = Patient.objects.all()
        if patient:
            patients = patients.filter(patient_id=patient)
            if issuer:
                patients = patients.filter(issuer=issuer)
            if not patients.exists():
                raise Failure(f"no patient with ID {patient!r}", code=2)
            if patients.count() > 1:
                raise Failure(f"Patient ID {patient!r} exists for several issuers; add --issuer", code=2)
        instances = (
            Instance.objects.filter(state=InstanceState.CURRENT, series__study__patient__in=patients)
            .select_related("series__study__patient").order_by("series__study__patient_id", "series_id", "instance_number", "pk")
        )
        total = instances.count()
        with Progress(transient=True) as bar:
            task = bar.add_task("exporting", total=total)
            n = export_tree(instances.iterator(chunk_size=500), out, lambda i: bar.update(task, completed=i))
        AccessLog.objects.bulk_create(
            AccessLog(actor=self.actor, action="export", object_type="patient", object_id=str(pk), outcome="allowed",
                      details={"out": str(out)})
            for pk in patients.values_list("pk", flat=True)
        )
        self.stdout.write(f"exported {n} files to {out}")
