"""Body codecs: round trips, body types, and refusal of hostile or invalid bytes."""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2psocial.errors import CodecError, LocalProtocolError
from p2psocial.proto.codec import (
    BODY_BINARY,
    BODY_JSON,
    BODY_STRING,
    BodyCodec,
    JsonCodec,
    MsgpackCodec,
)

CODECS: list[BodyCodec] = [MsgpackCodec(), JsonCodec()]

_scalars_json = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    _scalars_json,
    lambda kids: (
        st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5)
    ),
    max_leaves=20,
)
msgpack_values = st.recursive(
    _scalars_json | st.binary(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=5)
        | st.dictionaries(st.text(max_size=8) | st.binary(max_size=8), kids, max_size=5)
    ),
    max_leaves=20,
)


def test_body_types() -> None:
    assert MsgpackCodec().body_type == BODY_BINARY == 0
    assert JsonCodec().body_type == BODY_JSON == 2
    assert BODY_STRING == 1


@given(msgpack_values)
def test_msgpack_round_trip(value: Any) -> None:
    codec = MsgpackCodec()
    assert codec.decode(BODY_BINARY, codec.encode(value)) == value


@given(json_values)
def test_json_round_trip(value: Any) -> None:
    codec = JsonCodec()
    assert codec.decode(BODY_JSON, codec.encode(value)) == value


def test_msgpack_keeps_bytes_and_str_apart() -> None:
    codec = MsgpackCodec()
    value = {"s": "x", "b": b"x", b"k": [1, -1, 1.5, None, True]}
    assert codec.decode(BODY_BINARY, codec.encode(value)) == value
    assert codec.encode((1, 2)) == codec.encode([1, 2])


def test_json_encoding_is_compact_utf8() -> None:
    assert JsonCodec().encode({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()


@pytest.mark.parametrize("codec", CODECS, ids=["msgpack", "json"])
def test_string_body_decodes_to_str(codec: BodyCodec) -> None:
    assert codec.decode(BODY_STRING, "héllo".encode()) == "héllo"
    assert codec.decode(BODY_STRING, b"") == ""
    with pytest.raises(CodecError):
        codec.decode(BODY_STRING, b"\xff\xfe")


def test_json_codec_binary_body_is_raw_bytes() -> None:
    assert JsonCodec().decode(BODY_BINARY, b"\x00\xffblob") == b"\x00\xffblob"


@pytest.mark.parametrize("codec", CODECS, ids=["msgpack", "json"])
def test_reserved_body_type_rejected(codec: BodyCodec) -> None:
    with pytest.raises(CodecError):
        codec.decode(3, b"1")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x92\x01", id="truncated"),
        pytest.param(b"\xc1", id="never-used-byte"),
        pytest.param(b"\x01\x02", id="trailing-data"),
        pytest.param(b"\x81\x01\x02", id="int-map-key"),
        pytest.param(b"\x81\x91\x01\x02", id="list-map-key"),
        pytest.param(b"\xdd\xff\xff\xff\xff", id="huge-array-header"),
        pytest.param(b"\xdf\xff\xff\xff\xff", id="huge-map-header"),
        pytest.param(b"\xdb\xff\xff\xff\xff", id="huge-str-header"),
        pytest.param(b"\xa2\xff\xfe", id="invalid-utf8-str"),
        pytest.param(msgpack.packb(msgpack.ExtType(5, b"ab")), id="ext-type"),
        pytest.param(msgpack.packb(msgpack.Timestamp(1, 2)), id="timestamp"),
        pytest.param(b"\x91" * 5000 + b"\xc0", id="deep-nesting"),
    ],
)
def test_msgpack_rejects(data: bytes) -> None:
    with pytest.raises(CodecError):
        MsgpackCodec().decode(BODY_BINARY, data)


def test_msgpack_rejects_json_body() -> None:
    with pytest.raises(CodecError):
        MsgpackCodec().decode(BODY_JSON, b"{}")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"[1] 2", id="trailing-data"),
        pytest.param(b"NaN", id="nan"),
        pytest.param(b"[Infinity]", id="infinity"),
        pytest.param(b'"\xff"', id="invalid-utf8"),
        pytest.param('"x"'.encode("utf-16"), id="utf16"),
        pytest.param(b"1" * 5000, id="huge-int"),
        pytest.param(b"[" * 200_000, id="deep-nesting"),
    ],
)
def test_json_rejects(data: bytes) -> None:
    with pytest.raises(CodecError):
        JsonCodec().decode(BODY_JSON, data)


@pytest.mark.parametrize(
    ("codec", "value"),
    [
        pytest.param(MsgpackCodec(), object(), id="msgpack-object"),
        pytest.param(MsgpackCodec(), 2**64, id="msgpack-huge-int"),
        pytest.param(MsgpackCodec(), {1j: 1}, id="msgpack-complex"),
        pytest.param(JsonCodec(), b"bytes", id="json-bytes"),
        pytest.param(JsonCodec(), math.nan, id="json-nan"),
        pytest.param(JsonCodec(), {1, 2}, id="json-set"),
    ],
)
def test_encode_unencodable_is_local_error(codec: BodyCodec, value: object) -> None:
    with pytest.raises(LocalProtocolError):
        codec.encode(value)


@settings(max_examples=300)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=3))
@pytest.mark.parametrize("codec", CODECS, ids=["msgpack", "json"])
def test_garbage_only_raises_codec_error(codec: BodyCodec, data: bytes, body_type: int) -> None:
    try:
        codec.decode(body_type, data)
    except CodecError:
        pass
