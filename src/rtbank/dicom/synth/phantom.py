"""A whole-body analytic phantom: organs with CT numbers, MR and PET contrast, and how to image it.

The anatomy lives in its own frame (z = 0 at the vertex, negative towards the feet, mm). Each imaging session
puts the patient somewhere else on a couch: a :class:`Pose` maps anatomy to that session's frame of
reference, and the relative pose of two sessions is exactly what a spatial registration stores.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from rtbank.dicom.synth.shapes import Ellipsoid, FloatArray, Shape, Tube

Contrast = Literal["ct", "mr", "pet"]
AIR_HU = -1000.0


@dataclass(frozen=True)
class Organ:
    """A structure of the phantom.

    Attributes
    ----------
    standard
        TG-263 name (``SpinalCord``); the key of the ROI naming styles.
    hu, mr, pet
        CT number (HU), MR signal (arbitrary units) and PET uptake (SUV) painted inside.
    roi_type
        ``RTROIInterpretedType`` when contoured; ``None`` for tissue that is never contoured (skull).
    """

    standard: str
    shape: Shape
    hu: float
    mr: float
    pet: float
    roi_type: str | None = "ORGAN"

    def value(self, contrast: Contrast) -> float:
        return {"ct": self.hu, "mr": self.mr, "pet": self.pet}[contrast]


@dataclass(frozen=True)
class Pose:
    """Where the anatomy lies in one frame of reference: ``p_frame = R · p_anatomy + t`` (mm)."""

    rotation: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def random(cls, rng: random.Random, z_centre_mm: float, max_degrees: float) -> Pose:
        """A couch position: rotation about each axis up to ``max_degrees``, the scan centre at a
        scanner-like table height ``z_centre_mm`` away from the anatomy origin."""
        angles = [math.radians(rng.uniform(-max_degrees, max_degrees)) for _ in range(3)]
        translation = (rng.uniform(-15, 15), rng.uniform(-30, 30), round(z_centre_mm, 1))
        return cls(_rotation(*angles), translation)

    def matrix(self) -> FloatArray:
        """The 4 × 4 homogeneous matrix anatomy → frame."""
        m = np.eye(4)
        m[:3, :3] = np.array(self.rotation)
        m[:3, 3] = self.translation
        return m

    @property
    def is_translation(self) -> bool:
        return bool(np.allclose(np.array(self.rotation), np.eye(3)))

    def to_anatomy(self, x: FloatArray, y: FloatArray, z: FloatArray) -> tuple[FloatArray, ...]:
        r = np.array(self.rotation)
        p = np.stack([x - self.translation[0], y - self.translation[1], z - self.translation[2]])
        q = np.tensordot(r.T, p, axes=1)
        return q[0], q[1], q[2]

    def to_frame(self, point: tuple[float, float, float]) -> tuple[float, float, float]:
        p = np.array(self.rotation) @ np.array(point) + np.array(self.translation)
        return (float(p[0]), float(p[1]), float(p[2]))


@functools.lru_cache(maxsize=4096)
def _frame_bounds(pose: Pose, bounds: tuple[float, ...]) -> tuple[float, ...]:
    """The frame-axis box ``(x0, x1, y0, y1, z0, z1)`` enclosing an anatomy-frame box, mm."""
    corners = np.array([[x, y, z] for x in bounds[0:2] for y in bounds[2:4] for z in bounds[4:6]])
    moved = corners @ np.array(pose.rotation).T + np.array(pose.translation)
    low, high = moved.min(axis=0), moved.max(axis=0)
    return (float(low[0]), float(high[0]), float(low[1]), float(high[1]), float(low[2]), float(high[2]))


def registration_matrix(moving: Pose, fixed: Pose) -> FloatArray:
    """The rigid matrix that maps coordinates of the ``moving`` frame into the ``fixed`` frame
    (what a Spatial Registration stores for the moving frame of reference)."""
    return fixed.matrix() @ np.linalg.inv(moving.matrix())


@dataclass(frozen=True)
class Anatomy:
    """Organs in painting order (later ones paint over earlier ones); the first is the body outline."""

    organs: tuple[Organ, ...]
    height_scale: float = 1.0

    @property
    def body(self) -> Organ:
        return self.organs[0]

    def organ(self, standard: str) -> Organ:
        for organ in self.organs:
            if organ.standard == standard:
                return organ
        raise KeyError(standard)

    def with_organs(self, extra: list[Organ]) -> Anatomy:
        return Anatomy(self.organs + tuple(extra), self.height_scale)

    def sample(
        self, pose: Pose, xs: FloatArray, ys: FloatArray, z: float, contrast: Contrast
    ) -> NDArray[np.float32]:
        """One axial image of the frame ``pose``: pixel centres ``ys × xs`` at height ``z``, mm."""
        background = AIR_HU if contrast == "ct" else 0.0
        image = np.full((len(ys), len(xs)), background, dtype=np.float32)
        if pose.is_translation:
            tx, ty, tz = pose.translation
            self._paint_axial(image, xs - tx, ys - ty, z - tz, contrast)
            return image
        gx, gy = np.meshgrid(xs, ys)
        ax, ay, az = pose.to_anatomy(gx, gy, np.full_like(gx, z))
        for organ in self.organs:
            x0, x1, y0, y1, z0, z1 = _frame_bounds(pose, organ.shape.bounds())
            if not z0 <= z <= z1:
                continue
            i0, i1 = np.searchsorted(xs, [x0, x1])
            j0, j1 = np.searchsorted(ys, [y0, y1])
            if i1 <= i0 or j1 <= j0:
                continue
            window = image[j0:j1, i0:i1]
            inside = organ.shape.contains(ax[j0:j1, i0:i1], ay[j0:j1, i0:i1], az[j0:j1, i0:i1])
            window[inside] = organ.value(contrast)
        return image

    def _paint_axial(
        self, image: NDArray[np.float32], xs: FloatArray, ys: FloatArray, z: float, contrast: Contrast
    ) -> None:
        for organ in self.organs:
            section = organ.shape.section(z)
            if section is None:
                continue
            i0, i1 = np.searchsorted(xs, [section.cx - section.a, section.cx + section.a])
            j0, j1 = np.searchsorted(ys, [section.cy - section.b, section.cy + section.b])
            if i1 <= i0 or j1 <= j0:
                continue
            window = image[j0:j1, i0:i1]
            window[section.mask(xs[i0:i1], ys[j0:j1])] = organ.value(contrast)


def _rotation(ax: float, ay: float, az: float) -> tuple[tuple[float, float, float], ...]:
    cx, sx, cy, sy, cz, sz = (
        math.cos(ax),
        math.sin(ax),
        math.cos(ay),
        math.sin(ay),
        math.cos(az),
        math.sin(az),
    )
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    r = (rz @ ry @ rx).tolist()
    return tuple((float(row[0]), float(row[1]), float(row[2])) for row in r)


def _sphere(x: float, y: float, z: float, r: float) -> Ellipsoid:
    return Ellipsoid(x, y, z, r, r, r)


# Body outline: (z, a, b) knots from the vertex to the thighs, mm.
_BODY_KNOTS = (
    (-1120, 165, 105), (-1050, 178, 112), (-900, 180, 115), (-750, 150, 108), (-600, 160, 110),
    (-330, 165, 105), (-262, 150, 98), (-232, 62, 60), (-175, 56, 56), (-140, 66, 80),
    (-80, 76, 96), (-25, 66, 84), (-4, 30, 38),
)  # fmt: skip
_SPINE_KNOTS = ((-1000, 40), (-700, 50), (-300, 60), (-250, 30), (-130, 20))


def _body() -> Tube:
    z, a, b = zip(*_BODY_KNOTS, strict=True)
    zeros = tuple(0.0 for _ in z)
    return Tube(tuple(map(float, z)), zeros, zeros, tuple(map(float, a)), tuple(map(float, b)))


def _spine(radius_x: float, radius_y: float, shift_y: float, z_low: float, z_high: float) -> Tube:
    knots = [(z, y) for z, y in _SPINE_KNOTS]
    tube = Tube(
        tuple(float(z) for z, _ in knots),
        tuple(0.0 for _ in knots),
        tuple(float(y) + shift_y for _, y in knots),
        tuple(radius_x for _ in knots),
        tuple(radius_y for _ in knots),
    )
    return tube.clipped(z_low, z_high)


def reference_anatomy() -> Anatomy:
    """The average patient, before personalisation."""
    organs = [
        Organ("External", _body(), 20, 300, 1.0, "EXTERNAL"),
        Organ("Skull", Ellipsoid(0, 5, -75, 70, 90, 66), 900, 40, 0.6, None),
        Organ("Brain", Ellipsoid(0, 5, -75, 62, 82, 58), 35, 650, 8.0),
        Organ("Brainstem", Tube((-135.0, -98.0), (0.0, 0.0), (22.0, 18.0), (11.0, 12.0), (11.0, 12.0)), 38, 560, 5),  # noqa: E501
        Organ("Eye_L", _sphere(32, -70, -72, 12), 10, 120, 0.8),
        Organ("Eye_R", _sphere(-32, -70, -72, 12), 10, 120, 0.8),
        Organ("Lens_L", _sphere(32, -79, -72, 4), 70, 60, 0.8),
        Organ("Lens_R", _sphere(-32, -79, -72, 4), 70, 60, 0.8),
        Organ("OpticChiasm", Ellipsoid(0, -12, -84, 9, 5, 3.5), 38, 560, 5.0),
        Organ("Vertebrae", _spine(17, 22, 0, -1000, -128), 650, 150, 1.5, None),
        Organ("SpinalCord", _spine(6, 6, 10, -760, -136), 32, 520, 1.2),
        Organ("Parotid_L", Ellipsoid(44, 12, -132, 14, 19, 22), -25, 780, 2.0),
        Organ("Parotid_R", Ellipsoid(-44, 12, -132, 14, 19, 22), -25, 780, 2.0),
        Organ("OralCavity", Ellipsoid(0, -40, -140, 30, 24, 15), 25, 380, 2.5),
        Organ("Larynx", Tube((-218.0, -172.0), (0.0, 0.0), (-24.0, -28.0), (17.0, 20.0), (13.0, 15.0)), 30, 350, 1.5),  # noqa: E501
        Organ("Trachea", Tube((-420.0, -300.0, -218.0), (0.0, 0.0, 0.0), (5.0, -5.0, -20.0), (9.0, 9.0, 8.0), (9.0, 9.0, 7.0)), -950, 5, 0.1, None),  # noqa: E501
        Organ("Lung_L", Ellipsoid(82, 8, -455, 62, 76, 140), -820, 25, 0.4),
        Organ("Lung_R", Ellipsoid(-82, 8, -450, 66, 78, 146), -820, 25, 0.4),
        Organ("Heart", Ellipsoid(22, -22, -515, 56, 50, 62), 45, 420, 3.5),
        Organ("Esophagus", Tube((-640.0, -400.0, -215.0), (6.0, 4.0, 2.0), (30.0, 28.0, -8.0), (8.0, 8.0, 7.0), (8.0, 8.0, 6.0)), 30, 360, 1.6),  # noqa: E501
        Organ("Bladder", Ellipsoid(0, -40, -960, 40, 30, 35), 10, 90, 15.0),
        Organ("SeminalVesicles", Ellipsoid(0, 14, -988, 24, 8, 10), 40, 600, 1.5),
        Organ("Prostate", Ellipsoid(0, -6, -1012, 20, 17, 20), 45, 420, 2.2),
        Organ("Rectum", Tube((-1045.0, -1000.0, -935.0), (0.0, 0.0, 0.0), (36.0, 34.0, 40.0), (15.0, 15.0, 18.0), (15.0, 14.0, 16.0)), 20, 320, 1.4),  # noqa: E501
        Organ("Femur_Head_L", _sphere(92, 0, -1005, 24), 700, 750, 1.0),
        Organ("Femur_Head_R", _sphere(-92, 0, -1005, 24), 700, 750, 1.0),
    ]  # fmt: skip
    return Anatomy(tuple(organs))


def personal_anatomy(rng: random.Random) -> Anatomy:
    """The reference anatomy scaled for one patient (body habitus ±10 %, height ±4 %)."""
    sx, sy, sz = rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1), rng.uniform(0.96, 1.04)
    organs = tuple(replace(o, shape=o.shape.scaled(sx, sy, sz)) for o in reference_anatomy().organs)
    return Anatomy(organs, sz)


def qa_phantom() -> Anatomy:
    """A cylindrical water phantom with a dense insert holding an ion chamber, and two alignment markers
    (verification and machine QA plans)."""
    body = Tube((-150.0, 150.0), (0.0, 0.0), (0.0, 0.0), (130.0, 130.0), (130.0, 130.0))
    insert = Tube((-60.0, 60.0), (0.0, 0.0), (0.0, 0.0), (25.0, 25.0), (25.0, 25.0))
    chamber = Tube((-12.0, 12.0), (0.0, 0.0), (0.0, 0.0), (3.5, 3.5), (3.5, 3.5))
    return Anatomy(
        (
            Organ("External", body, 0, 300, 1.0, "EXTERNAL"),
            Organ("Insert", insert, 250, 100, 1.0, "CONTROL"),
            Organ("Chamber", chamber, -1000, 0, 0.0, "CAVITY"),
            Organ("Marker_Ant", _sphere(0, -126, 0, 4), 1500, 0, 0.0, "CONTROL"),
            Organ("Marker_Lt", _sphere(126, 0, 0, 4), 1500, 0, 0.0, "CONTROL"),
        )
    )
