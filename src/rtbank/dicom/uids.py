"""UID rules: what rtbank accepts, what it refuses, and how it makes new UIDs.

Real archives carry UIDs that break PS3.5 §9.1 harmlessly (a component with a leading zero, a root that is
not registered); those are accepted. A UID that could be used against us (path characters, over 64
characters, anything but digits and dots) is refused: UIDs end up in SQL keys, log lines and URLs.
"""

from __future__ import annotations

import hashlib
import re
import uuid

MAX_UID_LENGTH = 64
_SAFE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_STRICT_COMPONENT = re.compile(r"^(0|[1-9][0-9]*)$")


class UnsafeUid(ValueError):
    """A UID that must not be stored: empty, too long, or with characters other than digits and dots."""


def check_uid(value: object, what: str = "UID") -> str:
    """Return ``value`` as a clean UID string or raise :class:`UnsafeUid` naming ``what``.

    Trailing NUL/space padding (an even-length artefact of the encoding) is stripped first.
    """
    if value is None:
        raise UnsafeUid(f"{what} is missing")
    text = str(value).rstrip("\x00 ").strip()
    if not text:
        raise UnsafeUid(f"{what} is empty")
    if len(text) > MAX_UID_LENGTH:
        raise UnsafeUid(f"{what} is {len(text)} characters long (at most {MAX_UID_LENGTH})")
    if not _SAFE.match(text):
        shown = text[:70].encode("unicode_escape").decode("ascii")
        raise UnsafeUid(f"{what} {shown!r} is not digits separated by dots")
    return text


def is_safe_uid(value: object) -> bool:
    try:
        check_uid(value)
    except UnsafeUid:
        return False
    return True


def is_strict_uid(value: str) -> bool:
    """True when ``value`` also follows PS3.5 §9.1 (no leading zeros in components)."""
    return is_safe_uid(value) and all(_STRICT_COMPONENT.match(part) for part in value.split("."))


def new_uid() -> str:
    """A fresh UID under the ``2.25`` root (PS3.5 §B.2: a UUID as a decimal integer)."""
    return f"2.25.{uuid.uuid4().int}"


def uid_from(*parts: str) -> str:
    """A deterministic ``2.25`` UID derived from ``parts`` (for generated data that must be reproducible)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()[:16]
    return f"2.25.{int.from_bytes(digest, 'big')}"
