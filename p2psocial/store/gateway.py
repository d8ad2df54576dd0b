"""Async access to the store from trio code.

SQLite calls block, so they run on worker threads. Two paths (#11):

- :meth:`StoreGateway.run`, the *writer*: the store's own connection, behind a capacity
  limiter of one, so every write (and replication's reads) takes its turn (one connection,
  one writer). Ingest batches take their turn too, between them.
- :meth:`StoreGateway.read`, the *readers*: the API's pure reads (timeline, feed, get,
  thread, ...) run on a second, read-only connection (``Store.open_read_only``) on a
  thread of its own. WAL mode lets it read the last committed state while the writer
  writes, so an app reading a lot never makes replication's ingest queue behind it, and a
  long ingest batch never delays a read. At most ``readers`` reads run at once (one per
  read-only connection); the others wait their turn. Turns go round-robin across
  *clients* (the value of :data:`READ_CLIENT` in the caller's context: the socket server
  sets one per connection), first come first served within one client, so a client
  queueing many reads delays another's by one read each, not by all of them.

Without read-only connections (tests, tools), :meth:`read` takes the writer's turn.
"""

from __future__ import annotations

from collections import deque
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol, Self, TypeVar

import trio

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from p2psocial.store.store import Store

T = TypeVar("T")


class Gateway(Protocol):
    """Runs a function on the store: :class:`StoreGateway` or :class:`InlineGateway`."""

    async def run(self, fn: Callable[[Store], T]) -> T:
        """On the writer: writes, and reads that must see them in the same turn."""
        ...

    async def read(self, fn: Callable[[Store], T]) -> T:
        """A pure read, on the daemon's read-only connection beside the writer (#11)."""
        ...


READ_CLIENT: ContextVar[object] = ContextVar("p2psocial_read_client", default=None)
"""Who a read is made for; reads of different clients take turns (see the module
docstring). Set it in a task serving one client; its child tasks inherit it."""


class _FairTurns:
    """``capacity`` turns, handed out round-robin across clients, in order within one."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._queues: dict[object, deque[trio.Event]] = {}
        self._rotation: deque[object] = deque()  # clients with someone waiting, in turn

    async def acquire(self, client: object) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._free and not self._rotation:
            self._free -= 1
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        event = trio.Event()
        queue = self._queues.get(client)
        if queue is None:
            queue = self._queues[client] = deque()
            self._rotation.append(client)
        queue.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():  # handed a turn just as we were cancelled: pass it on
                self.release()
            else:
                queue.remove(event)
                if not queue:
                    del self._queues[client]
                    self._rotation.remove(client)
            raise

    def release(self) -> None:
        """End a turn: the next client in the rotation gets it, else it is free."""
        if not self._rotation:
            self._free += 1
            return
        client = self._rotation.popleft()
        queue = self._queues[client]
        event = queue.popleft()
        if queue:
            self._rotation.append(client)
        else:
            del self._queues[client]
        event.set()


class StoreGateway:
    """Runs store calls on worker threads: writes one at a time on the store's connection,
    pure reads on the read-only ``readers`` (each used by one call at a time). Closing the
    gateway closes the readers (the caller closes ``store``)."""

    def __init__(self, store: Store, readers: Sequence[Store] = ()) -> None:
        self.store = store
        self._limiter = trio.CapacityLimiter(1)
        self._readers = list(readers)
        self._idle = list(self._readers)
        self._turns = _FairTurns(max(1, len(self._readers)))

    @classmethod
    def with_readers(cls, store: Store, count: int = 1) -> Self:
        """A gateway over ``store`` with ``count`` read-only connections of its own to the
        same file (``Store.open_read_only``). Raises StorageError if they cannot be opened."""
        readers: list[Store] = []
        try:
            for _ in range(count):
                readers.append(type(store).open_read_only(store.path))
        except BaseException:
            for reader in readers:
                reader.close()
            raise
        return cls(store, readers)

    @property
    def reader_count(self) -> int:
        return len(self._readers)

    async def run(self, fn: Callable[[Store], T]) -> T:
        """``fn(store)`` on the store thread. Cancellation waits for the call to finish,
        so a write is never abandoned half way."""
        store = self.store
        return await trio.to_thread.run_sync(lambda: fn(store), limiter=self._limiter)

    async def read(self, fn: Callable[[Store], T]) -> T:
        """``fn(reader)`` on a read-only connection, beside the writer. ``fn`` must only
        read (a write fails with StorageError); it sees what was committed when it starts.
        Without readers, the same as :meth:`run`."""
        if not self._readers:
            return await self.run(fn)
        await self._turns.acquire(READ_CLIENT.get())
        try:
            if not self._idle:  # closed meanwhile
                return await self.run(fn)
            reader = self._idle.pop()
            try:
                return await trio.to_thread.run_sync(lambda: fn(reader))
            finally:
                self._idle.append(reader)
        finally:
            self._turns.release()

    def close(self) -> None:
        """Close the read-only connections (not the store). Idempotent."""
        readers, self._readers, self._idle = self._readers, [], []
        for reader in readers:
            reader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineGateway:
    """Runs store calls directly, in the caller's thread: for the CLI without a daemon,
    where one short command owns the store and nothing else needs the event loop."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def run(self, fn: Callable[[Store], T]) -> T:
        return fn(self.store)

    async def read(self, fn: Callable[[Store], T]) -> T:
        """A pure read: inline too, on the same store."""
        return fn(self.store)
