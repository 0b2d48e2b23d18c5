"""Every anonymised object passes dciodvfy without errors its input did not already have."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.dicom.test_anonymize_support import anonymised, dciodvfy_errors, outputs_by_source


@pytest.mark.parametrize("profile", ["BASIC", "FULL"])
def test_it_adds_no_dciodvfy_error_to_any_object(profile):
    run = anonymised(profile, ("1",)) if profile == "BASIC" else anonymised("FULL", ("1", "2"))
    pairs = outputs_by_source(run, "1")
    assert len(pairs) > 40
    problems = {}
    for source, output in pairs.items():
        new = Counter(dciodvfy_errors(output)) - Counter(dciodvfy_errors(source))
        if new:
            problems[str(source)] = sorted(new)
    assert not problems, problems
