"""ROI name patterns and the precedence that picks the rule for a ROI name.

Pattern language
----------------
``*`` stands for any run of characters (also none), ``?`` for exactly one character; every other
character is literal. Unlike :mod:`fnmatch`, ``[`` and ``]`` are literal too (``PTV[1]`` is a ROI name,
not a character class). Names and patterns are compared *folded*: case folded (:meth:`str.casefold`)
and whitespace folded (every run of whitespace is one space, none at either end), so ``"parotid  L "``,
``"Parotid L"`` and ``"PAROTID l"`` are the same name.

Precedence
----------
Among the rules whose pattern matches a name, the best is chosen by, in this order:

1. a rule for the name's institution before a rule for all institutions;
2. an exact rule (no wildcard) before a wildcard rule;
3. fewer wildcards before more;
4. longer literal text (characters other than wildcards) before shorter.

Rules left equal on all four that give *different* standard names are a **conflict**: the name gets no
standard name and the conflict names the candidates (a person adds a more specific rule). Equal rules
that agree on the standard name are no conflict. Nothing here is ever resolved silently.

Typical use::

    rules = RuleSet([MappingRule("Parotis*sin", "Parotid_L"), MappingRule("*", "Unmapped", scope=3)])
    rules.resolve("parotis  sin", institution=3).standard_name   # 'Parotid_L'
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

_WHITESPACE = re.compile(r"\s+")
_STARS = re.compile(r"\*{2,}")
WILDCARDS = frozenset("*?")


def fold_name(name: str) -> str:
    """``name`` case folded, whitespace runs made one space, trimmed: the form names are compared in."""
    return _WHITESPACE.sub(" ", name).strip().casefold()


@dataclass(frozen=True)
class RoiPattern:
    """A compiled pattern.

    Attributes
    ----------
    text : str
        The folded pattern (runs of ``*`` collapsed to one, which matches the same names).
    """

    text: str

    @classmethod
    def compile(cls, pattern: str) -> RoiPattern:
        """Fold and check ``pattern``.

        Raises
        ------
        ValueError
            When the pattern is empty or only whitespace.
        """
        folded = _STARS.sub("*", fold_name(pattern))
        if not folded:
            raise ValueError("empty ROI name pattern: give a name, or use * and ? as wildcards")
        return cls(folded)

    @cached_property
    def regex(self) -> re.Pattern[str]:
        parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in self.text)
        return re.compile("".join(parts), re.DOTALL)

    @property
    def wildcards(self) -> int:
        return sum(ch in WILDCARDS for ch in self.text)

    @property
    def literal_length(self) -> int:
        return len(self.text) - self.wildcards

    @property
    def is_exact(self) -> bool:
        return self.wildcards == 0

    def matches(self, name: str) -> bool:
        """Whether ``name`` (folded here) matches the whole pattern."""
        folded = fold_name(name)
        return folded == self.text if self.is_exact else self.regex.fullmatch(folded) is not None


@dataclass(frozen=True)
class MappingRule:
    """``pattern → standard_name``, for one institution (``scope``) or for all (``scope=None``).

    ``key`` is the caller's handle on the rule (e.g. its database id); it plays no part in matching.
    """

    pattern: str
    standard_name: str
    scope: Hashable | None = None
    key: Hashable | None = None

    @cached_property
    def compiled(self) -> RoiPattern:
        return RoiPattern.compile(self.pattern)

    def rank(self) -> tuple[int, int, int, int]:
        """Sort key of the precedence: smaller is better (institution, exact, wildcards, −literal length)."""
        p = self.compiled
        return (0 if self.scope is not None else 1, 0 if p.is_exact else 1, p.wildcards, -p.literal_length)

    def applies_to(self, institution: Hashable | None) -> bool:
        return self.scope is None or self.scope == institution


class MatchStatus(StrEnum):
    MATCHED = "matched"
    CONFLICT = "conflict"
    UNMATCHED = "unmatched"


@dataclass(frozen=True)
class Resolution:
    """What the rules say about one ROI name.

    Attributes
    ----------
    name : str
        The original name, unchanged.
    status : MatchStatus
    standard_name : str or None
        Only when ``status`` is ``matched``.
    winners : tuple of MappingRule
        The matching rules of the best rank (several when they agree, or when they conflict).
    """

    name: str
    status: MatchStatus
    standard_name: str | None = None
    winners: tuple[MappingRule, ...] = ()

    @property
    def candidates(self) -> list[str]:
        """The standard names the best rules give (more than one in a conflict)."""
        return sorted({r.standard_name for r in self.winners})


@dataclass
class RuleSet:
    """A project's rules, compiled once for resolving many names."""

    rules: list[MappingRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rules = sorted(self.rules, key=lambda r: (r.rank(), r.compiled.text, r.standard_name))
        self._exact: dict[str, list[MappingRule]] = {}
        self._wild: list[MappingRule] = []
        for rule in self.rules:
            if rule.compiled.is_exact:
                self._exact.setdefault(rule.compiled.text, []).append(rule)
            else:
                self._wild.append(rule)

    def standard_names(self) -> list[str]:
        return sorted({r.standard_name for r in self.rules}, key=str.casefold)

    def matching(self, name: str, institution: Hashable | None = None) -> list[MappingRule]:
        """Every rule that matches ``name`` for ``institution``, best first."""
        folded = fold_name(name)
        found = [r for r in self._exact.get(folded, []) if r.applies_to(institution)]
        found += [r for r in self._wild if r.applies_to(institution) and r.compiled.regex.fullmatch(folded)]
        return sorted(found, key=lambda r: r.rank())

    def resolve(self, name: str, institution: Hashable | None = None) -> Resolution:
        """The standard name of ``name`` from a ROI of ``institution``, or the conflict, or no match."""
        found = self.matching(name, institution)
        if not found:
            return Resolution(name, MatchStatus.UNMATCHED)
        best = found[0].rank()
        winners = tuple(r for r in found if r.rank() == best)
        standards = {r.standard_name for r in winners}
        if len(standards) > 1:
            return Resolution(name, MatchStatus.CONFLICT, None, winners)
        return Resolution(name, MatchStatus.MATCHED, winners[0].standard_name, winners)

    def resolve_all(
        self, names: Iterable[tuple[str, Hashable | None]]
    ) -> dict[tuple[str, Hashable | None], Resolution]:
        """:meth:`resolve` for many ``(name, institution)`` pairs (each distinct pair once)."""
        return {pair: self.resolve(*pair) for pair in dict.fromkeys(names)}


def check_standard_name(name: str) -> str:
    """A standard name as a rule stores it: trimmed, non-empty, no wildcards.

    Raises
    ------
    ValueError
        Naming what is wrong.
    """
    cleaned = _WHITESPACE.sub(" ", name).strip()
    if not cleaned:
        raise ValueError("empty standard name")
    if set(cleaned) & WILDCARDS:
        raise ValueError(f"standard name {cleaned!r} contains a wildcard; wildcards belong in the pattern")
    return cleaned
