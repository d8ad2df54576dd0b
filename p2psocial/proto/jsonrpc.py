"""JSON-RPC 2.0 over newline-delimited JSON, sans-IO.

Theory of operation
-------------------
The local socket carries one JSON text per line (UTF-8, ``\\n`` terminated; a trailing
``\\r`` and blank lines are ignored). :class:`LineReader` cuts the byte stream into lines and
refuses a line longer than its limit (:data:`MAX_LINE_SIZE` on the server) before buffering
more than that. :func:`parse_line` turns one line into *items*: a :class:`Request` for each
well-formed request, or a ready :class:`ErrorResponse` for each malformed one, and says
whether the line was a batch. It never raises: bad bytes become error items
(:data:`PARSE_ERROR`, :data:`INVALID_REQUEST`), so the connection survives them.

Going out, :func:`encode_response`, :func:`encode_error` and :func:`encode_batch` give bytes;
:func:`encode_message_notification` and :func:`encode_overflow_notification` build the
subscription notifications. Every ``encode_*`` result except batch elements ends in ``\\n``.

Errors: :data:`ERROR_CODES` is the one table from our exception types to JSON-RPC codes;
:func:`error_for_exception` applies it (walking the exception's MRO, so a subclass inherits
its parent's code) and builds the ``data`` object, which always holds ``{"type": <class
name>}``. The client side uses :func:`parse_server_line`, which raises :class:`CodecError`
for anything that is not a JSON-RPC response or notification.

Params are by name only: a request whose ``params`` is an array is well-formed JSON-RPC, so
it parses, but :meth:`Request.named_params` raises :class:`InvalidParams` (-32602).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from p2psocial.errors import (
    CodecError,
    ConfigError,
    IdentityError,
    InvalidEntry,
    InvalidId,
    InvalidParams,
    LineTooLong,
    LocalProtocolError,
    NotFound,
    P2PSocialError,
    PeerDisconnected,
    RemoteProtocolError,
    RpcError,
    StorageError,
    UnpublishableContent,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "CONFIG_ERROR",
    "ERROR_CODES",
    "ERROR_NAMES",
    "FORBIDDEN",
    "IDENTITY_ERROR",
    "INTERNAL_ERROR",
    "INVALID_CONTENT",
    "INVALID_ID",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "JSONRPC_VERSION",
    "MAX_BATCH",
    "MAX_LINE_SIZE",
    "MESSAGE_NOTIFICATION_END",
    "METHOD_NOT_FOUND",
    "NOT_FOUND",
    "OVERLOADED",
    "PARSE_ERROR",
    "PEER_ERROR",
    "REQUEST_TOO_LARGE",
    "SERVER_ERROR",
    "STORAGE_ERROR",
    "ErrorObject",
    "ErrorResponse",
    "InvalidParams",
    "Item",
    "LineReader",
    "LineTooLong",
    "Notification",
    "Request",
    "RequestId",
    "Response",
    "ServerMessage",
    "dumps",
    "encode_batch",
    "encode_error",
    "encode_message_notification",
    "encode_notification",
    "encode_overflow_notification",
    "encode_request",
    "encode_response",
    "error_for_exception",
    "message_notification_start",
    "parse_line",
    "parse_server_line",
]

JSONRPC_VERSION: Final = "2.0"
MAX_LINE_SIZE: Final = 1 << 20
"""Longest request line the server reads (1 MiB, newline excluded)."""
MAX_BATCH: Final = 1000
"""Most requests in one batch."""

# ----------------------------------------------------------------------------- error codes
# Standard JSON-RPC 2.0 codes.
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
# Application codes, in the range -32000..-32099 that JSON-RPC leaves to servers.
SERVER_ERROR: Final = -32000
NOT_FOUND: Final = -32001
INVALID_ID: Final = -32002
INVALID_CONTENT: Final = -32003
OVERLOADED: Final = -32004
FORBIDDEN: Final = -32005
CONFIG_ERROR: Final = -32006
STORAGE_ERROR: Final = -32007
IDENTITY_ERROR: Final = -32008
PEER_ERROR: Final = -32009
REQUEST_TOO_LARGE: Final = -32010

ERROR_NAMES: Final[Mapping[int, str]] = {
    PARSE_ERROR: "PARSE_ERROR",
    INVALID_REQUEST: "INVALID_REQUEST",
    METHOD_NOT_FOUND: "METHOD_NOT_FOUND",
    INVALID_PARAMS: "INVALID_PARAMS",
    INTERNAL_ERROR: "INTERNAL_ERROR",
    SERVER_ERROR: "SERVER_ERROR",
    NOT_FOUND: "NOT_FOUND",
    INVALID_ID: "INVALID_ID",
    INVALID_CONTENT: "INVALID_CONTENT",
    OVERLOADED: "OVERLOADED",
    FORBIDDEN: "FORBIDDEN",
    CONFIG_ERROR: "CONFIG_ERROR",
    STORAGE_ERROR: "STORAGE_ERROR",
    IDENTITY_ERROR: "IDENTITY_ERROR",
    PEER_ERROR: "PEER_ERROR",
    REQUEST_TOO_LARGE: "REQUEST_TOO_LARGE",
}
"""Symbolic name of every code this server sends (docs/rpc.md prints the same table)."""

ERROR_CODES: Final[Mapping[type[BaseException], int]] = {
    NotFound: NOT_FOUND,
    InvalidId: INVALID_ID,
    InvalidEntry: INVALID_CONTENT,  # ContentTooLarge, InvalidContent, EntryTooLarge, ...
    UnpublishableContent: INVALID_CONTENT,  # and LocalContentTooLarge: our own content
    ConfigError: CONFIG_ERROR,
    StorageError: STORAGE_ERROR,  # and DatabaseCorrupt
    IdentityError: IDENTITY_ERROR,
    PeerDisconnected: PEER_ERROR,
    RemoteProtocolError: PEER_ERROR,  # a peer broke the protocol (not an InvalidEntry)
    LocalProtocolError: INTERNAL_ERROR,  # our own bug
    P2PSocialError: SERVER_ERROR,  # any other error of ours
}
"""Exception type -> code. The most derived class in an exception's MRO wins.

