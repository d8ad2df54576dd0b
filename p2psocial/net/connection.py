"""An authenticated, encrypted, multiplexed connection to a peer: the trio shell.

Theory of operation
-------------------
This module moves bytes and makes no protocol decisions. :func:`connect` (client) and
:func:`serve` (server) run the secret handshake over TCP, then hand back a
:class:`Connection`: box-stream (encryption) around packet-stream (framing), the three
sans-IO machines of ``p2psocial.proto`` driven by one reader task and one send lock.

- ``await conn.call(name, args)``: one request, one response.
- ``async with conn.stream(name, args) as s``: a duplex stream; ``await s.send(v)``,
  ``await s.receive()`` (raises :class:`trio.EndOfChannel` at a clean end), ``await
  s.end()``.
- Handlers answer the peer's requests: ``handlers[name] = fn`` where ``fn(conn, args)``
  returns the answer of an async call, or ``fn(conn, args, stream)`` serves a stream
  (declared with :func:`stream_handler`). Unknown methods get an ``unknown_method`` error
  answer; the connection stays up.

Backpressure: each stream has a bounded queue of received items. When it is full the
reader stops reading the socket, so TCP pushes back on the sender. (This pauses the whole
connection, as in Scuttlebutt's muxrpc: a stream consumer must not wait on another call of
the same connection while its queue is full.)

Closing (docs/protocol.md 5.8): ``aclose()`` sends our packet-stream goodbye and our
box-stream goodbye, then keeps reading (checking, and dropping, what still comes) until the
peer's packet-stream goodbye and box-stream goodbye, at most GOODBYE_TIMEOUT seconds, then
closes TCP. When the peer says goodbye first, the reader fails the open calls, answers with
the same two goodbyes and closes TCP at the peer's box-stream goodbye. Either way calls and
streams still open see PeerDisconnected; ``close_error`` is None only for a clean close.

Errors: trio's Broken/Closed resource errors and OSError become PeerDisconnected at this
edge; bad bytes from the peer surface as RemoteProtocolError subclasses from the proto
machines, logged, and close the connection at once, with no goodbye (as does a box-stream
goodbye that comes without the packet-stream goodbye before it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import trio

from p2psocial.errors import (
    FramingError,
    HandshakeFailed,
    P2PSocialError,
    PeerDisconnected,
    RemoteProtocolError,
    RpcError,
)
from p2psocial.identity import Keypair, feed_id
from p2psocial.proto import boxstream, packets
from p2psocial.proto.codec import BodyCodec, MsgpackCodec
from p2psocial.proto.handshake import (
    ClientAuthenticated,
    HandshakeComplete,
    Role,
    SecretHandshake,
    Session,
)

log = logging.getLogger("p2psocial.net")

READ_SIZE = 64 * 1024  # larger reads land on glibc mmap-backed buffers and run slower
STREAM_QUEUE = 8
"""Items a stream buffers for a slow reader before the connection stops reading (each up
to a 1 MiB frame): beyond it, TCP holds the peer back."""
HANDSHAKE_TIMEOUT = 10.0
GOODBYE_TIMEOUT = 2.0
"""Seconds a closing connection waits for the peer's goodbyes (docs/protocol.md 5.8)."""
FRAME_DEADLINE = 30.0
"""Seconds a peer may take to finish a frame it began; longer is a protocol violation
(a peer holding a half-sent 1 MiB frame ties up that memory)."""
MAX_REMOTE_STREAMS = 64
"""Streams a peer may have open with us on one connection at once; one more is a protocol
violation (replication needs one)."""
MAX_REMOTE_CALLS = 1024
"""Calls (and streams) a peer may have waiting for our answer at once; one more is a
protocol violation."""
UNFINISHED_FRAMES_BUDGET = 32 * 1024 * 1024
"""Bytes of unfinished frames all connections of this process may hold together; the
connection whose frame would go beyond it is cut off."""


