"""Access to the viewer: every endpoint asks the access helper, and the access log stays readable.

Every request — the page, the manifest, each slice, geometry, dose and DVH request — is decided afresh
from the user's live grants (:class:`rtbank.projects.access.Access`): a revoked grant stops the next slice.
What is *logged* differs:

* opening the viewer writes one row (``viewer_open``);
* the page hands the browser a signed viewer-session token; the first request of each kind
  (``viewer_manifest``, ``viewer_slice``, ``viewer_geometry``, ``viewer_dose``, ``viewer_dvh``) in a session
  writes one row, later ones of that kind are decided without a row (scrolling 200 slices is one row,
  not 200);
* requests without a valid token (scripts, expired sessions) write a row each;
* refusals (404 for outsiders, 403 for members without ``images``) always write a row.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.core import signing
from django.http import Http404, HttpRequest

from rtbank.catalog.models import Instance
from rtbank.projects.access import NOT_FOUND, Access, projects_holding
from rtbank.projects.models import Project
from rtbank.viewer.cache import SeenSet
from rtbank.viewer.dataset import ViewerDataset, resolve, root_instance, root_kind

SALT = "rtbank.viewer.session"
SESSION_SECONDS = 12 * 3600
HEADER = "X-Viewer-Session"
_SEEN = SeenSet(200_000)
DATASET_SECONDS = 30.0
_DATASETS: OrderedDict[tuple[object, ...], tuple[float, ViewerDataset]] = OrderedDict()
_DATASETS_LOCK = threading.Lock()
IMAGES = "images"  # rtbank.projects.models.Permission.IMAGES


@dataclass
class ViewerRequest:
    acc: Access
    root: Instance
    kind: str
    uid: str
    projects: list[Project]
    _dataset: ViewerDataset | None = None

    @property
    def dataset(self) -> ViewerDataset:
        """What the viewer shows through these projects; resolved at most every ``DATASET_SECONDS``.

        The decision whether the user may see the root object is never cached (it is made per request);
        what the root brings along (its bundle within the projects) is, briefly: late-arriving objects
        appear, and objects leaving a bundle disappear, within that time.
        """
        if self._dataset is None:
            key = (self.kind, self.uid, tuple(sorted(p.pk for p in self.projects)))
            now = time.monotonic()
            with _DATASETS_LOCK:
                found = _DATASETS.get(key)
            if found is not None and now - found[0] < DATASET_SECONDS:
                self._dataset = found[1]
            else:
                self._dataset = resolve(self.acc, self.root, self.kind, self.uid, self.projects)
                with _DATASETS_LOCK:
                    _DATASETS[key] = (now, self._dataset)
                    while len(_DATASETS) > 256:
                        _DATASETS.popitem(last=False)
        return self._dataset

    @property
    def project(self) -> Project:
        """The project the page is shown through (the first that grants ``images``, by code)."""
        return sorted(self.projects, key=lambda p: p.code)[0]


def open_viewer(request: HttpRequest, uid: str) -> tuple[ViewerRequest, str]:
    """Check and log the opening of the viewer on ``uid``; returns the request and a new session token."""
    viewer = _check(request, uid, "viewer_open", quiet=False)
    token = signing.dumps({"u": request.user.pk, "r": uid, "n": secrets.token_hex(8)}, salt=SALT)
    return viewer, token


def check(request: HttpRequest, uid: str, action: str) -> ViewerRequest:
    """Check an endpoint request; logged once per viewer session and kind (see the module docstring)."""
    session = _session(request, uid)
    quiet = session is not None and not _SEEN.add((session, action))
    return _check(request, uid, action, quiet=quiet)


def _check(request: HttpRequest, uid: str, action: str, *, quiet: bool) -> ViewerRequest:
    acc = Access.of(request)
    uid = uid[:64]
    root = root_instance(uid)
    kind = root_kind(root, uid) if root is not None else None
    if root is None or kind is None:
        acc.record(action, "instance", root.pk if root else uid, NOT_FOUND, permission=IMAGES)
        raise Http404("nothing the viewer can show has this UID")
    if quiet:
        allowed = [p for p in projects_holding(root) if acc.has(p, IMAGES)]
        if allowed:
            return ViewerRequest(acc, root, kind, uid, allowed)
    # Logged decision (allowed, or refused with 404/403) by the access helper itself.
    _, allowed = acc.instance(root.sop_instance_uid, IMAGES, action)
    return ViewerRequest(acc, root, kind, uid, allowed)


def _session(request: HttpRequest, uid: str) -> str | None:
    token = request.headers.get(HEADER, "")
    if not token or not request.user.is_authenticated:
        return None
    try:
        data = signing.loads(token, salt=SALT, max_age=SESSION_SECONDS)
    except signing.BadSignature:
        return None
    if data.get("u") != request.user.pk or data.get("r") != uid[:64]:
        return None
    return token
