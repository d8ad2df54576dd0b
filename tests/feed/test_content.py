from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2psocial.errors import (
    ContentTooLarge,
    InvalidContent,
    InvalidEntry,
    LocalContentTooLarge,
    NonCanonical,
    UnpublishableContent,
)
from p2psocial.feed.content import MAX_CONTENT_SIZE, content_type, decode_content, encode_content

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=5), st.text(min_size=1, max_size=20))
def test_round_trip(extra: dict[str, Any], kind: str) -> None:
    content = {**extra, "type": kind}
    data = encode_content(content)
    assert decode_content(data) == content
    assert content_type(decode_content(data)) == kind


def test_private_bytes() -> None:
    data = encode_content(b"\x01\x02ciphertext")
    assert decode_content(data) == b"\x01\x02ciphertext"
    assert content_type(b"x") is None


@pytest.mark.parametrize(
    "value",
    [{"text": "no type"}, {"type": ""}, {"type": 5}, {"type": "x" * 65}, [1, 2], "text", 5],
)
def test_bad_shapes(value: Any) -> None:
    with pytest.raises(UnpublishableContent):  # ours: a local error
        encode_content(value)
    with pytest.raises(InvalidContent):
        decode_content(cbor2.dumps(value, canonical=True))


def test_tags_and_non_text_keys_rejected() -> None:
    with pytest.raises(InvalidContent, match="keys must be text"):
        decode_content(cbor2.dumps({"type": "x", "m": {1: 2}}, canonical=True))
    tagged = cbor2.dumps({"type": "x", "v": cbor2.CBORTag(4242, 1)}, canonical=True)
    with pytest.raises(InvalidContent, match="unsupported"):
        decode_content(tagged)


def test_too_large() -> None:
    with pytest.raises(LocalContentTooLarge):
        encode_content({"type": "post", "text": "x" * MAX_CONTENT_SIZE})
    with pytest.raises(ContentTooLarge):
        decode_content(b"\x00" * (MAX_CONTENT_SIZE + 1))


def test_non_canonical_rejected() -> None:
    # Keys out of canonical order.
    data = b"\xa2" + cbor2.dumps("type") + cbor2.dumps("x") + cbor2.dumps("a") + b"\x01"
    with pytest.raises(NonCanonical):
        decode_content(data)


def test_deep_nesting_rejected() -> None:
    value: Any = 1
    for _ in range(40):
        value = [value]
    with pytest.raises(UnpublishableContent, match="deeper"):
        encode_content({"type": "x", "v": value})
    with pytest.raises(InvalidContent, match="deeper"):
        decode_content(cbor2.dumps({"type": "x", "v": value}, canonical=True))


@given(st.binary(max_size=300))
def test_any_bytes_only_typed_errors(data: bytes) -> None:
    try:
        decode_content(data)
    except InvalidEntry:
        pass