class FrameBudget:
    """Bytes held in unfinished frames, per connection, against one process-wide budget."""

    def __init__(self, limit: int = UNFINISHED_FRAMES_BUDGET) -> None:
        self.limit = limit
        self.total = 0
        self._held: dict[int, int] = {}

    def hold(self, owner: object, buffered: int) -> None:
        """``owner`` now holds ``buffered`` bytes; raises FramingError past the budget."""
        key = id(owner)
        self.total += buffered - self._held.get(key, 0)
        if buffered:
            self._held[key] = buffered
        else:
            self._held.pop(key, None)
        if self.total > self.limit and buffered:
            self.release(owner)
            raise FramingError(
                f"unfinished frames of all peers would hold more than {self.limit} bytes"
            )

    def release(self, owner: object) -> None:
        self.total -= self._held.pop(id(owner), 0)


FRAME_BUDGET = FrameBudget()


class ThrottledLog:
    """Logs at most ``burst`` lines per ``window`` seconds, then one summary line for the
    rest: a flood of failing connections cannot flood the log (or the disk it is on)."""

    def __init__(self, what: str, burst: int = 10, window: float = 10.0) -> None:
        self.what = what
        self.burst = burst
        self.window = window
        self._start = -window
        self._count = 0
        self._suppressed = 0

    def info(self, message: str, *args: object, now: float) -> None:
        if now - self._start >= self.window:
            if self._suppressed:
                log.info(
                    "%d more %s in %.0f s (not logged one by one)",
                    self._suppressed,
                    self.what,
                    self.window,
                )
            self._start, self._count, self._suppressed = now, 0, 0
        self._count += 1
        if self._count <= self.burst:
            log.info(message, *args)
        else:
            self._suppressed += 1


AsyncHandler = Callable[["Connection", Any], Awaitable[Any]]
StreamHandler = Callable[["Connection", Any, "RpcStream"], Awaitable[None]]


@dataclass(frozen=True)
class _StreamMarker:
    fn: StreamHandler


def stream_handler(fn: StreamHandler) -> _StreamMarker:
    """Mark ``fn(conn, args, stream)`` as the server side of a stream method."""
    return _StreamMarker(fn)


Handlers = Mapping[str, AsyncHandler | _StreamMarker]


@contextmanager
def _map_errors() -> Iterator[None]:
    """trio's errors to ours, at the shell's edge."""
    try:
        yield
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise PeerDisconnected(f"connection lost: {exc or type(exc).__name__}") from exc


# ---------------------------------------------------------------------------- handshake


async def _drive_handshake(
    tcp: trio.abc.Stream,
    machine: SecretHandshake,
    accept: Callable[[bytes], bool] | None,
) -> tuple[Session, bytes, bytes]:
    """Run the handshake to completion: (session, remote key, bytes read beyond it)."""

    async def flush() -> None:
        out = machine.data_to_send()
        if out:
            with _map_errors():
                await tcp.send_all(out)

    await flush()
    while True:
        event = machine.next_event()
        if isinstance(event, ClientAuthenticated):
            if accept is not None and not accept(event.remote_public_key):
                machine.refuse()
                who = feed_id(event.remote_public_key)
                raise HandshakeFailed("refused", f"{who} is not welcome")
            machine.accept()
            continue
        await flush()
        if isinstance(event, HandshakeComplete):
            trailing, _eof = machine.trailing_data
            return event.session, event.remote_public_key, trailing
        with _map_errors():
            data = await tcp.receive_some(READ_SIZE)
        machine.receive_data(bytes(data))


