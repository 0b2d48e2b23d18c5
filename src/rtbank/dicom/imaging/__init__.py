"""Image geometry for the plan viewer (no Django): volumes, display planes, contours and isodose lines.

Public API
----------
:class:`ImageVolume`, :class:`SeriesLayout`, :class:`SliceGeometry`
    A series' slices ordered along their normal, decoded (compressed syntaxes included) into a volume in
    modality units, canonical (+x, +y, +z) whenever rows and columns follow patient axes.
:func:`plane`, :func:`extract`, :func:`sample_onto`, :class:`Plane`, :class:`View`
    Axial slices and sagittal/coronal reconstructions, pixel ↔ patient mm, registered volumes resampled
    onto a plane.
:func:`axial_contours`, :func:`section_contours`, :func:`isodose_lines`, :func:`dose_on_plane`
    Overlay geometry in patient mm.
:class:`FrameRegistration`, :func:`frame_transform`
    Spatial Registration matrices between frames of reference.
:func:`encode_plane`
    The wire format of planes (uint16 with a linear scale).
"""

from rtbank.dicom.imaging.encoding import EncodedPlane, decode_plane, encode_plane
from rtbank.dicom.imaging.overlays import (
    RoiSections,
    axial_contours,
    contour_tolerance_mm,
    dose_footprint,
    dose_on_plane,
    isodose_lines,
    section_contours,
    section_mask,
    structure_set_slabs,
)
from rtbank.dicom.imaging.planes import (
    Plane,
    PlaneAxis,
    View,
    apply_affine,
    extract,
    nearest_index,
    plane,
    plane_count,
    sample_onto,
)
from rtbank.dicom.imaging.registration import FrameRegistration, frame_transform
from rtbank.dicom.imaging.volume import (
    Axis,
    ImageVolume,
    SeriesLayout,
    SliceGeometry,
    VolumeGeometry,
    modality_pixels,
)

__all__ = [
    "Axis",
    "EncodedPlane",
    "FrameRegistration",
    "ImageVolume",
    "Plane",
    "PlaneAxis",
    "RoiSections",
    "SeriesLayout",
    "SliceGeometry",
    "View",
    "VolumeGeometry",
    "apply_affine",
    "axial_contours",
    "contour_tolerance_mm",
    "decode_plane",
    "dose_footprint",
    "dose_on_plane",
    "encode_plane",
    "extract",
    "frame_transform",
    "isodose_lines",
    "modality_pixels",
    "nearest_index",
    "plane",
    "plane_count",
    "sample_onto",
    "section_contours",
    "section_mask",
    "structure_set_slabs",
]
