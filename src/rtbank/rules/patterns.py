"""Name patterns with ``*`` and ``?``, case-insensitive, translated to regular expressions.

Not :mod:`fnmatch`: it treats ``[...]`` as a character class (ROI names such as ``PTV[1]`` exist) and folds
case only on Windows. Here ``*`` is any run of characters, ``?`` one character, and everything else is
literal. The regex is valid both for Python's :mod:`re` and PostgreSQL/SQLite ``iregex`` (non-alphanumeric
characters are escaped with a backslash, which both read as the literal character).
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_PATTERN = 200


def pattern_regex(pattern: str) -> str:
    """``pattern`` as an anchored regex: ``PTV_*`` → ``^PTV\\_.*$``."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"a name pattern has at most {MAX_PATTERN} characters")
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        elif ch.isalnum() or ch == " ":
            parts.append(ch)
        else:
            parts.append("\\" + ch)
    return "^" + "".join(parts) + "$"


@lru_cache(maxsize=512)
def compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern_regex(pattern), re.IGNORECASE | re.DOTALL)


def matches(pattern: str, name: str) -> bool:
    """True when ``name`` (trailing blanks ignored, as DICOM pads values) matches ``pattern``."""
    return compiled(pattern).match(name.rstrip(" \x00")) is not None
