"""The feed-format seam: what the rest of the code may ask of entry bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2psocial.errors import InvalidEntry, UnknownFormat
from p2psocial.feed import formats
from tests.helpers import make_feed, make_keys

A = make_keys(1)


def test_v1_entries_are_claimed_peeked_decoded_and_verified() -> None:
    (entry, _content), *_ = make_feed(A, 1)
    assert formats.format_of(entry.raw) is formats.V1_FORMAT
    assert formats.peek_feed(entry.raw) == A.public
    assert formats.peek_seq(entry.raw) == 1
    assert [formats.peek_seq(e.raw) for e, _ in make_feed(A, 300)][::100] == [1, 101, 201]
    assert formats.decode_entry(entry.raw) == entry
    assert formats.raw_signature_ok(entry.raw)
    forged = entry.raw[:-1] + bytes([entry.raw[-1] ^ 1])
    assert not formats.raw_signature_ok(forged)


def test_unknown_bytes_are_nobody_s_feed_and_decode_to_our_error() -> None:
    assert formats.peek_feed(b"\x82\x02") is None
    assert formats.peek_feed(b"") is None
    with pytest.raises(UnknownFormat):
        formats.decode_entry(bytes([0x88, 0x07, 0, 0, 0, 0, 0, 0, 0]))


@given(st.binary(max_size=200))
def test_any_bytes_peek_safely_and_decode_only_to_our_errors(raw: bytes) -> None:
    peeked = formats.peek_feed(raw)
    assert peeked is None or len(peeked) == 32
    seq = formats.peek_seq(raw)
    assert seq is None or seq >= 1
    try:
        formats.decode_entry(raw)
    except InvalidEntry:
        pass


def test_peek_feed_seq_agrees_with_peek_feed_and_peek_seq() -> None:
    for entry, _ in make_feed(A, 300)[::37]:
        assert formats.peek_feed_seq(entry.raw) == (A.public, entry.seq)
    assert formats.peek_feed_seq(b"\x00") == (None, None)


@given(st.binary(max_size=80))
def test_peek_feed_seq_never_disagrees(raw: bytes) -> None:
    feed, seq = formats.peek_feed_seq(raw)
    assert feed == formats.peek_feed(raw)
    assert seq == formats.peek_seq(raw)
