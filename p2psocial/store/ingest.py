"""Writing entries: our own publishes and batches from peers, with every view indexed in
the same transaction.

The hot path (replication and ``bench_ingest.py``) is :meth:`Ingest.start_batch` /
:meth:`Ingest.finish_batch`: signatures go to the verifier's worker processes at once,
while this thread decodes each entry, groups entries by feed and plans each chain
(``feed/chain.py``); then the verdicts are collected, runs with a bad signature are dropped
whole, and the rest is written with ``executemany`` in one transaction, together with the
rows every view derives from them. Private entries addressed to the owner are opened once,
in that transaction, before the views index them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from p2psocial.errors import BadSignature, FeedForked, InvalidEntry, UnpublishableContent
from p2psocial.feed.chain import Accepted, ChainPlan, FeedState, Offered, plan_chain
from p2psocial.feed.content import Content, content_type, encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.feed.formats import decode_entry
from p2psocial.model import ForkProof
from p2psocial.msgtypes.delete import parse_delete
from p2psocial.msgtypes.edit import parse_edit
from p2psocial.msgtypes.registry import check_publish
from p2psocial.store.db import StoreBase
from p2psocial.store.views import open_private
from p2psocial.store.views.base import in_chunks, index_all
from p2psocial.store.views.deletions import deletions_for

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Container, Iterable, Iterator, Sequence

    from p2psocial.feed.entry import Entry
    from p2psocial.identity import Keypair
    from p2psocial.store.verify import Pending


@dataclass(slots=True)
class BatchResult:
    """What :meth:`Ingest.append_batch` did."""

    stored: list[Accepted] = field(default_factory=list)
    duplicates: int = 0
    errors: dict[bytes | None, InvalidEntry] = field(default_factory=dict)
    """Per author, the error that rejected its run (key None: undecodable bytes)."""
    forks: list[ForkProof] = field(default_factory=list)
    refused: int = 0
    """Entries dropped because their author is in the ``refuse`` set (blocked)."""
    received: int = 0
    """The receive time (ms) stored with the entries."""
    filled: list[Accepted] = field(default_factory=list)
    """Entries we held without content whose content this batch brought."""
    missing: dict[bytes, int | None] = field(default_factory=dict)
    """For each feed the batch stored content-less entries of (or filled), the first seq
    still held without content (None: none is missing any more)."""


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch whose signatures are being verified (see :meth:`Ingest.start_batch`)."""

    items: Sequence[tuple[bytes, bytes | None]]
    verdict: Pending


