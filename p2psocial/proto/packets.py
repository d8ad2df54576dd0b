"""The packet stream: multiplexed peer RPC framing (Scuttlebutt's muxrpc wire format), sans-IO.

Theory of operation
-------------------
Once the box-stream is up, both peers speak the packet stream over it: a sequence of frames,
each a 9-byte header ``flags(1) || body_length(u32 BE) || request_number(i32 BE)`` and a body.
Many calls run at once over one connection; the request number says which call a frame
belongs to. muxrpc is symmetric, so one class, :class:`PacketStream`, serves both ends.

*Numbering.* Each side numbers the calls it makes 1, 2, 3, ... (strictly increasing). The
caller's frames carry ``+n``, the callee's frames carry ``-n``. So a positive number on an
incoming frame names a call the peer made, a negative one a call we made. This module names
a call by its **req_id = the number we write on the frames we send for it**: positive for
calls we made, negative for calls the peer made (``-n`` for the peer's request ``n``). On
receive, ``req_id = -wire_number``. Every event and every send method uses this req_id.

*Calls.* ``async`` is one request, one answer (a response, or an error: a response frame
with the end flag). ``source`` (callee sends data), ``sink`` (caller sends data) and
``duplex`` (both) open a stream: every frame carries the stream flag, and the stream is over
when each side has sent one end frame (body ``true``, or an error body). An end frame means
"I send no more data" (a half-close): the other side may still send until it ends too, and
data that was in flight when we ended is accepted.

*State.* Each open call has a :class:`CallType`, our :class:`Role` in it, and a
:class:`CallState`; every frame sent or received is an :class:`Action`, and the data table
:data:`TRANSITIONS` gives the next state or says the action is illegal. A finished call
(state ``DONE``) is forgotten. An illegal incoming frame is a :class:`FramingError`
(a :class:`RemoteProtocolError`) and moves the whole machine to ``ERROR``; an illegal send
raises :class:`LocalProtocolError` and changes nothing (no bytes produced, no state moved),
so one buggy handler cannot break the other calls on the connection.

*Parsing.* ``receive_data`` appends to a ``bytearray``; ``next_event`` parses one frame
at a read offset with ``struct.unpack_from`` and compacts the buffer now and then. A frame is
handled only once it is complete, and all its checks run before any state changes, so a
half-received frame never changes state. A header announcing a body bigger than
``max_body`` is rejected as soon as the 9 header bytes are in, before any body arrives.

*Backpressure.* The machine does no I/O and queues nothing outgoing: every send method
returns the bytes to write, in order. The shell applies backpressure on the receive side by
not reading from the socket (and so not calling ``receive_data``) while the bounded queue of
the stream an event is for is full; TCP then pushes back on the peer. The machine buffers at
most what the shell hands it (one frame plus one read, if the shell only reads after
``NEED_DATA``); :attr:`PacketStream.bytes_buffered` tells how much that is.

*Goodbye.* Nine zero bytes end the packet stream: after :meth:`PacketStream.goodbye` we send
nothing more, but go on receiving, with every check, until the peer's :class:`Goodbye` (it
may have sent frames before it saw ours). After the peer's Goodbye any byte from it is an
error, and its open calls are abandoned (the shell fails them and answers with its own
goodbye). End of input (``receive_data(b"")``: for the shell, the peer's box-stream goodbye
or a closed socket) before the peer's goodbye, or inside a frame, is a :class:`FramingError`;
after it, ``next_event`` keeps returning Goodbye: a clean end. The whole close sequence is
in ``docs/protocol.md`` 5.8.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from p2psocial.errors import FramingError, LocalProtocolError
from p2psocial.proto.codec import BodyCodec, MsgpackCodec

__all__ = [
    "DATA_SENDERS",
    "FLAG_END",
    "FLAG_STREAM",
    "GOODBYE_FRAME",
    "HEADER_SIZE",
    "MAX_BODY",
    "MAX_INCOMING_CALLS",
    "MAX_REQUEST_ID",
    "NEED_DATA",
    "TRANSITIONS",
    "Action",
    "CallEvent",
    "CallState",
    "CallType",
    "ConnectionState",
    "ErrorCode",
    "ErrorInfo",
    "ErrorResponse",
    "Event",
    "Goodbye",
    "InvalidRequest",
    "NeedData",
    "PacketStream",
    "Request",
    "Response",
    "Role",
    "StreamData",
    "StreamEnded",
]

# ---------------------------------------------------------------------------- wire constants

_HEADER: Final = struct.Struct(">BIi")
HEADER_SIZE: Final = 9
"""Bytes in a frame header: flags(1) || body_length u32 BE || request_number i32 BE."""
FLAG_STREAM: Final = 0x08
"""Flags bit: the frame belongs to a stream (source, sink or duplex call)."""
FLAG_END: Final = 0x04
"""Flags bit: end of a stream, or (on an async response) an error."""
_BODY_TYPE_MASK: Final = 0x03
_KNOWN_FLAGS: Final = FLAG_STREAM | FLAG_END | _BODY_TYPE_MASK
MAX_BODY: Final = 1024 * 1024 + 4096
"""Largest body accepted or sent: 1 MiB of payload plus 4 KiB for the envelope around it."""
MAX_REQUEST_ID: Final = 2**31 - 1
"""Largest request number (i32). A side that used them all must open a new connection."""
MAX_INCOMING_CALLS: Final = 4096
"""Default cap on calls the peer may have open at once; one more is a FramingError."""
GOODBYE_FRAME: Final = bytes(HEADER_SIZE)
"""Nine zero bytes: the end of the whole packet stream."""
_COMPACT_AT: Final = 64 * 1024

# ---------------------------------------------------------------------------- enums


class CallType(enum.Enum):
    """The four kinds of call. The value is the ``type`` string in the request body."""

    ASYNC = "async"
    SOURCE = "source"
    SINK = "sink"
    DUPLEX = "duplex"


class Role(enum.Enum):
    """Our side in one call."""

    CALLER = "caller"
    CALLEE = "callee"


class CallState(enum.Enum):
    """Where one call stands, seen from our side."""

    PENDING = "pending"
    """An async call waiting for its single answer (from the callee)."""
    OPEN = "open"
    """A stream neither side has ended."""
    LOCAL_ENDED = "local_ended"
    """A stream we ended; the peer has not yet."""
    REMOTE_ENDED = "remote_ended"
    """A stream the peer ended; we have not yet."""
    DONE = "done"
    """Finished: answered, or ended by both sides. The machine forgets the call."""


class Action(enum.Enum):
    """A frame sent or received for a call: the input of :data:`TRANSITIONS`."""

    SEND_ANSWER = "send_answer"
    RECV_ANSWER = "recv_answer"
    SEND_DATA = "send_data"
    RECV_DATA = "recv_data"
    SEND_END = "send_end"
    RECV_END = "recv_end"


class ConnectionState(enum.Enum):
    """One direction of the whole packet stream (``our_state`` / ``their_state``)."""

    OPEN = "open"
    CLOSED = "closed"
    """That side sent its goodbye."""
    ERROR = "error"
    """The peer broke the protocol (``their_state`` only). Nothing more can be done."""


class ErrorCode(enum.StrEnum):
    """Error codes carried in error bodies. Applications may add their own (lowercase_snake)."""

    UNKNOWN_METHOD = "unknown_method"
    """No such method here (or not allowed to this peer)."""
    BAD_REQUEST = "bad_request"
    """The request was malformed or its args were wrong."""
    INTERNAL = "internal"
    """The handler failed."""
    REFUSED = "refused"
    """The callee will not serve this now (busy, rate-limited, blocked peer, shutting down)."""


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel."""

    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA
