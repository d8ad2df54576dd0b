"""Signature verification on every core, alongside the caller's own work.

Theory of operation
-------------------
Verifying an Ed25519 signature costs far more than anything else on the ingest path, and
libsodium does it without the GIL. Worker *threads* still starve here, though: each must
take the GIL back after every verification, and the ingesting thread, busy decoding and
planning in Python, holds it for whole switch intervals. So the verifier uses worker
*processes*, one per core: :meth:`Verifier.start` sends them raw entry bytes (cheap to
pickle) in chunks and returns at once; the caller decodes and plans chains meanwhile, then
:meth:`Pending.result` collects the verdicts. Small runs are verified inline, where a round
trip to a worker would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING

from p2psocial.feed.formats import raw_signature_ok

if TYPE_CHECKING:
    from collections.abc import Sequence

INLINE_BELOW = 64
CHUNK = 256


def verify_raw_chunk(raws: Sequence[bytes]) -> bytes:
    """One byte per entry: 1 if its signature verifies, else 0 (runs in a worker)."""
    return bytes(raw_signature_ok(raw) for raw in raws)


def _ready() -> bool:
    return True


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the process that started it is gone (even
    killed with SIGKILL, which gives the pool no chance to stop its workers)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


class Pending:
    """Verdicts being computed; :meth:`result` waits for them."""

    def __init__(self, futures: list[Future[bytes]], done: bytes | None = None) -> None:
        self._futures = futures
        self._done = done

    def result(self) -> bytes:
        """One byte per entry (1: verified), in the order given to :meth:`Verifier.start`."""
        if self._done is None:
            self._done = b"".join(future.result() for future in self._futures)
        return self._done


class Verifier:
    """Verifies entry signatures on ``workers`` processes (None: one per core; 1: inline,
    no processes)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers if workers is not None else os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the daemon has threads, and fork copies their locks.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    def warm_up(self) -> None:
        """Start the worker processes now rather than on the first large run."""
        if self.workers > 1:
            pool = self._get_pool()
            for future in [pool.submit(_ready) for _ in range(self.workers)]:
                future.result()

    def start(self, raws: Sequence[bytes]) -> Pending:
        """Begin verifying entries given as raw bytes; returns at once for large runs."""
        if self.workers == 1 or len(raws) < INLINE_BELOW:
            return Pending([], verify_raw_chunk(raws))
        pool = self._get_pool()
        size = min(CHUNK, -(-len(raws) // self.workers))
        return Pending(
            [pool.submit(verify_raw_chunk, raws[i : i + size]) for i in range(0, len(raws), size)]
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
