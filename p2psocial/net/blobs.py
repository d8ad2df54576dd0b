"""The blob exchange over peer connections: the trio shell around proto.blobs.

Theory of operation
-------------------
Each connection carries one ``blobs.wants`` duplex stream, opened by the side that dialled
(beside ``replicate.ebt``). Both sides send want/have maps on it; the sans-IO
:class:`~p2psocial.proto.blobs.BlobWants` decides what to say and what to fetch from whom.
A blob is fetched with a ``blobs.get`` stream ``{"id": BLOB_ID, "offset": N}``: the server
answers with the bytes from ``offset`` in chunks, then ends the stream. The receiver
writes them to a partial file (``blobfiles.py``), so a cut download resumes from where it
stopped; a blob whose bytes do not hash to its id is dropped and its sender cut off, with
the reason logged. docs/protocol.md section 10.

What we want: blobs referred to by entries of feeds within ``hops`` follows of us (1: ours
and those we follow), and attachments of private messages to us; thumbnails and avatars
first (``Store.wanted_blobs``). Recomputed when entries that may refer to blobs are stored,
or the follow graph changes; blobs nothing refers to any more are then swept. Blocked feeds'
entries are purged, so their blobs are neither wanted nor kept, and blocked peers cannot
connect to ask for any.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from p2psocial.errors import (
    BadBlob,
    BlobMissing,
    InvalidId,
    MixedBlobSources,
    P2PSocialError,
    PeerDisconnected,
    RpcError,
)
from p2psocial.events import Listeners
from p2psocial.identity import blob_id, parse_blob_id
from p2psocial.msgtypes.blobs import AVATAR, THUMB, blob_refs
from p2psocial.net.connection import Connection, RpcStream, stream_handler
from p2psocial.proto.blobs import CHUNK_SIZE, BlobWants, Fetch, parse_wants_message

if TYPE_CHECKING:
    from p2psocial.blobfiles import Partial
    from p2psocial.blobstore import BlobEvent, BlobStore
    from p2psocial.events import EventBus, Stored
    from p2psocial.store.gateway import Gateway
    from p2psocial.store.store import Store

log = logging.getLogger("p2psocial.blobs")

WANTS_METHOD = "blobs.wants"
GET_METHOD = "blobs.get"
REFRESH_DELAY = 0.2
"""Seconds to gather changes before recomputing what we want."""
CHUNK_IDLE = 30.0
"""Seconds a download may wait for its next chunk before it is given up (as failed)."""
FAILURE_PAUSE = 5.0
"""Seconds to wait after a disk or store error before trying again."""
MAX_LIARS_KEPT = 100
WRITE_BATCH = 8
"""Chunks already received that one write takes together (one thread hop)."""
READ_BLOCK = 4 * CHUNK_SIZE
"""Bytes a served blob is read in at a time (sent as CHUNK_SIZE items)."""
WANTED_AT_ONCE = 2000
"""Most blobs wanted at once; more are wanted as these arrive."""
_REF_TYPES = frozenset({"post", "about", None})
"""Entries of these content types (None: private) may refer to blobs."""


class BlobService:
    """Wants, haves and downloads of one daemon (see the module docstring)."""

    def __init__(
        self, blobs: BlobStore, gateway: Gateway, me: bytes, *, hops: int, bus: EventBus
    ) -> None:
        self.blobs = blobs
        self.gateway = gateway
        self.me = me
        self.hops = hops
        self.core = BlobWants(blobs.max_size)
        self.sessions: dict[Connection, trio.MemorySendChannel[None]] = {}
        self.progress: Listeners[dict[str, Any]] = Listeners("blob progress")
        """Blob events as the socket's ``blobs`` subscriptions get them (JSON)."""
        self.pinned_wants: set[bytes] = set()
        """Blobs the user asked for (``blob get``): pinned when they arrive."""
        self._refresh = trio.Event()
        self._sweep = False
        self._full = False
        self._near: set[bytes] = {me}
        """Feeds whose blobs we want (within ``hops`` follows), as of the last recompute."""
        self._pending_event = trio.Event()
        self._pending: dict[bytes, int] = {}
        """Blobs new entries refer to, to want (blob -> priority)."""
        self._recomputing = False
        self._wanted_meanwhile: dict[bytes, int] = {}
        self._held_meanwhile: set[bytes] = set()
        """Wants taken and blobs stored since the last recompute began (see _recompute)."""
        self._fetch_kick = trio.Event()
        self._arrived: dict[bytes, trio.Event] = {}
        self._nursery: trio.Nursery | None = None
        self._more_wanted = False
        self.fetched = 0
        self.liars: dict[str, str] = {}
        bus.subscribe(self._on_stored)
        blobs.events.subscribe(self._on_blob)

    # ------------------------------------------------------------------ lifecycle

    def handlers(self) -> dict[str, Any]:
        async def wants(conn: Connection, args: Any, stream: RpcStream) -> None:
            await self.run_session(conn, stream)

        async def get(conn: Connection, args: Any, stream: RpcStream) -> None:
            await self._serve_get(conn, args, stream)

        return {WANTS_METHOD: stream_handler(wants), GET_METHOD: stream_handler(get)}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve once what earlier runs left unfinished is gone; the blob folder's scan
        against the store (``reconcile``) and the first recompute of our wants run after
        start-up, not before it."""
        await self.blobs.clean_leftovers()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._refresh_loop)
            nursery.start_soon(self._pending_loop)
            nursery.start_soon(self._fetch_loop)
            task_status.started()
            await self.blobs.reconcile()
            await self._recompute()

    def _on_stored(self, event: Stored) -> None:
        """New entries: the blobs they refer to are wanted at once (if their author is
        near, or they come in a private message to us); a follow, block or delete makes
        the whole set of wants be recomputed, and what nothing refers to swept."""
        near = self._near
        for accepted in event.entries:
            kind = accepted.content_type
            author = accepted.entry.author
            if kind == "delete" or (kind == "contact" and author == self.me):
                self._sweep = self._full = True  # our follows and blocks, anyone's deletes
                self._refresh.set()
                continue
            if kind == "contact":
                if self.hops > 1 and author in near:  # who is within our blob hops moved
                    self._full = True
                    self._refresh.set()
                continue
            if kind not in _REF_TYPES:
                continue
            private = accepted.private_value is not None
            value = accepted.private_value if private else accepted.value
            if not isinstance(value, dict):
                continue
            refs = blob_refs(value)
            if not refs:
                continue
            if event.local:
                self.blobs.referred([ref.blob for ref in refs])
            if not private and author not in near:
                if self._full or self._recomputing:  # ``near`` may be about to change
                    self._full = True
                    self._refresh.set()
                continue
            for ref in refs:
                if private and ref.key is None:
                    continue
                if len(self._pending) >= WANTED_AT_ONCE:
                    self._full = True  # too many at once: the recompute takes them
                    self._refresh.set()
                    break
                priority = 0 if ref.kind in (THUMB, AVATAR) else 1
                self._pending[ref.blob] = min(priority, self._pending.get(ref.blob, 1))
            self._pending_event.set()

    def graph_changed(self) -> None:
        """Blocks purge feeds: sweep what only they referred to."""
        self._sweep = self._full = True
        self._refresh.set()

    def _on_blob(self, event: BlobEvent) -> None:
        if event.size is not None:
            self.core.held(event.blob, event.size)
            self._held_meanwhile.add(event.blob)
            self._wanted_meanwhile.pop(event.blob, None)
            if self._more_wanted and len(self.core.local) < WANTED_AT_ONCE // 4:
                self._more_wanted = False
                self._full = True
                self._refresh.set()  # the rest of what we want, beyond the last limit
            arrived = self._arrived.pop(event.blob, None)
            if arrived is not None:
                arrived.set()
        else:
            self.core.dropped(event.blob)
        self._kick_all()
        self.progress.emit(event.to_json())

    async def _refresh_loop(self) -> None:
        """A whole recompute (after a graph change or a delete) runs at once, then gathers
        what follows for REFRESH_DELAY; the wants of new entries never wait for it."""
        while True:
            await self._refresh.wait()
            self._refresh = trio.Event()
            try:
                if self._sweep:
                    self._sweep = False
                    await self.blobs.sweep()
                if self._full:
                    self._full = False
                    await self._recompute()
            except (P2PSocialError, OSError) as exc:  # the store or the disk: try again later
                log.warning("blob wants not refreshed: %s; trying again", exc)
                self._full = True
                self._refresh.set()
                await trio.sleep(FAILURE_PAUSE)
            await trio.sleep(REFRESH_DELAY)

    async def _pending_loop(self) -> None:
        while True:
            await self._pending_event.wait()
            self._pending_event = trio.Event()
            if self._pending:
                try:
                    await self._want_pending()
                except P2PSocialError as exc:  # the full recompute will find them
                    log.warning("new blob wants not taken: %s", exc)
                    self._full = True
                    self._refresh.set()

    async def _want_pending(self) -> None:
        pending, self._pending = self._pending, {}
        held = await self.gateway.read(lambda s: s.blob_sizes(list(pending)))
        for blob, priority in pending.items():
            if blob not in held and blob not in self.blobs.purged:
                self.core.want(blob, priority)
                self._wanted_meanwhile[blob] = priority
        self._kick_all()

    async def _recompute(self) -> None:
        me, hops = self.me, self.hops

        def read(store: Store) -> tuple[set[bytes], dict[bytes, int]]:
            near = set(store.replication_set(me, hops)) | {me}
            return near, store.wanted_blobs(near, limit=WANTED_AT_ONCE)

        self._wanted_meanwhile, self._held_meanwhile = {}, set()
        self._recomputing = True
        try:
            self._near, wanted = await self.gateway.read(read)
        finally:
            self._recomputing = False
        # what changed while the store was read: wants taken since, blobs stored since
        for blob, priority in self._wanted_meanwhile.items():
            wanted.setdefault(blob, priority)
        for blob in self._held_meanwhile:
            wanted.pop(blob, None)
        self._more_wanted = len(wanted) >= WANTED_AT_ONCE
        for blob in self.blobs.purged:
            wanted.pop(blob, None)
        for blob in self.pinned_wants:
            wanted[blob] = -1
        self.core.set_wanted(wanted)
        self._kick_all()

    def _kick_all(self) -> None:
        for kick in self.sessions.values():
            try:
                kick.send_nowait(None)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        self._fetch_kick.set()

    # ------------------------------------------------------------------ asking for one

    def want(self, digest: bytes) -> trio.Event:
        """The user wants this blob: fetch it from any peer first. The event is set once
        it is held."""
        arrived = self._arrived.setdefault(digest, trio.Event())
        self.blobs.purged.discard(digest)
        self.pinned_wants.add(digest)
        self.core.want(digest)
        self._kick_all()
        return arrived

    def report(self) -> dict[str, Any]:
        return {**self.core.report(), "fetched_since_start": self.fetched}

    # ------------------------------------------------------------------ sessions

    async def open_session(self, conn: Connection) -> None:
        """Dialler side: open the wants stream and run the session on it. Never raises
        but Cancelled: a peer without blobs (or with broken ones) still replicates."""
        try:
            async with conn.stream(WANTS_METHOD, {}) as stream:
                await self.run_session(conn, stream)
        except (P2PSocialError, OSError) as exc:
            log.info("no blob exchange with %s: %s", conn.remote_id, exc)

    async def run_session(self, conn: Connection, stream: RpcStream) -> None:
        if conn.remote_key == self.me or conn in self.sessions:
            return
        kick_send, kick_recv = trio.open_memory_channel[None](1)
        self.sessions[conn] = kick_send
        self.core.peer_connected(conn)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._say, conn, stream, kick_recv)
                await self._hear(conn, stream)
                nursery.cancel_scope.cancel()
        except* BadBlob as group:
            await self._cut_off(conn, group.exceptions[0])
        except* PeerDisconnected:
            pass
        except* (P2PSocialError, OSError) as group:  # e.g. the peer ended it with an error
            log.info("blob exchange with %s ended: %s", conn.remote_id, group.exceptions[0])
        finally:
            del self.sessions[conn]
            self.core.peer_disconnected(conn)
            self._fetch_kick.set()

    async def _cut_off(self, conn: Connection, exc: BaseException) -> None:
        if len(self.liars) >= MAX_LIARS_KEPT:
            del self.liars[next(iter(self.liars))]
        self.liars[conn.remote_id] = str(exc)
        log.warning("cutting off %s: %s", conn.remote_id, exc)
        await conn.aclose(f"cut off: {exc}")

    async def _say(
        self, conn: Connection, stream: RpcStream, kick: trio.MemoryReceiveChannel[None]
    ) -> None:
        while True:
            message = self.core.take_message(conn)
            if message is not None:
                await stream.send(message)
                continue
            await kick.receive()

    async def _hear(self, conn: Connection, stream: RpcStream) -> None:
        async for message in stream:
            wants, haves = parse_wants_message(message)
            if wants:
                asked = list(wants)
                held = await self.gateway.read(lambda s, asked=asked: s.blob_sizes(asked))  # type: ignore[misc]
                if conn not in self.sessions:
                    return
                held = {b: n for b, n in held.items() if n <= self.blobs.max_size}
                self.core.wants_received(conn, wants, held)
            if haves:
                self.core.haves_received(conn, haves)
            self._kick_all()

    # ------------------------------------------------------------------ serving

    async def _serve_get(self, conn: Connection, args: Any, stream: RpcStream) -> None:
        if not isinstance(args, dict):
            raise BadBlob("blobs.get needs {id, offset}")
        try:
            digest = parse_blob_id(args.get("id"))
        except InvalidId as exc:
            raise BadBlob(f"blobs.get: {exc}") from None
        offset = args.get("offset", 0)
        if type(offset) is not int or offset < 0:
            raise BadBlob("blobs.get: 'offset' must be a number of bytes")
        size = await self.blobs.size(digest)
        if size is None or size > self.blobs.max_size:
            raise BlobMissing(f"blob {blob_id(digest)} is not held here")
        await self.blobs.used([digest])
        reader = await self.blobs.in_thread(lambda: self.blobs.files.path(digest).open("rb"))
        try:
            await self.blobs.in_thread(lambda: reader.seek(offset))
            while offset < size:
                block = await self.blobs.in_thread(lambda: reader.read(READ_BLOCK))
                if not block:
                    break
                for at in range(0, len(block), CHUNK_SIZE):
                    await stream.send(block[at : at + CHUNK_SIZE])
                offset += len(block)
        finally:
            reader.close()

    # ------------------------------------------------------------------ fetching

    async def _fetch_loop(self) -> None:
        assert self._nursery is not None
        while True:
            await self._fetch_kick.wait()
            self._fetch_kick = trio.Event()
            for fetch in self.core.next_fetches():
                self._nursery.start_soon(self._fetch, fetch)

    async def _fetch(self, fetch: Fetch) -> None:
        """One download, whatever becomes of it: a peer's lie cuts that peer off, a lost
        connection or a slow peer is a failure (another peer is asked), a disk or store
        error is logged and the download given up for now; none of it reaches the
        daemon."""
        conn: Connection = fetch.peer
        text = blob_id(fetch.blob)
        ok, blame = False, True
        try:
            ok = await self._download(conn, fetch)
        except MixedBlobSources as exc:
            blame = False
            log.warning("%s", exc)
        except BadBlob as exc:
            await self._cut_off(conn, exc)
        except (PeerDisconnected, RpcError, trio.TooSlowError) as exc:
            log.info("fetching %s from %s failed: %s", text, conn.remote_id, exc or "too slow")
        except (P2PSocialError, OSError) as exc:
            log.warning("fetching %s failed: %s", text, exc)
            await trio.sleep(FAILURE_PAUSE)  # a full disk is not retried at once
        finally:
            self.core.fetch_ended(fetch, ok, blame=blame)
            self._fetch_kick.set()

    async def _download(self, conn: Connection, fetch: Fetch) -> bool:
        """Fetch one blob into its partial file, resuming it; True once it is stored.
        Raises BadBlob when this peer's bytes prove false (it sent more than it said, or
        every byte of a download that does not hash to the id); MixedBlobSources when bytes
        of several sources do not (the partial is dropped, nobody is blamed)."""
        digest, expected = fetch.blob, fetch.size
        blobs = self.blobs
        text = blob_id(digest)
        partial = await blobs.in_thread(lambda: blobs.files.partial(digest))
        try:
            if partial.offset > expected:
                await blobs.in_thread(partial.discard)
                partial = await blobs.in_thread(lambda: blobs.files.partial(digest))
            start = partial.offset
            async with conn.stream(GET_METHOD, {"id": text, "offset": start}) as stream:
                ended = False
                while not ended:
                    with trio.fail_after(CHUNK_IDLE):
                        try:
                            chunks = [await stream.receive()]
                        except trio.EndOfChannel:
                            break
                    while len(chunks) < WRITE_BATCH:  # what has come meanwhile, in one write
                        try:
                            chunks.append(stream.receive_nowait())
                        except trio.WouldBlock:
                            break
                        except trio.EndOfChannel:
                            ended = True
                            break
                    size = partial.offset
                    for chunk in chunks:
                        if type(chunk) is not bytes:
                            raise BadBlob(f"blobs.get of {text} sent a {type(chunk).__name__}")
                        size += len(chunk)
                    if size > expected:
                        await blobs.in_thread(partial.discard)
                        raise BadBlob(
                            f"sent more than the {expected} bytes it said blob {text} has"
                        )
                    await blobs.in_thread(lambda chunks=chunks: partial.write_all(chunks))  # type: ignore[misc]
                    if self.progress:
                        self.progress.emit(
                            {
                                "event": "progress",
                                "id": text,
                                "received": partial.offset,
                                "size": expected,
                            }
                        )
            if partial.offset < expected and partial.hasher.digest() != digest:
                raise trio.TooSlowError(f"the peer sent {partial.offset} of {expected} bytes")
        except BaseException:
            self._keep_or_drop(partial, digest)
            raise
        pinned = digest in self.pinned_wants
        relay = digest not in self.core.local
        try:
            await blobs.stored_download(partial, pinned=pinned, relay=relay)
        except BadBlob as exc:
            if start > 0:  # bytes of an earlier try (maybe another peer's) are in it
                raise MixedBlobSources(
                    f"blob {text} resumed from {start} bytes did not hash to its id: "
                    "dropped, to be fetched again from the start"
                ) from exc
            raise
        self.pinned_wants.discard(digest)
        self.fetched += 1
        log.info("fetched blob %s (%d bytes) from %s", text, partial.offset, conn.remote_id)
        return True

    def _keep_or_drop(self, partial: Partial, digest: bytes) -> None:
        """After a download that did not finish: keep what came, to resume, if it is a blob
        we want ourselves and anything came; else drop the partial file (no disk for blobs
        fetched for others, nor for empty tries). Synchronous: it runs when cancelled too."""
        if partial.offset > 0 and digest in self.core.local:
            partial.close()
        else:
            partial.discard()
