"""Box-stream: the encrypted, framed byte stream that follows the secret handshake.

Sans-IO: :class:`Encoder` turns plaintext into wire bytes, :class:`Decoder` turns wire
bytes back into :class:`Data` events and a final :class:`Goodbye`. Each direction of a
connection is one stream with its own key and starting nonce, both taken from the
handshake's ``Session``. The wire format is in ``docs/protocol.md`` section 4.
"""

# Theory of operation
# -------------------
#
# Every packet is a 34-byte header then a body of at most 4096 bytes:
#
#     header = secretbox(u16_be(len(body)) || body_mac, nonce=N)     (18 + 16 = 34 bytes)
#     body   = secretbox(plaintext, nonce=N+1) without its 16-byte MAC
#
# and N advances by 2 per packet, as a 24-byte big-endian counter that wraps. Because
# every packet is bound to its nonce, a flipped bit, a replayed packet and a reordered
# packet all fail a MAC check; the stream needs no sequence numbers. A header whose
# plaintext is 18 zero bytes is the goodbye: the sender is done. A stream that ends
# without it was cut (StreamCut), which the layers above must not take for a clean end.
#
# The decoder keeps one bytearray and a read offset. ``next_event`` decodes every whole
# packet in the buffer in one go and returns their plaintexts joined as one Data event
# (packet boundaries carry no meaning), so a large read costs one event, not one per
# 4 KiB. Nothing is committed (offset, nonce) until a packet is wholly there and both
# MACs check, so a half-received packet changes nothing (its opened header is kept only
# to spare opening it again on the next read). ``receive_data`` drops the consumed
# prefix before appending (CPython does that by moving a start pointer, not the bytes).
# When a bad packet follows good ones in the buffer, the good ones are returned first
# and the next call raises, so feeding a stream whole or a byte at a time yields the
# same data and the same error. Any error moves the decoder to ERROR, where every call
# raises.
#
# This is the transport's hot path: per packet it does two libsodium calls and a few
# int and slice operations, nothing more.

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from p2psocial.errors import BoxStreamError, LocalProtocolError, StreamCut
from p2psocial.proto.handshake import NEED_DATA, NeedData
from p2psocial.proto.secretbox import SecretBox

__all__ = [
    "HEADER_SIZE",
    "MAX_BODY_SIZE",
    "NEED_DATA",
    "Data",
    "Decoder",
    "Encoder",
    "Event",
    "Goodbye",
    "NeedData",
    "State",
]

MAX_BODY_SIZE: Final = 4096
HEADER_SIZE: Final = 34  # 16-byte MAC + u16 length + 16-byte body MAC

_NONCE_MASK: Final = (1 << 192) - 1
_GOODBYE_PLAIN: Final = bytes(18)


def _check_key_nonce(key: bytes, nonce: bytes) -> int:
    if not isinstance(key, bytes) or len(key) != 32:
        raise LocalProtocolError("box-stream key must be 32 bytes")
    if not isinstance(nonce, bytes) or len(nonce) != 24:
        raise LocalProtocolError("box-stream nonce must be 24 bytes")
    return int.from_bytes(nonce, "big")


@dataclass(frozen=True)
class Event:
    """Base class of the box-stream decoder's events."""


@dataclass(frozen=True)
class Data(Event):
    """Plaintext from one or more packets, in order. Never empty."""

    data: bytes


@dataclass(frozen=True)
class Goodbye(Event):
    """The peer ended its stream cleanly. It sends nothing more on this connection."""


class State(enum.Enum):
    """State of a :class:`Decoder` (an :class:`Encoder` is only open or closed)."""

    OPEN = "open"
    CLOSED = "closed"  # goodbye received
    ERROR = "error"  # a check failed; every further call raises


