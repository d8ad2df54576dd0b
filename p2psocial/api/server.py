"""The trio shell of the local JSON-RPC socket: method registry, connections, socket file.

Theory of operation
-------------------
:func:`serve_unix` creates ``<home>/rpc.sock`` (mode 0600, see :func:`bind_unix_socket`) and
runs an :class:`RpcServer` on it: one task per client connection, all in the server's
nursery. The decisions are made by the sans-IO modules (:mod:`~p2psocial.proto.jsonrpc`
parses and encodes, :mod:`~p2psocial.api.hub` queues); this module moves bytes.

Per connection there are three kinds of task:

- the *reader* cuts the stream into lines and starts one handler task per line (a single
  request, or a batch whose requests then run concurrently). Before reading the next line
  it takes one of ``max_in_flight`` slots; a slot comes back when its answer is handed to
  the writer. It also waits while the lines being handled hold ``max_input_in_flight``
  bytes, or while the connection holds ``max_connection_answer_bytes`` of answers. A client
  that sends without reading is thus paused by backpressure (the reader stops reading)
  instead of growing a queue.
- *handler* tasks call the registered methods, at most ``max_calls_in_flight`` of one
  connection at a time (the rest wait their turn); a batch runs its requests on that many
  worker tasks, not one task each. Answers are queued as they finish, so on one connection
  they may come out of order; ids match them to requests.
- the *writer* sends what :meth:`~p2psocial.api.hub.Outbox.take` gives (answers first,
  then notifications round-robin), at most ``write_chunk`` bytes at a time. If one write
  makes no progress for ``send_timeout`` seconds, the client is not reading: the connection
  is dropped and its subscriptions end. Nothing else on the server waits for a client, so
  one stuck client never delays others.

Bytes held for clients (#11). Every answer is counted from the moment it is encoded (a
batch's answers as each is made) until the writer takes it, per connection and in total
(:class:`~p2psocial.api.hub.Usage`). A call is not run, and an answer is replaced by an
``OVERLOADED`` error naming the limit (:class:`~p2psocial.errors.Overloaded`), when it would
take its batch past ``max_batch_answer_bytes`` (beyond the batch's first answer), its
connection past ``max_connection_answer_bytes`` or all connections past
``max_total_answer_bytes`` (the last two only for a connection already holding answers: a
client that reads always gets its next answer). Notifications are bounded in
:mod:`~p2psocial.api.hub`. When a connection ends, everything held for it is forgotten.

End of a connection: at EOF from the client, the server finishes the calls in flight, sends
their answers, closes the connection's subscriptions and closes the socket. After a line
longer than ``max_line`` it answers ``REQUEST_TOO_LARGE`` (id null), finishes the calls in
flight, shuts its sending side, discards what the client still sends for up to
``close_drain_timeout`` seconds (so the client can read the answer), and closes.

Errors: a handler's :class:`~p2psocial.errors.P2PSocialError` becomes its code from
:data:`~p2psocial.proto.jsonrpc.ERROR_CODES`; any other exception becomes ``INTERNAL_ERROR``
and is logged (logger ``p2psocial.api``) with its traceback. The server keeps serving.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import trio

from p2psocial.api.hub import (
    DEFAULT_CONNECTION_NOTIFICATION_BYTES,
    DEFAULT_QUEUE,
    DEFAULT_QUEUE_BYTES,
    DEFAULT_TOTAL_NOTIFICATION_BYTES,
    NOTIFICATION_FLOOR,
    Hub,
    Outbox,
    Subscription,
    Usage,
)
from p2psocial.api.params import Params
from p2psocial.errors import ConfigError, DaemonAlreadyRunning, Overloaded
from p2psocial.proto.jsonrpc import (
    INTERNAL_ERROR,
    MAX_BATCH,
    MAX_LINE_SIZE,
    REQUEST_TOO_LARGE,
    ErrorObject,
    ErrorResponse,
    Item,
    LineReader,
    LineTooLong,
    Request,
    RequestId,
    encode_batch,
    encode_error,
    encode_response,
    error_for_exception,
    parse_line,
)
from p2psocial.store.gateway import READ_CLIENT

if TYPE_CHECKING:
    from collections.abc import Mapping

    from p2psocial.api.registry import MethodRegistry

__all__ = ["Limits", "RpcServer", "SocketCallContext", "bind_unix_socket", "serve_unix"]

logger = logging.getLogger("p2psocial.api")

_RECEIVE_SIZE = 65536
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


@dataclass(frozen=True)
class Limits:
    """The server's bounds. Every queue is bounded by one of these."""

    max_line: int = MAX_LINE_SIZE
    """Longest request line, in bytes."""
    max_batch: int = MAX_BATCH
    """Most requests in one batch."""
    max_in_flight: int = 64
    """Lines (requests or batches) per connection being handled or waiting to be sent."""
    max_input_in_flight: int = 1 << 20
    """Bytes of request lines per connection being handled; the reader waits beyond (it
    always reads a line when none is being handled)."""
    max_calls_in_flight: int = 8
    """Calls per connection running at once; the others wait their turn, in order."""
    max_batch_answer_bytes: int = 4 << 20
    """Bytes of answers in one batch's answer (beyond its first); the rest of the batch
    is answered OVERLOADED instead of run."""
    max_connection_answer_bytes: int = 16 << 20
    """Bytes of answers one connection may hold (queued for writing, or batches being
    built); the reader waits beyond, and further answers are OVERLOADED errors."""
    max_total_answer_bytes: int = 64 << 20
    """Bytes of answers all connections may hold together; beyond, a connection already
    holding answers gets OVERLOADED errors instead of new ones."""
    max_subscriptions: int = 64
    """Open subscriptions per connection; one more is refused with OVERLOADED."""
    subscription_queue: int = DEFAULT_QUEUE
    """Notifications held per subscription for a slow reader before dropping."""
    subscription_queue_bytes: int = DEFAULT_QUEUE_BYTES
    """Notification bytes held per subscription before dropping."""
    max_connection_notification_bytes: int = DEFAULT_CONNECTION_NOTIFICATION_BYTES
    """Notification bytes held for one connection (all its subscriptions) before dropping."""
    max_total_notification_bytes: int = DEFAULT_TOTAL_NOTIFICATION_BYTES
    """Notification bytes held for all connections; beyond, only connections holding less
    than ``notification_floor`` queue more."""
    notification_floor: int = NOTIFICATION_FLOOR
    """See ``max_total_notification_bytes``."""
    send_timeout: float = 30.0
    """Seconds a write may make no progress before the client is dropped."""
    max_connections: int = 256
    """Open connections; one more is answered with OVERLOADED and closed."""
    close_drain_timeout: float = 1.0
    """Seconds spent discarding input after REQUEST_TOO_LARGE, before closing."""
    write_chunk: int = 65536
    """Bytes gathered into one write."""

    def __post_init__(self) -> None:
        """Raises ConfigError if a limit is unusable (a count below 1, a timeout <= 0)."""
        for name in (
            "max_line",
            "max_batch",
            "max_in_flight",
            "max_input_in_flight",
            "max_calls_in_flight",
            "max_batch_answer_bytes",
            "max_connection_answer_bytes",
            "max_total_answer_bytes",
            "max_subscriptions",
            "subscription_queue",
            "subscription_queue_bytes",
            "max_connection_notification_bytes",
            "max_total_notification_bytes",
            "notification_floor",
            "max_connections",
            "write_chunk",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"server limit {name} must be at least 1")
        if self.send_timeout <= 0 or self.close_drain_timeout <= 0:
            raise ConfigError("server timeouts must be positive")


