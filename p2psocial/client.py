"""The Python client for the daemon's local JSON-RPC socket (``<home>/rpc.sock``).

Two front ends share one sans-IO core (:class:`ClientProtocol`):

- :class:`Client`, blocking, for scripts and the CLI. Importing this module does not import
  trio. One ``Client`` per thread: it is not thread-safe::

      with Client.for_home(home) as client:
          me = client.call("whoami")
          with client.subscribe("subscribe", type="post") as sub:
              for message in sub:
                  if isinstance(message, Overflow):
                      print("missed", message.dropped)
                  else:
                      print(message)

- :class:`AsyncClient`, for trio programs; any number of tasks may call concurrently::

      async with AsyncClient.for_home(home) as client:
          me = await client.call("whoami")
          async with client.subscribe("subscribe", type="post") as sub:
              async for message in sub:
                  ...

Errors: an error answer raises :class:`~p2psocial.errors.RpcError` (``code``, ``message``,
``data``); no socket, or a socket nobody listens on, raises
:class:`~p2psocial.errors.DaemonNotRunning` naming the socket path; the connection breaking,
or no answer within the blocking client's ``timeout``, raises
:class:`~p2psocial.errors.PeerDisconnected`; a server that does not speak JSON-RPC raises
:class:`~p2psocial.errors.CodecError`.

Subscriptions: a subscription method's result is the subscription id (a string, or an object
with a ``"subscription"`` member). Iterating yields each message (a ``dict``) and, where
messages were dropped because this client read too slowly (on the server or in this
client's own bounded buffer), one :class:`Overflow` saying how many.
"""

from __future__ import annotations

