"""Analytic solids with elliptic cross-sections: the phantom's organs and targets.

Both shapes cut an axial plane in an ellipse, so a structure's contour on a CT slice is exact (no marching
squares) and the same solid fills the CT, shapes the dose and lies under the contour. Coordinates are the
phantom's anatomy frame in mm, DICOM patient axes (x towards the patient's left, y posterior, z superior).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Ellipse:
    """An axial cross-section: centre ``(cx, cy)`` and semi-axes ``a`` (along x) and ``b`` (along y), mm."""

    cx: float
    cy: float
    a: float
    b: float

    def polygon(self, points: int) -> FloatArray:
        """``points`` vertices counter-clockwise (seen from the feet), shape ``(points, 2)``, mm."""
        angles = np.linspace(0.0, 2.0 * math.pi, points, endpoint=False)
        return np.column_stack((self.cx + self.a * np.cos(angles), self.cy + self.b * np.sin(angles)))

    def mask(self, xs: FloatArray, ys: FloatArray) -> NDArray[np.bool_]:
        """Which points of the grid ``ys[:, None] × xs[None, :]`` lie inside."""
        u = ((xs - self.cx) / self.a) ** 2
        v = ((ys - self.cy) / self.b) ** 2
        return (v[:, None] + u[None, :]) <= 1.0

    @property
    def area_mm2(self) -> float:
        return math.pi * self.a * self.b


class Shape(Protocol):
    """What an organ or target needs: its section at a height, membership and distance of points."""

    @property
    def z_range(self) -> tuple[float, float]: ...

    def section(self, z: float) -> Ellipse | None: ...

    def contains(self, x: FloatArray, y: FloatArray, z: FloatArray) -> NDArray[np.bool_]: ...

    def distance(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray: ...

    def grown(self, margin_mm: float) -> Shape: ...

    def centre(self) -> tuple[float, float, float]: ...

    def scaled(self, sx: float, sy: float, sz: float) -> Shape: ...

    def moved(self, dx: float, dy: float, dz: float) -> Shape: ...

    def bounds(self) -> tuple[float, float, float, float, float, float]: ...


@dataclass(frozen=True)
class Ellipsoid:
    """Centre ``(cx, cy, cz)`` and semi-axes ``(a, b, c)`` in mm."""

    cx: float
    cy: float
    cz: float
    a: float
    b: float
    c: float

    @property
    def z_range(self) -> tuple[float, float]:
        return (self.cz - self.c, self.cz + self.c)

    def section(self, z: float) -> Ellipse | None:
        t = (z - self.cz) / self.c
        if abs(t) >= 0.999:
            return None
        f = math.sqrt(1.0 - t * t)
        return Ellipse(self.cx, self.cy, self.a * f, self.b * f)

    def contains(self, x: FloatArray, y: FloatArray, z: FloatArray) -> NDArray[np.bool_]:
        return self._radius(x, y, z) <= 1.0

    def distance(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Approximate signed distance to the surface, mm (negative inside); exact for a sphere."""
        return (self._radius(x, y, z) - 1.0) * min(self.a, self.b, self.c)

    def grown(self, margin_mm: float) -> Ellipsoid:
        return Ellipsoid(
            self.cx, self.cy, self.cz, self.a + margin_mm, self.b + margin_mm, self.c + margin_mm
        )

    def centre(self) -> tuple[float, float, float]:
        return (self.cx, self.cy, self.cz)

    def scaled(self, sx: float, sy: float, sz: float) -> Ellipsoid:
        return Ellipsoid(self.cx * sx, self.cy * sy, self.cz * sz, self.a * sx, self.b * sy, self.c * sz)

    def moved(self, dx: float, dy: float, dz: float) -> Ellipsoid:
        return Ellipsoid(self.cx + dx, self.cy + dy, self.cz + dz, self.a, self.b, self.c)

    def bounds(self) -> tuple[float, float, float, float, float, float]:
        """``(x_min, x_max, y_min, y_max, z_min, z_max)``, mm."""
        return (self.cx - self.a, self.cx + self.a, self.cy - self.b, self.cy + self.b, *self.z_range)

    def _radius(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        return np.sqrt(
            ((x - self.cx) / self.a) ** 2 + ((y - self.cy) / self.b) ** 2 + ((z - self.cz) / self.c) ** 2
        )


@dataclass(frozen=True)
class Tube:
    """Elliptic sections interpolated linearly between knots at heights ``z`` (increasing), mm.

    Flat-ended: a spinal cord, a rectum, a body outline.
    """

    z: tuple[float, ...]
    cx: tuple[float, ...]
    cy: tuple[float, ...]
    a: tuple[float, ...]
    b: tuple[float, ...]

    @property
    def z_range(self) -> tuple[float, float]:
        return (self.z[0], self.z[-1])

    def section(self, z: float) -> Ellipse | None:
        if not self.z[0] <= z <= self.z[-1]:
            return None
        k = min(max(bisect.bisect_right(self.z, z) - 1, 0), len(self.z) - 2)
        z0, z1 = self.z[k], self.z[k + 1]
        t = (z - z0) / (z1 - z0) if z1 > z0 else 0.0
        a, b, cx, cy = (v[k] + t * (v[k + 1] - v[k]) for v in (self.a, self.b, self.cx, self.cy))
        return Ellipse(cx, cy, a, b)

    def contains(self, x: FloatArray, y: FloatArray, z: FloatArray) -> NDArray[np.bool_]:
        radial, inside_z = self._radial(x, y, z)
        return (radial <= 1.0) & inside_z

    def distance(self, x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
        """Approximate signed distance to the surface, mm (negative inside)."""
        radial, _ = self._radial(x, y, z)
        scale = np.interp(np.clip(z, self.z[0], self.z[-1]), self.z, np.minimum(self.a, self.b))
        d_radial = (radial - 1.0) * scale
        d_axial = np.maximum(self.z[0] - z, z - self.z[-1])
        outside = np.hypot(np.maximum(d_radial, 0.0), np.maximum(d_axial, 0.0))
        return np.where((d_radial <= 0) & (d_axial <= 0), np.maximum(d_radial, d_axial), outside)

    def grown(self, margin_mm: float) -> Tube:
        z = (self.z[0] - margin_mm, *self.z[1:-1], self.z[-1] + margin_mm)
        return Tube(
            z, self.cx, self.cy, tuple(v + margin_mm for v in self.a), tuple(v + margin_mm for v in self.b)
        )

    def centre(self) -> tuple[float, float, float]:
        zc = 0.5 * (self.z[0] + self.z[-1])
        section = self.section(zc)
        assert section is not None
        return (section.cx, section.cy, zc)

    def scaled(self, sx: float, sy: float, sz: float) -> Tube:
        return Tube(
            tuple(v * sz for v in self.z),
            tuple(v * sx for v in self.cx),
            tuple(v * sy for v in self.cy),
            tuple(v * sx for v in self.a),
            tuple(v * sy for v in self.b),
        )

    def moved(self, dx: float, dy: float, dz: float) -> Tube:
        return Tube(
            tuple(v + dz for v in self.z),
            tuple(v + dx for v in self.cx),
            tuple(v + dy for v in self.cy),
            self.a,
            self.b,
        )

    def clipped(self, z_low: float, z_high: float) -> Tube:
        """The part between ``z_low`` and ``z_high`` (mm), with knots added at the cut heights."""
        keep = [z for z in self.z if z_low < z < z_high]
        heights = [max(z_low, self.z[0]), *keep, min(z_high, self.z[-1])]
        sections = [self.section(z) for z in heights]
        assert all(s is not None for s in sections)
        return Tube(
            tuple(heights),
            tuple(s.cx for s in sections if s),
            tuple(s.cy for s in sections if s),
            tuple(s.a for s in sections if s),
            tuple(s.b for s in sections if s),
        )

    def bounds(self) -> tuple[float, float, float, float, float, float]:
        """``(x_min, x_max, y_min, y_max, z_min, z_max)``, mm (sections are extreme at the knots)."""
        return (
            min(c - a for c, a in zip(self.cx, self.a, strict=True)),
            max(c + a for c, a in zip(self.cx, self.a, strict=True)),
            min(c - b for c, b in zip(self.cy, self.b, strict=True)),
            max(c + b for c, b in zip(self.cy, self.b, strict=True)),
            *self.z_range,
        )

    def _radial(self, x: FloatArray, y: FloatArray, z: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
        zc = np.clip(z, self.z[0], self.z[-1])
        cx = np.interp(zc, self.z, self.cx)
        cy = np.interp(zc, self.z, self.cy)
        a = np.interp(zc, self.z, self.a)
        b = np.interp(zc, self.z, self.b)
        radial = np.sqrt(((x - cx) / a) ** 2 + ((y - cy) / b) ** 2)
        return radial, (z >= self.z[0]) & (z <= self.z[-1])
