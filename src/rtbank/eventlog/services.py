"""Writing to the event log from any service."""

from __future__ import annotations

import getpass
import logging
from typing import Any

from rtbank.eventlog.models import Event, Outcome

logger = logging.getLogger("rtbank.events")


def log_event(
    service: str,
    action: str,
    *,
    actor: str = "",
    outcome: str = Outcome.OK,
    object_type: str = "",
    object_id: object = "",
    message: str = "",
    details: dict[str, Any] | None = None,
) -> Event:
    """Record one event (and echo it to the console log)."""
    level = logging.INFO if outcome == Outcome.OK else logging.WARNING
    logger.log(level, "%s %s %s %s:%s %s", service, action, outcome, object_type, object_id, message)
    return Event.objects.create(
        service=service,
        actor=actor[:150],
        action=action[:64],
        outcome=outcome,
        object_type=object_type[:32],
        object_id=str(object_id)[:100],
        message=message[:2000],
        details=details or {},
    )


def cli_actor() -> str:
    """How the operator's command line appears in the logs (the CLI is trusted: it runs on the server)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"