import os
import socket
import time
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from p2psocial.client_methods import SocialMethods
from p2psocial.errors import (
    CodecError,
    DaemonNotRunning,
    LocalProtocolError,
    P2PSocialError,
    PeerDisconnected,
    RpcError,
)
from p2psocial.proto.dropqueue import DropQueue
from p2psocial.proto.jsonrpc import (
    ErrorResponse,
    LineReader,
    Notification,
    Response,
    encode_notification,
    encode_request,
    parse_server_line,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping
    from types import TracebackType

    import trio

    from p2psocial.home import Home

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_ANSWER_LINE",
    "SUBSCRIPTION_BUFFER",
    "AsyncClient",
    "AsyncSubscription",
    "Client",
    "ClientProtocol",
    "Overflow",
    "Subscription",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds the blocking client waits for an answer."""
MAX_ANSWER_LINE = 64 << 20
"""Longest line the client accepts from the daemon (64 MiB)."""
SUBSCRIPTION_BUFFER = 1000
"""Messages the client holds per subscription that the app has not consumed yet."""

_RECEIVE_SIZE = 65536


class Overflow(dict[str, Any]):
    """Stands in a subscription's stream where messages were dropped.

    It is ``{"overflow": True, "dropped": N}``; test for it with ``isinstance``.
    """

    def __init__(self, dropped: int) -> None:
        super().__init__(overflow=True, dropped=dropped)

    @property
    def dropped(self) -> int:
        return int(self["dropped"])


def _socket_for_home(home: str | os.PathLike[str] | Home) -> Path:
    from p2psocial.home import Home  # here: keeps importing the client light

    return home.socket_path if isinstance(home, Home) else Home(Path(home)).socket_path


def _not_running(path: Path, exc: OSError) -> DaemonNotRunning:
    if isinstance(exc, FileNotFoundError):
        return DaemonNotRunning(f"the daemon is not running: there is no socket at {path}")
    if isinstance(exc, ConnectionRefusedError):
        return DaemonNotRunning(
            f"the daemon is not running: nothing listens on {path} (a daemon that stopped "
            "without cleaning up?)"
        )
    return DaemonNotRunning(f"cannot reach the daemon at {path}: {exc.strerror or exc}")


def _subscription_id(result: Any) -> str:
    if isinstance(result, dict):
        result = result.get("subscription")
    if not isinstance(result, str):
        raise CodecError("the subscription method did not answer with a subscription id")
    return result


# ------------------------------------------------------------------------------ sans-IO


class ClientProtocol:
    """The client's state, without I/O: ids, answers and subscription buffers.

    :meth:`request` gives an id and the bytes to send; :meth:`receive_data` takes bytes from
    the daemon and reports which calls got answers and which subscriptions got messages;
    :meth:`result` returns a call's result or raises its :class:`RpcError`. Once the
    connection has failed (:meth:`fail`), every waiting call raises that error.
    """

    def __init__(
        self, *, max_line: int = MAX_ANSWER_LINE, buffer: int = SUBSCRIPTION_BUFFER
    ) -> None:
        self._lines = LineReader(max_line)
        self._buffer = buffer
        self._next_id = 0
        self._waiting: set[int] = set()
        self._subscribing: set[int] = set()
        self._answers: dict[int, Response | ErrorResponse] = {}
        self._inboxes: dict[str, DropQueue[dict[str, Any]]] = {}
        self.error: P2PSocialError | None = None
        """Why the connection is unusable, once it is."""

    def request(
        self, method: str, params: Mapping[str, Any], *, subscribe: bool = False
    ) -> tuple[int, bytes]:
        """A new call: its id and its line. Raises ``error`` if the connection failed."""
        if self.error is not None:
            raise self.error
        self._next_id += 1
        request_id = self._next_id
        try:
            line = encode_request(request_id, method, params)
        except (TypeError, ValueError) as exc:
            raise LocalProtocolError(f"params are not JSON-compatible: {exc}") from exc
        self._waiting.add(request_id)
        if subscribe:
            self._subscribing.add(request_id)
        return request_id, line

    def receive_data(self, data: bytes | bytearray) -> tuple[list[int], set[str]]:
        """Take bytes; return (ids answered, subscription ids with new items).

        Raises :class:`CodecError` or :class:`~p2psocial.errors.RemoteProtocolError` if the
        daemon sent something malformed (the connection should then be closed: call
        :meth:`fail`).
        """
        self._lines.receive_data(data)
        answered: list[int] = []
        notified: set[str] = set()
        while (line := self._lines.next_line()) is not None:
            if not line.strip():
                continue
            for message in parse_server_line(line):
                if isinstance(message, Notification):
                    sub_id = self._notify(message)
                    if sub_id is not None:
                        notified.add(sub_id)
                elif message.id is None and isinstance(message, ErrorResponse):
                    # An answer to no call in particular: the server refused the connection
                    # or a line; it closes the connection after it.
                    error = message.error
                    self.fail(RpcError(error.code, error.message, error.data))
                elif isinstance(message.id, int) and message.id in self._waiting:
                    self._answer(message.id, message)
                    answered.append(message.id)
        return answered, notified

    def _answer(self, request_id: int, message: Response | ErrorResponse) -> None:
        self._waiting.discard(request_id)
        self._answers[request_id] = message
        if request_id in self._subscribing:
            self._subscribing.discard(request_id)
            if isinstance(message, Response):
                try:
                    sub_id = _subscription_id(message.result)
                except CodecError:
                    return
                # Register now, before the next line: notifications may follow at once.
                self._inboxes[sub_id] = DropQueue(self._buffer, Overflow)

    def _notify(self, message: Notification) -> str | None:
        sub_id = message.params.get("subscription")
        inbox = self._inboxes.get(sub_id) if isinstance(sub_id, str) else None
        if inbox is None or not isinstance(sub_id, str):
            return None  # unknown (already unsubscribed) or not ours: ignore
        if message.method == "message":
            item = message.params.get("message")
            inbox.push(item if isinstance(item, dict) else {"value": item})
        elif message.method == "overflow":
            dropped = message.params.get("dropped")
            count = dropped if isinstance(dropped, int) and dropped > 0 else 1
            inbox.push(Overflow(count), counts_as=count)
        else:
            return None
        return sub_id

    def has_answer(self, request_id: int) -> bool:
        return request_id in self._answers or self.error is not None

    def result(self, request_id: int) -> Any:
        """The call's result. Raises its RpcError, or ``error`` if the connection failed."""
        message = self._answers.pop(request_id, None)
        self._waiting.discard(request_id)
        if message is None:
            if self.error is not None:
                raise self.error
            raise PeerDisconnected("no answer yet")  # pragma: no cover - misuse
        if isinstance(message, ErrorResponse):
            error = message.error
            raise RpcError(error.code, error.message, error.data)
        return message.result

    def abandon(self, request_id: int) -> None:
        """Forget a call (its answer, if it ever comes, is ignored)."""
        self._waiting.discard(request_id)
        self._subscribing.discard(request_id)
        self._answers.pop(request_id, None)

    def next_message(self, sub_id: str) -> dict[str, Any] | None:
        """The subscription's next message or :class:`Overflow`, or None if none is buffered.

        Raises ``error`` if nothing is buffered and the connection failed.
        """
        inbox = self._inboxes.get(sub_id)
        item = inbox.pop() if inbox is not None else None
        if item is None and self.error is not None:
            raise self.error
        return item

    def is_subscribed(self, sub_id: str) -> bool:
        return sub_id in self._inboxes

    def forget_subscription(self, sub_id: str) -> None:
        self._inboxes.pop(sub_id, None)

    def fail(self, error: P2PSocialError) -> P2PSocialError:
        """Mark the connection unusable; return the reason (the first one recorded)."""
        if self.error is None:
            self.error = error
        return self.error


# ------------------------------------------------------------------------------ blocking


class Client(SocialMethods):
    """A blocking connection to the daemon. Not thread-safe; close it (or use ``with``).

    Raises :class:`DaemonNotRunning` (naming the socket) if it cannot connect.
    ``timeout`` (seconds, or None for no limit) bounds each call; when it passes, the
    connection is closed and the call raises :class:`PeerDisconnected`.

    Besides :meth:`call`, typed helpers for the social methods (``timeline``, ``search``,
    ``like``, ``notifications``, ...: :class:`~p2psocial.client_methods.SocialMethods`).
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_line: int = MAX_ANSWER_LINE,
        buffer: int = SUBSCRIPTION_BUFFER,
    ) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout
        self._proto = ClientProtocol(max_line=max_line, buffer=buffer)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(os.fspath(self.socket_path))
        except OSError as exc:
            self._sock.close()
            raise _not_running(self.socket_path, exc) from exc

    @classmethod
    def for_home(cls, home: str | os.PathLike[str] | Home, **kwargs: Any) -> Client:
        """Connect to the daemon of the home folder ``home`` (its ``rpc.sock``)."""
        return cls(_socket_for_home(home), **kwargs)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the daemon drops this client's subscriptions). Idempotent."""
        self._proto.fail(PeerDisconnected("the client was closed"))
        self._sock.close()

    def call(self, method: str, /, **params: Any) -> Any:
        """Call ``method`` with named ``params``; return its result.

        Raises :class:`RpcError` for an error answer, :class:`PeerDisconnected` if the
        connection breaks or no answer comes within ``timeout``.
        """
        return self._call(method, params)

    def notify(self, method: str, /, **params: Any) -> None:
        """Send a notification: a call without an id, which the daemon never answers."""
        self._send(encode_notification(method, params))

    def subscribe(self, method: str = "subscribe", /, **params: Any) -> Subscription:
        """Call the subscription method ``method``; return the open :class:`Subscription`."""
        sub_id = _subscription_id(self._call(method, params, subscribe=True))
        return Subscription(self, sub_id)

    def _call(self, method: str, params: Mapping[str, Any], *, subscribe: bool = False) -> Any:
        request_id, line = self._proto.request(method, params, subscribe=subscribe)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self._send(line)
        while not self._proto.has_answer(request_id):
            remaining = None if deadline is None else deadline - time.monotonic()
            if (remaining is not None and remaining <= 0) or not self._receive(remaining):
                self._proto.abandon(request_id)
                self.close()
                raise PeerDisconnected(
                    f"no answer to {method!r} from the daemon at {self.socket_path} within "
                    f"{self.timeout} s; the connection is closed"
                )
        return self._proto.result(request_id)

    def _send(self, data: bytes) -> None:
        if self._proto.error is not None:
            raise self._proto.error
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(data)
        except OSError as exc:
            raise self._lost(f"sending to the daemon at {self.socket_path} failed: {exc}") from exc

    def _receive(self, timeout: float | None) -> bool:
        """Read once (waiting at most ``timeout``) and process it. False on timeout.

        Raises the connection's error if it is (or becomes) unusable.
        """
        if self._proto.error is not None:
            raise self._proto.error
        try:
            self._sock.settimeout(timeout)
            data = self._sock.recv(_RECEIVE_SIZE)
        except TimeoutError:
            return False
        except OSError as exc:
            raise self._lost(
                f"the connection to the daemon at {self.socket_path} broke: {exc}"
            ) from exc
        if not data:
            raise self._lost(f"the daemon at {self.socket_path} closed the connection")
        try:
            self._proto.receive_data(data)
        except P2PSocialError as exc:
            self._proto.fail(exc)
            self._sock.close()
            raise
        return True

    def _lost(self, reason: str) -> P2PSocialError:
        """Close after a failure; return the connection's error (the first one recorded)."""
        self._sock.close()
        return self._proto.fail(PeerDisconnected(reason))


class Subscription:
    """An open subscription of a blocking :class:`Client`: iterate it for messages.

    Iteration blocks until a message arrives and raises :class:`PeerDisconnected` if the
    connection ends; it stops after :meth:`close`.
    """

    def __init__(self, client: Client, sub_id: str) -> None:
        self.id = sub_id
        self._client = client
        self._closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        while True:
            message = self.get(timeout=None)
            if message is not None:
                return message
            if self._closed:
                raise StopIteration

    def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message or :class:`Overflow`, waiting at most ``timeout`` seconds.

        Returns None on timeout (or when closed); the subscription stays open.
        """
        proto = self._client._proto
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            message = proto.next_message(self.id)
            if message is not None:
                return message
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self._client._receive(remaining)
        return None

    def close(self) -> None:
        """Unsubscribe (if the connection is still up) and stop the iteration."""
        if self._closed:
            return
        self._closed = True
        self._client._proto.forget_subscription(self.id)
        if self._client._proto.error is None:
            try:
                self._client.call("unsubscribe", subscription=self.id)
            except (RpcError, PeerDisconnected):
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ------------------------------------------------------------------------------ trio


class AsyncClient:
    """A trio connection to the daemon; use it as ``async with AsyncClient(path) as c``.

    Entering raises :class:`DaemonNotRunning` (naming the socket) if it cannot connect.
    Calls may run concurrently from many tasks; put a deadline around them with
    ``trio.fail_after`` where needed.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        *,
        max_line: int = MAX_ANSWER_LINE,
        buffer: int = SUBSCRIPTION_BUFFER,
    ) -> None:
        self.socket_path = Path(socket_path)
        self._proto = ClientProtocol(max_line=max_line, buffer=buffer)
        self._call_events: dict[int, trio.Event] = {}
        self._sub_events: dict[str, trio.Event] = {}
        self._stack = AsyncExitStack()
        self._stream: trio.SocketStream | None = None
        self._send_lock: trio.Lock | None = None

    @classmethod
    def for_home(cls, home: str | os.PathLike[str] | Home, **kwargs: Any) -> AsyncClient:
        """A client for the daemon of the home folder ``home`` (its ``rpc.sock``)."""
        return cls(_socket_for_home(home), **kwargs)

    async def __aenter__(self) -> Self:
        import trio  # here: the blocking client must not need trio

        try:
            self._stream = await trio.open_unix_socket(os.fspath(self.socket_path))
        except OSError as exc:
            raise _not_running(self.socket_path, exc) from exc
        self._send_lock = trio.Lock()
        nursery = await self._stack.enter_async_context(trio.open_nursery())
        nursery.start_soon(self._read_loop, self._stream)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            await self.aclose()
        finally:
            suppress = await self._stack.__aexit__(exc_type, exc, tb)
        return suppress

    async def aclose(self) -> None:
        """Close the connection; pending calls raise :class:`PeerDisconnected`."""
        import trio

        self._proto.fail(PeerDisconnected("the client was closed"))
        self._wake_all()
        if self._stream is not None:
            await trio.aclose_forcefully(self._stream)

    async def call(self, method: str, /, **params: Any) -> Any:
        """Call ``method`` with named ``params``; return its result.

        Raises :class:`RpcError` for an error answer, :class:`PeerDisconnected` if the
        connection is or becomes unusable.
        """
        return await self._call(method, params)

    async def notify(self, method: str, /, **params: Any) -> None:
        """Send a notification: a call without an id, which the daemon never answers."""
        await self._send(encode_notification(method, params))

    @asynccontextmanager
    async def subscribe(
        self, method: str = "subscribe", /, **params: Any
    ) -> AsyncIterator[AsyncSubscription]:
        """Open a subscription with ``method``; unsubscribe when the block ends."""
        sub_id = _subscription_id(await self._call(method, params, subscribe=True))
        sub = AsyncSubscription(self, sub_id)
        try:
            yield sub
        finally:
            await sub.aclose()

    async def _call(
        self, method: str, params: Mapping[str, Any], *, subscribe: bool = False
    ) -> Any:
        import trio

        request_id, line = self._proto.request(method, params, subscribe=subscribe)
        event = self._call_events[request_id] = trio.Event()
        try:
            await self._send(line)
            if not self._proto.has_answer(request_id):
                await event.wait()
            return self._proto.result(request_id)
        finally:
            self._call_events.pop(request_id, None)
            self._proto.abandon(request_id)

    async def _send(self, data: bytes) -> None:
        import trio

        if self._proto.error is not None:
            raise self._proto.error
        assert self._stream is not None and self._send_lock is not None, "use async with"
        try:
            async with self._send_lock:
                await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            error = self._proto.fail(PeerDisconnected(f"sending to the daemon failed: {exc}"))
            self._wake_all()
            raise error from exc

    async def _read_loop(self, stream: trio.SocketStream) -> None:
        import trio

        reason = f"the daemon at {self.socket_path} closed the connection"
        try:
            while data := await stream.receive_some(_RECEIVE_SIZE):
                answered, notified = self._proto.receive_data(data)
                for request_id in answered:
                    event = self._call_events.get(request_id)
                    if event is not None:
                        event.set()
                for sub_id in notified:
                    sub_event = self._sub_events.pop(sub_id, None)
                    if sub_event is not None:
                        sub_event.set()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            reason = f"the connection to the daemon at {self.socket_path} broke: {exc}"
        except P2PSocialError as exc:  # malformed data from the daemon
            self._proto.fail(exc)
            await trio.aclose_forcefully(stream)
        self._proto.fail(PeerDisconnected(reason))
        self._wake_all()

    def _wake_all(self) -> None:
        for event in self._call_events.values():
            event.set()
        for event in self._sub_events.values():
            event.set()
        self._sub_events.clear()


class AsyncSubscription:
    """An open subscription of an :class:`AsyncClient`: ``async for message in sub``.

    Iteration waits for the next message and raises :class:`PeerDisconnected` if the
    connection ends; it stops after :meth:`aclose`.
    """

    def __init__(self, client: AsyncClient, sub_id: str) -> None:
        self.id = sub_id
        self._client = client
        self._closed = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> dict[str, Any]:
        import trio

        proto = self._client._proto
        while not self._closed:
            message = proto.next_message(self.id)
            if message is not None:
                return message
            event = self._client._sub_events.setdefault(self.id, trio.Event())
            await event.wait()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Unsubscribe (if the connection is still up; waits at most 5 s) and stop."""
        import trio

        if self._closed:
            return
        self._closed = True
        client = self._client
        client._proto.forget_subscription(self.id)
        event = client._sub_events.pop(self.id, None)
        if event is not None:
            event.set()
        if client._proto.error is None:
            with trio.move_on_after(5, shield=True):
                try:
                    await client.call("unsubscribe", subscription=self.id)
                except (RpcError, PeerDisconnected):
                    pass
