"""RT Beams Treatment Records: one per delivered fraction, as the record-and-verify system keeps them."""

from __future__ import annotations

import random

from pydicom.dataset import Dataset

from rtbank.dicom import sop
from rtbank.dicom.synth.common import base_dataset, ds_text, item, reference, sequence
from rtbank.dicom.synth.context import Generated, PatientContext, Series, clock_time
from rtbank.dicom.synth.plans import Beam, Plan


def treatment_record(
    ctx: PatientContext,
    series: Series,
    plan: Plan,
    fraction: int,
    day: str,
    rng: random.Random,
    plan_uid: str | None = None,
) -> Generated:
    """The record of fraction ``fraction`` of ``plan`` delivered on ``day``.

    ``plan_uid`` overrides the referenced plan (a record whose plan is not in the archive).
    """
    time = clock_time(rng, 8, 16)
    referenced_plan = plan_uid or plan.uid
    uid = ctx.uid("rtrecord", series.uid, referenced_plan, fraction)
    ds = base_dataset(ctx, series, sop.RT_BEAMS_RECORD, uid, day, time)
    ds.OperatorsName = "RTT^SYNTHETIC"
    ds.TreatmentDate = day
    ds.TreatmentTime = time
    ds.ReferencedRTPlanSequence = sequence([reference(sop.RT_PLAN, referenced_plan)])
    ds.ReferencedRTPlanSequence[0].ReferencedFractionGroupNumber = 1
    ds.TreatmentMachineSequence = sequence(
        [
            item(
                TreatmentMachineName=plan.spec.machine,
                Manufacturer="Varian Medical Systems" if plan.spec.mlc.vendor == "Varian" else "Elekta",
                InstitutionName=ctx.institution.name,
                ManufacturerModelName="TDS" if plan.spec.mlc.vendor == "Varian" else "Agility",
                DeviceSerialNumber=f"{abs(hash_text(plan.spec.machine)) % 100000:05d}",
            )
        ]
    )
    ds.NumberOfFractionsPlanned = plan.spec.fractions
    ds.PrimaryDosimeterUnit = "MU"
    ds.TreatmentSessionBeamSequence = sequence(
        _session_beam(plan, beam, fraction, day, time, rng) for beam in plan.beams
    )
    return Generated(ds, series)


def _session_beam(plan: Plan, beam: Beam, fraction: int, day: str, time: str, rng: random.Random) -> Dataset:
    delivered = beam.meterset_mu * rng.uniform(0.999, 1.001)
    first, last = beam.control_points[0], beam.control_points[-1]
    return item(
        ReferencedBeamNumber=beam.number,
        BeamName=beam.name,
        BeamType=beam.kind,
        RadiationType="PHOTON",
        TreatmentDeliveryType=beam.delivery,
        NumberOfWedges=0,
        NumberOfCompensators=0,
        NumberOfBoli=0,
        NumberOfBlocks=0,
        NumberOfControlPoints=2,
        CurrentFractionNumber=fraction,
        TreatmentTerminationStatus="NORMAL",
        TreatmentVerificationStatus="VERIFIED",
        SpecifiedPrimaryMeterset=ds_text(beam.meterset_mu, 3),
        DeliveredPrimaryMeterset=ds_text(delivered, 3),
        BeamLimitingDeviceLeafPairsSequence=sequence(
            [
                item(RTBeamLimitingDeviceType="ASYMX", NumberOfLeafJawPairs=1),
                item(RTBeamLimitingDeviceType="ASYMY", NumberOfLeafJawPairs=1),
                item(RTBeamLimitingDeviceType="MLCX", NumberOfLeafJawPairs=plan.spec.mlc.pairs),
            ]
        ),
        ControlPointDeliverySequence=sequence(
            [
                _delivered_point(0, first.gantry, 0.0, 0.0, day, time, beam, first_point=True),
                _delivered_point(
                    len(beam.control_points) - 1,
                    last.gantry,
                    beam.meterset_mu,
                    delivered,
                    day,
                    time,
                    beam,
                    first_point=False,
                ),
            ]
        ),
    )


def _delivered_point(
    index: int,
    gantry: float,
    specified: float,
    delivered: float,
    day: str,
    time: str,
    beam: Beam,
    first_point: bool,
) -> Dataset:
    point = item(
        ReferencedControlPointIndex=index,
        TreatmentControlPointDate=day,
        TreatmentControlPointTime=time,
        SpecifiedMeterset=ds_text(specified, 3),
        DeliveredMeterset=ds_text(delivered, 3),
        DoseRateSet="600",
        DoseRateDelivered="600",
        GantryAngle=ds_text(gantry, 1),
        GantryRotationDirection=beam.direction if first_point else "NONE",
    )
    if first_point:
        point.NominalBeamEnergyUnit = "MV"
        point.NominalBeamEnergy = "6"
        point.BeamLimitingDeviceAngle = ds_text(beam.collimator, 1)
        point.BeamLimitingDeviceRotationDirection = "NONE"
        point.PatientSupportAngle = "0"
        point.PatientSupportRotationDirection = "NONE"
    return point


def hash_text(text: str) -> int:
    """A stable small hash (Python's ``hash`` of str is salted per process)."""
    value = 0
    for ch in text:
        value = (value * 131 + ord(ch)) % 1_000_003
    return value
