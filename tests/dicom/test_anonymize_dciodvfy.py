"""Every anonymised object passes dciodvfy without errors its input did not already have."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.dicom.test_anonymize_support import anonymised, dciodvfy_errors, outputs_by_source


@pytest.mark.parametrize("profile", ["BASIC", "FULL"])
def test_it_adds_no_dciodvfy_error_to_any_object(profile):
    run = anonymised(profile, ("1",)) if profile == "BASIC" else anonymised("FULL", ("1", "2"))
    pairs = outputs_by_source(run, "1")
    assert len(pairs) > 40
    paths = [*pairs, *pairs.values()]
    with ThreadPoolExecutor(max_workers=2) as pool:  # dciodvfy runs as a process: use both cores
        errors = dict(zip(paths, pool.map(dciodvfy_errors, paths), strict=True))
    problems = {}
    for source, output in pairs.items():
        new = Counter(errors[output]) - Counter(errors[source])
        if new:
            problems[str(source)] = sorted(new)
    assert not problems, problems
    assert any(errors[source] for source in pairs), "dciodvfy reported nothing at all: is it running?"
