"""Entry content: a CBOR map with a text ``type`` (public) or a byte string (private).

Content is encoded in deterministic CBOR, at most :data:`MAX_CONTENT_SIZE` bytes. Public
content is a map whose keys are text strings and which has a non-empty text ``type``;
values may be any CBOR data model value except tags, floats' NaN payloads aside. Private
content is a CBOR byte string holding a private-box ciphertext (see the private messages
section of docs/protocol.md).
"""

from __future__ import annotations

from typing import Any

import cbor2

from p2psocial.errors import (
    ContentTooLarge,
    InvalidContent,
    LocalContentTooLarge,
    NonCanonical,
    UnpublishableContent,
)

MAX_CONTENT_SIZE = 8192
MAX_TYPE_LENGTH = 64

Content = dict[str, Any] | bytes


_SCALARS = frozenset({type(None), bool, int, float, str, bytes})


def _check_value(value: object, error: type[Exception] = InvalidContent) -> None:
    """Reject anything but the plain CBOR data model: no tags, only text map keys."""
    stack: list[tuple[object, int]] = [(value, 0)]
    scalars = _SCALARS
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            if depth >= 32:
                raise error("content nests deeper than 32 levels")
            for key, inner in item.items():  # type: ignore[attr-defined]
                if type(key) is not str:
                    raise error("content map keys must be text")
                if type(inner) not in scalars:
                    stack.append((inner, depth + 1))
        elif kind is list:
            if depth >= 32:
                raise error("content nests deeper than 32 levels")
            stack.extend((inner, depth + 1) for inner in item if type(inner) not in scalars)  # type: ignore[attr-defined]
        elif kind not in scalars:
            raise error(f"content holds an unsupported value of type {kind.__name__}")


def _check_shape(value: object, error: type[Exception] = InvalidContent) -> Content:
    """Raises ``error``: InvalidContent for a peer's content, UnpublishableContent for ours."""
    if type(value) is bytes:
        return value
    if type(value) is not dict:
        raise error("content must be a map with a 'type' or an encrypted byte string")
    kind = value.get("type")
    if type(kind) is not str or not kind or len(kind) > MAX_TYPE_LENGTH:
        raise error(f"content 'type' must be text of 1 to {MAX_TYPE_LENGTH} characters")
    _check_value(value, error)
    return value


def encode_content(value: Content) -> bytes:
    """Encode content for a new entry of ours. Raises UnpublishableContent or
    LocalContentTooLarge (local errors: the content is ours, not a peer's)."""
    _check_shape(value, UnpublishableContent)
    try:
        data = cbor2.dumps(value, canonical=True)
    except (cbor2.CBOREncodeError, TypeError, ValueError, OverflowError) as exc:
        raise UnpublishableContent(f"content cannot be encoded: {exc}") from None
    if len(data) > MAX_CONTENT_SIZE:
        raise LocalContentTooLarge(
            f"content is {len(data)} bytes encoded, more than the {MAX_CONTENT_SIZE} allowed"
        )
    return data


def decode_content(data: bytes) -> Content:
    """Decode and check stored or received content bytes.

    Raises ContentTooLarge, InvalidContent or NonCanonical.
    """
    if len(data) > MAX_CONTENT_SIZE:
        raise ContentTooLarge(
            f"content is {len(data)} bytes, more than the {MAX_CONTENT_SIZE} allowed"
        )
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types on hostile bytes
        raise InvalidContent(f"content is not valid CBOR: {exc}") from None
    content = _check_shape(value)
    if cbor2.dumps(value, canonical=True) != data:
        raise NonCanonical("content is not in deterministic CBOR encoding")
    return content


def content_type(content: Content) -> str | None:
    """The ``type`` of public content, None for private (encrypted) content."""
    if isinstance(content, dict):
        kind = content.get("type")
        return kind if isinstance(kind, str) else None
    return None
