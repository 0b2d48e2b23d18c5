"""SOP classes and transfer syntaxes rtbank stores, and what kind of RT object each one is."""

from __future__ import annotations

from enum import StrEnum

from pydicom.uid import AllTransferSyntaxes
from pynetdicom.sop_class import _STORAGE_CLASSES


class RtKind(StrEnum):
    """The role an object plays in an RT dataset; the catalog keeps one table per RT kind."""

    IMAGE = "image"
    PLAN = "plan"
    ION_PLAN = "ion_plan"
    STRUCTURE_SET = "structure_set"
    DOSE = "dose"
    RECORD = "record"
    ION_RECORD = "ion_record"
    BRACHY_RECORD = "brachy_record"
    SUMMARY_RECORD = "summary_record"
    REGISTRATION = "registration"
    DEFORMABLE_REGISTRATION = "deformable_registration"
    RT_IMAGE = "rt_image"
    SEGMENTATION = "segmentation"
    RAW = "raw"
    OTHER = "other"


RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RT_ION_PLAN = "1.2.840.10008.5.1.4.1.1.481.8"
RT_STRUCTURE_SET = "1.2.840.10008.5.1.4.1.1.481.3"
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1"
RT_BEAMS_RECORD = "1.2.840.10008.5.1.4.1.1.481.4"
RT_BRACHY_RECORD = "1.2.840.10008.5.1.4.1.1.481.6"
RT_SUMMARY_RECORD = "1.2.840.10008.5.1.4.1.1.481.7"
RT_ION_BEAMS_RECORD = "1.2.840.10008.5.1.4.1.1.481.9"
SPATIAL_REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.1"
DEFORMABLE_REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.3"
SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"
RAW_DATA = "1.2.840.10008.5.1.4.1.1.66"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2.1"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.1"
PET_IMAGE = "1.2.840.10008.5.1.4.1.1.128"
ENHANCED_PET_IMAGE = "1.2.840.10008.5.1.4.1.1.130"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"

# Private storage classes that treatment planning systems really send. Kept as data: a new vendor
# class is a line here, and the receiver accepts it at the next start.
PRIVATE_STORAGE_CLASSES: dict[str, tuple[str, RtKind]] = {
    "1.2.246.352.70.1.70": ("Varian private RT Plan (Eclipse/Halcyon)", RtKind.PLAN),
}

_KINDS: dict[str, RtKind] = {
    RT_PLAN: RtKind.PLAN,
    RT_ION_PLAN: RtKind.ION_PLAN,
    RT_STRUCTURE_SET: RtKind.STRUCTURE_SET,
    RT_DOSE: RtKind.DOSE,
    RT_IMAGE: RtKind.RT_IMAGE,
    RT_BEAMS_RECORD: RtKind.RECORD,
    RT_ION_BEAMS_RECORD: RtKind.ION_RECORD,
    RT_BRACHY_RECORD: RtKind.BRACHY_RECORD,
    RT_SUMMARY_RECORD: RtKind.SUMMARY_RECORD,
    SPATIAL_REGISTRATION: RtKind.REGISTRATION,
    DEFORMABLE_REGISTRATION: RtKind.DEFORMABLE_REGISTRATION,
    SEGMENTATION: RtKind.SEGMENTATION,
    RAW_DATA: RtKind.RAW,
}

# Volumetric image classes whose series the RT walk follows (planning CT, MR, PET and their enhanced forms).
VOLUME_IMAGE_CLASSES = frozenset(
    {
        CT_IMAGE,
        ENHANCED_CT_IMAGE,
        "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT
        MR_IMAGE,
        ENHANCED_MR_IMAGE,
        "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR
        PET_IMAGE,
        ENHANCED_PET_IMAGE,
        "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy Converted Enhanced PET
    }
)
VOLUME_MODALITIES = frozenset({"CT", "MR", "PT"})


def storage_classes() -> dict[str, str]:
    """Every storage SOP class the receiver accepts: UID → human name."""
    classes = {uid: _split_camel(name) for name, uid in _STORAGE_CLASSES.items()}
    classes.update({uid: name for uid, (name, _kind) in PRIVATE_STORAGE_CLASSES.items()})
    return classes


def rt_kind(sop_class_uid: str) -> RtKind:
    """The RT role of a SOP class; volumetric images are :attr:`RtKind.IMAGE`."""
    if sop_class_uid in _KINDS:
        return _KINDS[sop_class_uid]
    if sop_class_uid in PRIVATE_STORAGE_CLASSES:
        return PRIVATE_STORAGE_CLASSES[sop_class_uid][1]
    if sop_class_uid in VOLUME_IMAGE_CLASSES:
        return RtKind.IMAGE
    return RtKind.OTHER


def sop_class_name(sop_class_uid: str) -> str:
    return storage_classes().get(sop_class_uid, sop_class_uid)


def transfer_syntaxes() -> list[str]:
    """Transfer syntaxes accepted on receive: all that pydicom knows, compressed ones stored as received."""
    return [str(uid) for uid in AllTransferSyntaxes]


def _split_camel(name: str) -> str:
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append(" ")
        out.append(ch)
    return "".join(out).replace(" Storage", "")
