"""Who may open an association with rtbank, decided at association time.

A calling AE title must be a registered node with the ``send`` (or ``harvest``) role whose registered
host matches the peer address; the called AE title must be rtbank's own or a project AE title. The
receiver decides from a snapshot that one background thread reloads from the database every few seconds,
so the association path never waits on SQL and new nodes or project AE titles apply without a restart.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, close_old_connections

from rtbank.institutions.models import Node

logger = logging.getLogger("rtbank.receiver")
REFRESH_S = 2.0


@dataclass(frozen=True)
class Sender:
    node_id: int | None
    node_name: str
    institution: str  # institution code, "" when unknown


@dataclass(frozen=True)
class Rejection:
    diagnostic: (
        int  # A-ASSOCIATE-RJ diagnostic: 0x03 calling AE not recognised, 0x07 called AE not recognised
    )
    reason: str


@dataclass(frozen=True)
class Snapshot:
    nodes_by_ae: dict[str, list[Node]] = field(default_factory=dict)
    called_ae_titles: frozenset[str] = frozenset()


class AssociationPolicy:
    def __init__(self, allow_any: bool | None = None) -> None:
        self.allow_any = settings.ALLOW_ANY_CALLING_AE if allow_any is None else allow_any
        self.snapshot = Snapshot(called_ae_titles=frozenset({settings.AE_TITLE}))
        self._stop = threading.Event()

    def decide(self, calling_ae: str, called_ae: str, peer: str) -> Sender | Rejection:
        snap = self.snapshot
        calling_ae, called_ae = calling_ae.strip(), called_ae.strip()
        if called_ae not in snap.called_ae_titles:
            return Rejection(0x07, f"called AE title {called_ae!r} is not rtbank's or a project's")
        candidates = snap.nodes_by_ae.get(calling_ae, [])
        for node in candidates:
            if node.may_send and node.host_matches(peer):
                return Sender(node.pk, node.name, node.institution.code if node.institution else "")
        if self.allow_any:
            return Sender(None, "", "")
        if candidates:
            return Rejection(0x03, f"calling AE {calling_ae!r} is registered, but not for host {peer}")
        return Rejection(0x03, f"calling AE {calling_ae!r} is not a registered node")

    def refresh(self) -> None:
        nodes: dict[str, list[Node]] = {}
        for node in Node.objects.select_related("institution"):
            nodes.setdefault(node.ae_title.strip(), []).append(node)
        self.snapshot = Snapshot(nodes, frozenset({settings.AE_TITLE, *project_ae_titles()}))

    def start(self) -> None:
        self.refresh()
        threading.Thread(target=self._loop, name="policy-refresh", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(REFRESH_S):
            try:
                close_old_connections()
                self.refresh()
            except DatabaseError as exc:
                logger.warning("could not reload nodes (keeping the last known list): %s", exc)


def project_ae_titles() -> set[str]:
    """AE titles of projects (a centre may send straight to a project's own AE title)."""
    try:
        project = apps.get_model("projects", "Project")
    except LookupError:
        return set()
    if not any(f.name == "ae_title" for f in project._meta.get_fields()):
        return set()
    return {t.strip() for t in project.objects.exclude(ae_title="").values_list("ae_title", flat=True)}
