"""Attribute paths into DICOM datasets, for rules on "any DICOM attribute, including paths into sequences".

A path is steps joined by ``.``; a step is a keyword (``PatientSex``), a tag (``(300A,00B2)``, ``300A00B2``
or ``300A,00B2``, private tags too) and, on a sequence, an optional item index: ``[0]`` (0-based) or
``[*]`` (any item; the default). Examples: ``ClinicalTrialProtocolID``,
``BeamSequence[*].TreatmentMachineName``, ``(300A,00B0)[0].(300A,00B2)``.

Values are strings as they would be displayed (numbers as written, person names as ``Family^Given``);
multi-valued elements give one string per value. An element is *present* when it has a value (or, for a
sequence, at least one item).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag

_STEP = re.compile(
    r"^(?:\((?P<g1>[0-9A-Fa-f]{4}),(?P<e1>[0-9A-Fa-f]{4})\)|(?P<g2>[0-9A-Fa-f]{4}),?(?P<e2>[0-9A-Fa-f]{4})"
    r"|(?P<kw>[A-Za-z][A-Za-z0-9]*))(?:\[(?P<index>\*|\d{1,4})\])?$"
)
MAX_STEPS = 8
MAX_VALUES = 1000  # values collected per path and object (bounded work on huge sequences)


@dataclass(frozen=True)
class Step:
    tag: BaseTag
    index: int | None  # None: any item

    def __str__(self) -> str:
        name = keyword_for_tag(self.tag) or f"({self.tag.group:04X},{self.tag.element:04X})"
        return name if self.index is None else f"{name}[{self.index}]"


@dataclass(frozen=True)
class AttributePath:
    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, text: str) -> AttributePath:
        text = text.strip()
        if not text:
            raise ValueError(
                "an attribute path is empty; write a keyword (PatientSex) or a tag ((0010,0040))"
            )
        steps = []
        for raw in text.split("."):
            m = _STEP.match(raw.strip())
            if not m:
                raise ValueError(
                    f"{raw!r} in {text!r} is not a keyword, a tag like (300A,00B2), or either with [n] / [*]"
                )
            if m.group("kw"):
                tag = tag_for_keyword(m.group("kw"))
                if tag is None:
                    raise ValueError(
                        f"{m.group('kw')!r} is not a DICOM keyword (check the spelling, or use the tag)"
                    )
                tag = Tag(tag)
            else:
                tag = Tag(int(m.group("g1") or m.group("g2"), 16), int(m.group("e1") or m.group("e2"), 16))
            index = m.group("index")
            steps.append(Step(tag, None if index in (None, "*") else int(index)))
        if len(steps) > MAX_STEPS:
            raise ValueError(f"an attribute path has at most {MAX_STEPS} steps")
        return cls(tuple(steps))

    def __str__(self) -> str:
        return ".".join(str(step) for step in self.steps)

    @property
    def top_tag(self) -> BaseTag:
        return self.steps[0].tag

    def read(self, ds: Dataset) -> tuple[bool, list[str]]:
        """``(present, values)`` of this path in ``ds``."""
        present = False
        values: list[str] = []
        index = self.steps[-1].index  # on the last step: an item of a sequence, or one of several values
        for element in self._elements(ds, 0):
            value = element.value
            if isinstance(value, Sequence):
                present = present or len(value) > (index or 0)
                continue
            found = _strings(value)
            if index is not None:
                found = found[index : index + 1]
            present = present or bool(found)
            values.extend(found[: MAX_VALUES - len(values)])
            if len(values) >= MAX_VALUES:
                break
        return present, values

    def _elements(self, ds: Dataset, depth: int):  # type: ignore[no-untyped-def]
        step = self.steps[depth]
        if step.tag not in ds:
            return
        element = ds[step.tag]
        if depth == len(self.steps) - 1:
            yield element
            return
        if not isinstance(element.value, Sequence):
            return
        items = list(element.value)
        if step.index is not None:
            items = items[step.index : step.index + 1]
        for item in items:
            yield from self._elements(item, depth + 1)


def _strings(value: object) -> list[str]:
    if value is None or isinstance(value, bytes | bytearray):
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [s for v in value for s in _strings(v)]
    text = str(value).strip(" \x00")
    return [text] if text else []
