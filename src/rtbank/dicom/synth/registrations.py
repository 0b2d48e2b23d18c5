"""Spatial Registrations: a rigid matrix that brings an MR or diagnostic CT onto the planning CT."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from rtbank.dicom import sop
from rtbank.dicom.synth.common import base_dataset, code, ds_list, item, reference, sequence
from rtbank.dicom.synth.context import Generated, PatientContext, Series
from rtbank.dicom.synth.images import ImageSeries
from rtbank.dicom.synth.shapes import FloatArray


def spatial_registration(
    ctx: PatientContext,
    series: Series,
    fixed: ImageSeries,
    moving: ImageSeries,
    matrix: FloatArray,
    day: str,
    time: str,
) -> Generated:
    """A REG in the frame of ``fixed`` with one Registration item per frame of reference.

    ``matrix`` (4 × 4) maps coordinates of ``moving``'s frame into ``fixed``'s frame, mm. Both image series
    are referenced image by image, and again in the Common Instance Reference module by study and series.
    """
    uid = ctx.uid("reg", series.uid, moving.series.uid)
    ds = base_dataset(ctx, series, sop.SPATIAL_REGISTRATION, uid, day, time)
    ds.ContentDate = day
    ds.ContentTime = time
    ds.ContentLabel = "REGISTRATION"
    ds.ContentDescription = f"{moving.series.description} to planning CT"[:64]
    ds.ContentCreatorName = "DOSIMETRIST^SYNTHETIC"
    ds.RegistrationSequence = sequence(
        [_registration_item(fixed, np.eye(4)), _registration_item(moving, matrix)]
    )
    by_study: dict[str, list[ImageSeries]] = {}
    for image in (fixed, moving):
        by_study.setdefault(image.series.study.uid, []).append(image)
    own = by_study.pop(series.study.uid, [])
    if own:
        ds.ReferencedSeriesSequence = sequence(_referenced_series(image) for image in own)
    if by_study:
        ds.StudiesContainingOtherReferencedInstancesSequence = sequence(
            item(
                StudyInstanceUID=study,
                ReferencedSeriesSequence=sequence(_referenced_series(i) for i in images),
            )
            for study, images in by_study.items()
        )
    return Generated(ds, series)


def _registration_item(image: ImageSeries, matrix: FloatArray) -> Dataset:
    values = ds_list(matrix.reshape(-1), 6)
    return item(
        FrameOfReferenceUID=image.series.frame_of_reference_uid,
        ReferencedImageSequence=sequence(reference(image.sop_class_uid, uid) for uid in image.slice_uids),
        MatrixRegistrationSequence=sequence(
            [
                item(
                    RegistrationTypeCodeSequence=sequence([code("125025", "DCM", "Visual Alignment")]),
                    MatrixSequence=sequence(
                        [
                            item(
                                FrameOfReferenceTransformationMatrixType="RIGID",
                                FrameOfReferenceTransformationMatrix=values,
                            )
                        ]
                    ),
                )
            ]
        ),
    )


def _referenced_series(image: ImageSeries) -> Dataset:
    return item(
        SeriesInstanceUID=image.series.uid,
        ReferencedInstanceSequence=sequence(reference(image.sop_class_uid, uid) for uid in image.slice_uids),
    )
