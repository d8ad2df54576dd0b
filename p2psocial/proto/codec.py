"""Body codecs for the packet stream: how RPC values become frame bodies and back.

Theory of operation
-------------------
A packet-stream frame carries a 2-bit *body type* in its flags (0 binary, 1 UTF-8 string,
2 JSON) and an opaque body. The framing machine (:mod:`p2psocial.proto.packets`) never looks
inside a body itself: it hands every body to a :class:`BodyCodec`, which turns Python values
into bytes (:meth:`BodyCodec.encode`, always tagged with the codec's own ``body_type``) and
bytes back into values (:meth:`BodyCodec.decode`, told the body type the frame announced).

Two codecs exist:

* :class:`MsgpackCodec`, the native p2psocial codec: msgpack in binary (type 0) bodies.
* :class:`JsonCodec`, for the later bridge to classic Scuttlebutt: JSON (type 2) bodies;
  binary (type 0) bodies decode to raw ``bytes``, as classic peers use them for blob data.

Under both, a UTF-8 string (type 1) body decodes to ``str``.

Decoding is the only place where hostile bytes meet a parser, so both codecs are strict and
bounded: a body can never expand into more memory than a small multiple of its length
(bodies are at most ``packets.MAX_BODY`` bytes), nesting is limited by the parsers' own stack
limits, and msgpack extension types (including the built-in timestamp) are refused. Any
failure is reported as :class:`~p2psocial.errors.CodecError`; nothing else escapes.
Encoding a value the codec cannot carry is our own bug and raises
:class:`~p2psocial.errors.LocalProtocolError`.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

import msgpack

from p2psocial.errors import CodecError, LocalProtocolError

__all__ = [
    "BODY_BINARY",
    "BODY_JSON",
    "BODY_STRING",
    "BodyCodec",
    "JsonCodec",
    "MsgpackCodec",
]

BODY_BINARY: Final = 0
"""Body type 0: binary. msgpack under :class:`MsgpackCodec`, raw bytes under :class:`JsonCodec`."""
BODY_STRING: Final = 1
"""Body type 1: a UTF-8 string. Decodes to ``str`` under every codec."""
BODY_JSON: Final = 2
"""Body type 2: UTF-8 JSON."""


class BodyCodec(Protocol):
    """The body encoding of one packet stream.

    ``body_type`` is the 2-bit type written in the flags of every frame the codec encodes.
    """

    @property
    def body_type(self) -> int:
        """The packet-stream body type (0, 1 or 2) of the bodies :meth:`encode` produces."""
        ...

    def encode(self, obj: object) -> bytes:
        """Encode ``obj`` as a body of type :attr:`body_type`.

        Raises :class:`LocalProtocolError` if the codec cannot represent ``obj``.
        """
        ...

    def decode(self, body_type: int, data: bytes) -> Any:
        """Decode a body that arrived with ``body_type`` in its frame's flags.

        Raises :class:`CodecError` (and nothing else) if the bytes are not a valid body of
        that type for this codec.
        """
        ...


def _decode_string(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"string body is not valid UTF-8: {exc}") from exc


def _refuse_ext(code: int, data: bytes) -> object:
    raise ValueError(f"msgpack extension type {code} is not allowed")


class MsgpackCodec:
    """The native codec: msgpack in binary (type 0) bodies.

    Encoding uses ``use_bin_type=True`` so ``bytes`` and ``str`` stay distinct. Decoding
    yields only ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``list`` and
    ``dict`` (whose keys are ``str`` or ``bytes``). It refuses: extension types and
    timestamps, map keys of other types, trailing bytes after the value, invalid UTF-8 in
    strings, nesting deeper than msgpack's stack limit (1024), and JSON (type 2) bodies.
    Array, map and string lengths are bounded by the body length (msgpack's ``unpackb``
    default), so memory use is at most a small multiple of the body size.
    """

    body_type: int = BODY_BINARY

    def encode(self, obj: object) -> bytes:
        """Pack ``obj`` with msgpack. Raises :class:`LocalProtocolError` if it can't be packed."""
        try:
            packed: bytes = msgpack.packb(obj, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise LocalProtocolError(
                f"cannot encode {type(obj).__name__} as msgpack: {exc}"
            ) from exc
        return packed

    def decode(self, body_type: int, data: bytes) -> Any:
        """Unpack a body. Raises :class:`CodecError` on any invalid or refused input."""
        if body_type == BODY_STRING:
            return _decode_string(data)
        if body_type != BODY_BINARY:
            raise CodecError(f"body type {body_type} is not accepted by the msgpack codec")
        try:
            return msgpack.unpackb(
                data,
                raw=False,
                use_list=True,
                strict_map_key=True,
                ext_hook=_refuse_ext,
                max_ext_len=0,
            )
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise CodecError(f"invalid msgpack body: {exc or type(exc).__name__}") from exc
        except msgpack.UnpackException as exc:  # pragma: no cover - all are ValueErrors today
            raise CodecError(f"invalid msgpack body: {exc or type(exc).__name__}") from exc


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


class JsonCodec:
    """The classic Scuttlebutt codec: UTF-8 JSON in type 2 bodies.

    Encoding is compact (no spaces), keeps non-ASCII characters as UTF-8 and refuses NaN and
    infinities. Decoding refuses bytes that are not UTF-8, ``NaN``/``Infinity``, trailing
    garbage, integers longer than Python's 4300-digit limit and nesting deep enough to hit
    the recursion limit. Binary (type 0) bodies decode to ``bytes`` unchanged.
    """

    body_type: int = BODY_JSON

    def encode(self, obj: object) -> bytes:
        """Dump ``obj`` as JSON. Raises :class:`LocalProtocolError` if it isn't JSON-able."""
        try:
            text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise LocalProtocolError(f"cannot encode {type(obj).__name__} as JSON: {exc}") from exc
        return text.encode("utf-8")

    def decode(self, body_type: int, data: bytes) -> Any:
        """Decode a body. Raises :class:`CodecError` on any invalid input."""
        if body_type == BODY_BINARY:
            return bytes(data)
        text = _decode_string(data)
        if body_type == BODY_STRING:
            return text
        if body_type != BODY_JSON:
            raise CodecError(f"unknown body type {body_type}")
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise CodecError(f"invalid JSON body: {exc}") from exc
