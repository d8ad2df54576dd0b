from __future__ import annotations

import hashlib
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2psocial.errors import (
    BadSignature,
    ContentMismatch,
    ContentTooLarge,
    EntryTooLarge,
    InvalidEntry,
    MalformedEntry,
    NonCanonical,
    UnknownFormat,
)
from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import (
    MAX_ENTRY_SIZE,
    _decode_fast,
    _decode_slow,
    check_content,
    create_entry,
    decode_entry,
    verify_signature,
)
from p2psocial.identity import Keypair, message_id
from tests.helpers import make_keys

KEYS = make_keys(1)
CONTENT = encode_content({"type": "post", "text": "hi"})


def forge(
    *,
    version: Any = 1,
    author: Any = None,
    seq: Any = 1,
    previous: Any = None,
    ts: Any = 5,
    chash: Any = None,
    csize: Any = None,
    raw_fields: bytes | None = None,
    extra: list[Any] | None = None,
) -> bytes:
    """An entry with chosen fields, correctly signed by KEYS (so only the chosen rule breaks).

    ``raw_fields`` replaces the encoding of the unsigned array (to forge non-canonical bytes).
    """
    fields = [
        version,
        KEYS.public if author is None else author,
        seq,
        previous,
        ts,
        hashlib.sha256(CONTENT).digest() if chash is None else chash,
        len(CONTENT) if csize is None else csize,
        *(extra or []),
    ]
    signed = raw_fields if raw_fields is not None else cbor2.dumps(fields, canonical=True)
    signature = KEYS.sign(signed)
    # The entry is the unsigned array with the signature appended as its last item.
    count = signed[0] & 0x1F
    return bytes([0x80 | (count + 1)]) + signed[1:] + b"\x58\x40" + signature


def test_create_and_decode_round_trip() -> None:
    entry = create_entry(KEYS, 1, None, 1234, CONTENT)
    again = decode_entry(entry.raw)
    assert again == entry
    assert again.id == hashlib.sha256(entry.raw).digest()
    assert entry.raw[0] == 0x88 and entry.raw[-66:-64] == b"\x58\x40"
    verify_signature(entry)
    check_content(entry, CONTENT)


def test_forge_helper_makes_valid_entries() -> None:
    entry = decode_entry(forge())
    verify_signature(entry)  # the helper itself produces a valid entry


def test_bad_signature() -> None:
    raw = bytearray(forge())
    raw[-1] ^= 0x01
    entry = decode_entry(bytes(raw))
    with pytest.raises(BadSignature):
        verify_signature(entry)


def test_signature_by_someone_else() -> None:
    other = create_entry(make_keys(2), 1, None, 5, CONTENT)
    raw = forge()[:-64] + other.signature
    with pytest.raises(BadSignature):
        verify_signature(decode_entry(raw))


def test_content_hash_mismatch() -> None:
    entry = decode_entry(forge())
    with pytest.raises(ContentMismatch, match="hash"):
        check_content(entry, CONTENT[:-1] + b"X")


def test_content_size_mismatch() -> None:
    entry = decode_entry(forge(csize=len(CONTENT) + 1))
    with pytest.raises(ContentMismatch, match="bytes"):
        check_content(entry, CONTENT)


def test_entry_too_large() -> None:
    with pytest.raises(EntryTooLarge):
        decode_entry(forge(extra=[b"x" * MAX_ENTRY_SIZE]))


def test_announced_content_too_large() -> None:
    with pytest.raises(ContentTooLarge):
        decode_entry(forge(csize=8193))


def test_unknown_format_version() -> None:
    with pytest.raises(UnknownFormat):
        decode_entry(forge(version=2))


def test_non_canonical_integer() -> None:
    canonical = cbor2.dumps(
        [1, KEYS.public, 1, None, 5, hashlib.sha256(CONTENT).digest(), len(CONTENT)], canonical=True
    )
    # Encode ts=5 with a 2-byte integer head (0x19 0x0005) instead of the single byte 0x05.
    marker = b"\xf6\x05\x58\x20"
    assert canonical.count(marker) == 1
    loose = canonical.replace(marker, b"\xf6\x19\x00\x05\x58\x20")
    with pytest.raises(NonCanonical):
        decode_entry(forge(raw_fields=loose))


def test_non_canonical_indefinite_array() -> None:
    raw = forge()
    loose = b"\x9f" + raw[1:] + b"\xff"
    with pytest.raises(NonCanonical):
        decode_entry(loose)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"author": b"short"}, "author"),
        ({"seq": 0}, "sequence"),
        ({"seq": -1}, "sequence"),
        ({"seq": 2, "previous": None}, "previous"),
        ({"seq": 1, "previous": b"\x00" * 32}, "first entry"),
        ({"ts": -5}, "timestamp"),
        ({"ts": "now"}, "timestamp"),
        ({"chash": b"\x00" * 31}, "hash"),
        ({"csize": -1}, "size"),
        ({"extra": [1]}, "8 items"),
    ],
)
def test_malformed_fields(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(MalformedEntry, match=needle):
        decode_entry(forge(**kwargs))


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\xff" * 10, cbor2.dumps({"a": 1}), b"\x88"])
def test_garbage(raw: bytes) -> None:
    with pytest.raises(InvalidEntry):
        decode_entry(raw)


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_any_bytes_only_typed_errors(raw: bytes) -> None:
    try:
        decode_entry(raw)
    except InvalidEntry:
        pass


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=220), st.integers(min_value=0, max_value=219))
def test_fast_and_slow_paths_agree_on_mutations(noise: bytes, at: int) -> None:
    raw = bytearray(create_entry(KEYS, 7, b"\x01" * 32, 1_700_000_000_000, CONTENT).raw)
    raw[at % len(raw)] = noise[0]
    raw_bytes = bytes(raw)
    fast = _decode_fast(raw_bytes)
    if fast is not None:  # whatever the fast path accepts, the slow path accepts the same
        assert _decode_slow(raw_bytes) == fast


@given(
    seq=st.integers(min_value=1, max_value=2**63),
    ts=st.integers(min_value=0, max_value=2**64 - 1),
    text=st.text(max_size=200),
)
def test_sign_verify_round_trip(seq: int, ts: int, text: str) -> None:
    content = encode_content({"type": "post", "text": text})
    previous = None if seq == 1 else b"\x02" * 32
    entry = create_entry(KEYS, seq, previous, ts, content)
    decoded = decode_entry(entry.raw)
    assert decoded == entry
    assert _decode_fast(entry.raw) == _decode_slow(entry.raw)
    verify_signature(decoded)
    check_content(decoded, content)


def test_worked_example() -> None:
    """The example in docs/protocol.md section 2.4, byte for byte."""
    keys = Keypair.from_seed(bytes(range(32)))
    content = encode_content({"type": "post", "text": "hello"})
    assert content.hex() == "a264746578746568656c6c6f647479706564706f7374"
    entry = create_entry(keys, 1, None, 1_700_000_000_000, content)
    assert entry.raw.hex() == (
        "8801582003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b801f61b"
        "0000018bcfe56800582071be69d5440bafa169f41a1e0e9736032a94f412a7856509997657312208da"
        "9316584023d6dd1139c5fbf079612a7dfde3497af65509f3981623cd5a91c5617723d80f50ee03cbd2"
        "e9c429c3ffeb8fa380ff44537a154da7c06334682ebd60b938cf0d"
    )
    assert message_id(entry.id) == "%XUwQ65990ZtNMv8Xk9HO25d0VS3gXFO9bFfCSHMwAvI=.sha256"
