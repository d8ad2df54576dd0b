"""Async access to the store from trio code.

SQLite calls block, so they run on a worker thread; a capacity limiter of one makes every
store call take its turn (one connection, one writer). Ingest batches take their turn too,
between them, so reads never wait for more than one batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import trio

if TYPE_CHECKING:
    from collections.abc import Callable

    from p2psocial.store.store import Store

T = TypeVar("T")


class StoreGateway:
    """Runs store calls on a worker thread, one at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._limiter = trio.CapacityLimiter(1)

    async def run(self, fn: Callable[[Store], T]) -> T:
        """``fn(store)`` on the store thread. Cancellation waits for the call to finish,
        so a write is never abandoned half way."""
        store = self.store
        return await trio.to_thread.run_sync(lambda: fn(store), limiter=self._limiter)


class InlineGateway:
    """Runs store calls directly, in the caller's thread: for the CLI without a daemon,
    where one short command owns the store and nothing else needs the event loop."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def run(self, fn: Callable[[Store], T]) -> T:
        return fn(self.store)
