from __future__ import annotations

import pytest

from rtbank.dicom.uids import UnsafeUid, check_uid, is_strict_uid, new_uid, uid_from


def test_new_uids_are_unique_and_valid() -> None:
    uids = {new_uid() for _ in range(1000)}
    assert len(uids) == 1000
    assert all(is_strict_uid(u) and len(u) <= 64 for u in uids)


def test_derived_uids_are_deterministic() -> None:
    assert uid_from("a", "b") == uid_from("a", "b") != uid_from("a", "c")


@pytest.mark.parametrize("bad", ["..", "1.2/3", "1.2.3\\4", "a.b", "1.2 .3", "1." + "9" * 63, None])
def test_it_refuses_unsafe_uids(bad: object) -> None:
    with pytest.raises(UnsafeUid):
        check_uid(bad)


def test_it_strips_padding() -> None:
    assert check_uid("1.2.3\x00") == "1.2.3"
