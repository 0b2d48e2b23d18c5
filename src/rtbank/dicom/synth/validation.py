"""Checking generated objects with ``dciodvfy`` (Debian ``dicom3tools``), the reference IOD validator.

Generated objects must validate without errors, except

* the validator's own defects (:data:`VALIDATOR_DEFECTS`): its table misspells the RT Treatment Record value
  ``VERIFIED`` as ``VERIFED``, so a correct record is flagged; and it aborts on 32-bit RTDOSE pixel data, so a
  32-bit dose is validated as a 16-bit copy (:func:`as_16_bit`);
* the errors a deliberate quirk implies (:data:`QUIRK_ERRORS`, keyed by the manifest's anomaly kinds).

An abort of the validator is a failure, never a pass.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmwrite
from pydicom.dataset import Dataset

from rtbank.dicom.synth.doses import as_16_bit

DCIODVFY = "dciodvfy"

_VERIFIED = "Error - Unrecognized enumerated value <VERIFIED> for value 1 of attribute <Treatment Verification Status>"  # noqa: E501
VALIDATOR_DEFECTS: dict[str, str] = {
    _VERIFIED: "dciodvfy's RT Treatment Record table spells the enumerated value VERIFIED as VERIFED",
}

QUIRK_ERRORS: dict[str, tuple[str, ...]] = {
    # TomoTherapy-style dose: no ReferencedRTPlanSequence (1C for DoseSummationType PLAN), and a top-level
    # ReferencedStructureSetSequence, which the validator reads as an RT DVH module without its DVHSequence.
    "dose_references_structure_set": (
        "Error - Missing attribute Type 1C Conditional Element=<ReferencedRTPlanSequence> Module=<RTDose>",
        "Error - Missing attribute Type 1 Required Element=<DVHSequence> Module=<RTDVH>",
    ),
    # These quirks live in the relations between objects; each object on its own is valid.
    "missing_slice": (),
    "plan_without_dose": (),
    "dangling_record": (),
}


class ValidatorCrash(RuntimeError):
    """dciodvfy aborted (as it does on 32-bit RTDOSE pixel data) instead of reporting."""


@dataclass(frozen=True)
class Report:
    """What dciodvfy said about one object."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    def unexpected_errors(self, quirks: Iterable[str] = ()) -> list[str]:
        """Errors that neither a validator defect nor one of ``quirks`` explains."""
        allowed = set(VALIDATOR_DEFECTS)
        for quirk in quirks:
            allowed.update(QUIRK_ERRORS.get(quirk, ()))
        return [e for e in self.errors if e not in allowed]


def validator_available() -> bool:
    return shutil.which(DCIODVFY) is not None


def validate(ds: Dataset, workdir: Path | None = None) -> Report:
    """Run dciodvfy on ``ds`` (a 32-bit RTDOSE as its 16-bit copy).

    Raises
    ------
    ValidatorCrash
        If dciodvfy aborts or is killed.
    """
    if ds.get("Modality") == "RTDOSE" and int(ds.get("BitsAllocated", 16)) == 32:
        ds = as_16_bit(ds)
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        path = Path(folder) / "object.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        return validate_file(path)


def validate_file(path: Path) -> Report:
    """Run dciodvfy on a file as it is (no 16-bit copy); see :func:`validate`."""
    result = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, check=False, timeout=120)
    if result.returncode not in (0, 1):
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ValidatorCrash(f"dciodvfy exited with {result.returncode} on {path}: {tail[0]}")
    lines = (result.stdout + result.stderr).splitlines()
    return Report(
        errors=tuple(line.strip() for line in lines if line.startswith("Error")),
        warnings=tuple(line.strip() for line in lines if line.startswith("Warning")),
    )
