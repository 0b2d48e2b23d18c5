"""Base class for rtbank's management commands: errors become one readable line and an exit code."""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from rtbank.eventlog.services import cli_actor


class Failure(Exception):
    """A command failed in a way the operator can act on; the message says how."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class RtbankCommand(BaseCommand):
    requires_system_checks: list[str] = []  # services run their checks explicitly where it matters

    @property
    def actor(self) -> str:
        return cli_actor()

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except Failure as exc:
            self.stderr.write(f"rtbank {self._verb()}: {exc}")
            sys.exit(exc.code)
        except ValidationError as exc:
            self.stderr.write(f"rtbank {self._verb()}: {'; '.join(exc.messages)}")
            sys.exit(1)
        except CommandError:
            raise

    def _verb(self) -> str:
        return self.__module__.rsplit(".", 1)[-1]
