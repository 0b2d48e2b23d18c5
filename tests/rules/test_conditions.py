"""Rule conditions without a database: name patterns, attribute paths into sequences, parsing and errors."""

from __future__ import annotations

import datetime as dt

import pydicom
import pytest

from rtbank.rules.conditions import Facts, RuleError, parse
from rtbank.rules.paths import AttributePath
from rtbank.rules.patterns import matches, pattern_regex
from tests.rules.helpers import RP


def facts(**kw: object) -> Facts:
    base = {
        "instance_id": 1,
        "patient_id": 1,
        "kind": "structure_set",
        "modality": "RTSTRUCT",
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.481.3",
        "calling_ae": "TPS",
        "called_ae": "RTBANK",
        "institution": "ODE",
        "study_date": dt.date(2024, 3, 1),
        "rois": [],
    }
    return Facts(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("TRIAL_*", "trial_proton", True),
        ("TRIAL_*", "TRIAL_", True),
        ("TRIAL_*", "XTRIAL_A", False),
        ("PTV?", "ptv1", True),
        ("PTV?", "PTV12", False),
        ("PTV[1]", "PTV[1]", True),  # brackets are literal, not a character class as in fnmatch
        ("PTV[1]", "PTV1", False),
        ("a.b", "aXb", False),  # dots are literal
        ("GTV (boost)*", "gtv (BOOST) 2", True),
        ("Ö*", "öso", True),
    ],
)
def test_name_patterns_are_literal_except_star_and_question_mark(
    pattern: str, name: str, expected: bool
) -> None:
    assert matches(pattern, name) is expected


def test_a_pattern_regex_is_anchored_and_escapes_everything_else() -> None:
    assert pattern_regex("A+B*") == "^A\\+B.*$"


def test_attribute_paths_read_into_sequences() -> None:
    ds = pydicom.dcmread(RP, stop_before_pixels=True)
    assert AttributePath.parse("BeamSequence[*].TreatmentMachineName").read(ds)[1][0] == "ElektaAgility"
    assert AttributePath.parse("(300A,00B0)[0].(300A,00B2)").read(ds) == (True, ["ElektaAgility"])
    assert AttributePath.parse("300A00B0[99].TreatmentMachineName").read(ds) == (False, [])
    assert AttributePath.parse("RTPlanLabel").read(ds) == (True, ["imrt 4"])
    assert AttributePath.parse("ClinicalTrialProtocolID").read(ds) == (False, [])
    assert AttributePath.parse("BeamSequence").read(ds)[0] is True
    assert str(AttributePath.parse("(300a,00b0)[*].(300a,00b2)")) == "BeamSequence.TreatmentMachineName"


@pytest.mark.parametrize("path", ["", "NoSuchKeyword", "BeamSequence..X", "(300A,00B)", "Beam Sequence"])
def test_bad_paths_say_what_is_wrong(path: str) -> None:
    with pytest.raises(ValueError):
        AttributePath.parse(path)


def test_all_and_any_groups_combine_leaves() -> None:
    rule = parse(
        {
            "type": "all",
            "conditions": [
                {"type": "roi", "pattern": "trial_*", "contours": "empty"},
                {
                    "type": "any",
                    "conditions": [
                        {"type": "calling_ae", "values": ["ECLIPSE"]},
                        {"type": "institution", "values": ["ODE"]},
                    ],
                },
                {"type": "study_date", "from": "2024-01-01", "to": "2024-12-31"},
            ],
        }
    )
    assert rule.matches(facts(rois=[("BODY", 40), ("TRIAL_X", 0)]))
    assert not rule.matches(facts(rois=[("BODY", 40), ("TRIAL_X", 3)]))  # contoured, not empty
    assert not rule.matches(facts(rois=[("TRIAL_X", 0)], institution="AAR"))
    assert not rule.matches(facts(rois=[("TRIAL_X", 0)], study_date=dt.date(2023, 12, 31)))
    assert not rule.matches(facts(rois=[("TRIAL_X", 0)], study_date=None))


def test_attribute_tests_equal_pattern_regex_present() -> None:
    values = {
        "RTPlanLabel": (True, ["imrt 4"]),
        "PrescriptionDescription": (False, []),
        "BeamSequence.FinalCumulativeMetersetWeight": (True, ["1.0", "1"]),
    }

    def attribute(path: AttributePath) -> tuple[bool, list[str]]:
        return values.get(str(path), (False, []))

    def check(spec: dict) -> bool:
        return parse({"type": "attribute", **spec}).matches(facts(attribute=attribute))

    assert check({"path": "RTPlanLabel", "op": "equals", "value": "imrt 4"})
    assert not check({"path": "RTPlanLabel", "op": "equals", "value": "IMRT 4"})
    assert check({"path": "RTPlanLabel", "op": "pattern", "value": "IMRT*"})
    assert check({"path": "RTPlanLabel", "op": "regex", "value": r"^imrt \d$"})
    assert check({"path": "BeamSequence.FinalCumulativeMetersetWeight", "op": "equals", "value": "1.00"})
    assert check({"path": "RTPlanLabel", "op": "present"})
    assert not check({"path": "PrescriptionDescription", "op": "present"})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "roi"}, "name pattern"),
        ({"type": "roi", "pattern": "X", "contours": "some"}, "contours"),
        ({"type": "attribute", "path": "RTPlanLabel", "op": "regex", "value": "("}, "regular expression"),
        ({"type": "attribute", "path": "RTPlanLabel", "op": "equals"}, "needs a value"),
        ({"type": "modality", "values": []}, "at least one value"),
        ({"type": "study_date", "from": "2024-02-30"}, "YYYY-MM-DD"),
        ({"type": "study_date", "from": "2024-03-01", "to": "2024-01-01"}, "ends before"),
        ({"type": "all", "conditions": []}, "at least one condition"),
        ({"type": "sql", "where": "1=1"}, "unknown condition type"),
    ],
)
def test_bad_conditions_are_refused_with_a_readable_reason(spec: dict, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse(spec)
