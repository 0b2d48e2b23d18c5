"""Adding and listing institutions and nodes: the verbs the CLI and the web share."""

from __future__ import annotations

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
    unknown = set(roles) - set(NodeRole.values)
    if unknown:
        raise ValidationError(f"unknown role(s) {', '.join(sorted(unknown))}; use {', '.join(NodeRole.values)}")
    institution = None
    if institution_code:
        institution = Institution.objects.filter(code=institution_code).first()
        if institution is None:
            raise ValidationError(f"no institution with code {institution_code!r} (add it first)")
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
        log_event("admin", "node_added", actor=actor, object_type="node", object_id=name,
                  details={"ae_title": node.ae_title, "host": host, "port": port, "roles": node.roles})
    return node


def remove_node(name: str, *, actor: str) -> None:
    deleted, _ = Node.objects.filter(name=name).delete()
    if not deleted:
        raise ValidationError(f"no node named {name!r}")
    log_event("admin", "node_removed", actor=actor, object_type="node", object_id=name)