async def client_handshake(
    tcp: trio.abc.Stream,
    keys: Keypair,
    network_key: bytes,
    server_key: bytes,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> tuple[Session, bytes, bytes]:
    """The client side of the handshake. Raises HandshakeFailed or PeerDisconnected."""
    machine = SecretHandshake(
        Role.CLIENT,
        network_key=network_key,
        public_key=keys.public,
        secret_key=keys.secret,
        ephemeral_secret_key=os.urandom(32),
        server_public_key=server_key,
    )
    return await _handshake_within(tcp, machine, None, handshake_timeout)


async def server_handshake(
    tcp: trio.abc.Stream,
    keys: Keypair,
    network_key: bytes,
    accept: Callable[[bytes], bool] | None = None,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> tuple[Session, bytes, bytes]:
    """The server side; ``accept(remote_key)`` may refuse a client after it proved its key."""
    machine = SecretHandshake(
        Role.SERVER,
        network_key=network_key,
        public_key=keys.public,
        secret_key=keys.secret,
        ephemeral_secret_key=os.urandom(32),
    )
    return await _handshake_within(tcp, machine, accept, handshake_timeout)


async def _handshake_within(
    tcp: trio.abc.Stream,
    machine: SecretHandshake,
    accept: Callable[[bytes], bool] | None,
    seconds: float,
) -> tuple[Session, bytes, bytes]:
    with trio.move_on_after(seconds) as scope:
        return await _drive_handshake(tcp, machine, accept)
    assert scope.cancelled_caught
    raise HandshakeFailed("timeout", f"no handshake within {seconds:g} s")


# ---------------------------------------------------------------------------- streams


class RpcStream:
    """One duplex stream of a connection (either side's)."""

    def __init__(self, conn: Connection, req_id: int) -> None:
        self._conn = conn
        self.req_id = req_id
        self._send_items, self._items = trio.open_memory_channel[Any](STREAM_QUEUE)
        self._error: P2PSocialError | None = None
        self._ended_local = False

    async def send(self, value: Any) -> None:
        """Send one item. Raises PeerDisconnected if the connection is gone."""
        await self._conn._send(lambda: self._conn._packets.stream_send(self.req_id, value))

    async def receive(self) -> Any:
        """The next item; raises trio.EndOfChannel at a clean end, RpcError for an error end,
        PeerDisconnected if the connection went away."""
        try:
            return await self._items.receive()
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from None
            raise

    def receive_nowait(self) -> Any:
        """The next item if one is already here; raises trio.WouldBlock if none is, else
        as :meth:`receive`."""
        try:
            return self._items.receive_nowait()
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from None
            raise

    def __aiter__(self) -> RpcStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def end(self, error: packets.ErrorInfo | None = None) -> None:
        """End our side (cleanly, or with an error). Safe to call twice."""
        if self._ended_local or self._conn.closed:
            self._ended_local = True
            return
        self._ended_local = True
        try:
            await self._conn._send(lambda: self._conn._packets.stream_end(self.req_id, error))
        except (PeerDisconnected, P2PSocialError):
            pass

    async def _deliver(self, value: Any) -> None:
        try:
            await self._send_items.send(value)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # nobody reads this stream any more

    def _finish(self, error: P2PSocialError | None) -> None:
        if self._error is None:
            self._error = error
        self._send_items.close()


# ---------------------------------------------------------------------------- connection


class Connection:
    """An authenticated peer connection. Create it with :func:`connect` or :func:`serve`.

    ``closed`` turns true as soon as the connection starts to close (nothing more can be
    sent); :meth:`wait_closed` returns once it is wholly closed (TCP included). Then
    ``close_reason`` says why, and ``close_error`` is None for a clean close (goodbyes
    exchanged both ways, docs/protocol.md 5.8) or the error that made it unclean.
    """

    def __init__(
        self,
        tcp: trio.abc.Stream,
        session: Session,
        remote_key: bytes,
        handlers: Handlers,
        *,
        initiator: bool,
        codec: BodyCodec | None = None,
        trailing: bytes = b"",
    ) -> None:
        self.tcp = tcp
        self.remote_key = remote_key
        self.remote_id = feed_id(remote_key)
        self.initiator = initiator
        self.handlers = handlers
        self._encoder = boxstream.Encoder(session.encrypt_key, session.encrypt_nonce)
        self._decoder = boxstream.Decoder(session.decrypt_key, session.decrypt_nonce)
        self._packets = packets.PacketStream(codec or MsgpackCodec())
        self._trailing = trailing
        self._send_lock = trio.Lock()
        self._calls: dict[int, trio.MemorySendChannel[Any]] = {}
        self._streams: dict[int, RpcStream] = {}
        self._nursery: trio.Nursery | None = None
        # The reader runs in this scope. Once a close begins it gets the closing deadline
        # and a shield, so the goodbye exchange ends on its own terms or at the deadline.
        self._reader_scope = trio.CancelScope()
        self._running = False
        self._heard_goodbye = False  # the peer's packet-stream goodbye came in
        self._goodbye_sent = False  # ours went out (or was attempted)
        self._wire_broken = False  # a write was interrupted: no well-formed goodbye possible
        self._concluded = False
        self._finished = trio.Event()
        self.closed = False
        self.close_reason: str | None = None
        self.close_error: P2PSocialError | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self._partial_since: float | None = None  # when the unfinished frame began
        self._remote_calls = 0  # the peer's calls and streams being served
        self._remote_streams = 0  # of them, streams

    @property
    def closed_cleanly(self) -> bool:
        """True once the connection is closed and both sides' goodbyes were exchanged."""
        return self._finished.is_set() and self.close_error is None

    # -- sending

    async def _write(self, wire: bytes) -> None:
        """Write box-stream bytes; the caller holds the send lock."""
        written = False
        try:
            with _map_errors():
                await self.tcp.send_all(wire)
            written = True
        finally:
            if not written:  # cancelled or failed part way: the stream may hold half a packet
                self._wire_broken = True
        self.bytes_out += len(wire)

    async def _send(self, make_frames: Callable[[], bytes]) -> None:
        """Write the frames ``make_frames()`` returns, in order with every other send."""
        if self.closed:
            raise PeerDisconnected(f"connection to {self.remote_id} is closed")
        async with self._send_lock:
            if self.closed:
                raise PeerDisconnected(f"connection to {self.remote_id} is closed")
            await self._write(self._encoder.encrypt(make_frames()))

    async def call(self, name: str, args: Any = None) -> Any:
        """Make an async request and wait for its answer. Raises RpcError for an error
        answer, PeerDisconnected if the connection goes first."""
        send_answer, answer = trio.open_memory_channel[Any](1)
        req_id_box: list[int] = []

        def frames() -> bytes:
            req_id, data = self._packets.request(name, args)
            req_id_box.append(req_id)
            self._calls[req_id] = send_answer
            return data

        await self._send(frames)
        try:
            result = await answer.receive()
        except trio.EndOfChannel:
            raise PeerDisconnected(
                f"connection to {self.remote_id} closed before answering {name}"
            ) from None
        finally:
            if req_id_box:
                self._calls.pop(req_id_box[0], None)
        if isinstance(result, RpcError):
            raise result
        return result

    @asynccontextmanager
    async def stream(self, name: str, args: Any = None) -> AsyncIterator[RpcStream]:
        """Open a duplex stream; our side is ended when the block exits."""
        holder: list[RpcStream] = []

        def frames() -> bytes:
            req_id, data = self._packets.open_stream(name, args, packets.CallType.DUPLEX)
            rpc = RpcStream(self, req_id)
            self._streams[req_id] = rpc
            holder.append(rpc)
            return data

        await self._send(frames)
        rpc = holder[0]
        try:
            yield rpc
        finally:
            with trio.CancelScope(shield=True):
                await rpc.end()

    # -- closing (docs/protocol.md 5.8)

    async def aclose(self, reason: str = "closed") -> None:
        """Close with goodbyes: send our packet-stream goodbye and box-stream goodbye, then
        wait up to GOODBYE_TIMEOUT seconds for the peer's two goodbyes, then close TCP.

        Idempotent, and not cancellable (but bounded by the deadline). If the peer already
        started a close, or the connection already broke, this only waits for the end.
        Afterwards ``close_error`` is None if the close was clean.
        """
        with trio.CancelScope(shield=True):
            if self._begin_close(reason):
                try:
                    with trio.move_on_at(self._reader_scope.deadline):
                        await self._send_goodbye()
                except PeerDisconnected as exc:
                    self._conclude(exc)
                    self._reader_scope.cancel()
                self._stop_handlers()
                if not self._running:  # no reader (never started): nobody can hear the peer
                    self._conclude(PeerDisconnected("closed without reading the peer's goodbye"))
                    await self.tcp.aclose()
                    self._finished.set()
            await self._finished.wait()

    async def wait_closed(self) -> None:
        """Wait until the connection is wholly closed (``close_reason`` is then set)."""
        await self._finished.wait()

    def _begin_close(self, reason: str) -> bool:
        """Start a close with goodbyes (the first caller wins; False if a close or a failure
        came first): nothing more is sent but goodbyes, calls and streams fail with
        PeerDisconnected, and the reader must see the peer's goodbyes before the deadline."""
        if self.closed:
            return False
        self.closed = True
        self.close_reason = reason
        self._abandon(PeerDisconnected(f"connection to {self.remote_id} {reason}"))
        scope = self._reader_scope
        scope.deadline = min(scope.deadline, trio.current_time() + GOODBYE_TIMEOUT)
        scope.shield = True
        return True

    async def _send_goodbye(self) -> None:
        """Write our packet-stream goodbye and box-stream goodbye, in one write, once.

        Takes the send lock, so a frame already being written goes out whole first."""
        async with self._send_lock:
            if self._goodbye_sent or self._concluded:
                return
            self._goodbye_sent = True
            if self._wire_broken:
                raise PeerDisconnected("can't say goodbye: an interrupted write broke the stream")
            wire = self._encoder.encrypt(self._packets.goodbye()) + self._encoder.goodbye()
            await self._write(wire)

    def _stop_handlers(self) -> None:
        """Cancel the handler tasks (the reader is shielded once a close has begun)."""
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _abandon(self, failure: PeerDisconnected) -> None:
        """Fail every call and stream still open: to them, any close is a disconnect."""
        for channel in self._calls.values():
            channel.close()
        self._calls.clear()
        for rpc in self._streams.values():
            rpc._finish(failure)
        self._streams.clear()

    def _conclude(self, error: P2PSocialError | None) -> None:
        """Record how the connection ended (the first call wins): ``error`` None is a clean
        close. A failure before any goodbye fails the open calls and names the reason."""
        if self._concluded:
            return
        self._concluded = True
        self.close_error = error
        if not self.closed:
            self.closed = True
            kind = "cut off" if isinstance(error, RemoteProtocolError) else "lost"
            self.close_reason = f"{kind}: {error}"
            # What the peer did wrong (``error``) is logged and kept in close_reason.
            failure = PeerDisconnected(f"connection to {self.remote_id} {self.close_reason}")
            failure.__cause__ = error
            self._abandon(failure)
        elif error is not None:
            self.close_reason = f"{self.close_reason} (goodbye failed: {error})"

    # -- receiving

    async def _run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The reader task, with a nursery for handler tasks. Ends when the connection has
        closed: goodbyes exchanged, a protocol error, the transport lost, or the closing
        deadline passed. TCP is closed and ``wait_closed`` released before the handlers
        have finished (so a handler may itself wait for the close)."""
        self._running = True
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await self._read_until_closed()
            finally:
                nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True):
                    await self.tcp.aclose()
                self._finished.set()

    async def _read_until_closed(self) -> None:
        error: P2PSocialError | None = None
        clean = False
        try:
            with self._reader_scope:
                if self._trailing:
                    self._decoder.receive_data(self._trailing)
                while not await self._pump():
                    data = await self._receive_within_frame_deadline()
                    self.bytes_in += len(data)
                    self._decoder.receive_data(bytes(data))  # b"": end of file
                clean = True
            if not clean:  # our scope's deadline passed, or aclose gave up
                error = PeerDisconnected(
                    f"no goodbye from {self.remote_id} within {GOODBYE_TIMEOUT:g} s"
                )
        except RemoteProtocolError as exc:
            error = exc
            log.warning("peer %s broke the protocol: %s", self.remote_id, exc)
        except PeerDisconnected as exc:
            error = exc
        finally:
            FRAME_BUDGET.release(self)
            if not clean and error is None:  # cancelled from outside before any close
                error = PeerDisconnected("connection cancelled")
            self._conclude(error)

    async def _receive_within_frame_deadline(self) -> bytes:
        """The next bytes from TCP. A frame begun must be finished within FRAME_DEADLINE,
        and unfinished frames count against FRAME_BUDGET: past either, FramingError."""
        buffered = self._packets.bytes_buffered
        FRAME_BUDGET.hold(self, buffered)
        if not buffered:
            self._partial_since = None
            with _map_errors():
                return bytes(await self.tcp.receive_some(READ_SIZE))
        if self._partial_since is None:
            self._partial_since = trio.current_time()
        with trio.move_on_at(self._partial_since + FRAME_DEADLINE) as scope, _map_errors():
            return bytes(await self.tcp.receive_some(READ_SIZE))
        if scope.cancelled_caught:
            raise FramingError(f"a frame stayed unfinished for {FRAME_DEADLINE:g} s")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pump(self) -> bool:
        """Process what the decoders hold; True once the peer's box-stream ended cleanly
        after its packet-stream goodbye. Raises RemoteProtocolError for a broken peer."""
        while True:
            event = self._decoder.next_event()
            if isinstance(event, boxstream.Goodbye):
                self._end_of_packets()
                return True
            if not isinstance(event, boxstream.Data):
                return False
            self._packets.receive_data(event.data)
            while True:
                frame = self._packets.next_event()
                if frame is packets.NEED_DATA:
                    break
                if isinstance(frame, packets.Goodbye):
                    if self._heard_goodbye:
                        break  # no byte after it (that would have raised)
                    self._heard_goodbye = True
                    await self._answer_goodbye()
                    continue  # bytes after the goodbye raise FramingError here
                await self._dispatch(frame)

    async def _answer_goodbye(self) -> None:
        """The peer said goodbye: abandon its calls, send our goodbyes (unless we already
        did: then this completes our own close), and read on to its box-stream goodbye."""
        self._begin_close("closed by peer")
        await self._send_goodbye()
        self._stop_handlers()

    def _end_of_packets(self) -> None:
        """The peer's box-stream goodbye ends the packet stream's input; that is clean only
        after the peer's packet-stream goodbye, with no partial frame (5.8)."""
        self._packets.receive_data(b"")
        try:
            event = self._packets.next_event()
        except FramingError as exc:
            raise FramingError(
                f"box-stream goodbye before the packet-stream goodbye ({exc})"
            ) from exc
        assert isinstance(event, packets.Goodbye)

    async def _dispatch(self, event: packets.Event) -> None:
        if isinstance(event, packets.Response):
            channel = self._calls.pop(event.req_id, None)
            if channel is not None:
                channel.send_nowait(event.value)
        elif isinstance(event, packets.ErrorResponse):
            channel = self._calls.pop(event.req_id, None)
            if channel is not None:
                channel.send_nowait(RpcError(0, f"{event.code}: {event.message}", event.code))
        elif isinstance(event, packets.StreamData):
            rpc = self._streams.get(event.req_id)
            if rpc is not None:
                await rpc._deliver(event.value)
        elif isinstance(event, packets.StreamEnded):
            rpc = self._streams.pop(event.req_id, None)
            if rpc is not None:
                err = event.error
                # Our side ends when its handler returns or its stream() block exits:
                # items still queued for the handler may yet be answered.
                rpc._finish(RpcError(0, f"{err.code}: {err.message}", err.code) if err else None)
        elif self.closed:
            pass  # a request that crossed our goodbye: it can no longer be answered
        elif isinstance(event, packets.Request):
            self._start_handler(event)
        elif isinstance(event, packets.InvalidRequest):
            await self._answer_error(event.req_id, event.stream, "bad_request", event.reason)

    def _start_handler(self, request: packets.Request) -> None:
        assert self._nursery is not None
        handler = self.handlers.get(request.name)
        streaming = request.type is not packets.CallType.ASYNC
        if self._remote_calls >= MAX_REMOTE_CALLS:
            raise FramingError(f"more than {MAX_REMOTE_CALLS} calls open at once")
        if streaming and self._remote_streams >= MAX_REMOTE_STREAMS:
            raise FramingError(f"more than {MAX_REMOTE_STREAMS} streams open at once")
        self._remote_calls += 1
        self._remote_streams += streaming
        if handler is None or isinstance(handler, _StreamMarker) != streaming:
            work: Awaitable[None] = self._answer_error(
                request.req_id,
                streaming,
                "unknown_method",
                f"no {'stream' if streaming else 'async'} method {request.name!r}",
            )
        elif isinstance(handler, _StreamMarker):
            rpc = RpcStream(self, request.req_id)
            self._streams[request.req_id] = rpc  # now: its items may be in this very read
            work = self._serve_stream(handler.fn, request, rpc)
        else:
            work = self._serve_call(handler, request)
        self._nursery.start_soon(self._counted, work, streaming)

    async def _counted(self, work: Awaitable[None], streaming: bool) -> None:
        try:
            await work
        finally:
            self._remote_calls -= 1
            self._remote_streams -= streaming

    async def _serve_call(self, handler: AsyncHandler, request: packets.Request) -> None:
        try:
            result = await handler(self, request.args)
        except P2PSocialError as exc:
            await self._answer_error(request.req_id, False, "refused", str(exc))
            return
        except Exception:
            log.exception("handler %s failed", request.name)
            await self._answer_error(request.req_id, False, "internal", "internal error")
            return
        try:
            await self._send(lambda: self._packets.respond(request.req_id, result))
        except PeerDisconnected:
            pass

    async def _serve_stream(
        self, fn: StreamHandler, request: packets.Request, rpc: RpcStream
    ) -> None:
        error: packets.ErrorInfo | None = None
        try:
            await fn(self, request.args, rpc)
        except PeerDisconnected:
            return
        except P2PSocialError as exc:
            error = packets.ErrorInfo(code="refused", message=str(exc))
        except Exception:
            log.exception("stream handler %s failed", request.name)
            error = packets.ErrorInfo(code="internal", message="internal error")
        await rpc.end(error)

    async def _answer_error(self, req_id: int, stream: bool, code: str, message: str) -> None:
        def frames() -> bytes:
            if stream:
                return self._packets.stream_end(
                    req_id, packets.ErrorInfo(code=code, message=message)
                )
            return self._packets.respond_error(req_id, code, message)

        try:
            await self._send(frames)
        except PeerDisconnected:
            pass


# ---------------------------------------------------------------------------- entry points


def unwrap_group(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one real exception in a nursery's group (ignoring Cancelled), else the group."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else group


@asynccontextmanager
async def connect(
    host: str,
    port: int,
    remote_key: bytes,
    *,
    keys: Keypair,
    network_key: bytes,
    handlers: Handlers | None = None,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> AsyncIterator[Connection]:
    """Connect to a peer, prove who we are and check who it is.

    Raises PeerDisconnected (cannot connect), HandshakeFailed (wrong key, wrong network,
    refused). The connection is closed with goodbyes when the block exits.
    """
    with _map_errors():
        with trio.fail_after(handshake_timeout):
            tcp = await trio.open_tcp_stream(host, port)
    try:
        session, remote, trailing = await client_handshake(
            tcp, keys, network_key, remote_key, handshake_timeout
        )
    except BaseException:
        with trio.CancelScope(shield=True):
            await tcp.aclose()
        raise
    conn = Connection(tcp, session, remote, handlers or {}, initiator=True, trailing=trailing)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(conn._run)
            try:
                yield conn
            finally:
                await conn.aclose()
    except BaseExceptionGroup as group:
        # The nursery only runs the reader, which raises nothing of its own: an error here
        # is the caller's, so hand it back as raised rather than wrapped in a group.
        raise unwrap_group(group) from None


async def serve(
    host: str,
    port: int,
    *,
    keys: Keypair,
    network_key: bytes,
    on_connection: Callable[[Connection], Awaitable[None]],
    handlers: Handlers | None = None,
    accept: Callable[[bytes], bool] | None = None,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen for peers. For each authenticated one, run ``on_connection(conn)``; the
    connection is closed when it returns. ``accept(remote_key)`` may refuse a client after
    the handshake proved its key. Reports the listeners through ``task_status``."""

    failures = ThrottledLog("incoming connections failed")

    async def handle(tcp: trio.SocketStream) -> None:
        try:
            session, remote, trailing = await server_handshake(
                tcp, keys, network_key, accept, handshake_timeout
            )
        except (HandshakeFailed, PeerDisconnected) as exc:
            failures.info("incoming connection failed: %s", exc, now=trio.current_time())
            await tcp.aclose()
            return
        conn = Connection(tcp, session, remote, handlers or {}, initiator=False, trailing=trailing)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(conn._run)
                try:
                    await on_connection(conn)
                finally:
                    await conn.aclose()
        except* P2PSocialError as group:  # one connection's trouble never stops the listener
            log.info("connection with %s ended: %s", conn.remote_id, group.exceptions[0])
        except* Exception:
            log.exception("connection with %s failed", conn.remote_id)

    listeners = await trio.open_tcp_listeners(port, host=host)
    async with trio.open_nursery() as nursery:
        task_status.started(listeners)
        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)