class Ingest(StoreBase):
    """Appending to feeds: ours (:meth:`publish`) and peers' (:meth:`finish_batch`)."""

    def publish(
        self,
        keys: Keypair,
        content: Content,
        now_ms: int,
        *,
        opened: tuple[bytes, dict[str, Any]] | None = None,
    ) -> Accepted:
        """Append a new entry to our own feed; returns it decoded (with ``received``).

        ``opened``: for private content we just sealed, its plaintext and content map, so
        the inbox files it without decrypting what we encrypted a moment ago.

        Never forks: read-latest and write are one transaction. Raises
        UnpublishableContent / LocalContentTooLarge for content that breaks a rule (the
        generic shape, or its type's own rules), FeedForked if our feed is marked forked."""
        check_publish(content, keys.public)
        data = encode_content(content)
        with self._errors(), self._transaction() as conn:
            row = conn.execute(
                "SELECT latest_seq, latest_id, forked FROM feeds WHERE author = ?",
                (keys.public,),
            ).fetchone()
            seq, previous, forked = (row[0], row[1], row[2]) if row else (0, None, 0)
            if forked:
                raise FeedForked("our own feed is marked forked; refusing to append")
            if isinstance(content, dict) and content.get("type") == "delete":
                self._check_own_delete(conn, content, keys.public)
            if isinstance(content, dict) and content.get("type") == "edit":
                self._check_own_edit(conn, content, keys.public)
            entry = create_entry(keys, seq + 1, previous, now_ms, data)
            accepted = Accepted(entry, data, content_type(content), content)
            if opened is not None:
                accepted.plaintext, accepted.private_value = opened
            self._insert(conn, [accepted], now_ms)
        return accepted

    def append_batch(
        self,
        items: Iterable[tuple[bytes, bytes | None]],
        now_ms: int,
        refuse: Container[bytes] = (),
    ) -> BatchResult:
        """Validate and store a run of ``(entry bytes, content or None)`` pairs.

        Entries may belong to many feeds. Per feed it is all-or-nothing: a broken rule
        anywhere in a feed's run rejects that run (recorded in ``errors``) and stores
        nothing of it; other feeds are unaffected. Duplicates are ignored. A second valid
        entry at a held sequence is stored as a fork proof and marks the feed forked.
        Everything accepted is written in one transaction. Entries by authors in
        ``refuse`` (feeds we block) are dropped unread and counted in ``refused``.
        """
        return self.finish_batch(self.start_batch(list(items)), now_ms, refuse)

    def append_stream(
        self,
        batches: Iterable[Sequence[tuple[bytes, bytes | None]]],
        now: Callable[[], int],
        refuse: Container[bytes] = (),
    ) -> Iterator[BatchResult]:
        """Like :meth:`append_batch` over many batches, one result each, pipelined: the
        next batch's signatures are being verified while this one is planned and stored."""
        source = iter(batches)
        first = next(source, None)
        current = self.start_batch(first) if first is not None else None
        while current is not None:
            following = next(source, None)
            ahead = self.start_batch(following) if following is not None else None
            yield self.finish_batch(current, now(), refuse)
            current = ahead

    def start_batch(self, items: Sequence[tuple[bytes, bytes | None]]) -> PreparedBatch:
        """Begin verifying a batch; :meth:`finish_batch` stores it. Lets a caller verify
        the next batch while it stores this one (see :meth:`append_stream`)."""
        return PreparedBatch(items, self.verifier.start([raw for raw, _ in items]))

    def finish_batch(
        self, prepared: PreparedBatch, now_ms: int, refuse: Container[bytes] = ()
    ) -> BatchResult:
        """Validate and store a batch begun with :meth:`start_batch` (see
        :meth:`append_batch` for the rules)."""
        items, verdict = prepared.items, prepared.verdict
        result = BatchResult(received=now_ms)
        groups: dict[bytes, list[Offered]] = defaultdict(list)
        index: dict[int, int] = {}  # id(entry) -> position in items
        for position, (raw, content) in enumerate(items):
            try:
                entry = decode_entry(raw)
            except InvalidEntry as exc:
                result.errors.setdefault(None, exc)
                continue
            if entry.author in refuse:
                result.refused += 1
                continue
            groups[entry.author].append(Offered(entry, content))
            index[id(entry)] = position
        if not groups:
            return result
        with self._errors():
            plans = self._plan(groups, result)
            verdicts = verdict.result()
            accepted, forks = self._judge(plans, lambda e: bool(verdicts[index[id(e)]]), result)
            filled = [
                a
                for author, plan in plans.items()
                if author not in result.errors
                for a in plan.fill
            ]
            if accepted or forks or filled:
                with self._transaction() as conn:
                    self._insert(conn, accepted, now_ms)
                    for held_id, other in forks:
                        result.forks.append(self._record_fork(conn, held_id, other, now_ms))
                    if filled:
                        self._fill(conn, filled, now_ms)
            gaps = {a.entry.author for a in accepted if a.content is None}
            gaps.update(a.entry.author for a in filled)
            if gaps:
                result.missing = self._first_missing(sorted(gaps))
        result.stored = accepted
        result.filled = filled
        return result

    def _fill(self, conn: sqlite3.Connection, filled: Sequence[Accepted], now_ms: int) -> None:
        """Store content that arrived for entries held without it, and index it."""
        conn.executemany(
            "UPDATE entries SET content = ?, ctype = ? WHERE id = ? AND content IS NULL",
            [(a.content, a.content_type, a.entry.id) for a in filled],
        )
        for a in filled:
            a.received = now_ms
        if self.opener is not None:
            open_private(filled, self.opener)
        index_all(self.views, conn, filled)

    def _first_missing(self, authors: Sequence[bytes]) -> dict[bytes, int | None]:
        return {
            author: self._conn.execute(
                "SELECT min(seq) FROM entries WHERE author = ? AND content IS NULL "
                "AND id NOT IN (SELECT target FROM deletions)",
                (author,),
            ).fetchone()[0]
            for author in authors
        }

    def missing_content(self) -> dict[bytes, int]:
        """Per feed holding entries without content, the first such seq (replication
        asks peers again from there)."""
        with self._errors():
            rows = self._conn.execute(
                "SELECT author, min(seq) FROM entries WHERE content IS NULL "
                "AND id NOT IN (SELECT target FROM deletions) GROUP BY author"
            ).fetchall()
        return dict(rows)

    def _judge(
        self, plans: dict[bytes, ChainPlan], good: Callable[[Entry], bool], result: BatchResult
    ) -> tuple[list[Accepted], list[tuple[bytes, Entry]]]:
        """Keep the runs whose signatures all verified; record errors for the others."""
        accepted: list[Accepted] = []
        forks: list[tuple[bytes, Entry]] = []
        for author, plan in plans.items():
            bad = next((a.entry for a in plan.append if not good(a.entry)), None)
            if plan.fork_candidate and not good(plan.fork_candidate[1]):
                bad = plan.fork_candidate[1]
            if bad is not None:
                result.errors[author] = BadSignature(
                    f"bad signature on entry {bad.seq} of its feed"
                )
                continue
            if plan.fork_candidate:
                forks.append(plan.fork_candidate)
            result.duplicates += plan.duplicates
            accepted.extend(plan.append)
        return accepted, forks

    def _plan(
        self, groups: dict[bytes, list[Offered]], result: BatchResult
    ) -> dict[bytes, ChainPlan]:
        states = self._feed_states(list(groups))
        plans = {}
        for author, offered in groups.items():
            state = states.get(author) or FeedState(author)
            try:
                held, missing = self._held_ids(state, offered)
                plans[author] = plan_chain(state, offered, held, missing)
            except InvalidEntry as exc:
                result.errors[author] = exc
        return plans

    def _insert(self, conn: sqlite3.Connection, accepted: Sequence[Accepted], now_ms: int) -> None:
        """Write accepted entries, their feeds' heads and every view's rows (the caller
        holds the transaction)."""
        for a in accepted:
            a.received = now_ms
        rows = [
            (
                a.entry.id,
                a.entry.author,
                a.entry.seq,
                a.entry.timestamp,
                now_ms,
                min(a.entry.timestamp, now_ms),
                a.entry.raw,
                a.content,
                a.content_type,
            )
            for a in accepted
        ]
        conn.executemany(
            "INSERT INTO entries (id, author, seq, ts, rx_ts, sort_ts, raw, content, ctype) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        latest: dict[bytes, Entry] = {}
        for a in accepted:
            latest[a.entry.author] = a.entry  # runs are in sequence order
        conn.executemany(
            "INSERT INTO feeds (author, latest_seq, latest_id) VALUES (?, ?, ?) "
            "ON CONFLICT (author) DO UPDATE SET "
            "latest_seq = excluded.latest_seq, latest_id = excluded.latest_id",
            [(e.author, e.seq, e.id) for e in latest.values()],
        )
        if self.opener is not None:
            open_private(accepted, self.opener)
        index_all(self.views, conn, accepted)
        self._apply_deletions(conn, accepted)

    @staticmethod
    def _check_own_delete(conn: sqlite3.Connection, content: dict[str, Any], me: bytes) -> None:
        target = parse_delete(content)
        row = conn.execute("SELECT author FROM entries WHERE id = ?", (target,)).fetchone()
        if row is None:
            raise UnpublishableContent("that message is not stored here: nothing to delete")
        if row[0] != me:
            raise UnpublishableContent("you can delete only your own messages")
        ctype = conn.execute("SELECT ctype FROM entries WHERE id = ?", (target,)).fetchone()[0]
        if ctype == "delete":
            raise UnpublishableContent("a delete is for good: it cannot be taken back")

    @staticmethod
    def _check_own_edit(conn: sqlite3.Connection, content: dict[str, Any], me: bytes) -> None:
        parsed = parse_edit(content)
        if parsed is None:
            return  # check_publish has refused it already
        row = conn.execute(
            "SELECT author, ctype, content IS NULL FROM entries WHERE id = ?", (parsed[0],)
        ).fetchone()
        if row is None:
            raise UnpublishableContent("that message is not stored here: nothing to edit")
        if row[0] != me:
            raise UnpublishableContent("you can edit only your own posts")
        if row[2]:
            raise UnpublishableContent("that post was deleted: there is nothing to edit")
        if row[1] != "post":
            raise UnpublishableContent(f"only posts can be edited, not a {row[1]!r} message")

    def _apply_deletions(self, conn: sqlite3.Connection, accepted: Sequence[Accepted]) -> None:
        """Take back the messages deleted by their own authors: new deletes in this batch,
        and new entries an earlier delete names. Their content is dropped (never served
        again) and every view forgets what it derived from them."""
        candidates = {
            (target, a.entry.author)
            for a in accepted
            if a.content_type == "delete" and isinstance(a.value, dict)
            for target in [parse_delete(a.value)]
            if target is not None
        }
        if conn.execute("SELECT 1 FROM deletions LIMIT 1").fetchone() is not None:
            candidates.update(deletions_for(conn, [a.entry.id for a in accepted]))
        if not candidates:
            return
        gone: list[tuple[bytes, bytes, int]] = []
        for target, deleter in candidates:
            row = conn.execute(
                "SELECT author, seq, ctype FROM entries WHERE id = ? AND content IS NOT NULL",
                (target,),
            ).fetchone()
            if row is None or row[0] != deleter or row[2] == "delete":
                continue  # not held, already without content, not the author's own, or a
                # delete (taken back, its target would come back: a delete is for good)
            # ctype stays: what the entry was (a view shows a deleted post as deleted)
            conn.execute("UPDATE entries SET content = NULL WHERE id = ?", (target,))
            gone.append((target, row[0], row[1]))
        if not gone:
            return
        for view in self.views:
            view.forget(conn, gone)
        dropped = {target for target, _a, _s in gone}
        for a in accepted:  # nobody hears the content of what this very batch deleted
            if a.entry.id in dropped:
                a.content = a.value = a.content_type = None
                a.plaintext = a.private_value = None

    def _record_fork(
        self, conn: sqlite3.Connection, held_id: bytes, other: Entry, now_ms: int
    ) -> ForkProof:
        first = conn.execute("SELECT raw FROM entries WHERE id = ?", (held_id,)).fetchone()[0]
        conn.execute(
            "INSERT OR IGNORE INTO forks (author, seq, first, second, detected_ts) "
            "VALUES (?, ?, ?, ?, ?)",
            (other.author, other.seq, first, other.raw, now_ms),
        )
        conn.execute("UPDATE feeds SET forked = 1 WHERE author = ?", (other.author,))
        return ForkProof(other.author, other.seq, first, other.raw, now_ms)

    def _feed_states(self, authors: Sequence[bytes]) -> dict[bytes, FeedState]:
        states = {}
        for chunk, marks in in_chunks(authors):
            for author, seq, latest, forked in self._conn.execute(
                f"SELECT author, latest_seq, latest_id, forked FROM feeds "
                f"WHERE author IN ({marks})",
                tuple(chunk),
            ):
                states[author] = FeedState(author, seq, latest, bool(forked))
        return states

    def _held_ids(
        self, state: FeedState, offered: Sequence[Offered]
    ) -> tuple[dict[int, bytes], set[int]]:
        """Stored ids of the offered seqs we hold, and which of them we hold without
        content."""
        old = [o.entry.seq for o in offered if o.entry.seq <= state.latest_seq]
        if not old:
            return {}, set()
        rows = self._conn.execute(
            "SELECT seq, id, content IS NULL AND id NOT IN (SELECT target FROM deletions) "
            "FROM entries WHERE author = ? AND seq BETWEEN ? AND ?",
            (state.author, min(old), max(old)),
        ).fetchall()
        return {seq: id_ for seq, id_, _ in rows}, {seq for seq, _, empty in rows if empty}

    def purge_feed(self, author: bytes) -> int:
        """Delete everything stored of a feed (used when we block it): its entries, its
        fork proofs and every view row it gave (its contacts go too, so it no longer shapes
        our graph). Returns the number of entries deleted."""
        with self._errors(), self._transaction() as conn:
            for view in self.views:
                view.purge(conn, author)
            deleted = conn.execute("DELETE FROM entries WHERE author = ?", (author,)).rowcount
            conn.execute("DELETE FROM feeds WHERE author = ?", (author,))
            conn.execute("DELETE FROM forks WHERE author = ?", (author,))
        return int(deleted)