:class:`RpcError` (and so :class:`InvalidParams`) is not in the table: it carries its own
code, message and data. An exception outside the tree is :data:`INTERNAL_ERROR`.
"""

RequestId: TypeAlias = str | int | float | None


@dataclass(frozen=True)
class ErrorObject:
    """The ``error`` member of an error response."""

    code: int
    message: str
    data: Any = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


@dataclass(frozen=True)
class Request:
    """One well-formed request. ``is_notification`` is true when the ``id`` member is absent.

    ``params`` is the ``params`` member as sent (``{}`` when absent): an object, or an array,
    which :meth:`named_params` refuses.
    """

    method: str
    params: dict[str, Any] | list[Any] = field(default_factory=dict)
    id: RequestId = None
    is_notification: bool = False

    def named_params(self) -> dict[str, Any]:
        """The params object. Raises :class:`InvalidParams` if params were given by position."""
        if isinstance(self.params, list):
            raise InvalidParams(
                "params must be an object of named parameters; by-position arrays are not "
                f"supported (method {self.method!r})"
            )
        return self.params


@dataclass(frozen=True)
class Response:
    """A successful answer."""

    id: RequestId
    result: Any


@dataclass(frozen=True)
class ErrorResponse:
    """An error answer. ``id`` is ``None`` when the request's id could not be read."""

    id: RequestId
    error: ErrorObject


@dataclass(frozen=True)
class Notification:
    """A message without an id: from the server, a subscription notification."""

    method: str
    params: dict[str, Any]


Item: TypeAlias = Request | ErrorResponse
"""What :func:`parse_line` gives per request: the request, or the error answer to send."""
ServerMessage: TypeAlias = Response | ErrorResponse | Notification
"""What :func:`parse_server_line` gives per message."""


# ----------------------------------------------------------------------------- lines


