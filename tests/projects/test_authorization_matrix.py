"""Every URL of the site × every role × real objects of project A (I2): no 2xx and no leak without a live
grant.

The table is :mod:`tests.projects.url_matrix`; this test finds the URL names from the resolver, so a URL
added anywhere without an entry there fails here. Each URL has a positive control (some role gets its
success on a real object), so the test cannot pass by refusing everyone. The same requests check that A's
hostile patient and ROI names reach every page and CSV inert.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.projects.url_matrix import Case, matrix
from tests.projects.world import ROLES, SENTINELS, World, build_world
from tests.web.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def url_names(patterns: list | None = None, prefix: str = "") -> Iterator[str]:
    """Every URL pattern's name (``namespace:name``); unnamed patterns are reported as such."""
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            yield from url_names(p.url_patterns, f"{prefix}{p.namespace}:" if p.namespace else prefix)
        elif isinstance(p, URLPattern):
            yield f"{prefix}{p.name}" if p.name else f"<unnamed: {p.pattern}>"


def url_names_outside_admin(patterns: list | None = None) -> Iterator[str]:
    """Names of every pattern outside Django's admin (whose internal catch-all patterns have no name)."""
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            if p.namespace != "admin":
                yield from url_names_outside_admin(p.url_patterns)
        elif isinstance(p, URLPattern):
            yield p.name or f"<unnamed: {p.pattern}>"


def test_every_url_pattern_has_a_matrix_entry() -> None:
    names = set(url_names())
    entries = matrix()
    unnamed = sorted(n for n in url_names_outside_admin() if n.startswith("<unnamed"))
    names = {n for n in names if not n.startswith("<unnamed")}
    missing = sorted(names - set(entries))
    stale = sorted(set(entries) - names)
    assert not unnamed, f"give these URL patterns a name: {unnamed}"
    assert not missing, f"add entries to tests/projects/url_matrix.py for: {missing}"
    assert not stale, f"entries for URLs that no longer exist: {stale}"


class _Rollback(Exception):
    pass


def _client(world: World, role: str, fresh: bool = False) -> Client:
    """One logged-in client per role for reading; a fresh one for every POST (it may log out)."""
    cache = world.extra.setdefault("clients", {})
    if fresh or role not in cache:
        client = client_for(None if role == "anonymous" else world.users[role])
        if fresh:
            return client
        cache[role] = client
    return cache[role]


def _request(
    world: World, case: Case, name: str, role: str, client: Client | None = None
) -> tuple[int, str, bool | None, str]:
    """(status, body as text, effect, content type) of one request; POSTs are rolled back after the effect
    is read."""
    client = client or _client(world, role, fresh=case.method == "POST")
    url = reverse(name, kwargs=case.kwargs(world, role)) + (f"?{case.query}" if case.query else "")
    outcome: list[tuple[int, str, bool | None, str]] = []
    try:
        with transaction.atomic():
            if case.method == "POST":
                response = client.post(url, case.data(world, role) if case.data else {})
            else:
                response = client.get(url)
            raw = b"".join(response.streaming_content) if response.streaming else response.content
            effect = case.effect(world) if case.effect else None
            text = raw.decode("latin-1") if _is_zip(raw) else raw.decode("utf-8", "replace")
            for _key, value in parse_qsl(case.query):
                text = text.replace(value, "")  # the person's own search words echoed in the search box
            outcome.append((response.status_code, text, effect, response.get("Content-Type", "")))
            if case.method == "POST":
                raise _Rollback
    except _Rollback:
        pass
    return outcome[0]


def _is_zip(raw: bytes) -> bool:
    return raw[:2] == b"PK"


def _inert(name: str, role: str, body: str, content_type: str) -> list[str]:
    problems = []
    if content_type.startswith("text/html") and "<script>alert(7741)" in body:
        problems.append(f"{name} as {role}: the hostile patient name is rendered as markup")
    if content_type.startswith("text/csv"):
        for row in csv.reader(io.StringIO(body)):
            for cell in row:
                if cell.startswith(("=", "+", "@")) or (cell.startswith("-") and not _number(cell)):
                    problems.append(f"{name} as {role}: CSV cell {cell[:40]!r} starts a formula")
    return problems


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


@pytest.fixture
def matrix_world(tmp_path) -> World:
    w = build_world(tmp_path, with_jobs=True)
    w.extra["until"] = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    return w


def test_no_role_reads_what_its_grants_do_not_give(matrix_world: World) -> None:
    world = matrix_world
    problems: list[str] = []
    for name, cases in matrix().items():
        positive = any(case.no_positive for case in cases)
        for case in cases:
            expected = case.status_for(world) if case.status_for else case.ok_status
            for role in ROLES:
                status, body, effect, content_type = _request(world, case, name, role)
                allowed = role in case.ok
                label = f"{name}{'?' + case.query if case.query else ''} [{case.method}] as {role}"
                if allowed:
                    if status != expected:
                        problems.append(f"{label}: expected {expected}, got {status}")
                        continue
                    # 403 expected even for the site admin: the ModelAdmin forbids the action for everyone.
                    positive = positive or 200 <= status < 400 or expected == 403
                    missing = [c for c in case.contains if c not in body]
                    if missing:
                        problems.append(f"{label}: the page lacks {missing} (real objects not shown)")
                elif 200 <= status < 300:
                    problems.append(f"{label}: got {status} without the right to")
                if case.effect and effect != allowed:
                    problems.append(f"{label}: the action {'did not take' if allowed else 'took'} effect")
                if 200 <= status < 300 and role not in case.may_see():
                    leaked = [s for s in SENTINELS if s in body]
                    if leaked:
                        problems.append(f"{label}: shows project A's data {leaked} without a live grant on A")
                problems += _inert(name, role, body, content_type) if 200 <= status < 300 else []
            if case.positive is not None:
                response = case.positive(world)
                if response is not None and response.status_code == case.ok_status:
                    positive = True
                else:
                    problems.append(f"{name}: the positive control request failed")
        if not positive:
            problems.append(f"{name}: no role got its success (no positive control)")
    assert not problems, "\n".join(problems)
