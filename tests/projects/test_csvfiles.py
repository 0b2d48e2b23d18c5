"""CSV cells never start a spreadsheet formula; numbers stay numbers."""

from __future__ import annotations

from rtbank.projects.csvfiles import csv_lines, safe_cell


def test_formula_starts_are_neutralised() -> None:
    for hostile in ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(hostile).startswith("'")
    assert safe_cell("PTV 50") == "PTV 50" and safe_cell(-2.5) == -2.5 and safe_cell(None) == ""


def test_rows_and_header_are_both_cleaned() -> None:
    text = "".join(csv_lines(["=evil"], [["=HYPERLINK(1)", 3]]))
    assert text.splitlines() == ["'=evil", "'=HYPERLINK(1),3"]
