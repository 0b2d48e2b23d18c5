"""The per-audit secret key: a file readable by rtbank's own OS user only, never in the database.

``RTBANK_HOME/audit-keys/audit-<id>-<12 hex of its fingerprint>.key`` (folder mode 0700, file mode 0600,
64 hexadecimal characters, written durably; never overwritten). Every UID, pseudonym and date shift of
every copy of the audit is an HMAC with this key
(:mod:`rtbank.dicom.anonymize.keyed`), so a later export of a copy is byte-identical and its references
resolve against the first. The database keeps only the key's SHA-256 (:attr:`Audit.key_fingerprint`), to
detect a missing or swapped file — a database dump alone cannot recompute any map. The maps already
applied are in the database (restricted tables) so returns are recognised even without the key; only
making copies needs it. Back the folder up with ``RTBANK_HOME`` (it is as sensitive as the maps).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from django.conf import settings

from rtbank.audits.models import Audit
from rtbank.dicom.anonymize import new_key
from rtbank.fileio import fsync_path

KEY_FOLDER = "audit-keys"


class AuditKeyError(Exception):
    """The audit's key file is missing or is not the audit's key; the message names the file and the fix."""


def key_folder() -> Path:
    folder = Path(settings.HOME) / KEY_FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def key_path(audit: Audit, key_fingerprint: str | None = None) -> Path:
    tag = (key_fingerprint or audit.key_fingerprint)[:12]
    return key_folder() / f"audit-{int(audit.pk)}-{tag}.key"


def fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()


def create_key(audit: Audit) -> str:
    """Make the audit's key (once) and return its fingerprint; an existing key file is never replaced."""
    key = new_key()
    path = key_path(audit, fingerprint(key))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # fails if a key is already there: never overwrite one
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)
    return fingerprint(key)


def read_key(audit: Audit) -> bytes:
    if not audit.key_fingerprint:
        raise AuditKeyError(f"audit #{audit.pk} has no key")
    path = key_path(audit)
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        raise AuditKeyError(
            f"the key of audit #{audit.pk} is missing ({path}); restore it from the backup of "
            "RTBANK_HOME — without it no further copy can be made consistent with the first"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise AuditKeyError(f"{path} is not an audit key (64 hexadecimal characters expected)") from None
    if fingerprint(key) != audit.key_fingerprint:
        raise AuditKeyError(
            f"{path} is not the key of audit #{audit.pk} (fingerprint differs); restore the right file"
        )
    return key
