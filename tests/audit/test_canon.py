"""Canonical bytes, the genesis value, the hash chain and the HMAC are exactly as documented."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.audit import GENESIS, canonical, event_mac, line_hash, seal_event
from stockade.errors import AuditError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def test_canonical_form_is_sorted_compact_ascii_json() -> None:
    assert canonical({"b": 1, "a": [True, None, "é"], "c": {"z": 1.5, "y": ""}}) == (
        b'{"a":[true,null,"\\u00e9"],"b":1,"c":{"y":"","z":1.5}}'
    )


def test_canonical_strings_use_the_documented_escapes() -> None:
    value = {"s": 'q"b\\n\n\x01\x7f\U0001f600'}
    assert canonical(value) == b'{"s":"q\\"b\\\\n\\n\\u0001\\u007f\\ud83d\\ude00"}'


@given(json_values)
def test_canonical_form_round_trips_to_the_same_bytes(value: object) -> None:
    once = canonical(value)
    assert canonical(json.loads(once)) == once
    assert once.isascii()
    assert b"\n" not in once


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {"x": object()}, {"x": {1, 2}}])
def test_canonical_form_refuses_what_is_not_plain_json(bad: object) -> None:
    with pytest.raises(AuditError, match="not plain JSON"):
        canonical(bad)


def test_genesis_is_sha256_prefix_and_64_zeros() -> None:
    assert GENESIS == "sha256:" + "0" * 64


def test_line_hash_is_sha256_of_the_line_bytes() -> None:
    assert line_hash(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()


def test_sealed_event_line_is_its_canonical_form_and_mac_is_domain_separated_hmac() -> None:
    key = b"k" * 32
    event, line = seal_event(
        seq=0,
        ts="2026-01-01T00:00:00.000000Z",
        type="t",
        data={"x": [1]},
        prev=GENESIS,
        hmac_key=key,
        run_id="r",
    )
    obj = json.loads(line)
    assert canonical(obj) == line
    body = {k: v for k, v in obj.items() if k != "mac"}
    expected = hmac.new(key, b"stockade-audit-event-v1\n" + canonical(body), hashlib.sha256)
    assert obj["mac"] == event.mac == "hmac-sha256:" + expected.hexdigest()
    assert event.prev == GENESIS
    assert event.run_id == "r"
    assert event.session_id is None


def test_event_mac_refuses_an_event_that_already_carries_a_mac() -> None:
    with pytest.raises(AuditError):
        event_mac(b"k" * 32, {"mac": "x"})


def test_changing_any_field_changes_the_mac() -> None:
    base = {
        "seq": 1,
        "ts": "t",
        "type": "x",
        "run_id": None,
        "session_id": None,
        "data": {},
        "prev": GENESIS,
    }
    macs = {event_mac(b"k" * 32, base)}
    for field, value in [
        ("seq", 2),
        ("ts", "u"),
        ("type", "y"),
        ("run_id", "r"),
        ("session_id", "s"),
        ("data", {"a": 1}),
        ("prev", "sha256:" + "1" * 64),
    ]:
        macs.add(event_mac(b"k" * 32, {**base, field: value}))
    assert len(macs) == 8
