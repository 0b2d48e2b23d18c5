"""The wire format of image and dose planes: little-endian uint16 with a linear scale.

``value = offset + scale × raw`` for ``raw >= 1``; ``raw == 0`` means "no data here" (outside the volume
or the dose grid). Integer data whose range fits (CT in HU, most MR) travel exactly with ``scale = 1``;
other data (PET activity, dose in Gy) are quantised to 65,534 steps over their range — for a 70 Gy plane
about 1 mGy, far below what a screen shows. A 512 × 512 plane is 512 KiB before HTTP compression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_STEPS = 65534


@dataclass(frozen=True)
class EncodedPlane:
    data: bytes
    rows: int
    columns: int
    scale: float
    offset: float

    def headers(self) -> dict[str, str]:
        return {
            "X-Rtbank-Rows": str(self.rows),
            "X-Rtbank-Columns": str(self.columns),
            "X-Rtbank-Scale": repr(self.scale),
            "X-Rtbank-Offset": repr(self.offset),
        }


def encode_plane(values: np.ndarray) -> EncodedPlane:
    """Encode a 2-D plane (NaN = no data) for the browser."""
    rows, columns = values.shape
    floating = np.issubdtype(values.dtype, np.floating)
    finite = np.isfinite(values) if floating else np.ones(values.shape, dtype=bool)
    raw = np.zeros(values.shape, dtype="<u2")
    if not finite.any():
        return EncodedPlane(raw.tobytes(), rows, columns, 1.0, 0.0)
    lo, hi = float(values[finite].min()), float(values[finite].max())
    integral = not floating or bool(np.all(values[finite] == np.round(values[finite])))
    if integral and hi - lo <= _STEPS - 1:
        scale = 1.0
    else:
        scale = (hi - lo) / (_STEPS - 1) if hi > lo else 1.0
    offset = lo - scale
    raw[finite] = np.rint((values[finite].astype(np.float64) - offset) / scale).astype(np.uint16)
    return EncodedPlane(raw.tobytes(), rows, columns, scale, offset)


def decode_plane(encoded: EncodedPlane) -> np.ndarray:
    """The values back (float64, NaN where there was no data): for tests and Python clients."""
    raw = np.frombuffer(encoded.data, dtype="<u2").reshape(encoded.rows, encoded.columns)
    values = encoded.offset + encoded.scale * raw.astype(np.float64)
    return np.where(raw == 0, np.nan, values)