"""Returned by :meth:`PacketStream.next_event` when no complete frame is buffered."""

DATA_SENDERS: Final[dict[CallType, frozenset[Role]]] = {
    CallType.ASYNC: frozenset(),
    CallType.SOURCE: frozenset({Role.CALLEE}),
    CallType.SINK: frozenset({Role.CALLER}),
    CallType.DUPLEX: frozenset({Role.CALLER, Role.CALLEE}),
}
"""Who may send data frames on each kind of stream. End frames may come from either side."""

_OTHER: Final = {Role.CALLER: Role.CALLEE, Role.CALLEE: Role.CALLER}


def _build_transitions() -> dict[tuple[CallType, Role, CallState, Action], CallState]:
    t: dict[tuple[CallType, Role, CallState, Action], CallState] = {
        (CallType.ASYNC, Role.CALLER, CallState.PENDING, Action.RECV_ANSWER): CallState.DONE,
        (CallType.ASYNC, Role.CALLEE, CallState.PENDING, Action.SEND_ANSWER): CallState.DONE,
    }
    for ctype in (CallType.SOURCE, CallType.SINK, CallType.DUPLEX):
        for role in Role:
            t[(ctype, role, CallState.OPEN, Action.SEND_END)] = CallState.LOCAL_ENDED
            t[(ctype, role, CallState.OPEN, Action.RECV_END)] = CallState.REMOTE_ENDED
            t[(ctype, role, CallState.LOCAL_ENDED, Action.RECV_END)] = CallState.DONE
            t[(ctype, role, CallState.REMOTE_ENDED, Action.SEND_END)] = CallState.DONE
            if role in DATA_SENDERS[ctype]:
                t[(ctype, role, CallState.OPEN, Action.SEND_DATA)] = CallState.OPEN
                t[(ctype, role, CallState.REMOTE_ENDED, Action.SEND_DATA)] = CallState.REMOTE_ENDED
            if _OTHER[role] in DATA_SENDERS[ctype]:
                t[(ctype, role, CallState.OPEN, Action.RECV_DATA)] = CallState.OPEN
                t[(ctype, role, CallState.LOCAL_ENDED, Action.RECV_DATA)] = CallState.LOCAL_ENDED
    return t


