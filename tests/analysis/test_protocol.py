"""Protocol constraints: text form, grading pass / minor / major, % of prescription; delivery summaries."""

from __future__ import annotations

import datetime as dt

import pytest

from rtbank.analysis.delivery import RecordFacts, delivery_summary, intent_class
from rtbank.analysis.protocol import (
    ConstraintSpec,
    check_constraint,
    constraint_text,
    constraint_value,
    grade,
    parse_constraint,
)


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "SpinalCord D0.03cc < 50 Gy minor 52",
            ConstraintSpec("SpinalCord", "D0.03cc", "<", 50.0, "Gy", 52.0),
        ),
        ("PTV_High D95% >= 95 %Rx minor 93", ConstraintSpec("PTV_High", "D95%", ">=", 95.0, "%Rx", 93.0)),
        (
            "PTV_High D95% ≥ 95 %",
            ConstraintSpec("PTV_High", "D95%", ">=", 95.0, "%Rx", None),
        ),  # % of Rx for D
        ("Lungs V20Gy[%] <= 35 %", ConstraintSpec("Lungs", "V20Gy[%]", "<=", 35.0, "%", None)),
        ("Heart dmean < 26", ConstraintSpec("Heart", "Dmean", "<", 26.0, "Gy", None)),  # metric name folded
        ("Rectum V60Gy[cc] < 10 cc; minor 15", ConstraintSpec("Rectum", "V60Gy[cc]", "<", 10.0, "cc", 15.0)),
    ],
)
def test_constraints_are_read_from_their_text(text: str, expected: ConstraintSpec) -> None:
    assert parse_constraint(text) == expected


@pytest.mark.parametrize(
    "text,words",
    [
        ("SpinalCord < 50 Gy", "cannot read"),
        ("SpinalCord D0.03cc < 50 cc", "cannot be limited"),  # a dose metric in cc
        ("Lungs V20Gy[%] < 35 Gy", "cannot be limited"),
        ("SpinalCord D0.03cc < 50 Gy minor 48", "must lie above"),  # minor band on the wrong side
        ("PTV D95% > 95 %Rx minor 97", "must lie below"),
        ("PTV D101% > 95 %Rx", "D101%"),  # the metric parser's own message
    ],
)
def test_unreadable_constraints_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("%", "%").replace("[", r"\[")):
        parse_constraint(text)


def test_the_text_form_round_trips() -> None:
    for text in (
        "SpinalCord D0.03cc < 50 Gy minor 52",
        "PTV_High D95% ≥ 95 %Rx minor 93",
        "Lungs V20Gy[%] ≤ 35 %",
    ):
        assert constraint_text(parse_constraint(text)) == text


@pytest.mark.parametrize(
    "value,expected", [(49.9, "pass"), (50.0, "minor"), (51.5, "minor"), (52.0, "minor"), (52.01, "major")]
)
def test_an_upper_limit_grades_pass_minor_major(value: float, expected: str) -> None:
    assert grade(value, "<", 50.0, 52.0) == expected


@pytest.mark.parametrize(
    "value,expected", [(95.0, "pass"), (94.9, "minor"), (93.0, "minor"), (92.9, "major")]
)
def test_a_lower_limit_grades_pass_minor_major(value: float, expected: str) -> None:
    assert grade(value, ">=", 95.0, 93.0) == expected


def test_without_a_minor_band_every_miss_is_major() -> None:
    assert grade(50.5, "<=", 50.0, None) == "major" and grade(50.0, "<=", 50.0, None) == "pass"


def test_percent_of_prescription_needs_the_prescription() -> None:
    assert constraint_value(66.5, "%Rx", 70.0) == pytest.approx(95.0)
    assert constraint_value(66.5, "%Rx", None) is None
    assert constraint_value(66.5, "Gy", None) == 66.5


def test_an_operator_outside_the_list_is_refused() -> None:
    with pytest.raises(ValueError, match="operator"):
        check_constraint(ConstraintSpec("X", "Dmean", "==", 1.0, "Gy"))


def day(d: int) -> dt.date:
    return dt.date(2024, 1, d)  # 2024-01-01 is a Monday


def test_delivery_counts_fractions_dates_mu_and_interruptions() -> None:
    records = [RecordFacts(day(d), n, 250.0) for n, d in enumerate([1, 2, 3, 8, 9, 12], start=1)]
    records.append(RecordFacts(day(12), 6, 10.0, "OPERATOR"))  # a second record of fraction 6 (a re-start)
    d = delivery_summary(records, fractions_planned=30, mu_per_fraction=250.0)
    assert d.treated and d.records == 7 and d.fractions_delivered == 6
    assert (d.first_treatment, d.last_treatment) == (day(1), day(12))
    assert d.planned_mu == 7500.0 and d.delivered_mu == 1510.0
    # Thu 4 + Fri 5 missed (the weekend is no break); Wed 10 + Thu 11 missed
    assert d.interruptions == 2 and d.missed_weekdays == 4
    assert d.abnormal_terminations == 1


def test_records_without_fraction_numbers_count_by_day() -> None:
    records = [
        RecordFacts(day(1), None, 100.0),
        RecordFacts(day(1), None, 100.0),
        RecordFacts(day(2), None, None),
    ]
    assert delivery_summary(records, 5, None).fractions_delivered == 2


def test_an_untreated_plan() -> None:
    d = delivery_summary([], 5, 100.0)
    assert (
        not d.treated and d.fractions_delivered == 0 and d.first_treatment is None and d.delivered_mu is None
    )


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("curative", "curative"),
        ("MACHINE_QA", "machine_qa"),
        ("machine qa", "machine_qa"),
        ("", "unknown"),
        ("other", "unknown"),
    ],
)
def test_intents_are_classified(raw: str, expected: str) -> None:
    assert intent_class(raw) == expected