class SocketCallContext:
    """A call on the socket: what its handler knows, and its way to open subscriptions
    (the socket's implementation of :class:`~p2psocial.api.registry.CallContext`)."""

    def __init__(self, connection: _Connection, request: Request) -> None:
        self._connection = connection
        self.request_id: RequestId = request.id
        self.is_notification = request.is_notification
        self.method = request.method
        self.created: list[Subscription] = []

    @property
    def connection_id(self) -> int:
        return self._connection.id

    @property
    def hub(self) -> Hub:
        return self._connection.server.hub

    @property
    def connection_count(self) -> int:
        return self._connection.server.connection_count

    def subscribe(
        self,
        kind: str,
        params: Params | Mapping[str, Any] | None = None,
        filter: Any = None,
    ) -> Subscription:
        """Open a subscription of ``kind`` on this connection; return it (answer its ``id``).

        It starts delivering once this call's answer is queued; if the call fails instead,
        it is closed. Raises :class:`RpcError` ``OVERLOADED`` when the connection has
        ``max_subscriptions`` open.
        """
        conn = self._connection
        limits = conn.server.limits
        limit = limits.max_subscriptions
        if len(conn.outbox.subscriptions) >= limit:
            raise Overloaded(
                f"too many subscriptions on this connection (the limit is {limit})",
                "subscriptions_per_connection",
                limit,
            )
        raw = params.to_dict() if isinstance(params, Params) else params
        sub = self.hub.open(
            conn.outbox,
            kind,
            raw,
            filter,
            max_queue=limits.subscription_queue,
            max_queue_bytes=limits.subscription_queue_bytes,
        )
        self.created.append(sub)
        return sub

    def unsubscribe(self, sub_id: str) -> bool:
        """Close subscription ``sub_id`` of this connection. False if it is not open here."""
        sub = self._connection.outbox.subscriptions.get(sub_id)
        if sub is None:
            return False
        sub.close()
        return True


