"""Reference integrity and unchanged content of anonymised copies, across copies and separate exports."""

from __future__ import annotations

import pytest
from pydicom.dataelem import RawDataElement, convert_raw_data_element

from rtbank.dicom.anonymize import is_well_known_uid
from rtbank.dicom.anonymize.tables import action_table
from tests.dicom.test_anonymize_support import (
    REFERENCE_KEYWORDS,
    all_uids,
    anonymised,
    input_files,
    outputs_by_source,
    read,
    reference_edges,
    uid_like_tokens,
    uid_values,
    walk,
)

ADDED_BY_ENGINE = {"PatientIdentityRemoved", "LongitudinalTemporalInformationModified"}
VALUE_VRS = {"UI", "DA", "DT", "TM", "AE", "LO", "SH", "ST", "LT", "UT", "UC", "PN", "SQ"}


@pytest.fixture(scope="module")
def two_copies():
    run = anonymised("FULL", ("1", "2"))
    assert run.report.ok, [f"{r.source}: {r.message}" for r in run.report.failures]
    return run


def _same(a, b) -> bool:
    """Equal values; when neither was decoded yet, equal encoded bytes."""
    if isinstance(a, RawDataElement) and isinstance(b, RawDataElement):
        return a.value == b.value
    return _decoded(a) == _decoded(b)


def _decoded(elem):
    return convert_raw_data_element(elem).value if isinstance(elem, RawDataElement) else elem.value


def _removed_by_table(path: tuple[str, ...]) -> bool:
    """Whether Table E.1-1 removes (basic action X, X/Z, X/D, X/Z/D) an attribute on this path."""
    from pydicom.datadict import tag_for_keyword

    table = action_table()
    for part in path:
        tag = tag_for_keyword(part.split("[")[0])
        row = table.rows.get(tag) if tag is not None else None
        if row is not None and row[0].startswith("X") and "U*" not in row[0]:
            return True
    return False


def test_it_anonymises_every_input_into_every_copy(two_copies):
    assert len(two_copies.report.results) == len(input_files())
    for result in two_copies.report.results:
        assert [p.parent.name for p in result.outputs] == ["copy-1", "copy-2"]


def test_it_keeps_the_reference_graph_of_each_copy_isomorphic_to_the_original(two_copies):
    for copy in two_copies.report.copies:
        uid_map = copy.uid_map
        assert len(set(uid_map.values())) == len(uid_map), "two originals share a new UID"
        for source, output in outputs_by_source(two_copies, copy.copy_id).items():
            original = reference_edges(read(source))
            anonymised_edges = reference_edges(read(output))
            mapped = {(uid_map[s], p, uid_map[t]) for s, p, t in original}
            assert anonymised_edges <= mapped, f"{output}: edges that the original does not have"
            lost = {(s, p, t) for s, p, t in mapped - anonymised_edges if not _removed_by_table(p)}
            assert not lost, f"{source}: references lost: {sorted(lost)[:5]}"
            kept_references = [e for e in anonymised_edges if e[1][-1] in REFERENCE_KEYWORDS]
            assert len(kept_references) == len(
                [e for e in original if e[1][-1] in REFERENCE_KEYWORDS and not _removed_by_table(e[1])]
            )


def test_it_keeps_references_resolvable_within_each_copy(two_copies):
    originals = {}
    for path in input_files():
        ds = read(path)
        originals[str(ds.SOPInstanceUID)] = str(ds.SOPClassUID)
    kinds_resolved = set()
    for copy in two_copies.report.copies:
        outputs = {}
        for path in outputs_by_source(two_copies, copy.copy_id).values():
            ds = read(path)
            outputs[str(ds.SOPInstanceUID)] = ds
        back = {new: original for original, new in copy.uid_map.items()}
        for ds in outputs.values():
            for path, uid in uid_values(ds):
                if path[-1] != "ReferencedSOPInstanceUID":
                    continue
                original = back[uid]
                if original in originals:  # it resolved among the inputs, so it must resolve in the copy
                    target = outputs[uid]
                    assert str(target.SOPClassUID) == originals[original]
                    kinds_resolved.add((str(ds.Modality), str(target.Modality)))
    expected = {
        ("RTSTRUCT", "CT"),
        ("RTPLAN", "RTSTRUCT"),
        ("RTDOSE", "RTPLAN"),
        ("RTRECORD", "RTPLAN"),
        ("REG", "CT"),
    }
    assert expected <= kinds_resolved


def test_no_original_uid_appears_in_any_output_file(two_copies):
    input_uids = set().union(*(all_uids(p) for p in input_files()))
    assert len(input_uids) > 400
    for result in two_copies.report.results:
        for output in result.outputs:
            tokens = uid_like_tokens(output.read_bytes())
            leaked = [uid for uid in input_uids if uid in tokens]
            assert not leaked, f"{output} contains original UIDs {leaked[:3]}"


def test_two_copies_share_no_uid(two_copies):
    per_copy = []
    for copy in two_copies.report.copies:
        uids = set()
        for output in outputs_by_source(two_copies, copy.copy_id).values():
            uids |= all_uids(output)
        assert all(uid.startswith("2.25.") for uid in uids if not is_well_known_uid(uid))
        per_copy.append(uids)
    assert per_copy[0] and not per_copy[0] & per_copy[1]


def test_a_later_export_of_the_same_copy_with_the_same_key_is_identical(two_copies):
    again = anonymised("FULL", ("2",), run=1)
    first = outputs_by_source(two_copies, "2")
    second = outputs_by_source(again, "2")
    assert first.keys() == second.keys()
    for source, output in first.items():
        assert output.name == second[source].name
        assert output.read_bytes() == second[source].read_bytes(), source


def test_another_key_gives_other_uids_and_pseudonyms(two_copies):
    other = anonymised("FULL", ("1",), key_name="OTHER_KEY")
    first = two_copies.report.copies[0]
    assert not set(first.uid_map.values()) & set(other.report.copies[0].uid_map.values())
    assert not set(first.patient_map.values()) & set(other.report.copies[0].patient_map.values())


def test_it_keeps_pixels_dose_grids_contours_and_beams_byte_for_byte(two_copies):
    compared = {"PixelData": 0, "ContourData": 0, "ControlPointSequence": 0, "IonControlPointSequence": 0}
    for source, output in outputs_by_source(two_copies, "1").items():
        original = {path: elem for path, _vr, elem in walk(read(source))}
        for path, vr, elem in walk(read(output)):
            if vr in VALUE_VRS or elem.tag.is_private or path[0] in ADDED_BY_ENGINE:
                continue
            assert path in original, f"{output}: {path} appeared"
            assert _same(elem, original[path]), f"{source}: {'>'.join(path)} changed"
            name = path[-1]
            if name in compared:
                compared[name] += 1
            for part in path[:-1]:
                if part.startswith(("ControlPointSequence", "IonControlPointSequence")):
                    compared[part.split("[")[0]] += 1
    assert all(count > 0 for count in compared.values()), compared
