"""Standard-name suggestions from the AAPM TG-263 list for ROI names no rule matches (suggestions only:
a person turns one into a rule, or not).

Names are compared without separators, case or laterality words (``L``, ``Lt``, ``Left``, ``sin`` …
and their right-hand twins), by similarity of what remains; the laterality must agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

LEFT = {"l", "lt", "left", "sin", "sinister", "sinistra", "sinistrum"}
RIGHT = {"r", "rt", "right", "dx", "dex", "dexter", "dextra", "dextrum"}
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_SPLIT = re.compile(r"[^0-9a-zA-Z]+")
MIN_SCORE = 0.6


def _key(name: str) -> tuple[tuple[str, str], str]:
    """((core text without laterality, the same with its words sorted), ``L``/``R``/``""``)."""
    tokens = [t.lower() for t in _SPLIT.split(_CAMEL.sub(" ", name)) if t]
    side = ""
    core = []
    for token in tokens:
        if token in LEFT:
            side = "L"
        elif token in RIGHT:
            side = "R"
        else:
            core.append(token)
    return ("".join(core), "".join(sorted(core))), side


@dataclass
class Suggester:
    names: list[str]

    def __post_init__(self) -> None:
        self._keys = [(_key(n), n) for n in self.names]

    def suggest(self, roi_name: str, limit: int = 3) -> list[str]:
        (core, core_sorted), side = _key(roi_name)
        if not core:
            return []
        scored = []
        for ((candidate_core, candidate_sorted), candidate_side), name in self._keys:
            if side != candidate_side:
                continue
            score = max(
                SequenceMatcher(None, core, candidate_core).ratio(),
                SequenceMatcher(None, core_sorted, candidate_sorted).ratio(),
            )
            if (
                candidate_core
                and min(len(core), len(candidate_core)) >= 4
                and (candidate_core in core or core in candidate_core)
            ):
                score = max(score, 0.75)
            if score >= MIN_SCORE:
                scored.append((-score, len(name), name))
        return [name for _, _, name in sorted(scored)[:limit]]


def tg263_suggester() -> Suggester:
    from rtbank.analysis.models import Tg263Name

    return Suggester(list(Tg263Name.objects.values_list("name", flat=True)))
