"""Politeness settings, time windows, CSV safety and the run pages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from rtbank.harvest.report import safe_cell
from rtbank.harvest.sources import SourceSettings, Window, acquire_slot, configure, release_slot
from rtbank.institutions.models import Node


def test_it_reads_overnight_and_weekend_windows() -> None:
    nights = Window.parse("mon-fri 19:00-07:00")
    monday_evening = dt.datetime(2024, 1, 1, 20, 0)  # a Monday
    assert nights.contains(monday_evening)
    assert nights.contains(dt.datetime(2024, 1, 2, 6, 59))  # Tuesday morning, after Monday night
    assert not nights.contains(dt.datetime(2024, 1, 2, 12, 0))
    assert nights.contains(dt.datetime(2024, 1, 6, 6, 0))  # Saturday morning: the end of Friday night
    assert not nights.contains(dt.datetime(2024, 1, 7, 6, 0))  # Sunday morning: no Saturday night
    assert Window.parse("sat-sun 00:00-24:00").contains(dt.datetime(2024, 1, 7, 23, 59))


def test_it_refuses_bad_settings() -> None:
    with pytest.raises(ValidationError):
        Window.parse("someday 19:00-07:00")
    with pytest.raises(ValidationError):
        SourceSettings(retrieve="ftp").validate()
    with pytest.raises(ValidationError):
        SourceSettings(query_levels=("image", "guess")).validate()
    with pytest.raises(ValidationError):
        SourceSettings(parallel=0).validate()


@pytest.mark.parametrize("value", ["=1+2", "+SUM(A1)", "-2", "@cmd", "\tx"])
def test_it_neutralises_formulas_in_csv_cells(value: str) -> None:
    assert safe_cell(value) == "'" + value
    assert safe_cell("2.25.1") == "2.25.1"


@pytest.mark.django_db
def test_it_limits_parallel_associations_and_pauses() -> None:
    node = Node.objects.create(name="RV", ae_title="RV", host="127.0.0.1", port=104, roles=["harvest"])
    configure(node, {"parallel": 1, "pause_s": 30})
    assert acquire_slot(node, "h:1:a", 1, 60) == 0
    assert acquire_slot(node, "h:1:b", 1, 60) is None  # one association at a time
    release_slot(node, 0, "h:1:a", 30)
    assert acquire_slot(node, "h:1:b", 1, 60) is None  # the pause between operations
    assert SourceSettings.of(node).pause_s == 30


@pytest.mark.django_db
def test_it_shows_runs_to_site_admins_only(client) -> None:  # noqa: ANN001 - pytest-django fixture
    client.force_login(User.objects.create_user("researcher", password="a-long-password-1"))
    assert client.get("/harvest/runs/").status_code == 403
    client.force_login(User.objects.create_superuser("admin", password="a-long-password-2"))
    response = client.get("/harvest/runs/")
    assert response.status_code in (200, 302)
