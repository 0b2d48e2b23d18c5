"""The events rtbank tells people about: the one list every area uses with ``notify(users, Event.X, …)``.

The value is stored in ``Notification.event`` (at most 48 characters) and may be used by people's filters,
so values are never renamed; new events are added here.
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    RULE_ASSIGNED = "rule_assigned"  # a trigger rule put data into a project (rtbank.rules)
    RULE_MATCHED = "rule_matched"  # a trigger rule's "notify" action (rtbank.rules)
    FORWARD_FAILED = "forward_failed"  # a forward gave up after its attempt cap (rtbank.rules.outbox)
    CLEANUP_UPCOMING = (
        "cleanup_upcoming"  # unretained data of an institution will be deleted (rtbank.rules.cleanup)
    )
    GRANT_EXPIRING = "grant_expiring"  # a person's grant ends soon (rtbank.projects.services)
    PROJECT_RENEWAL = "project_renewal"  # a project must be renewed soon (rtbank.projects.services)
    ACCESS_SUSPENDED = (
        "access_suspended"  # a grant expired or a project was not renewed (rtbank.rules.expiry)
    )
    EXPORT_READY = "export_ready"  # an export (zip, CSV) can be downloaded (projects / analysis)
    HARVEST_FINISHED = "harvest_finished"  # a harvest run ended, with its manifest (rtbank.harvest)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")
