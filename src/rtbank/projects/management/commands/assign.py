from __future__ import annotations

from typing import Any

from rtbank.catalog.models import Instance, InstanceState, Patient
from rtbank.commands import Failure, RtbankCommand
from rtbank.projects.models import Project
from rtbank.projects.services import assign_patient, assign_plan


class Command(RtbankCommand):
    help = (
        "Assign data to a project: `assign PROJECT --patient ID [--issuer I] [--plan UID] [--agreement REF]`."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("project")
        parser.add_argument("--patient", required=True, help="Patient ID")
        parser.add_argument(
            "--issuer", default=None, help="issuer / institution code when the ID is ambiguous"
        )
        parser.add_argument(
            "--plan", default=None, help="SOP Instance UID of a plan: assign the plan bundle only"
        )
        parser.add_argument(
            "--agreement", default="", help="reuse agreement reference (data already in another project)"
        )

    def handle(
        self,
        *args: Any,
        project: str,
        patient: str,
        issuer: str | None,
        plan: str | None,
        agreement: str,
        **options: Any,
    ) -> None:
        proj = Project.objects.filter(code=project).first()
        if proj is None:
            raise Failure(f"no project {project!r}", code=2)
        patients = Patient.objects.filter(patient_id=patient)
        if issuer:
            patients = patients.filter(issuer=issuer)
        if patients.count() != 1:
            raise Failure(
                f"Patient ID {patient!r} matches {patients.count()} patients"
                + ("" if issuer else "; add --issuer"),
                code=2,
            )
        found = patients.get()
        # The CLI is the operator's tool on the server: it acts with site-admin authority.
        if plan:
            inst = Instance.objects.filter(
                sop_instance_uid=plan, state=InstanceState.CURRENT, series__study__patient=found
            ).first()
            if inst is None:
                raise Failure(f"no current plan {plan} for this patient", code=2)
            assign_plan(proj, inst, actor=self.actor, agreement=agreement, actor_is_site_admin=True)
            self.stdout.write(f"assigned plan {plan} of patient {patient} to {proj.code}")
        else:
            subject = assign_patient(
                proj, found, actor=self.actor, agreement=agreement, actor_is_site_admin=True
            )
            self.stdout.write(f"assigned patient {patient} to {proj.code} as {subject.subject_id}")
