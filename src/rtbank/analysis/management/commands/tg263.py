from __future__ import annotations

from pathlib import Path
from typing import Any

from rtbank.analysis.models import Tg263Name
from rtbank.analysis.services import Tg263Error, import_tg263
from rtbank.commands import Failure, RtbankCommand


class Command(RtbankCommand):
    help = (
        "Import the AAPM TG-263 name list (the official spreadsheet saved as CSV) for standard-name "
        "suggestions: `tg263 FILE`; without FILE, print how many names are loaded."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "file", nargs="?", help="TG-263 spreadsheet saved as CSV (comma, semicolon or tab)"
        )

    def handle(self, *args: Any, file: str | None = None, **options: Any) -> None:
        if not file:
            first = Tg263Name.objects.first()
            self.stdout.write(
                f"{Tg263Name.objects.count()} TG-263 names" + (f" from {first.source}" if first else "")
            )
            return
        path = Path(file)
        if not path.is_file():
            raise Failure(f"no such file: {file}", code=2)
        try:
            count = import_tg263(path.read_bytes(), path.name)
        except Tg263Error as exc:
            raise Failure(str(exc)) from exc
        self.stdout.write(f"{count} TG-263 names imported from {path.name}")
