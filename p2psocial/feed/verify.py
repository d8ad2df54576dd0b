"""Signature verification on every core.

libsodium (through PyNaCl's cffi bindings) releases the GIL while it verifies, so a pool of
threads, one per core, verifies in parallel. Small runs are verified inline: handing them
to threads would cost more than it saves.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from p2psocial.feed.entry import Entry, signature_ok

INLINE_BELOW = 64


def _verify_chunk(entries: Sequence[Entry]) -> list[bool]:
    return [signature_ok(e) for e in entries]


class Verifier:
    """Verifies many entries' signatures using ``workers`` threads (default: all cores)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None

    def verify(self, entries: Sequence[Entry]) -> list[bool]:
        """One bool per entry, in order: whether its signature verifies."""
        if self.workers == 1 or len(entries) < INLINE_BELOW:
            return _verify_chunk(entries)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="verify")
        size = -(-len(entries) // self.workers)
        chunks = [entries[i : i + size] for i in range(0, len(entries), size)]
        results: list[bool] = []
        for part in self._pool.map(_verify_chunk, chunks):
            results.extend(part)
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