TRANSITIONS: Final = _build_transitions()
"""``(call type, our role, state, action) -> next state``. A missing key is illegal."""

# ---------------------------------------------------------------------------- events

Args: TypeAlias = "list[Any] | dict[Any, Any]"


def _check_str(what: str, value: object) -> None:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be a str, not {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An error body: ``{"name": name, "message": message, "code": code}``.

    Raises :class:`LocalProtocolError` if a field is not a ``str``.
    """

    code: str
    message: str
    name: str = "Error"

    def __post_init__(self) -> None:
        _check_str("code", self.code)
        _check_str("message", self.message)
        _check_str("name", self.name)

    def to_body(self) -> dict[str, str]:
        """The map that goes on the wire."""
        return {"name": self.name, "message": self.message, "code": self.code}


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of everything :meth:`PacketStream.next_event` returns (except NEED_DATA)."""


@dataclass(frozen=True, slots=True)
class CallEvent(Event):
    """Base of the events about one call: route them by ``req_id`` (see the module doc)."""

    req_id: int


@dataclass(frozen=True, slots=True)
class Request(CallEvent):
    """The peer made a call. ``req_id`` is negative (see the module doc).

    For ``ASYNC`` answer with ``respond``/``respond_error``; for streams, the stream is now
    open: use ``stream_send``/``stream_end``. An unknown ``name`` is answered by the shell
    with ``respond_error(req_id, ErrorCode.UNKNOWN_METHOD, ...)`` (or ``stream_end``).
    """

    name: str
    args: Args
    type: CallType


@dataclass(frozen=True, slots=True)
class InvalidRequest(CallEvent):
    """The peer made a call whose body decoded but is not a valid request map.

    The call is open all the same (as ``ASYNC`` if ``stream`` is false, else as ``DUPLEX``)
    so the shell can answer it with an ``ErrorCode.BAD_REQUEST`` error: ``respond_error``
    for an async call, ``stream_end(req_id, ErrorInfo(...))`` for a stream.
    """

    stream: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Response(CallEvent):
    """The answer to an async call we made."""

    value: Any


@dataclass(frozen=True, slots=True)
class ErrorResponse(CallEvent):
    """The error answer to an async call we made."""

    code: str
    message: str
    name: str = "Error"

    @property
    def error(self) -> ErrorInfo:
        """The same error as an :class:`ErrorInfo`."""
        return ErrorInfo(self.code, self.message, self.name)


@dataclass(frozen=True, slots=True)
class StreamData(CallEvent):
    """One data item on a stream (ours or the peer's)."""

    value: Any


@dataclass(frozen=True, slots=True)
class StreamEnded(CallEvent):
    """The peer ended its side of a stream: cleanly (``error`` is None) or with an error.

    Unless we already ended it, we must still call ``stream_end(req_id)``, or the call stays
    open (and counts against the peer's cap on open calls).
    """

    error: ErrorInfo | None


@dataclass(frozen=True, slots=True)
class Goodbye(Event):
    """The peer ended the whole packet stream. Returned again by every later next_event."""


_GOODBYE: Final = Goodbye()

# ---------------------------------------------------------------------------- machine


class _Call:
    __slots__ = ("role", "state", "type")

    def __init__(self, ctype: CallType, role: Role, state: CallState) -> None:
        self.type = ctype
        self.role = role
        self.state = state


def _parse_request(value: Any, stream: bool) -> tuple[CallType, str, Args] | str:
    """A valid request map's parts, or the reason it is not valid."""
    if not isinstance(value, dict):
        return f"request body is a {type(value).__name__}, not a map"
    name = value.get("name")
    args = value.get("args")
    ctype = value.get("type")
    if not isinstance(name, str) or not name:
        return "request name must be a non-empty string"
    if not isinstance(args, list | dict):
        return "request args must be a list or a map"
    if not isinstance(ctype, str) or ctype not in _CALL_TYPES:
        return f"unknown call type {ctype!r}"
    call_type = _CALL_TYPES[ctype]
    if (call_type is not CallType.ASYNC) != stream:
        return f"stream flag {'set' if stream else 'missing'} on a {ctype} request"
    return call_type, name, args


_CALL_TYPES: Final = {t.value: t for t in CallType}


def _parse_error(value: Any) -> ErrorInfo | None:
    """The error in an error body, or None if it is not one.

    ``message`` is required; ``name`` defaults to ``"Error"`` and ``code`` to ``""`` (classic
    Scuttlebutt peers send no code).
    """
    if not isinstance(value, dict):
        return None
    message = value.get("message")
    name = value.get("name", "Error")
    code = value.get("code", "")
    if not (isinstance(message, str) and isinstance(name, str) and isinstance(code, str)):
        return None
    return ErrorInfo(code, message, name)


def _check_args(name: str, args: object) -> None:
    if not isinstance(name, str) or not name:
        raise LocalProtocolError("method name must be a non-empty str")
    if not isinstance(args, list | tuple | dict):
        raise LocalProtocolError(f"args must be a list or a dict, not {type(args).__name__}")


class PacketStream:
    """One end of a packet stream. See the module docstring for the theory of operation.

    ``codec`` encodes and decodes bodies (default :class:`MsgpackCodec`). ``max_body`` caps
    body sizes both ways. ``max_incoming_calls`` caps the calls the peer may have open at
    once (a peer going over it is a protocol error).
    """

    def __init__(
        self,
        codec: BodyCodec | None = None,
        *,
        max_body: int = MAX_BODY,
        max_incoming_calls: int = MAX_INCOMING_CALLS,
    ) -> None:
        self.codec: BodyCodec = codec if codec is not None else MsgpackCodec()
        self.max_body = max_body
        self.max_incoming_calls = max_incoming_calls
        self.our_state = ConnectionState.OPEN
        self.their_state = ConnectionState.OPEN
        self._body_type = self.codec.body_type
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._calls: dict[int, _Call] = {}
        self._next_id = 1
        self._last_remote_id = 0
        self._incoming = 0

    # ------------------------------------------------------------------ inspection

    @property
    def bytes_buffered(self) -> int:
        """Bytes received with ``receive_data`` and not yet turned into events."""
        return len(self._buf) - self._pos

    def call_state(self, req_id: int) -> CallState:
        """State of a call; ``DONE`` for a finished call or an id never used."""
        call = self._calls.get(req_id)
        return CallState.DONE if call is None else call.state

    def active_calls(self) -> dict[int, tuple[CallType, CallState]]:
        """A snapshot of the calls not yet finished, by req_id (for cleanup on goodbye)."""
        return {rid: (c.type, c.state) for rid, c in self._calls.items()}

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Hand the machine bytes read from the transport; ``b""`` means end of file.

        Never raises for bad bytes (they are reported by :meth:`next_event`). Raises
        :class:`LocalProtocolError` if called again after end of file.
        """
        if self._eof:
            raise LocalProtocolError("receive_data() after end of file")
        if not data:
            self._eof = True
            return
        buf = self._buf
        if self._pos:
            if self._pos == len(buf):
                buf.clear()
                self._pos = 0
            elif self._pos >= _COMPACT_AT:
                del buf[: self._pos]
                self._pos = 0
        buf += data

    def next_event(self) -> Event | Literal[NeedData.NEED_DATA]:
        """Parse the next complete frame into an event, or return :data:`NEED_DATA`.

        Raises :class:`FramingError` or :class:`~p2psocial.errors.CodecError` (both
        :class:`~p2psocial.errors.RemoteProtocolError`) and nothing else if the peer broke
        the protocol, including the transport ending inside a frame or before the peer's
        goodbye. Any exception moves ``their_state`` to ``ERROR``, after which every call
        raises :class:`FramingError`.
        """
        if self.their_state is ConnectionState.ERROR:
            raise FramingError("can't receive: the peer's state is ERROR")
        try:
            return self._next_event()
        except BaseException:
            self.their_state = ConnectionState.ERROR
            raise

    def _next_event(self) -> Event | Literal[NeedData.NEED_DATA]:
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if self.their_state is ConnectionState.CLOSED:
            if avail:
                raise FramingError("data after the peer's goodbye")
            return _GOODBYE
        if avail < HEADER_SIZE:
            if not self._eof:
                return NEED_DATA
            if avail:
                raise FramingError(f"transport ended inside a frame header ({avail} of 9 bytes)")
            raise FramingError("transport ended without a packet-stream goodbye")
        flags, length, wire = _HEADER.unpack_from(buf, pos)
        if length > self.max_body:
            raise FramingError(f"frame body of {length} bytes exceeds the {self.max_body} limit")
        if flags & ~_KNOWN_FLAGS or flags & _BODY_TYPE_MASK == _BODY_TYPE_MASK:
            raise FramingError(f"invalid flags 0x{flags:02x}")
        if wire == 0:
            if flags or length:
                raise FramingError("request number 0 is reserved for the goodbye frame")
            self._pos = pos + HEADER_SIZE
            self.their_state = ConnectionState.CLOSED
            return _GOODBYE
        end = pos + HEADER_SIZE + length
        if end > len(buf):
            if self._eof:
                raise FramingError(f"transport ended inside a {length}-byte frame body")
            return NEED_DATA
        event = self._handle(flags, wire, bytes(buf[pos + HEADER_SIZE : end]))
        self._pos = end
        return event

    def _handle(self, flags: int, wire: int, body: bytes) -> Event:
        """Check one complete frame and turn it into an event; state changes come last."""
        req_id = -wire
        stream = bool(flags & FLAG_STREAM)
        is_end = bool(flags & FLAG_END)
        call = self._calls.get(req_id)
        if call is None:
            if wire < 0:
                raise FramingError(f"frame for our request {-wire}, which is not open")
            return self._new_request(req_id, stream, is_end, flags & _BODY_TYPE_MASK, body)
        if call.type is CallType.ASYNC:
            if call.role is Role.CALLEE:
                raise FramingError(f"second frame with request number {wire} (an async call)")
            if stream:
                raise FramingError(f"stream flag on the answer to async request {req_id}")
            action = Action.RECV_ANSWER
        else:
            if not stream:
                raise FramingError(f"frame without the stream flag on stream {req_id}")
            action = Action.RECV_END if is_end else Action.RECV_DATA
        new_state = TRANSITIONS.get((call.type, call.role, call.state, action))
        if new_state is None:
            raise FramingError(
                f"peer can't {action.value.replace('recv_', 'send ')} on {call.type.value} "
                f"call {req_id} where we are {call.role.value} in state {call.state.value}"
            )
        value = self.codec.decode(flags & _BODY_TYPE_MASK, body)
        event: Event
        if action is Action.RECV_ANSWER:
            if is_end:
                err = _parse_error(value)
                if err is None:
                    raise FramingError(f"invalid error body on the answer to request {req_id}")
                event = ErrorResponse(req_id, err.code, err.message, err.name)
            else:
                event = Response(req_id, value)
        elif is_end:
            err = None if value is True else _parse_error(value)
            if value is not True and err is None:
                raise FramingError(f"end of stream {req_id} with a body neither true nor an error")
            event = StreamEnded(req_id, err)
        else:
            event = StreamData(req_id, value)
        self._move(req_id, call, new_state)
        return event

    def _new_request(
        self, req_id: int, stream: bool, is_end: bool, body_type: int, body: bytes
    ) -> Event:
        wire = -req_id
        if wire <= self._last_remote_id:
            raise FramingError(
                f"request number {wire} is not above the last one ({self._last_remote_id}): "
                "a frame for a finished call, or a reused number"
            )
        if is_end:
            raise FramingError(f"end flag on the first frame of request {wire}")
        if self._incoming >= self.max_incoming_calls:
            raise FramingError(f"peer has more than {self.max_incoming_calls} calls open")
        parsed = _parse_request(self.codec.decode(body_type, body), stream)
        event: Event
        if isinstance(parsed, str):
            ctype = CallType.DUPLEX if stream else CallType.ASYNC
            event = InvalidRequest(req_id, stream, parsed)
        else:
            ctype, name, args = parsed
            event = Request(req_id, name, args, ctype)
        state = CallState.OPEN if stream else CallState.PENDING
        self._calls[req_id] = _Call(ctype, Role.CALLEE, state)
        self._last_remote_id = wire
        self._incoming += 1
        return event

    def _move(self, req_id: int, call: _Call, new_state: CallState) -> None:
        if new_state is CallState.DONE:
            del self._calls[req_id]
            if call.role is Role.CALLEE:
                self._incoming -= 1
        else:
            call.state = new_state

    # ------------------------------------------------------------------ sending

    def _check_can_send(self) -> None:
        if self.our_state is not ConnectionState.OPEN:
            raise LocalProtocolError("can't send: we already said goodbye")
        if self.their_state is ConnectionState.ERROR:
            raise LocalProtocolError("can't send: the peer's state is ERROR")

    def _encode(self, value: object) -> bytes:
        body = self.codec.encode(value)
        if len(body) > self.max_body:
            raise LocalProtocolError(
                f"encoded body of {len(body)} bytes exceeds the {self.max_body} limit"
            )
        return body

    def _local_step(self, req_id: int, action: Action, stream: bool) -> tuple[_Call, CallState]:
        self._check_can_send()
        call = self._calls.get(req_id)
        if call is None:
            raise LocalProtocolError(
                f"no open call {req_id} (finished, never opened, or a peer's call without "
                "its minus sign)"
            )
        if (call.type is not CallType.ASYNC) != stream:
            use = "stream_send()/stream_end()" if stream is False else "respond()/respond_error()"
            raise LocalProtocolError(f"call {req_id} is {call.type.value}: use {use}")
        new_state = TRANSITIONS.get((call.type, call.role, call.state, action))
        if new_state is None:
            raise LocalProtocolError(
                f"can't {action.value.replace('_', ' ')} on {call.type.value} call {req_id} "
                f"as {call.role.value} in state {call.state.value}"
            )
        return call, new_state

    def _open(
        self, name: str, args: Args | tuple[Any, ...] | None, ctype: CallType
    ) -> tuple[int, bytes]:
        self._check_can_send()
        if args is None:
            args = {}
        _check_args(name, args)
        req_id = self._next_id
        if req_id > MAX_REQUEST_ID:
            raise LocalProtocolError("request numbers exhausted; open a new connection")
        body = self._encode({"name": name, "args": args, "type": ctype.value})
        flags = self._body_type if ctype is CallType.ASYNC else FLAG_STREAM | self._body_type
        frame = _HEADER.pack(flags, len(body), req_id) + body
        state = CallState.PENDING if ctype is CallType.ASYNC else CallState.OPEN
        self._calls[req_id] = _Call(ctype, Role.CALLER, state)
        self._next_id = req_id + 1
        return req_id, frame

    def request(self, name: str, args: Args | tuple[Any, ...] | None = None) -> tuple[int, bytes]:
        """Make an async call. Returns ``(req_id, bytes to write)``; ``args`` default ``{}``.

        Raises :class:`LocalProtocolError` after our goodbye or the peer's protocol error,
        if ``name``/``args`` have the wrong type, or the body can't be encoded or is too big.
        """
        return self._open(name, args, CallType.ASYNC)

    def open_stream(
        self,
        name: str,
        args: Args | tuple[Any, ...] | None = None,
        type: CallType | str = CallType.DUPLEX,
    ) -> tuple[int, bytes]:
        """Open a source, sink or duplex stream. Returns ``(req_id, bytes to write)``.

        Raises :class:`LocalProtocolError` as :meth:`request` does, and if ``type`` is not
        ``source``, ``sink`` or ``duplex``.
        """
        ctype = _CALL_TYPES.get(type) if isinstance(type, str) else type
        if ctype is None or ctype is CallType.ASYNC:
            raise LocalProtocolError(f"open_stream() needs source, sink or duplex, not {type!r}")
        return self._open(name, args, ctype)

    def respond(self, req_id: int, value: object) -> bytes:
        """Answer the peer's async call ``req_id`` (negative). Returns the bytes to write.

        Raises :class:`LocalProtocolError` if ``req_id`` is not a pending async call the peer
        made (unknown, already answered, ours, a stream), or ``value`` can't be encoded.
        """
        call, new_state = self._local_step(req_id, Action.SEND_ANSWER, stream=False)
        body = self._encode(value)
        frame = _HEADER.pack(self._body_type, len(body), req_id) + body
        self._move(req_id, call, new_state)
        return frame

    def respond_error(self, req_id: int, code: str, message: str, name: str = "Error") -> bytes:
        """Answer the peer's async call ``req_id`` with an error. Returns the bytes to write.

        ``code`` is an :class:`ErrorCode` or an application code. Raises
        :class:`LocalProtocolError` as :meth:`respond` does.
        """
        call, new_state = self._local_step(req_id, Action.SEND_ANSWER, stream=False)
        body = self._encode(ErrorInfo(str(code), message, name).to_body())
        frame = _HEADER.pack(FLAG_END | self._body_type, len(body), req_id) + body
        self._move(req_id, call, new_state)
        return frame

    def stream_send(self, req_id: int, value: object) -> bytes:
        """Send one data item on stream ``req_id``. Returns the bytes to write.

        Raises :class:`LocalProtocolError` if ``req_id`` is not an open stream, we already
        ended it, our role may not send data on it (the caller of a source, the callee of a
        sink), or ``value`` can't be encoded or is too big.
        """
        call, new_state = self._local_step(req_id, Action.SEND_DATA, stream=True)
        body = self._encode(value)
        frame = _HEADER.pack(FLAG_STREAM | self._body_type, len(body), req_id) + body
        self._move(req_id, call, new_state)
        return frame

    def stream_end(self, req_id: int, error: ErrorInfo | None = None) -> bytes:
        """End our side of stream ``req_id``, cleanly or with ``error``. Returns the bytes.

        Raises :class:`LocalProtocolError` if ``req_id`` is not a stream we may still end.
        """
        call, new_state = self._local_step(req_id, Action.SEND_END, stream=True)
        body = self._encode(True if error is None else error.to_body())
        flags = FLAG_STREAM | FLAG_END | self._body_type
        frame = _HEADER.pack(flags, len(body), req_id) + body
        self._move(req_id, call, new_state)
        return frame

    def goodbye(self) -> bytes:
        """End the whole packet stream from our side: returns :data:`GOODBYE_FRAME`.

        Afterwards every send raises. Raises :class:`LocalProtocolError` if we already said
        goodbye or the peer broke the protocol (then just close the transport).
        """
        self._check_can_send()
        self.our_state = ConnectionState.CLOSED
        return GOODBYE_FRAME
