"""Synthetic multi-centre DICOM-RT archives for tests, benchmarks, the harvester's source PACS and the demo.

Everything derives from a seed: same seed, byte-identical files. No Django here.

Public API
----------
:func:`generate_archive`
    Write an archive to a folder and return its manifest (``rtbank synth`` calls it).
:func:`generate_patient`
    One patient in memory: its datasets and the facts the manifest reports about them.
:func:`patient_datasets`
    One patient's datasets, in creation order.
:func:`harvest_expected`
    The harvester's ten-step reference walk over a list of datasets (the manifest's answer key).
:data:`CATALOGUE` / :func:`institutions`
    The clinics and their habits.
:data:`QUIRKS`, :data:`VALIDATOR_DEFECTS`, :data:`QUIRK_ERRORS`
    The deliberate irregularities, and which dciodvfy errors the validator's defects and each quirk imply.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydicom.dataset import Dataset

from rtbank.dicom.synth.archive import ArchiveError, generate_archive
from rtbank.dicom.synth.naming import CATALOGUE, Institution, institutions
from rtbank.dicom.synth.patient import generate_patient, patient_datasets
from rtbank.dicom.synth.result import PatientArchive
from rtbank.dicom.synth.scenario import QUIRKS
from rtbank.dicom.synth.validation import QUIRK_ERRORS, VALIDATOR_DEFECTS
from rtbank.dicom.synth.walk import ReferenceIndex


def harvest_expected(plan_uid: str, datasets: Iterable[Dataset]) -> dict[str, list[str]]:
    """``{"instances": [...], "series": [...]}``: what the ten-step walk collects for ``plan_uid``."""
    return ReferenceIndex(datasets).harvest(plan_uid)


__all__ = [
    "CATALOGUE",
    "QUIRKS",
    "QUIRK_ERRORS",
    "VALIDATOR_DEFECTS",
    "ArchiveError",
    "Institution",
    "PatientArchive",
    "generate_archive",
    "generate_patient",
    "harvest_expected",
    "institutions",
    "patient_datasets",
]
