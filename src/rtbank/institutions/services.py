"""Adding and listing institutions and nodes: the verbs the CLI and the web share."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from rtbank.eventlog.services import log_event
from rtbank.institutions.models import Institution, Node, NodeRole


def add_institution(code: str, name: str, *, actor: str) -> Institution:
    institution = Institution(code=code, name=name)
    institution.full_clean()
    institution.save()
    log_event("admin", "institution_added", actor=actor, object_type="institution", object_id=code)
    return institution


def check_roles(roles: Iterable[str], known: Iterable[str]) -> None:
    """Refuse role names outside ``known`` with one line that lists the valid ones."""
    known = list(known)
    unknown = set(roles) - set(known)
    if unknown:
        raise ValidationError(f"unknown role(s) {', '.join(sorted(unknown))}; use {', '.join(known)}")


def institution_by_code(code: str | None) -> Institution | None:
    """The institution with ``code`` (None for no code); a ValidationError names a code that does not
    exist."""
    if not code:
        return None
    institution = Institution.objects.filter(code=code).first()
    if institution is None:
        raise ValidationError(f"no institution with code {code!r} (add it first)")
    return institution


def add_node(
    name: str,
    *,
    ae_title: str,
    host: str,
    port: int,
    institution_code: str | None,
    roles: list[str],
    actor: str,
    options: dict | None = None,
) -> Node:
    check_roles(roles, NodeRole.values)
    institution = institution_by_code(institution_code)
    node = Node(
        name=name,
        ae_title=ae_title.strip(),
        host=host,
        port=port,
        institution=institution,
        roles=sorted(set(roles)) or [NodeRole.SEND],
        options=options or {},
    )
    node.full_clean()
    with transaction.atomic():
        node.save()
        log_event(
            "admin",
            "node_added",
            actor=actor,
            object_type="node",
            object_id=name,
            details={"ae_title": node.ae_title, "host": host, "port": port, "roles": node.roles},
        )
    return node


def remove_node(name: str, *, actor: str) -> None:
    deleted, _ = Node.objects.filter(name=name).delete()
    if not deleted:
        raise ValidationError(f"no node named {name!r}")
    log_event("admin", "node_removed", actor=actor, object_type="node", object_id=name)
