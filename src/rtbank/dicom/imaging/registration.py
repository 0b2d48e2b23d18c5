"""Rigid/affine frame-of-reference transforms from Spatial Registrations (PS3.3 C.20.2).

A Spatial Registration lives in its own Frame of Reference (the "registered RCS", usually the planning
CT's). Each item of its Registration Sequence names a Frame of Reference F and matrices that map
coordinates in F into the registered RCS: ``p_reg = M_F · p_F``. Several matrices of one item are applied
in the order of the Matrix Sequence (``M_F = M_n ⋯ M_2 · M_1``). So a point of frame A maps to frame B by
``M_B⁻¹ · M_A``; a frame without an item is the registered RCS itself only when it *is* the
registration's own frame (identity).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

_DEFORMABLE = "1.2.840.10008.5.1.4.1.1.66.3"


@dataclass(frozen=True, eq=False)
class FrameRegistration:
    """The matrices of one Spatial Registration, by frame of reference.

    Attributes
    ----------
    own_frame : str
        Frame of Reference UID of the registration object (the registered RCS).
    matrices : dict
        Frame UID → 4 × 4 matrix into the registered RCS.
    sop_instance_uid : str
    """

    own_frame: str
    matrices: dict[str, np.ndarray]
    sop_instance_uid: str = ""

    @classmethod
    def from_dataset(cls, ds: Dataset) -> FrameRegistration:
        """Read a Spatial Registration (rigid/affine matrices only).

        Raises
        ------
        ValueError
            For a Deformable Spatial Registration, or a matrix without 16 numbers.
        """
        uid = str(ds.get("SOPInstanceUID", "?"))
        if str(ds.get("SOPClassUID", "")) == _DEFORMABLE:
            raise ValueError(
                f"registration {uid} is deformable; the viewer applies rigid/affine matrices only"
            )
        matrices: dict[str, np.ndarray] = {}
        for item in ds.get("RegistrationSequence", []):
            frame = str(item.get("FrameOfReferenceUID", "") or "")
            if not frame:
                continue
            combined = np.eye(4)
            for matrix_reg in item.get("MatrixRegistrationSequence", []):
                for matrix in matrix_reg.get("MatrixSequence", []):
                    combined = _matrix(matrix.get("FrameOfReferenceTransformationMatrix"), uid) @ combined
            matrices[frame] = combined
        return cls(str(ds.get("FrameOfReferenceUID", "") or ""), matrices, uid)

    @classmethod
    def from_values(
        cls, own_frame: str, frame_matrices: Iterable[tuple[str, Iterable[float]]], sop_instance_uid: str = ""
    ) -> FrameRegistration:
        """From (frame UID, 16 row-major values) pairs in Matrix Sequence order (``RegistrationInfo``)."""
        matrices: dict[str, np.ndarray] = {}
        for frame, values in frame_matrices:
            matrices[frame] = _matrix(values, sop_instance_uid) @ matrices.get(frame, np.eye(4))
        return cls(own_frame, matrices, sop_instance_uid)

    def to_registered(self, frame: str) -> np.ndarray | None:
        """Matrix taking coordinates of ``frame`` into the registered RCS; None if the frame is not here."""
        if frame in self.matrices:
            return self.matrices[frame]
        return np.eye(4) if frame and frame == self.own_frame else None

    def transform(self, source_frame: str, target_frame: str) -> np.ndarray | None:
        """4 × 4 matrix mapping coordinates of ``source_frame`` into ``target_frame``, or None."""
        source = self.to_registered(source_frame)
        target = self.to_registered(target_frame)
        if source is None or target is None:
            return None
        return np.linalg.inv(target) @ source


def frame_transform(
    registrations: Iterable[FrameRegistration], source_frame: str, target_frame: str
) -> tuple[np.ndarray, str] | None:
    """The first registration relating two frames: (source → target matrix, its SOP Instance UID).

    The identity (and "") when both frames are the same.
    """
    if source_frame and source_frame == target_frame:
        return np.eye(4), ""
    for registration in registrations:
        matrix = registration.transform(source_frame, target_frame)
        if matrix is not None:
            return matrix, registration.sop_instance_uid
    return None


def _matrix(values: object, uid: str) -> np.ndarray:
    try:
        numbers = [float(v) for v in values]  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"registration {uid}: unreadable Frame of Reference Transformation Matrix") from exc
    if len(numbers) != 16:
        raise ValueError(f"registration {uid}: a transformation matrix needs 16 values, not {len(numbers)}")
    m = np.array(numbers).reshape(4, 4)
    if not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6):
        raise ValueError(
            f"registration {uid}: the last matrix row must be 0 0 0 1 (not a perspective matrix)"
        )
    return m
