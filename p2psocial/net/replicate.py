"""Gossip replication over peer connections: the trio shell around proto.replication.

Theory of operation
-------------------
Every peer connection carries one duplex stream, ``replicate.ebt``, opened by the side that
dialled. Both sides then run the same session: a *receiver* that reads messages and a
*sender* that writes them. Messages are msgpack maps:

- ``{"clock": {feed_key: note, ...}}``: notes (see proto/replication.py);
- ``{"entries": [[entry_bytes, content_bytes_or_nil], ...]}``: a batch, in feed order.

Decisions (who sends which feed, what is stalled) are made by the sans-IO
:class:`~p2psocial.proto.replication.Replicator`; this module moves messages and entries:

- Received batches go through one bounded ingest channel (so a fast peer is slowed by TCP,
  not by memory) to the ingest task, which verifies the next batch on worker processes
  while it stores the current one (Store.start_batch / finish_batch).
- A peer whose batch breaks a rule (forged, out of order, fork) is cut off and the reason
  logged; nothing of the broken run is stored.
- After each stored batch, the core learns our new clock and every session's sender is
  woken to push the new entries to peers that want them (live replication).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from p2psocial.errors import (
    P2PSocialError,
    PeerDisconnected,
    RemoteProtocolError,
    StorageError,
)
from p2psocial.events import Stored
from p2psocial.feed.formats import peek_feed_seq
from p2psocial.identity import feed_id
from p2psocial.net.connection import Connection, RpcStream, stream_handler
from p2psocial.proto.replication import (
    SEND_BATCH_BYTES,
    SEND_BATCH_ENTRIES,
    Items,
    Replicator,
    cut_off_reason,
    keep_new_connection,
    parse_message,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from p2psocial.events import EventBus
    from p2psocial.store.gateway import StoreGateway
    from p2psocial.store.store import BatchResult, PreparedBatch, Store

log = logging.getLogger("p2psocial.replication")

METHOD = "replicate.ebt"
INGEST_BATCH_ENTRIES = 5000
INGEST_QUEUE = 16  # received batches waiting for the store (at most ~16 MiB)
PEER_PIPELINE = 6
"""Batches of one peer that may wait for (or be in) ingest: a fast or hostile peer is held
back by TCP, not buffered, and cannot crowd the others out of the ingest queue."""
TICK_SECONDS = 1.0
RETRY_PAUSED_SECONDS = 2.0
"""While the store cannot be written (a full disk), how often the held batch is retried."""


@dataclass
class Session:
    """One replicating peer connection."""

    conn: Connection
    stream: RpcStream
    address: str | None
    since: int
    kick_send: trio.MemorySendChannel[None]
    kick_recv: trio.MemoryReceiveChannel[None]
    received: int = 0
    sent: int = 0
    last_error: str | None = None
    cut: bool = False
    pipeline: trio.Semaphore = field(default_factory=lambda: trio.Semaphore(PEER_PIPELINE))

    def kick(self) -> None:
        try:
            self.kick_send.send_nowait(None)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            pass


@dataclass
class ReplicationStats:
    entries_stored: int = 0
    batches: int = 0
    rejected: dict[str, str] = field(default_factory=dict)


class Replication:
    """Runs replication for one node: sessions, ingest, the follow graph."""

    def __init__(
        self,
        gateway: StoreGateway,
        me: bytes,
        *,
        hops: int,
        now: Callable[[], int],
        bus: EventBus,
        stall_ms: int = 5000,
        serve_follows_only: bool = False,
    ) -> None:
        self.gateway = gateway
        self.me = me
        self.hops = hops
        self.now = now
        self.bus = bus
        self.stall_ms = stall_ms
        self.core = Replicator({}, ())
        self.sessions: dict[Connection, Session] = {}
        self.blocked: set[bytes] = set()
        self.wanted: dict[bytes, int] = {}
        self.stats = ReplicationStats()
        self._ingest_send, self._ingest_recv = trio.open_memory_channel[tuple[Session, Items]](
            INGEST_QUEUE
        )
        self._nursery: trio.Nursery | None = None
        self._held_back: tuple[Session, Items] | None = None
        self._graph_changed = trio.Event()
        self.paused: str | None = None
        """Why replication is paused (the store cannot be written), or None."""
        self.serve_follows_only = serve_follows_only
        self.served: set[bytes] = {me}
        """With ``serve_follows_only``: the feeds we send (ours and those we follow)."""
        self.allowed: set[bytes] = set()
        """With ``serve_follows_only``: the peers we replicate with (followed, our pubs)."""
        self.purge_listeners: list[Callable[[bytes], None]] = []
        """Called with each feed purged because we blocked it (the blob sweep listens)."""
        bus.subscribe(self._on_stored)

    # ------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load the clock and graph, then run ingest and the ticker until cancelled."""

        def load(
            store: Store,
        ) -> tuple[dict[bytes, tuple[int, bool]], dict[bytes, int], set[bytes], dict[bytes, int]]:
            return (
                store.latest_seqs(),
                store.replication_set(self.me, self.hops),
                store.blocked_by(self.me),
                store.missing_content(),
            )

        seqs, wanted, blocked, gaps = await self.gateway.run(load)
        self.wanted, self.blocked = wanted, blocked
        self.core = Replicator(
            {f: s for f, (s, _) in seqs.items()},
            wanted,
            {f for f, (_, forked) in seqs.items() if forked},
            stall_ms=self.stall_ms,
        )
        for feed, first in gaps.items():
            self.core.content_missing(feed, first)
        if self.serve_follows_only:
            await self.refresh_graph()  # who we serve
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._ingest_loop)
            nursery.start_soon(self._ticker)
            nursery.start_soon(self._graph_loop)
            task_status.started()

    def handlers(self) -> dict[str, Any]:
        """Peer RPC handlers to register on every connection."""

        async def serve(conn: Connection, args: Any, stream: RpcStream) -> None:
            await self.run_session(conn, stream)

        return {METHOD: stream_handler(serve)}

    def accept(self, remote_key: bytes) -> bool:
        """Whether to accept a connection from this key: blocked feeds are refused,
        everyone while replication is paused, and with ``serve_follows_only`` anyone we
        neither follow nor joined as a pub."""
        if remote_key in self.blocked or self.paused is not None:
            return False
        return not self.serve_follows_only or remote_key in self.allowed

    def is_connected(self, key: bytes) -> bool:
        return any(s.conn.remote_key == key for s in self.sessions.values())

    # ------------------------------------------------------------------ sessions

    async def open_session(self, conn: Connection, address: str | None = None) -> None:
        """Dialler side: open the replication stream and run the session on it."""
        async with conn.stream(METHOD, {"version": 1}) as stream:
            await self.run_session(conn, stream, address)

    async def run_session(
        self, conn: Connection, stream: RpcStream, address: str | None = None
    ) -> None:
        """Replicate with one peer until the stream or connection ends."""
        if conn.remote_key == self.me or not self.accept(conn.remote_key):
            return
        existing = next(
            (s for s in self.sessions.values() if s.conn.remote_key == conn.remote_key), None
        )
        if existing is not None:
            if not keep_new_connection(self.me, self._dialler(conn), self._dialler(existing.conn)):
                log.info("dropping duplicate connection to %s", conn.remote_id)
                return
            log.info("replacing duplicate connection to %s", conn.remote_id)
            await existing.conn.aclose("duplicate connection")
        kick_send, kick_recv = trio.open_memory_channel[None](1)
        session = Session(conn, stream, address, self.now(), kick_send, kick_recv)
        self.sessions[conn] = session
        self.core.peer_connected(conn, self.now(), key=conn.remote_key)
        log.info("replicating with %s", conn.remote_id)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._sender, session)
                await self._receiver(session)
                nursery.cancel_scope.cancel()
        except* RemoteProtocolError as group:
            exc = group.exceptions[0]
            session.last_error = str(exc)
            log.warning("cutting off %s: %s", conn.remote_id, exc)
            await conn.aclose(f"cut off: {exc}")
        except* PeerDisconnected:
            pass
        except* P2PSocialError as ended:  # e.g. the peer ended the stream with an error
            error = ended.exceptions[0]
            session.last_error = str(error)
            log.warning("%s ended replication with an error: %s", conn.remote_id, error)
            await conn.aclose(f"replication ended with an error: {error}")
        finally:
            del self.sessions[conn]
            self.core.peer_disconnected(conn, self.now())
            self._kick_all()
            log.info("stopped replicating with %s", conn.remote_id)

    def _dialler(self, conn: Connection) -> bytes:
        return self.me if conn.initiator else conn.remote_key

    async def _receiver(self, session: Session) -> None:
        async for message in session.stream:
            clock, entries = parse_message(message)
            if clock is not None:
                self.core.notes_received(session.conn, clock, self.now())
                session.kick()
            if entries:
                items = self._admit(session, entries)
                if items:
                    await session.pipeline.acquire()  # at most PEER_PIPELINE batches each
                    await self._ingest_send.send((session, items))

    def _admit(self, session: Session, entries: Items) -> Items:
        """The entries of a batch worth ingesting: of feeds we want. Raises
        RemoteProtocolError for an entry at or below the note we gave this peer for its
        feed (we told it we hold that: sending it is a replay)."""
        wanted, floors = self.wanted, self.core.floors(session.conn)
        items = []
        for item in entries:
            feed, seq = peek_feed_seq(item[0])
            if feed not in wanted:
                continue
            floor = floors.get(feed) if feed is not None else None
            if floor is not None and seq is not None and seq <= floor:
                raise RemoteProtocolError(
                    f"sent entry {seq} of {feed_id(feed)}, which we told it we hold"
                )
            items.append(item)
        return items

    async def _sender(self, session: Session) -> None:
        peer = session.conn
        while True:
            notes = self.core.take_notes(peer)
            if notes:
                await session.stream.send({"clock": notes})
            todo = self.core.to_send(peer)
            if todo and self.serve_follows_only:
                todo = {f: seq for f, seq in todo.items() if f in self.served}
            if todo:
                batch, marks = await self.gateway.run(
                    lambda store, todo=todo: _read_batch(store, todo)  # type: ignore[misc]
                )
                if batch:
                    await session.stream.send({"entries": batch})
                    session.sent += len(batch)
                for feed, seq in marks.items():
                    self.core.sent(peer, feed, seq)
                if batch:
                    continue
            await session.kick_recv.receive()

    def _kick_all(self) -> None:
        for session in self.sessions.values():
            session.kick()

    async def _ticker(self) -> None:
        while True:
            await trio.sleep(TICK_SECONDS)
            self.core.tick(self.now())
            self._kick_all()

    # ------------------------------------------------------------------ ingest

    def _take_nowait(self) -> tuple[Session, Items]:
        """The next queued batch (raises WouldBlock); its peer may queue another."""
        session, items = self._ingest_recv.receive_nowait()
        session.pipeline.release()
        return session, items

    async def _take(self) -> tuple[Session, Items]:
        session, items = await self._ingest_recv.receive()
        session.pipeline.release()
        return session, items

    def _next_unit(self, first: tuple[Session, Items]) -> tuple[Session, Items]:
        """Merge batches of the same peer already waiting, up to INGEST_BATCH_ENTRIES."""
        session, items = first
        while len(items) < INGEST_BATCH_ENTRIES:
            try:
                other, more = self._take_nowait()
            except trio.WouldBlock:
                break
            if other is not session:
                self._held_back = (other, more)
                break
            items = items + more
        return session, items

    async def _receive_unit(self, block: bool) -> tuple[Session, Items] | None:
        held = self._held_back
        if held is not None:
            self._held_back = None
            return self._next_unit(held)
        if block:
            return self._next_unit(await self._take())
        try:
            return self._next_unit(self._take_nowait())
        except trio.WouldBlock:
            return None

    async def _start(self, items: Items) -> PreparedBatch:
        return await self.gateway.run(lambda store: store.start_batch(items))

    async def _finish(self, prepared: PreparedBatch) -> BatchResult:
        blocked = frozenset(self.blocked)
        now = self.now()
        return await self.gateway.run(lambda store: store.finish_batch(prepared, now, blocked))

    async def _ingest_loop(self) -> None:
        ahead: tuple[Session, PreparedBatch] | None = None
        while True:
            if ahead is None:
                unit = await self._receive_unit(block=True)
                assert unit is not None
                ahead = (unit[0], await self._start(unit[1]))
            session, prepared = ahead
            ahead = None
            following = await self._receive_unit(block=False)
            if following is not None:  # verify the next batch while this one is stored
                ahead = (following[0], await self._start(following[1]))
            await self._after_ingest(session, await self._store_or_pause(prepared))

    async def _store_or_pause(self, prepared: PreparedBatch) -> BatchResult:
        """Store a batch. If the store cannot be written (a full disk, a read-only file),
        pause: say why in the log and in ``status``, close every replication session (the
        peers send the entries again later: our clock did not move), refuse new ones, and
        retry this batch until it goes in; then resume. Reads keep being served."""
        while True:
            try:
                result = await self._finish(prepared)
            except StorageError as exc:
                if self.paused is None:
                    self.paused = f"the store cannot be written: {exc}"
                    log.error(
                        "replication paused: %s; retrying every %.0f s", exc, RETRY_PAUSED_SECONDS
                    )
                    for session in list(self.sessions.values()):
                        await session.conn.aclose("replication paused: store cannot be written")
                    self._drop_queued()
                await trio.sleep(RETRY_PAUSED_SECONDS)
                continue
            if self.paused is not None:
                log.warning("replication resumed: the store can be written again")
                self.paused = None
            return result

    def _drop_queued(self) -> None:
        """Forget batches waiting for ingest (their peers are gone; they send again)."""
        self._held_back = None
        while True:
            try:
                self._take_nowait()
            except trio.WouldBlock:
                return

    async def _after_ingest(self, session: Session, result: BatchResult) -> None:
        self.stats.batches += 1
        self.stats.entries_stored += len(result.stored)
        session.received += len(result.stored)
        for proof in result.forks:
            self.core.feed_forked(proof.author)
            log.warning(
                "feed %s is forked at seq %d: fork proof stored", feed_id(proof.author), proof.seq
            )
        for feed, first in result.missing.items():
            self.core.content_missing(feed, first)
        if result.stored:
            self.bus.emit(Stored(result.stored, local=False))
        if result.filled:
            self.bus.emit(Stored(result.filled, local=False))
        errors = {
            feed_id(author) if author else "undecodable entry": str(error)
            for author, error in result.errors.items()
        }
        reason = cut_off_reason(errors, len(result.forks))
        if reason is not None and not session.cut:
            session.cut = True
            session.last_error = reason
            self.stats.rejected[session.conn.remote_id] = reason
            log.warning("cutting off %s: invalid entries: %s", session.conn.remote_id, reason)
            if self._nursery is not None:
                self._nursery.start_soon(session.conn.aclose, f"cut off: {reason}")
        self._kick_all()

    def _on_stored(self, event: Stored) -> None:
        """Entries were stored (received, or published by us): advance our clock, push them
        to peers that want them, and recompute the graph if a contact changed."""
        latest: dict[bytes, int] = {}
        for accepted in event.entries:
            latest[accepted.entry.author] = accepted.entry.seq
            if accepted.content_type == "contact":
                self._graph_changed.set()
        now = self.now()
        for feed, seq in latest.items():
            self.core.entries_stored(feed, seq, now)
        self._kick_all()

    async def _graph_loop(self) -> None:
        while True:
            await self._graph_changed.wait()
            self._graph_changed = trio.Event()
            await self.refresh_graph()

    # ------------------------------------------------------------------ graph and local

    async def refresh_graph(self) -> None:
        """Recompute who we replicate and block after the follow graph changed."""

        def load(store: Store) -> tuple[dict[bytes, int], set[bytes], set[bytes], set[bytes]]:
            near = set(store.replication_set(self.me, 1))
            pubs = {key for _address, key, source in store.known_peers() if source == "pub"}
            return (
                store.replication_set(self.me, self.hops),
                store.blocked_by(self.me),
                near,
                (near - {self.me}) | pubs,
            )

        wanted, blocked, self.served, self.allowed = await self.gateway.run(load)
        for key in blocked - self.blocked:
            deleted = await self._purge(key)
            self.core.forget_feed(key)
            log.info("blocked %s: purged %d entries", feed_id(key), deleted)
            for listener in self.purge_listeners:
                listener(key)
            for session in list(self.sessions.values()):
                if session.conn.remote_key == key:
                    await session.conn.aclose("blocked")
        self.blocked = blocked
        self.wanted = wanted
        self.core.set_wanted(wanted, self.now())
        self._kick_all()

    async def _purge(self, key: bytes) -> int:
        return await self.gateway.run(lambda store: store.purge_feed(key))

    # ------------------------------------------------------------------ reporting

    def peer_report(self) -> list[dict[str, Any]]:
        """Per-peer progress, for ``peers`` and ``status``."""
        return [
            {
                "feed_id": conn.remote_id,
                "address": session.address,
                "direction": "outbound" if conn.initiator else "inbound",
                "since": session.since,
                "entries_received": session.received,
                "entries_sent": session.sent,
                **self.core.peer_progress(conn),
            }
            for conn, session in self.sessions.items()
        ]

    def progress(self) -> dict[str, int | str | None]:
        """Totals over all feeds we replicate, and why replication is paused (or None)."""
        return {
            **self.core.progress(),
            "entries_stored_since_start": self.stats.entries_stored,
            "paused": self.paused,
        }


def _read_batch(store: Store, todo: dict[bytes, int]) -> tuple[Items, dict[bytes, int]]:
    """Up to a batch of entries the peer lacks, across feeds, each feed in order."""
    batch: Items = []
    marks: dict[bytes, int] = defaultdict(int)
    size = 0
    for feed, seq in todo.items():
        room = SEND_BATCH_ENTRIES - len(batch)
        if room <= 0 or size >= SEND_BATCH_BYTES:
            break
        rows = store.entries_after(feed, seq, room)
        for raw, content in rows:
            batch.append((raw, content))
            size += len(raw) + (len(content) if content else 0)
            seq += 1
            if size >= SEND_BATCH_BYTES:
                break
        if rows:
            marks[feed] = seq
    return batch, dict(marks)


__all__ = ["METHOD", "Replication", "Session"]
