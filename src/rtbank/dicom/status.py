"""DIMSE status codes rtbank answers with (PS3.4 Annex B / PS3.7 Annex C), named instead of hex literals."""

from pynetdicom.status import Status

SUCCESS = int(Status.SUCCESS)
OUT_OF_RESOURCES = 0xA700  # Storage: Refused, out of resources (disk reserve reached, write failed)
DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000  # Storage: Error, cannot understand (malformed, unsafe UIDs, UID mismatch)
PROCESSING_FAILURE = 0x0110
NOT_AUTHORISED = 0x0124
MOVE_DESTINATION_UNKNOWN = int(Status.MOVE_DESTINATION_UNKNOWN)


def is_success(status: int) -> bool:
    return status == SUCCESS


def is_failure(status: int) -> bool:
    return status not in (SUCCESS, 0xFF00, 0xFF01, 0xFE00) and not 0xB000 <= status <= 0xBFFF
