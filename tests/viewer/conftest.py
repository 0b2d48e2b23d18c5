from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from rtbank.catalog.models import Instance
from rtbank.projects.models import Project
from rtbank.viewer.services import reset_caches
from tests.viewer import synthetic

NEXT_YEAR = dt.date.today() + dt.timedelta(days=365)
PASSWORD = "a-long-password-1"


@pytest.fixture(autouse=True)
def fresh_viewer_caches() -> Iterator[None]:
    reset_caches()
    yield
    reset_caches()


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class ViewerWorld:
    head_neck: synthetic.SynthPlan
    spine: synthetic.SynthPlan
    plan: Instance  # the head-and-neck plan, in project A
    other_plan: Instance  # the spine plan of the same patient, in project B only
    projects: dict[str, Project]
    users: dict[str, User]
    hostile_roi_was: str
    extra: dict = field(default_factory=dict)


@pytest.fixture
def viewer_world(tmp_path: Path) -> ViewerWorld:
    """Project A holds the head-and-neck plan (one ROI renamed to HTML), project B the same patient's spine
    plan. People: ``images`` (images + view on A), ``looker`` (view on A), ``outsider`` (no grant),
    ``b_images`` (images + view on B)."""
    from rtbank.projects.services import add_project, assign_plan, grant

    head_neck, spine = synthetic.plan("head_neck"), synthetic.plan("spine")
    files, old_name = synthetic.with_hostile_roi_name(head_neck, tmp_path / "hostile")
    synthetic.load([*files, *spine.files])
    plan = Instance.objects.get(sop_instance_uid=head_neck.uid)
    other = Instance.objects.get(sop_instance_uid=spine.uid)
    a = add_project("A", name="Trial A", renew_by=NEXT_YEAR, actor="test")
    b = add_project("B", name="Trial B", renew_by=NEXT_YEAR, actor="test")
    assign_plan(a, plan, actor="test")
    # Reuse of the same patient in a second project is a site-admin action with an agreement.
    assign_plan(b, other, actor="admin", actor_is_site_admin=True, agreement="DUA-viewer-test")
    users = {
        name: User.objects.create_user(name, "", PASSWORD)
        for name in ("images", "looker", "outsider", "b_images")
    }
    grant(users["images"], a, ["view", "images"], NEXT_YEAR, actor="test")
    grant(users["looker"], a, ["view"], NEXT_YEAR, actor="test")
    grant(users["b_images"], b, ["view", "images"], NEXT_YEAR, actor="test")
    return ViewerWorld(head_neck, spine, plan, other, {"A": a, "B": b}, users, old_name)