class LineReader:
    """Cuts a byte stream into lines of at most ``max_line`` bytes (newline excluded).

    ``receive_data(b)`` adds bytes; ``next_line()`` returns the next complete line without its
    ``\\n`` (and a trailing ``\\r``), or ``None`` until one is complete. Once the pending
    bytes exceed ``max_line`` without a newline, or a completed line is longer, ``next_line``
    raises :class:`LineTooLong` (and keeps raising: the stream cannot be resynchronised).
    Memory is bounded by ``max_line`` plus one ``receive_data`` chunk.
    """

    def __init__(self, max_line: int = MAX_LINE_SIZE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._pos = 0  # start of the unread part
        self._scanned = 0  # offset up to which there is no newline
        self._too_long = False

    def receive_data(self, data: bytes | bytearray) -> None:
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._scanned -= self._pos
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as lines."""
        return len(self._buf) - self._pos

    def next_line(self) -> bytes | None:
        if self._too_long:
            raise LineTooLong(f"line longer than {self.max_line} bytes")
        end = self._buf.find(b"\n", max(self._scanned, self._pos))
        if end < 0:
            self._scanned = len(self._buf)
            if len(self._buf) - self._pos > self.max_line:
                self._too_long = True
                raise LineTooLong(f"line longer than {self.max_line} bytes")
            return None
        line = bytes(self._buf[self._pos : end])
        self._pos = end + 1
        self._scanned = self._pos
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line:
            self._too_long = True
            raise LineTooLong(f"line of {len(line)} bytes; the limit is {self.max_line}")
        return line


# ----------------------------------------------------------------------------- parsing


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(line: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity. Raises ValueError or RecursionError."""
    return json.loads(line.decode("utf-8"), parse_constant=_reject_constant)


def _is_valid_id(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _invalid(message: str, request_id: RequestId = None) -> ErrorResponse:
    error = ErrorObject(INVALID_REQUEST, message, {"type": "InvalidRequest"})
    return ErrorResponse(request_id, error)


def _parse_request(obj: Any) -> Item:
    if not isinstance(obj, dict):
        return _invalid(f"a request must be a JSON object, not {_json_type(obj)}")
    has_id = "id" in obj
    request_id = obj.get("id")
    if not _is_valid_id(request_id):
        return _invalid(f"the id must be a string, a number or null, not {_json_type(request_id)}")
    if obj.get("jsonrpc") != JSONRPC_VERSION:
        return _invalid('the request must have "jsonrpc": "2.0"', request_id)
    method = obj.get("method")
    if not isinstance(method, str):
        return _invalid(f"the method must be a string, not {_json_type(method)}", request_id)
    params = obj.get("params", {})
    if not isinstance(params, dict | list):
        return _invalid(
            f"params must be an object of named parameters, not {_json_type(params)}", request_id
        )
    return Request(method, params, request_id, is_notification=not has_id)


def parse_line(line: bytes, *, max_batch: int = MAX_BATCH) -> tuple[list[Item], bool]:
    """Parse one request line into ``(items, is_batch)``. Never raises.

    A single request gives one item; a batch gives one item per element, in order. Bad JSON
    or bad UTF-8 gives one :data:`PARSE_ERROR` response; an empty batch, or one with more
    than ``max_batch`` elements, one :data:`INVALID_REQUEST` response (and ``is_batch`` is
    false: such errors are answered with a single object, not an array).
    """
    try:
        obj = _loads(line)
    except (ValueError, RecursionError) as exc:
        error = ErrorObject(PARSE_ERROR, f"parse error: {_short(exc)}", {"type": "ParseError"})
        return [ErrorResponse(None, error)], False
    if isinstance(obj, list):
        if not obj:
            return [_invalid("empty batch")], False
        if len(obj) > max_batch:
            return [_invalid(f"batch of {len(obj)} requests; the limit is {max_batch}")], False
        return [_parse_request(element) for element in obj], True
    return [_parse_request(obj)], False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------- encoding


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, no newline. Raises TypeError or ValueError if not JSON-compatible.

    Strings holding lone surrogates (which a client can send as ``"\\ud800"``) cannot be
    UTF-8: such values are written with ASCII escapes instead.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


def _response_body(message: Response | ErrorResponse) -> bytes:
    if isinstance(message, Response):
        return dumps({"jsonrpc": JSONRPC_VERSION, "id": message.id, "result": message.result})
    return dumps({"jsonrpc": JSONRPC_VERSION, "id": message.id, "error": message.error.to_json()})


def encode_response(request_id: RequestId, result: Any) -> bytes:
    """One response line. Raises TypeError or ValueError if ``result`` is not JSON."""
    return _response_body(Response(request_id, result)) + b"\n"


def encode_error(request_id: RequestId, error: ErrorObject) -> bytes:
    """One error response line. Raises TypeError or ValueError if ``error.data`` is not JSON."""
    return _response_body(ErrorResponse(request_id, error)) + b"\n"


def encode_batch(bodies: Iterable[bytes]) -> bytes:
    """A batch answer line from encoded responses (each without its newline)."""
    return b"[" + b",".join(body.rstrip(b"\n") for body in bodies) + b"]\n"


def encode_request(
    request_id: RequestId, method: str, params: Mapping[str, Any] | None = None
) -> bytes:
    """One request line. Raises TypeError or ValueError if ``params`` is not JSON."""
    obj: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "id": request_id, "method": method}
    if params:
        obj["params"] = dict(params)
    return dumps(obj) + b"\n"


def encode_notification(method: str, params: Mapping[str, Any] | None = None) -> bytes:
    """One notification line (a request without an id: never answered)."""
    obj: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "method": method}
    if params:
        obj["params"] = dict(params)
    return dumps(obj) + b"\n"