class Encoder:
    """Seals one direction of a box-stream. ``key`` is 32 bytes, ``nonce`` 24.

    Raises LocalProtocolError for a wrong-sized key or nonce.
    """

    def __init__(self, key: bytes, nonce: bytes) -> None:
        self._nonce = _check_key_nonce(key, nonce)
        self._box = SecretBox(key)
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once :meth:`goodbye` was called."""
        return self._closed

    def encrypt(self, plaintext: bytes) -> bytes:
        """Return the packets carrying ``plaintext``, at most 4096 bytes of it per packet.

        ``b""`` gives ``b""`` (no packet). Raises LocalProtocolError after goodbye().
        """
        if self._closed:
            raise LocalProtocolError("box-stream encoder already sent goodbye")
        seal = self._box.seal
        nonce = self._nonce
        out: list[bytes] = []
        append = out.append
        size = len(plaintext)
        for start in range(0, size, MAX_BODY_SIZE):
            chunk = plaintext if size <= MAX_BODY_SIZE else plaintext[start : start + MAX_BODY_SIZE]
            body = seal(chunk, ((nonce + 1) & _NONCE_MASK).to_bytes(24, "big"))
            header_plain = len(chunk).to_bytes(2, "big") + body[:16]
            append(seal(header_plain, nonce.to_bytes(24, "big")))
            append(body[16:])
            nonce = (nonce + 2) & _NONCE_MASK
        self._nonce = nonce
        return b"".join(out)

    def goodbye(self) -> bytes:
        """Return the goodbye header that ends the stream. Then the encoder is closed.

        Raises LocalProtocolError if goodbye was already sent.
        """
        if self._closed:
            raise LocalProtocolError("box-stream encoder already sent goodbye")
        self._closed = True
        return self._box.seal(_GOODBYE_PLAIN, self._nonce.to_bytes(24, "big"))


class Decoder:
    """Opens one direction of a box-stream. ``key`` is 32 bytes, ``nonce`` 24.

    Raises LocalProtocolError for a wrong-sized key or nonce.
    """

    def __init__(self, key: bytes, nonce: bytes) -> None:
        self._nonce = _check_key_nonce(key, nonce)
        self._box = SecretBox(key)
        self._buf = bytearray()
        self._pos = 0  # start of the first byte not yet decoded
        self._header: bytes | None = None  # opened header of the packet at _pos, if any
        self._eof = False
        self._state = State.OPEN
        self._failure: BoxStreamError | None = None

    @property
    def state(self) -> State:
        """The current :class:`State`."""
        return self._state

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; ``b""`` means the peer closed its side (EOF).

        Checks nothing: problems surface in :meth:`next_event`. Raises the first error's
        type again if the decoder is in ERROR, LocalProtocolError for data after EOF.
        """
        if self._failure is not None:
            raise self._already_failed()
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("received data after EOF")
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_event(self) -> Data | Goodbye | NeedData:
        """Decode what is buffered: :class:`Data`, :class:`Goodbye` or :data:`NEED_DATA`.

        Data joins every whole packet buffered. After the goodbye, Goodbye is returned
        again on each call. Raises BoxStreamError when a header or body fails its MAC
        check (corrupted, replayed or reordered packet), a header announces more than
        4096 bytes, or bytes follow the goodbye; raises StreamCut (a BoxStreamError) at
        EOF without goodbye. Any error moves the decoder to ERROR, and every later call
        raises the same type again.
        """
        if self._state is not State.OPEN:
            if self._failure is not None:
                raise self._already_failed()
            if self._pos < len(self._buf):
                raise self._fail(BoxStreamError("data after goodbye"))
            return Goodbye()
        buf = self._buf
        open_ = self._box.open
        pos = self._pos
        nonce = self._nonce
        end = len(buf)
        chunks: list[bytes] = []
        # A header opened by an earlier call whose body was not all there yet: opening it
        # again on every partial read of a 4 KiB body would cost a libsodium call each.
        header = self._header
        while end - pos >= HEADER_SIZE:
            if header is None:
                header = open_(bytes(buf[pos : pos + HEADER_SIZE]), nonce.to_bytes(24, "big"))
                if header is None:
                    if chunks:  # hand out the good packets first; fail on the next call
                        break
                    raise self._fail(
                        BoxStreamError(
                            "header MAC check failed (corrupted, replayed or reordered packet)"
                        )
                    )
            if header == _GOODBYE_PLAIN:
                if chunks:  # hand out the data first; the goodbye is decoded again next call
                    break
                self._pos = pos + HEADER_SIZE
                self._nonce = (nonce + 1) & _NONCE_MASK
                self._header = None
                self._state = State.CLOSED
                return Goodbye()  # bytes after it make the next call raise
            length = (header[0] << 8) | header[1]
            if length > MAX_BODY_SIZE:
                if chunks:
                    break
                raise self._fail(
                    BoxStreamError(f"header announces {length} bytes, over {MAX_BODY_SIZE}")
                )
            stop = pos + HEADER_SIZE + length
            if stop > end:
                break  # half-received body: commit nothing
            body = open_(
                header[2:] + buf[pos + HEADER_SIZE : stop],
                ((nonce + 1) & _NONCE_MASK).to_bytes(24, "big"),
            )
            if body is None:
                if chunks:
                    break
                raise self._fail(BoxStreamError("body MAC check failed (corrupted packet body)"))
            if body:
                chunks.append(body)
            pos = stop
            nonce = (nonce + 2) & _NONCE_MASK
            header = None
        self._pos = pos
        self._nonce = nonce
        self._header = header  # None, or the header of the unfinished packet at pos
        if chunks:
            return Data(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if self._eof:
            partial = end - pos
            where = f" ({partial} bytes of an unfinished packet)" if partial else ""
            raise self._fail(StreamCut(f"stream cut without goodbye{where}"))
        return NEED_DATA

    def _fail(self, exc: BoxStreamError) -> BoxStreamError:
        """Move to ERROR; return ``exc`` for the caller to raise."""
        self._state = State.ERROR
        self._failure = exc
        self._buf.clear()
        self._pos = 0
        self._header = None
        return exc

    def _already_failed(self) -> BoxStreamError:
        """A fresh error of the same type as the first one (StreamCut stays StreamCut)."""
        assert self._failure is not None
        return type(self._failure)(f"box-stream already failed: {self._failure}")
