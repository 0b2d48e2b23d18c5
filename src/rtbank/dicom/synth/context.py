"""The state one synthetic patient is built from: seeded randomness, deterministic UIDs, studies and series.

Every random choice and every UID of a patient derives from ``(seed, patient index)`` alone, so a patient
comes out byte-identical whether it is generated alone, in a list, or in another process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydicom.dataset import Dataset

from rtbank.dicom.uids import uid_from

if TYPE_CHECKING:
    from rtbank.dicom.synth.naming import Institution


@dataclass(frozen=True)
class Equipment:
    """A device or program that wrote objects (General Equipment module)."""

    manufacturer: str
    model: str
    software: str
    station: str


@dataclass
class Study:
    """One study of the patient; ``kind`` names its folder (``planning-ct``, ``mr``, ``rt`` …)."""

    uid: str
    date: str
    time: str
    kind: str
    description: str
    study_id: str
    accession: str
    next_series_number: int = 1

    def take_series_number(self, preferred: int | None = None) -> int:
        number = max(self.next_series_number, preferred or 0)
        self.next_series_number = number + 1
        return number


@dataclass
class Series:
    """One series: the objects of one modality written together by one piece of equipment."""

    uid: str
    number: int
    modality: str
    study: Study
    description: str
    equipment: Equipment
    date: str
    time: str
    frame_of_reference_uid: str | None = None
    body_part: str = ""
    instances: int = 0

    def take_instance_number(self) -> int:
        self.instances += 1
        return self.instances


@dataclass
class Generated:
    """A dataset ready to write, with the series (and so the study) it belongs to."""

    dataset: Dataset
    series: Series


@dataclass
class PatientContext:
    """Everything one patient's objects share.

    Parameters
    ----------
    seed
        The archive seed.
    index
        The patient's position in the archive (0-based); with ``seed`` it determines everything else.
    institution
        The clinic whose habits the objects follow.
    full_size
        512 × 512 CT with realistic slice counts instead of the small default.
    """

    seed: int
    index: int
    institution: Institution
    full_size: bool = False
    rng: random.Random = field(init=False)
    patient_id: str = field(init=False)
    patient_name: str = field(init=False)
    sex: str = field(init=False)
    birth_date: dt.date = field(init=False)
    first_day: dt.date = field(init=False)
    _studies: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        from rtbank.dicom.synth.naming import patient_name

        self.rng = random.Random(f"rtbank-synth:{self.seed}:{self.index}")
        self.first_day = dt.date(2014, 1, 6) + dt.timedelta(days=self.rng.randrange(0, 8 * 365))
        self.sex = self.rng.choice("FM")
        self.birth_date = self.first_day - dt.timedelta(days=self.rng.randrange(40 * 365, 85 * 365))
        self.patient_name = patient_name(self.rng, self.sex)
        number = 1000 + self.index * 37 + self.rng.randrange(0, 37)
        self.patient_id = self.institution.patient_id(number, self.first_day.year)

    def uid(self, *parts: object) -> str:
        """A UID unique to this archive, patient and ``parts`` (e.g. ``("course", 1, "ct", 17)``)."""
        return uid_from("rtbank-synth", str(self.seed), str(self.index), *(str(p) for p in parts))

    def np_rng(self, *parts: object) -> np.random.Generator:
        """A numpy generator for bulk values (image noise), seeded from this patient and ``parts``."""
        text = "\x1f".join(["rtbank-synth", str(self.seed), str(self.index), *(str(p) for p in parts)])
        return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))

    def new_study(self, kind: str, day: dt.date, description: str) -> Study:
        self._studies += 1
        number = self._studies
        return Study(
            uid=self.uid("study", number),
            date=dicom_date(day),
            time=clock_time(self.rng, 7, 16),
            kind=kind,
            description=description,
            study_id=str(number),
            accession=f"{self.institution.code}{self.index:04d}{number:03d}"[:16],
        )

    def new_series(
        self,
        study: Study,
        modality: str,
        description: str,
        equipment: Equipment,
        frame_of_reference_uid: str | None = None,
        day: dt.date | None = None,
        preferred_number: int | None = None,
    ) -> Series:
        number = study.take_series_number(preferred_number)
        return Series(
            uid=self.uid("series", study.uid, number),
            number=number,
            modality=modality,
            study=study,
            description=description,
            equipment=equipment,
            date=dicom_date(day) if day else study.date,
            time=clock_time(self.rng, 7, 17) if day else study.time,
            frame_of_reference_uid=frame_of_reference_uid,
        )


def dicom_date(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def clock_time(rng: random.Random, first_hour: int, last_hour: int) -> str:
    """A DICOM TM between ``first_hour``:00 and ``last_hour``:59."""
    return f"{rng.randint(first_hour, last_hour):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}"


def weekdays_from(start: dt.date, count: int) -> list[dt.date]:
    """``count`` consecutive working days from ``start`` (inclusive when it is a weekday)."""
    days: list[dt.date] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days
