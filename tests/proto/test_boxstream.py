"""Tests of the sans-IO box-stream encoder and decoder (p2psocial.proto.boxstream)."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_secretbox

from p2psocial.errors import BoxStreamError, LocalProtocolError, RemoteProtocolError, StreamCut
from p2psocial.proto.boxstream import (
    HEADER_SIZE,
    MAX_BODY_SIZE,
    NEED_DATA,
    Data,
    Decoder,
    Encoder,
    Goodbye,
    State,
)

# The fixed vectors of the box-stream C implementation (sunrise-choir/box-stream-c,
# src/test.c), as in /work/shared/vectors/box-stream.json.
VECTOR_KEY = bytes.fromhex("a21d99967be10aadafc9a022beb39e0eb069e8ee614285c2fa94c707229dae18")
VECTOR_NONCE = bytes.fromhex("2c8c4fe31799cacb5128723b38a73fa6c909329800ffe293")
VECTOR_PACKETS = [
    (
        "0001020304050607",
        "b51c6a75e2ba71ce8799fa36dde1b2d390be0e6666f67636c322aeb6be2d813060c1",
        "e7ea50c371ad059e",
    ),
    (
        "0706050403020100",
        "e3e6f9e6b0aa3122dc1d9c76e1f30703a3c57de1f06fc37ef094c9ed9e9e86e0f689",
        "16868dbf1371d372",
    ),
]
VECTOR_GOODBYE = "0a30546f676723a2af4ebd3af0fac4e2c2c5574977ae817ce11e031a25dd57d5997b"
# ../shared/ beside the checkout (as in CI), else the workplace copy.
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_VECTORS = next(
    (
        p
        for p in (
            os.path.join(_REPO, "..", "shared", "vectors", "box-stream.json"),
            "/work/shared/vectors/box-stream.json",
        )
        if os.path.exists(p)
    ),
    "/work/shared/vectors/box-stream.json",
)

KEY = bytes(range(32))
NONCE = bytes(range(100, 124))

Chunker = Callable[[bytes], list[bytes]]


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def decode(
    wire: bytes,
    *,
    chunker: Chunker = whole,
    eof: bool = False,
    key: bytes = KEY,
    nonce: bytes = NONCE,
) -> list[Data | Goodbye]:
    """Feed ``wire`` (then EOF if asked); return the events, stopping after Goodbye."""
    decoder = Decoder(key, nonce)
    events: list[Data | Goodbye] = []
    pieces = chunker(wire) + ([b""] if eof else [])
    for piece in pieces:
        decoder.receive_data(piece)
        while True:
            event = decoder.next_event()
            if event is NEED_DATA:
                break
            events.append(event)
            if isinstance(event, Goodbye):
                return events
    return events


def feed_until_error(
    decoder: Decoder, pieces: list[bytes]
) -> tuple[list[Data | Goodbye], BoxStreamError | None]:
    """Feed every piece, draining after each; return the events and the error, if any.

    Draining goes on after Goodbye (it repeats) only while more bytes are buffered.
    """
    events: list[Data | Goodbye] = []
    try:
        for piece in pieces:
            decoder.receive_data(piece)
            while (event := decoder.next_event()) is not NEED_DATA:
                if events and event == Goodbye() and events[-1] == event:
                    break
                events.append(event)
    except BoxStreamError as exc:
        return events, exc
    return events, None


def joined(events: list[Data | Goodbye]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data))


def packets(*plaintexts: bytes) -> list[bytes]:
    """One encoder, one wire packet per plaintext (each at most 4096 bytes)."""
    encoder = Encoder(KEY, NONCE)
    return [encoder.encrypt(p) for p in plaintexts]


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# ---------------------------------------------------------------------------- vectors


def test_encoder_reproduces_the_vectors() -> None:
    encoder = Encoder(VECTOR_KEY, VECTOR_NONCE)
    for plaintext, header, body in VECTOR_PACKETS:
        assert encoder.encrypt(bytes.fromhex(plaintext)).hex() == header + body
    assert encoder.goodbye().hex() == VECTOR_GOODBYE


@pytest.mark.parametrize("chunker", [whole, bytewise])
def test_decoder_reads_the_vectors(chunker: Chunker) -> None:
    wire = bytes.fromhex("".join(h + b for _, h, b in VECTOR_PACKETS) + VECTOR_GOODBYE)
    events = decode(wire, chunker=chunker, key=VECTOR_KEY, nonce=VECTOR_NONCE)
    assert joined(events) == bytes.fromhex("".join(p for p, _, _ in VECTOR_PACKETS))
    assert events[-1] == Goodbye()


def test_embedded_vectors_match_the_shared_file() -> None:
    if not os.path.exists(SHARED_VECTORS):
        pytest.skip(f"{SHARED_VECTORS} is not on this machine")
    with open(SHARED_VECTORS) as f:
        shared = json.load(f)
    assert shared["key"] == VECTOR_KEY.hex()
    assert shared["initial_nonce"] == VECTOR_NONCE.hex()
    assert [(p["plaintext"], p["header"], p["body"]) for p in shared["packets"]] == VECTOR_PACKETS
    assert shared["goodbye"] == VECTOR_GOODBYE


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("size", [0, 1, 4096, 4097, 100_000])
def test_round_trip(size: int) -> None:
    plaintext = os.urandom(size)
    encoder = Encoder(KEY, NONCE)
    wire = encoder.encrypt(plaintext)
    packet_count = -(-size // MAX_BODY_SIZE)
    assert len(wire) == size + HEADER_SIZE * packet_count
    events = decode(wire + encoder.goodbye())
    assert joined(events) == plaintext
    assert events[-1] == Goodbye()
    if size:
        assert events == [Data(plaintext), Goodbye()]  # whole packets come out as one Data


@pytest.mark.parametrize("size", [1, 4096, 4097])
def test_round_trip_bytewise(size: int) -> None:
    plaintext = os.urandom(size)
    encoder = Encoder(KEY, NONCE)
    events = decode(encoder.encrypt(plaintext) + encoder.goodbye(), chunker=bytewise)
    assert joined(events) == plaintext
    assert events[-1] == Goodbye()


def test_split_into_4096_byte_packets() -> None:
    wire = Encoder(KEY, NONCE).encrypt(bytes(4097))
    assert len(wire) == HEADER_SIZE + 4096 + HEADER_SIZE + 1
    first, second = packets(bytes(4096), bytes(1))
    assert wire == first + second


def test_empty_plaintext_sends_nothing_and_keeps_the_nonce() -> None:
    encoder = Encoder(KEY, NONCE)
    assert encoder.encrypt(b"") == b""
    assert encoder.encrypt(b"abc") == Encoder(KEY, NONCE).encrypt(b"abc")


def test_nonce_counter_advances_by_two_and_wraps() -> None:
    last = b"\xff" * 24
    wire = Encoder(KEY, last).encrypt(b"xy")
    body = crypto_secretbox(b"xy", bytes(24), KEY)  # body nonce: ff..ff + 1 wraps to 00..00
    header = crypto_secretbox(b"\x00\x02" + body[:16], last, KEY)
    assert wire == header + body[16:]
    encoder = Encoder(KEY, last)
    encoder.encrypt(b"xy")
    second_header_nonce = (1).to_bytes(24, "big")  # ff..ff + 2
    assert encoder.goodbye() == crypto_secretbox(bytes(18), second_header_nonce, KEY)
    decoder = Decoder(KEY, last)
    decoder.receive_data(Encoder(KEY, last).encrypt(b"a" * 5000))
    assert decoder.next_event() == Data(b"a" * 5000)


def test_many_packets_in_one_read_are_one_event() -> None:
    wire = b"".join(packets(b"one", b"two", b"three"))
    assert decode(wire) == [Data(b"onetwothree")]


def test_half_received_packet_changes_nothing() -> None:
    (wire,) = packets(b"hello")
    decoder = Decoder(KEY, NONCE)
    for cut in (1, HEADER_SIZE - 1, HEADER_SIZE, len(wire) - 1):
        decoder = Decoder(KEY, NONCE)
        decoder.receive_data(wire[:cut])
        assert decoder.next_event() is NEED_DATA
        assert decoder.next_event() is NEED_DATA
        decoder.receive_data(wire[cut:])
        assert decoder.next_event() == Data(b"hello")


def test_empty_authenticated_packet_carries_no_data() -> None:
    """A length-0 header with a real MAC is a valid packet without data (not goodbye)."""
    start = int.from_bytes(NONCE, "big")
    body = crypto_secretbox(b"", (start + 1).to_bytes(24, "big"), KEY)
    empty = crypto_secretbox(b"\x00\x00" + body, NONCE, KEY)
    following = Encoder(KEY, (start + 2).to_bytes(24, "big")).encrypt(b"after")
    events = decode(empty + following)
    assert events == [Data(b"after")]


# ---------------------------------------------------------------------------- goodbye


def test_goodbye() -> None:
    encoder = Encoder(KEY, NONCE)
    wire = encoder.encrypt(b"bye now") + encoder.goodbye()
    assert encoder.closed
    decoder = Decoder(KEY, NONCE)
    decoder.receive_data(wire)
    assert decoder.next_event() == Data(b"bye now")
    assert decoder.next_event() == Goodbye()
    assert decoder.state is State.CLOSED
    assert decoder.next_event() == Goodbye()  # repeated
    decoder.receive_data(b"")
    assert decoder.next_event() == Goodbye()  # EOF after goodbye is the normal end


def test_goodbye_header_is_34_bytes_of_boxed_zeros() -> None:
    assert Encoder(KEY, NONCE).goodbye() == crypto_secretbox(bytes(18), NONCE, KEY)


def test_encoder_is_closed_after_goodbye() -> None:
    encoder = Encoder(KEY, NONCE)
    encoder.goodbye()
    with pytest.raises(LocalProtocolError):
        encoder.encrypt(b"late")
    with pytest.raises(LocalProtocolError):
        encoder.goodbye()


@pytest.mark.parametrize("chunker", [whole, bytewise])
def test_data_after_goodbye_is_an_error(chunker: Chunker) -> None:
    encoder = Encoder(KEY, NONCE)
    wire = encoder.goodbye() + b"x"
    decoder = Decoder(KEY, NONCE)
    events, error = feed_until_error(decoder, chunker(wire))
    assert events == [Goodbye()]
    assert isinstance(error, BoxStreamError)
    assert "after goodbye" in str(error)
    assert decoder.state is State.ERROR


def test_packet_after_goodbye_is_an_error() -> None:
    encoder = Encoder(KEY, NONCE)
    bye = encoder.goodbye()
    decoder = Decoder(KEY, NONCE)
    decoder.receive_data(bye)
    assert decoder.next_event() == Goodbye()
    decoder.receive_data(Encoder(KEY, NONCE).encrypt(b"more"))
    with pytest.raises(BoxStreamError, match="after goodbye"):
        decoder.next_event()


# ---------------------------------------------------------------------------- faults


@pytest.mark.parametrize("bit", [0, 100, 127, 128, 143, 144, 200, 271])
def test_flipped_header_bit(bit: int) -> None:
    (wire,) = packets(b"some plaintext")
    with pytest.raises(BoxStreamError, match="header MAC"):
        decode(flip(wire, bit))


@pytest.mark.parametrize("bit", [272, 280, 300, 383])
def test_flipped_body_bit(bit: int) -> None:
    (wire,) = packets(b"some plaintext")
    with pytest.raises(BoxStreamError, match="body MAC"):
        decode(flip(wire, bit))


def test_flipped_bit_in_goodbye() -> None:
    bye = Encoder(KEY, NONCE).goodbye()
    with pytest.raises(BoxStreamError, match="header MAC"):
        decode(flip(bye, 5))


@pytest.mark.parametrize("chunker", [whole, bytewise])
def test_replayed_packet(chunker: Chunker) -> None:
    first, second = packets(b"first", b"second")
    events, error = feed_until_error(Decoder(KEY, NONCE), chunker(first + first + second))
    assert joined(events) == b"first"  # the good packet before the replay is delivered
    assert isinstance(error, BoxStreamError)
    assert "replayed" in str(error)


def test_reordered_packets() -> None:
    first, second = packets(b"first", b"second")
    with pytest.raises(BoxStreamError, match="reordered"):
        decode(second + first)


def test_stream_from_another_key_fails() -> None:
    wire = Encoder(bytes(32), NONCE).encrypt(b"hello")
    with pytest.raises(BoxStreamError, match="header MAC"):
        decode(wire)


def test_oversized_length_is_rejected() -> None:
    header = crypto_secretbox((4097).to_bytes(2, "big") + bytes(16), NONCE, KEY)
    with pytest.raises(BoxStreamError, match="4097"):
        decode(header + bytes(4097))


@pytest.mark.parametrize("chunker", [whole, bytewise])
@pytest.mark.parametrize("cut", [0, 1, 33, 34, 40, 52])
def test_truncated_stream_is_a_stream_cut(chunker: Chunker, cut: int) -> None:
    (wire,) = packets(b"nineteen bytes long")  # 34 + 19 = 53 bytes
    with pytest.raises(StreamCut, match="without goodbye"):
        decode(wire[:cut], chunker=chunker, eof=True)


def test_stream_cut_after_data() -> None:
    (wire,) = packets(b"partial")
    decoder = Decoder(KEY, NONCE)
    decoder.receive_data(wire)
    decoder.receive_data(b"")
    assert decoder.next_event() == Data(b"partial")
    with pytest.raises(StreamCut):
        decoder.next_event()


def test_error_state_is_final() -> None:
    decoder = Decoder(KEY, NONCE)
    decoder.receive_data(b"")
    with pytest.raises(StreamCut):
        decoder.next_event()
    assert decoder.state is State.ERROR
    with pytest.raises(StreamCut, match="already failed"):
        decoder.next_event()
    with pytest.raises(StreamCut, match="already failed"):
        decoder.receive_data(b"x")
    bad = Decoder(KEY, NONCE)
    bad.receive_data(bytes(34))
    with pytest.raises(BoxStreamError):
        bad.next_event()
    with pytest.raises(BoxStreamError, match="already failed"):
        bad.next_event()


def test_api_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        Encoder(bytes(31), NONCE)
    with pytest.raises(LocalProtocolError):
        Decoder(KEY, bytes(23))
    decoder = Decoder(KEY, NONCE)
    decoder.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        decoder.receive_data(b"x")


# ---------------------------------------------------------------------------- fuzzing


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300), max_size=4), eof=st.booleans())
def test_garbage_raises_only_remote_protocol_errors(chunks: list[bytes], eof: bool) -> None:
    decoder = Decoder(KEY, NONCE)
    try:
        for chunk in [*chunks, *([b""] if eof else [])]:
            decoder.receive_data(chunk)
            while decoder.next_event() is not NEED_DATA:
                pass
    except RemoteProtocolError:
        assert decoder.state is State.ERROR
    else:
        assert not eof
        assert decoder.state is State.OPEN


@settings(max_examples=50, deadline=None)
@given(
    plaintexts=st.lists(st.binary(max_size=9000), max_size=5),
    cuts=st.lists(st.integers(min_value=0), max_size=6),
)
def test_any_chunking_round_trips(plaintexts: list[bytes], cuts: list[int]) -> None:
    encoder = Encoder(KEY, NONCE)
    wire = b"".join(encoder.encrypt(p) for p in plaintexts) + encoder.goodbye()
    bounds = [0, *sorted(c % (len(wire) + 1) for c in cuts), len(wire)]

    def chunker(data: bytes) -> list[bytes]:
        return [data[lo:hi] for lo, hi in itertools.pairwise(bounds) if hi > lo]

    events = decode(wire, chunker=chunker, eof=True)
    assert joined(events) == b"".join(plaintexts)
    assert events[-1] == Goodbye()