MESSAGE_NOTIFICATION_END: Final = b"}}\n"
"""What follows the message in a ``message`` notification line."""


def message_notification_start(subscription: str) -> bytes:
    """What comes before the message in a ``message`` notification line for
    ``subscription``: ``start + message + MESSAGE_NOTIFICATION_END`` is the line (a
    subscription makes its start once, not once per item)."""
    return (
        b'{"jsonrpc":"2.0","method":"message","params":{"subscription":'
        + dumps(subscription)
        + b',"message":'
    )


def encode_message_notification(subscription: str, message: bytes) -> bytes:
    """``{"method": "message", "params": {"subscription": ..., "message": ...}}`` as a line.

    ``message`` is the item already encoded with :func:`dumps`, so one published item is
    encoded once however many subscriptions receive it.
    """
    return message_notification_start(subscription) + message + MESSAGE_NOTIFICATION_END


def encode_overflow_notification(subscription: str, dropped: int) -> bytes:
    """``{"method": "overflow", "params": {"subscription": ..., "dropped": N}}`` as a line."""
    return encode_notification("overflow", {"subscription": subscription, "dropped": dropped})


# ----------------------------------------------------------------------------- errors


def _lookup_code(exc_type: type[BaseException]) -> int | None:
    for klass in exc_type.__mro__:
        code = ERROR_CODES.get(klass)
        if code is not None:
            return code
    return None


def error_for_exception(exc: BaseException) -> ErrorObject:
    """The error object answering a call that raised ``exc``.

    :class:`RpcError` keeps its code and message; its ``data`` becomes an object with a
    ``type`` (a non-object ``data`` is put under ``"value"``). Our other exceptions get
    their code from :data:`ERROR_CODES`, their text as the message and ``{"type": name}``
    as data. Anything else is :data:`INTERNAL_ERROR` with the message "internal error":
    the details belong in the daemon's log, which the caller is responsible for writing.
    """
    name = type(exc).__name__
    if isinstance(exc, RpcError):
        if isinstance(exc.data, dict):
            data: dict[str, Any] = {"type": name, **exc.data}
        elif exc.data is None:
            data = {"type": name}
        else:
            data = {"type": name, "value": exc.data}
        return ErrorObject(exc.code, exc.message, data)
    code = _lookup_code(type(exc)) if isinstance(exc, P2PSocialError) else None
    if code is None or code == INTERNAL_ERROR:
        return ErrorObject(INTERNAL_ERROR, "internal error", {"type": name})
    return ErrorObject(code, _short(exc, 1000), {"type": name})


# ----------------------------------------------------------------------------- client side


def _parse_server_object(obj: Any) -> ServerMessage:
    if not isinstance(obj, dict) or obj.get("jsonrpc") != JSONRPC_VERSION:
        raise CodecError("the daemon sent something that is not a JSON-RPC 2.0 message")
    if "method" in obj:
        method, params = obj["method"], obj.get("params", {})
        if not isinstance(method, str) or not isinstance(params, dict):
            raise CodecError("the daemon sent a malformed notification")
        return Notification(method, params)
    request_id = obj.get("id")
    if not _is_valid_id(request_id):
        raise CodecError("the daemon sent a response with a malformed id")
    if "error" in obj:
        error = obj["error"]
        if (
            not isinstance(error, dict)
            or not isinstance(error.get("code"), int)
            or not isinstance(error.get("message"), str)
        ):
            raise CodecError("the daemon sent a malformed error response")
        code, message, data = error["code"], error["message"], error.get("data")
        return ErrorResponse(request_id, ErrorObject(code, message, data))
    if "result" not in obj:
        raise CodecError("the daemon sent a response with neither result nor error")
    return Response(request_id, obj["result"])


def parse_server_line(line: bytes) -> list[ServerMessage]:
    """Parse one line from the server: a response, a notification, or a batch of responses.

    Raises :class:`CodecError` if the line is not JSON or not JSON-RPC 2.0.
    """
    try:
        obj = _loads(line)
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"the daemon sent invalid JSON: {_short(exc)}") from exc
    if isinstance(obj, list):
        if not obj:
            raise CodecError("the daemon sent an empty batch")
        return [_parse_server_object(element) for element in obj]
    return [_parse_server_object(obj)]