# ------------------------------------------------------------------------------- server


class RpcServer:
    """Serves a :class:`MethodRegistry` to any number of stream connections."""

    def __init__(
        self, registry: MethodRegistry, *, hub: Hub | None = None, limits: Limits | None = None
    ) -> None:
        self.registry = registry
        self.limits = limits if limits is not None else Limits()
        if hub is None:
            hub = Hub(
                Usage(
                    max_notifications=self.limits.max_total_notification_bytes,
                    notification_floor=self.limits.notification_floor,
                )
            )
        self.hub = hub
        self._connections: dict[int, _Connection] = {}
        self._next_id = 0

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def usage(self) -> Usage:
        """Bytes of answers and notifications held for all clients now."""
        return self.hub.usage

    async def serve_listener(
        self,
        listener: trio.abc.Listener[trio.abc.Stream],
        *,
        task_status: trio.TaskStatus[RpcServer] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Accept connections forever, each in its own task. ``started(self)``."""
        async with trio.open_nursery() as nursery:
            task_status.started(self)
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        raise
                    logger.error("accept failed (%s); retrying in 0.1 s", exc)
                    await trio.sleep(0.1)
                    continue
                nursery.start_soon(self.handle_stream, stream)

    async def handle_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one connection until it ends; never raises except Cancelled."""
        self._next_id += 1
        conn_id = self._next_id
        try:
            if len(self._connections) >= self.limits.max_connections:
                await self._refuse(stream)
                return
            conn = _Connection(self, stream, conn_id)
            self._connections[conn_id] = conn
            try:
                await conn.run()
            finally:
                del self._connections[conn_id]
        except Exception:
            # A bug in this module: drop this client only, never the whole daemon.
            logger.exception("connection %d failed; dropped", conn_id)
        finally:
            await trio.aclose_forcefully(stream)

    async def _refuse(self, stream: trio.abc.Stream) -> None:
        limit = self.limits.max_connections
        error = error_for_exception(
            Overloaded(f"too many connections (the limit is {limit})", "connections", limit)
        )
        logger.warning("connection refused: %d connections open", len(self._connections))
        with trio.move_on_after(1):
            try:
                await stream.send_all(encode_error(None, error))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass


class _Connection:
    """One client connection: reader, handlers and writer (see the module docstring)."""

    def __init__(self, server: RpcServer, stream: trio.abc.Stream, conn_id: int) -> None:
        self.server = server
        self.id = conn_id
        self._stream = stream
        self._limits = server.limits
        self._ready = trio.Event()
        self.outbox = Outbox(
            conn_id,
            self._wake,
            usage=server.hub.usage,
            max_notification_bytes=self._limits.max_connection_notification_bytes,
        )
        self._slots = trio.Semaphore(self._limits.max_in_flight)
        self._calls = trio.CapacityLimiter(self._limits.max_calls_in_flight)
        self._input_bytes = 0  # of the lines being handled
        self._stalled: ErrorObject | None = None  # refusing answers until a write is made
        self._room = trio.Event()  # set when input or answer bytes go down
        self._closing = False
        self._scope = trio.CancelScope()

    def _wake(self) -> None:
        self._ready.set()

    def _room_made(self) -> None:
        self._room.set()

    async def _wait_for_room(self, size: int) -> None:
        """Wait until a line of ``size`` bytes may be handled: the lines being handled hold
        less than ``max_input_in_flight`` bytes with it (or none is), and the answers held
        are under ``max_connection_answer_bytes``."""
        limits = self._limits
        while (
            self._input_bytes and self._input_bytes + size > limits.max_input_in_flight
        ) or self.outbox.answer_bytes >= limits.max_connection_answer_bytes:
            self._room = trio.Event()
            await self._room.wait()

    def _abort(self) -> None:
        self._scope.cancel()

    async def run(self) -> None:
        logger.debug("connection %d opened", self.id)
        READ_CLIENT.set(self)  # this connection's store reads take turns with others'
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer)
                    async with trio.open_nursery() as handlers:
                        too_long = await self._reader(handlers)
                    self._closing = True
                    self.outbox.close_subscriptions()
                    self._wake()
                if too_long:
                    await self._drain()
        finally:
            self.outbox.close()  # subscriptions end, unsent answers are forgotten
            logger.debug("connection %d closed", self.id)

    # ---------------------------------------------------------------------- reading

    async def _reader(self, handlers: trio.Nursery) -> bool:
        """Read and dispatch lines until EOF (False) or a line too long (True)."""
        lines = LineReader(self._limits.max_line)
        while True:
            try:
                line = lines.next_line()
            except LineTooLong as exc:
                error = ErrorObject(REQUEST_TOO_LARGE, str(exc), {"type": "LineTooLong"})
                self.outbox.put_response(encode_error(None, error))
                logger.info("connection %d: %s; closing", self.id, exc)
                return True
            if line is None:
                try:
                    data = await self._stream.receive_some(_RECEIVE_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._abort()
                    return False
                if not data:
                    return False
                lines.receive_data(data)
                continue
            if not line.strip():
                continue
            await self._slots.acquire()
            await self._wait_for_room(len(line))
            items, is_batch = parse_line(line, max_batch=self._limits.max_batch)
            self._input_bytes += len(line)
            handlers.start_soon(self._answer, items, is_batch, len(line))

    async def _drain(self) -> None:
        """After REQUEST_TOO_LARGE: shut our side and discard input for a moment."""
        with trio.move_on_after(self._limits.close_drain_timeout):
            try:
                if isinstance(self._stream, trio.abc.HalfCloseableStream):
                    await self._stream.send_eof()
                while await self._stream.receive_some(_RECEIVE_SIZE):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    # ---------------------------------------------------------------------- handling

    async def _answer(self, items: list[Item], is_batch: bool, size: int) -> None:
        """Answer one line of ``size`` bytes; hand the answer (if any) to the writer, then
        free the slot."""
        contexts: list[SocketCallContext] = []
        try:
            if is_batch:
                line = await self._run_batch(items, contexts)
            else:
                (item,) = items
                if isinstance(item, ErrorResponse):
                    line = encode_error(item.id, item.error)
                else:
                    line, ctx = await self._call(item)
                    contexts.append(ctx)
        finally:
            self._input_bytes -= size
            self._room_made()
        if line is None:
            self._slots.release()
        else:
            self.outbox.put_response(line, self._slots.release)
        for ctx in contexts:
            for sub in ctx.created:
                sub.activate()

    async def _run_batch(
        self, items: list[Item], contexts: list[SocketCallContext]
    ) -> bytes | None:
        """Run a batch's requests on at most ``max_calls_in_flight`` worker tasks, in
        order; its answer line (None if it has no answer). The answers made are held (see
        the module docstring) until the line is queued."""
        bodies: list[bytes | None] = [None] * len(items)
        todo: deque[int] = deque()
        batch = _Batch()
        for index, item in enumerate(items):
            if isinstance(item, ErrorResponse):
                bodies[index] = encode_error(item.id, item.error)
            else:
                todo.append(index)

        async def worker() -> None:
            while todo:
                index = todo.popleft()
                request = items[index]
                assert isinstance(request, Request)  # only requests are in todo
                body, ctx = await self._call(request, batch)
                contexts.append(ctx)
                if body is not None:
                    bodies[index] = body
                    self.outbox.hold(len(body))
                    batch.held += len(body)

        try:
            async with trio.open_nursery() as nursery:
                for _ in range(min(len(todo), self._limits.max_calls_in_flight)):
                    nursery.start_soon(worker)
            answered = [body for body in bodies if body is not None]
            return encode_batch(answered) if answered else None
        finally:
            self.outbox.hold(-batch.held)

    async def _call(
        self, request: Request, batch: _Batch | None = None
    ) -> tuple[bytes | None, SocketCallContext]:
        """Run one request (of ``batch``, if given). Returns its answer line (None for a
        notification) and context. A request over a byte limit is not run, and an answer
        that would go over one is dropped: either way the answer is ``OVERLOADED``."""
        ctx = SocketCallContext(self, request)
        refusal = self._refusal(0, batch)
        if refusal is None:
            async with self._calls:
                refusal = self._refusal(0, batch)  # the wait may have used the room up
                if refusal is None:
                    line = await self._run(request, ctx, batch)
                    refusal = self._refusal(len(line) if line else 0, batch)
                    if refusal is None and batch is not None and line is not None:
                        batch.spent += len(line)
        if refusal is not None:
            for sub in ctx.created:
                sub.close()
            line = encode_error(request.id, refusal)
        return (None if request.is_notification else line), ctx

    async def _run(
        self, request: Request, ctx: SocketCallContext, batch: _Batch | None
    ) -> bytes | None:
        """Call the method; its answer line, or None for a notification outside a batch
        (in a batch, a notification's result is encoded too: it counts towards the
        batch's bytes, so a batch of notifications is bounded as well)."""
        try:
            result = await self.server.registry.call(
                request.method, Params(request.named_params()), ctx
            )
            if request.is_notification and batch is None:
                return None
            return encode_response(request.id, result)
        except Exception as exc:
            for sub in ctx.created:
                sub.close()
            error = self._error_for(request, _unwrap(exc))
            if request.is_notification:
                return None
            try:
                return encode_error(request.id, error)
            except (TypeError, ValueError):
                logger.exception("error data of method %r is not JSON", request.method)
                fallback = ErrorObject(INTERNAL_ERROR, "internal error", {"type": "TypeError"})
                return encode_error(request.id, fallback)

    def _refusal(self, size: int, batch: _Batch | None) -> ErrorObject | None:
        """The OVERLOADED error for an answer of ``size`` more bytes, or None if it may be
        held. ``size`` 0: before running a call, which is refused once its batch's budget
        is spent, or while the connection's last answer was refused and nothing has been
        written since (so a client that does not read makes no more work)."""
        limits = self._limits
        if batch is not None and batch.spent:
            limit = limits.max_batch_answer_bytes
            if batch.exhausted or batch.spent + size > limit:
                batch.exhausted = True
                return _overloaded(
                    f"this batch's answers reached the limit of {limit} bytes; the rest of "
                    "the batch was not run: send those requests again, in smaller batches",
                    "batch_answer_bytes",
                    limit,
                )
        held = self.outbox.answer_bytes
        if not held:
            return None  # a client that reads always gets its next answer
        if self._stalled is not None:
            return self._stalled
        limit = limits.max_connection_answer_bytes
        if held + size > limit:
            self._stalled = _overloaded(
                f"the answers waiting to be written to this connection reached the limit of "
                f"{limit} bytes: read them before sending more requests",
                "connection_answer_bytes",
                limit,
            )
            return self._stalled
        limit = limits.max_total_answer_bytes
        if self.server.usage.answers + size > limit:
            self._stalled = _overloaded(
                f"the answers waiting for all clients reached the limit of {limit} bytes; "
                "read your answers, or try again later",
                "total_answer_bytes",
                limit,
            )
            return self._stalled
        return None

    def _error_for(self, request: Request, exc: BaseException) -> ErrorObject:
        error = error_for_exception(exc)
        if error.code == INTERNAL_ERROR:
            logger.error(
                "method %r failed (connection %d)",
                request.method,
                self.id,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        else:
            logger.debug("method %r: %s: %s", request.method, type(exc).__name__, exc)
        return error

    # ---------------------------------------------------------------------- writing

    async def _writer(self) -> None:
        timeout = self._limits.send_timeout
        while True:
            self._ready = trio.Event()
            chunk = self.outbox.take(self._limits.write_chunk)
            if not chunk:
                if self._closing:
                    return
                await self._ready.wait()
                continue
            self._room_made()
            self._stalled = None  # answers were taken: there may be room again
            with trio.move_on_after(timeout) as scope:
                try:
                    await self._stream.send_all(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._abort()
                    return
            if scope.cancelled_caught:
                logger.warning(
                    "connection %d: the client read nothing for %g s; dropped", self.id, timeout
                )
                self._abort()
                return


class _Batch:
    """The bytes of one batch's answers: ``spent`` counts towards its budget (its
    notifications' results too), ``held`` is what the outbox holds for it; ``exhausted``
    once an answer did not fit (the rest of the batch is refused)."""

    __slots__ = ("exhausted", "held", "spent")

    def __init__(self) -> None:
        self.spent = 0
        self.held = 0
        self.exhausted = False


def _overloaded(message: str, limit_name: str, limit: int) -> ErrorObject:
    return error_for_exception(Overloaded(message, limit_name, limit))


def _unwrap(exc: BaseException) -> BaseException:
    """The single leaf of nested exception groups (from nurseries in handlers), else exc."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


# ------------------------------------------------------------------------------- socket file


def _make_private_dir(parent: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix=".rpc", dir=parent))


async def bind_unix_socket(
    path: Path, *, backlog: int = 128
) -> tuple[trio.socket.SocketType, tuple[int, int]]:
    """A listening socket at ``path`` with mode 0600, and the file's ``(st_dev, st_ino)``.

    The socket is bound and chmod-ed inside a fresh 0700 directory next to ``path``, starts
    listening, and is then hard-linked to ``path``: so nobody else can ever connect through
    a wider mode, the process umask is never touched, and the link fails atomically if
    ``path`` exists. An existing socket that refuses connections (a crashed daemon's) is
    removed and replaced.

    Raises :class:`DaemonAlreadyRunning` if a server answers at ``path``, and
    :class:`ConfigError` if ``path`` exists and is not a socket, or the socket cannot be
    created (for example, its directory is missing or the path is too long for AF_UNIX).
    """
    for _attempt in range(3):
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        try:
            try:
                private = _make_private_dir(path.parent)
                temp = private / "s"
                try:
                    await sock.bind(str(temp))
                    os.chmod(temp, 0o600)
                    sock.listen(backlog)
                    st = os.lstat(temp)
                    os.link(temp, path)
                    return sock, (st.st_dev, st.st_ino)
                finally:
                    _silent_unlink(temp)
                    os.rmdir(private)
            except FileExistsError:
                pass
            except OSError as exc:
                raise ConfigError(f"cannot create the socket {path}: {exc}") from exc
        except BaseException:
            sock.close()
            raise
        sock.close()
        await _replace_if_stale(path)
    raise DaemonAlreadyRunning(f"the socket {path} keeps being re-created by another process")


async def _replace_if_stale(path: Path) -> None:
    """Remove ``path`` if it is a dead socket. Raises if it is alive or not a socket."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(f"{path} exists and is not a socket; refusing to replace it")
    probe = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        with trio.fail_after(2):
            await probe.connect(str(path))
    except ConnectionRefusedError:
        logger.info("removing the stale socket %s (left by a daemon that crashed)", path)
        _silent_unlink(path)
        return
    except FileNotFoundError:
        return
    except trio.TooSlowError:
        pass  # it exists and does not refuse: something is serving there, just slowly
    except OSError as exc:
        raise ConfigError(f"cannot check the socket {path}: {exc}") from exc
    finally:
        probe.close()
    raise DaemonAlreadyRunning(f"another daemon is already running on this home (socket {path})")


def _silent_unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_if_ours(path: Path, identity: tuple[int, int]) -> None:
    try:
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) == identity:
            os.unlink(path)
    except OSError:
        pass


async def serve_unix(
    path: str | os.PathLike[str],
    registry: MethodRegistry,
    *,
    hub: Hub | None = None,
    limits: Limits | None = None,
    task_status: trio.TaskStatus[RpcServer] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve ``registry`` on the Unix socket ``path`` until cancelled.

    Calls ``task_status.started(server)`` with the :class:`RpcServer` once clients can
    connect (``server.hub`` is where the daemon publishes). On exit the socket file is
    removed, unless another process has replaced it meanwhile. Raises what
    :func:`bind_unix_socket` raises, before ``started``.
    """
    socket_path = Path(path)
    server = RpcServer(registry, hub=hub, limits=limits)
    sock, identity = await bind_unix_socket(socket_path)
    try:
        listener = trio.SocketListener(sock)
        logger.info("listening on %s", socket_path)
        await server.serve_listener(listener, task_status=task_status)
    finally:
        _remove_if_ours(socket_path, identity)
        sock.close()
