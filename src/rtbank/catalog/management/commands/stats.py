from __future__ import annotations

import json
from typing import Any

from rtbank.catalog.services import stats
from rtbank.commands import RtbankCommand


class Command(RtbankCommand):
    help = "Counts of patients, studies, series, instances by modality, RT objects, and pending/failed work."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--json", action="store_true", help="machine-readable output (the documented format)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data = stats()
        if options["json"]:
            self.stdout.write(json.dumps(data, sort_keys=True))
            return
        self.stdout.write(
            f"patients {data['patients']}  studies {data['studies']}  series {data['series']}  "
            f"instances {data['instances']}  quarantined {data['quarantined']}"
        )
        self.stdout.write("by modality: " + ", ".join(f"{k} {v}" for k, v in data["by_modality"].items()))
        self.stdout.write("RT: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in data["rt"].items()))
        work = data["work"]
        self.stdout.write(
            f"work: {work['pending']} pending, {work['in_progress']} in progress, {work['failed']} failed"
        )
        for kind, c in sorted(work["by_kind"].items()):
            self.stdout.write(
                f"  {kind:<12} {c['pending']} pending, {c['in_progress']} in progress, {c['failed']} failed"
            )
