"""ROI name patterns: wildcards, folding, and the precedence that picks one rule (or shows a conflict)."""

from __future__ import annotations

import pytest

from rtbank.dicom.roi_patterns import (
    MappingRule,
    MatchStatus,
    RoiPattern,
    RuleSet,
    check_standard_name,
    fold_name,
)

ODE, RH = 1, 2


@pytest.mark.parametrize(
    "pattern,name,expected",
    [
        ("Parotis*sin", "Parotis sin", True),
        ("Parotis*sin", "parotis_sin", True),
        ("Parotis*sin", "Parotis sin 2", False),  # the whole name must match
        ("PTV?", "PTV1", True),
        ("PTV?", "PTV12", False),
        ("PTV?", "PTV", False),  # ? is exactly one character
        ("*", "", True),
        ("PTV*", "PTV", True),  # * may be empty
        ("PTV[1]", "PTV[1]", True),  # brackets are literal, not an fnmatch class
        ("PTV[1]", "PTV1", False),
        ("PTV[12]*", "PTV1 boost", False),
        ("a.b", "axb", False),  # regex metacharacters are literal
        ("CTV (70Gy)", "ctv (70gy)", True),
        ("L  Parotid", " l parotid ", True),  # whitespace runs and ends are folded in both
        ("L Parotid", "LParotid", False),  # … but whitespace is not removed
        ("Hjerte", "HJERTE", True),
        ("strasse", "STRASSE", True),
        ("STRAßE", "strasse", True),  # case folding, not just lower()
    ],
)
def test_patterns_match_whole_folded_names(pattern: str, name: str, expected: bool) -> None:
    assert RoiPattern.compile(pattern).matches(name) is expected


def test_folding_keeps_the_original_text_elsewhere() -> None:
    assert fold_name("  Spinal \t Cord\n") == "spinal cord"
    result = RuleSet([MappingRule("spinal cord", "SpinalCord")]).resolve("  Spinal \t Cord")
    assert result.name == "  Spinal \t Cord" and result.standard_name == "SpinalCord"


def test_an_empty_pattern_and_a_wildcard_standard_name_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        RoiPattern.compile("   ")
    with pytest.raises(ValueError, match="wildcard"):
        check_standard_name("PTV_*")
    assert check_standard_name("  Parotid_L ") == "Parotid_L"


def test_runs_of_stars_count_as_one_wildcard() -> None:
    p = RoiPattern.compile("PTV**70")
    assert p.text == "ptv*70" and p.wildcards == 1 and p.literal_length == 5


def test_an_institution_rule_wins_over_a_global_rule_even_when_less_specific() -> None:
    rules = RuleSet([MappingRule("Bulbus_sin", "Eye_L"), MappingRule("Bulbus*", "PenileBulb", scope=RH)])
    assert rules.resolve("Bulbus_sin", RH).standard_name == "PenileBulb"
    assert rules.resolve("Bulbus_sin", ODE).standard_name == "Eye_L"  # the RH rule does not apply at ODE
    assert rules.resolve("Bulbus_sin", None).standard_name == "Eye_L"


def test_an_exact_rule_wins_over_a_wildcard_rule() -> None:
    rules = RuleSet([MappingRule("PTV*", "PTV_High"), MappingRule("PTV 50", "PTV_Low")])
    assert rules.resolve("ptv 50").standard_name == "PTV_Low"
    assert rules.resolve("PTV 70").standard_name == "PTV_High"


def test_fewer_wildcards_win_then_longer_literal_text() -> None:
    rules = RuleSet(
        [
            MappingRule("*Parotid*", "Parotid"),
            MappingRule("L*Parotid", "Parotid_L"),
            MappingRule("L?Parotid", "Parotid_L_exactish"),
        ]
    )
    # "L Parotid": matched by all three; L?Parotid and L*Parotid have one wildcard, *Parotid* two.
    # L?Parotid and L*Parotid tie on wildcards and on literal length (7): different names -> conflict.
    result = rules.resolve("L Parotid")
    assert result.status is MatchStatus.CONFLICT
    assert result.candidates == ["Parotid_L", "Parotid_L_exactish"]
    assert result.standard_name is None
    longer = RuleSet([MappingRule("*Parotid*", "Parotid"), MappingRule("*Parotid L*", "Parotid_L")])
    assert longer.resolve("xx parotid l").standard_name == "Parotid_L"  # same wildcards, longer literal text
    fewer = RuleSet([MappingRule("Lt*", "Left"), MappingRule("*Parotid*", "Parotid")])
    assert fewer.resolve("Lt Parotid").standard_name == "Left"  # one wildcard beats two, however long


def test_ties_that_agree_are_not_conflicts() -> None:
    rules = RuleSet([MappingRule("PTV*", "PTV_High"), MappingRule("*V70", "PTV_High")])
    result = rules.resolve("PTV70")
    assert result.status is MatchStatus.MATCHED and result.standard_name == "PTV_High"
    assert len(result.winners) == 2


def test_ties_between_institution_rules_are_conflicts_too() -> None:
    rules = RuleSet(
        [
            MappingRule("Cor", "Heart", scope=ODE),
            MappingRule("COR", "Coronary", scope=ODE),
            MappingRule("Cor", "Heart"),
        ]
    )
    result = rules.resolve("cor", ODE)
    assert result.status is MatchStatus.CONFLICT and result.candidates == ["Coronary", "Heart"]
    assert rules.resolve("cor", RH).standard_name == "Heart"


def test_unmatched_names_say_so() -> None:
    rules = RuleSet([MappingRule("PTV*", "PTV")])
    result = rules.resolve("GTV")
    assert result.status is MatchStatus.UNMATCHED and result.standard_name is None and result.winners == ()


def test_the_precedence_order_is_the_documented_one() -> None:
    global_exact = MappingRule("PTV_70", "A")
    inst_wild = MappingRule("*", "B", scope=ODE)
    assert inst_wild.rank() < global_exact.rank()
    few = MappingRule("P*", "C")
    many = MappingRule("P*7*", "D")
    assert few.rank() < many.rank()
    longer = MappingRule("PTV*", "E")
    assert longer.rank() < few.rank()


def test_resolve_all_handles_each_distinct_pair_once() -> None:
    rules = RuleSet([MappingRule("Cor", "Heart")])
    result = rules.resolve_all([("Cor", ODE), ("Cor", ODE), ("cor", RH)])
    assert len(result) == 2 and all(r.standard_name == "Heart" for r in result.values())
    assert rules.standard_names() == ["Heart"]
