"""Blobs held by one home: the files (``blobfiles.py``) and their rows in the store
(``store/blobs.py``) kept together, with the size cap and the storage quota.

Theory of operation
-------------------
Every blob write goes through :class:`BlobStore`: the file first (written aside, hash
checked, moved into place), then its row. File I/O runs on worker threads of its own
(``trio.to_thread`` with :data:`FILE_THREADS`), never on the store's thread or trio's loop,
so a slow disk stalls neither ingest nor the socket; rows go through the store gateway.

Room: each blob is at most ``max_size`` bytes (default 5 MiB); all of them together at most
``quota`` bytes (default 1 GiB). When a new blob would go over the quota, the least recently
used blobs that are not ours and not referred to by the feeds we follow directly go first,
then others that are not ours (``Store.blobs_to_purge``); ours (pinned, or referred to by
our own feed) never go. A blob of ours that still does not fit is refused
(:class:`~p2psocial.errors.BlobRefused`); one fetched for others is dropped again.

Blobs that nothing refers to any more (their post deleted, their author blocked) are
dropped by :meth:`BlobStore.sweep`, which the daemon runs after such changes.

Listeners (:meth:`BlobStore.listen`) hear of every blob stored or dropped: the fetcher
stops wanting what is held, and the socket's ``blobs`` subscriptions report progress.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from p2psocial.config import DEFAULT_BLOB_MAX_SIZE, DEFAULT_BLOB_QUOTA
from p2psocial.errors import BlobMissing, BlobRefused
from p2psocial.events import Listeners
from p2psocial.identity import blob_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from p2psocial.blobfiles import BlobFiles, Partial
    from p2psocial.store.gateway import Gateway
    from p2psocial.store.store import Store

log = logging.getLogger("p2psocial.blobs")

MiB = 1024 * 1024
ATTACH_GRACE_MS = 10 * 60 * 1000
"""An attachment not yet referred to (added just before its post) is kept this long."""
USED_FLUSH_MS = 1000
MAX_PURGED_KEPT = 50_000
"""Blobs dropped for room that are remembered (not fetched again) while the daemon runs."""
STALE_PARTIAL_S = 7 * 24 * 3600
"""Unfinished downloads older than this (seconds) are removed when the daemon starts."""
FILE_THREADS = trio.CapacityLimiter(4)
"""Worker threads for blob file I/O, shared by every BlobStore of the process."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class BoundedSet:
    """A set that forgets its oldest members beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: dict[bytes, None] = {}

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: bytes) -> None:
        self._items.pop(item, None)
        self._items[item] = None
        while len(self._items) > self.limit:
            del self._items[next(iter(self._items))]

    def discard(self, item: bytes) -> None:
        self._items.pop(item, None)


@dataclass(frozen=True)
class BlobEvent:
    """A blob was stored (``size`` >= 0) or dropped (``size`` is None)."""

    blob: bytes
    size: int | None
    pinned: bool = False

    def to_json(self) -> dict[str, Any]:
        if self.size is None:
            return {"event": "dropped", "id": blob_id(self.blob)}
        return {"event": "stored", "id": blob_id(self.blob), "size": self.size}


class BlobStore:
    """The blobs of one home: files, rows, cap and quota."""

    def __init__(
        self,
        files: BlobFiles,
        gateway: Gateway,
        me: bytes,
        *,
        max_size: int = DEFAULT_BLOB_MAX_SIZE,
        quota: int = DEFAULT_BLOB_QUOTA,
    ) -> None:
        self.files = files
        self.gateway = gateway
        self.me = me
        self.max_size = max_size
        self.quota = quota
        self.events: Listeners[BlobEvent] = Listeners("blob events")
        """Every blob stored or dropped."""
        self.purged = BoundedSet(MAX_PURGED_KEPT)
        """Blobs dropped for room: not fetched again (unless asked for) while we run."""
        self._used: set[bytes] = set()
        self._used_flushed = 0
        self._fresh: dict[bytes, int] = {}
        """Attachments just added (not pinned), not yet referred to by their post."""

    # -- files, off the loop

    async def in_thread(self, fn: Callable[[], Any]) -> Any:
        return await trio.to_thread.run_sync(fn, limiter=FILE_THREADS)

    # -- adding

    def check_size(self, size: int, what: str = "the file") -> None:
        if size > self.max_size:
            raise BlobRefused(
                f"{what} is {size} bytes; blobs are limited to {self.max_size} bytes "
                f"({self.max_size / MiB:g} MiB), {size - self.max_size} bytes over"
            )

    async def add(self, data: bytes, *, pinned: bool = True) -> tuple[bytes, bool]:
        """Store ``data`` as a blob of ours: (its sha256, whether it is new). Raises
        BlobRefused over the size cap, or when even after purging it would not fit."""
        self.check_size(len(data))
        digest = await self.in_thread(lambda: hashlib.sha256(data).digest())
        held = await self.size(digest) == len(data)
        if not held:
            await self.make_room(len(data), for_ours=True)
            await self.in_thread(lambda: self.files.put(data))
        if not pinned and not held:
            self._fresh[digest] = now_ms()
        await self.gateway.run(lambda s: s.blob_stored(digest, len(data), now_ms(), pinned=pinned))
        self.events.emit(BlobEvent(digest, len(data), pinned))
        return digest, not held

    async def stored_download(self, partial: Partial, *, pinned: bool, relay: bool) -> int:
        """A download is complete: check its hash and move it into place (BadBlob when the
        bytes do not hash to its id: nothing is stored), record it, make room. A blob
        fetched only for a peer may push out only blobs that are neither ours nor of those
        we follow (tier 1); when that is not enough it is dropped again itself, as is any
        other that does not fit, but one the user asked for. Returns its size."""
        size = partial.offset
        await self.in_thread(partial.commit)
        digest = partial.digest
        await self.gateway.run(
            lambda s: s.blob_stored(digest, size, now_ms(), pinned=pinned, relay=relay)
        )
        self.events.emit(BlobEvent(digest, size, pinned))
        if not await self.make_room(0, keep=digest, first_tier_only=relay) and not pinned:
            self.purged.add(digest)  # (one the user asked for stays: theirs to remove)
            await self.drop([digest], reason="no room for it within the blob quota")
        return size

    async def make_room(
        self,
        incoming: int,
        *,
        for_ours: bool = False,
        keep: bytes = b"",
        first_tier_only: bool = False,
    ) -> bool:
        """Purge until ``incoming`` more bytes fit in the quota; whether they do now. Never
        drops ``keep``, nor attachments just added for a post not yet published. Raises
        BlobRefused when a blob of ours (``for_ours``) cannot fit even so."""
        _count, total = await self.gateway.read(lambda s: s.blob_totals())
        over = total + incoming - self.quota
        if over <= 0:
            return True
        await self.flush_used()
        me = self.me

        def choose(store: Store) -> list[tuple[bytes, int, int]]:
            return store.purge_candidates(me, store.follows().get(me, set()))

        chosen: list[tuple[bytes, int]] = []
        freed = 0
        for blob, size, tier in await self.gateway.read(choose):
            if freed >= over:
                break
            if blob == keep or blob in self._fresh or (first_tier_only and tier > 1):
                continue
            chosen.append((blob, size))
            freed += size
        if for_ours and freed < over:
            raise BlobRefused(
                f"the blob store is full: {total} of {self.quota} bytes are used, and "
                f"{incoming} more do not fit even after dropping every blob that is not "
                "yours; raise 'blob_quota' in config.toml or remove blobs ('p2psocial "
                "blob rm')"
            )
        for blob, _size in chosen:
            self.purged.add(blob)
        await self.drop([b for b, _s in chosen], reason="over the storage quota")
        return freed >= over

    async def drop(self, blobs: list[bytes], *, reason: str) -> int:
        """Delete these blobs (files, then rows). Returns how many files went."""
        if not blobs:
            return 0

        def remove_all() -> int:
            removed = 0
            for blob in blobs:
                try:
                    removed += self.files.remove(blob)
                except OSError as exc:  # its row goes anyway; reconcile finds the file
                    log.warning("could not remove blob %s: %s", blob_id(blob), exc)
            return removed

        removed = await self.in_thread(remove_all)
        await self.gateway.run(lambda s: s.blobs_forgotten(blobs))
        log.info("dropped %d blob(s): %s", len(blobs), reason)
        for blob in blobs:
            self.events.emit(BlobEvent(blob, None))
        return int(removed)

    def referred(self, blobs: list[bytes]) -> None:
        """Our own entry now refers to these blobs: no longer just-added attachments."""
        for blob in blobs:
            self._fresh.pop(blob, None)

    async def sweep(self) -> int:
        """Drop the blobs nothing refers to any more (not ours, not fetched for a peer)."""
        now = now_ms()
        self._fresh = {b: t for b, t in self._fresh.items() if t > now - ATTACH_GRACE_MS}
        orphans = await self.gateway.read(lambda s: s.orphan_blobs())
        orphans = [b for b in orphans if b not in self._fresh]
        return await self.drop(orphans, reason="no entry refers to them any more")

    async def clean_leftovers(self) -> None:
        """Remove what earlier runs left unfinished: adds cut by a crash, and downloads not
        touched for STALE_PARTIAL_S. Before anything else writes blobs."""
        self.files.ensure()
        stale = await self.in_thread(lambda: self.files.clean_partials(STALE_PARTIAL_S))
        if stale:
            log.info("removed %d unfinished blob file(s) left from before", stale)

    async def reconcile(self) -> None:
        """Make the store's rows match the files (after a crash between the two)."""
        self.files.ensure()
        found = await self.in_thread(lambda: list(self.files.scan()))
        added, removed = await self.gateway.run(lambda s: s.reconcile_blobs(found, now_ms()))
        if added or removed:
            log.info("blob rows reconciled with the files: %d added, %d removed", added, removed)
        await self.make_room(0)  # the quota may have been lowered

    # -- reading

    async def read(self, digest: bytes, offset: int = 0, length: int = -1) -> bytes:
        return await self.in_thread(  # type: ignore[no-any-return]
            lambda: self.files.read(digest, offset, length)
        )

    async def size(self, digest: bytes) -> int | None:
        return await self.in_thread(  # type: ignore[no-any-return]
            lambda: self.files.size(digest)
        )

    async def used(self, digests: list[bytes]) -> None:
        """These blobs were read or served: noted at once a second at most (LRU order
        needs no more), on the store's writer."""
        self._used.update(digests)
        now = now_ms()
        if now - self._used_flushed >= USED_FLUSH_MS:
            await self.flush_used()

    async def flush_used(self) -> None:
        pending, self._used = list(self._used), set()
        self._used_flushed = now = now_ms()
        if pending:
            await self.gateway.run(lambda s: s.blobs_used(pending, now))

    async def remove(self, digest: bytes) -> bool:
        """The user removes a blob (``blob rm``): gone, pinned or not."""
        if await self.size(digest) is None:
            held = await self.gateway.read(lambda s: s.held_blob(digest))
            if held is None:
                raise BlobMissing(f"blob {blob_id(digest)} is not held here")
        return await self.drop([digest], reason="removed by the user") > 0

    async def totals(self) -> dict[str, int]:
        count, size = await self.gateway.read(lambda s: s.blob_totals())
        return {"count": count, "bytes": size, "quota": self.quota, "max_size": self.max_size}
