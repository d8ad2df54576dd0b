"""The SQLite store: all SQL lives here, and it hands back domain objects, not rows.

One :class:`Store` owns one connection. It is not thread-safe: the CLI uses it from one
thread, the daemon from one store thread. Writes run in explicit transactions
(``BEGIN IMMEDIATE``), so a batch of entries lands whole or not at all, and appending to
our own feed reads the latest entry and writes the next inside one transaction: our own
feed can never fork, even with two writers on one file.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

from p2psocial.errors import (
    BadSignature,
    DatabaseCorrupt,
    FeedForked,
    InvalidEntry,
    NotFound,
    StorageError,
)
from p2psocial.feed.chain import Accepted, ChainPlan, FeedState, Offered, plan_chain
from p2psocial.feed.content import Content, content_type, encode_content, thread_root
from p2psocial.feed.entry import Entry, create_entry, decode_entry
from p2psocial.feed.verify import Pending, Verifier
from p2psocial.model import FeedInfo, ForkProof, Message
from p2psocial.store.contacts import contact_rows, hops_from
from p2psocial.store.schema import APPLICATION_ID, CONTACT_UPSERT, LATEST, MIGRATIONS

if TYPE_CHECKING:
    from collections.abc import Callable, Container, Iterable, Iterator, Sequence

    from p2psocial.identity import Keypair

SQLITE_MAGIC = b"SQLite format 3\x00"
_CHUNK = 500  # bound on SQL variables per statement

_MSG_COLUMNS = "id, author, seq, raw, content, ts, rx_ts"
_MSG_COLUMNS_E = "e.id, e.author, e.seq, e.raw, e.content, e.ts, e.rx_ts"


@dataclass(slots=True)
class BatchResult:
    """What :meth:`Store.append_batch` did."""

    stored: list[Accepted] = field(default_factory=list)
    duplicates: int = 0
    errors: dict[bytes | None, InvalidEntry] = field(default_factory=dict)
    """Per author, the error that rejected its run (key None: undecodable bytes)."""
    forks: list[ForkProof] = field(default_factory=list)
    refused: int = 0
    """Entries dropped because their author is in the ``refuse`` set (blocked)."""
    received: int = 0
    """The receive time (ms) stored with the entries."""


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch whose signatures are being verified (see :meth:`Store.start_batch`)."""

    items: Sequence[tuple[bytes, bytes | None]]
    verdict: Pending


def _chunks(seq: Sequence[bytes], size: int = _CHUNK) -> Iterator[Sequence[bytes]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class Store:
    """A p2psocial store in one SQLite file. Open it with :meth:`open`."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, verify_workers: int | None = 1
    ) -> None:
        self.path = path
        self._conn = conn
        self.db = sqlite_utils.Database(conn)
        self.verifier = Verifier(verify_workers)

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open(
        cls, path: str | Path, *, create: bool = True, verify_workers: int | None = 1
    ) -> Store:
        """Open (and create or upgrade) the store at ``path``.

        ``verify_workers``: signature checks of large batches run on this many worker
        processes (None: one per core). The default, 1, verifies inline: worker processes are
        started with multiprocessing's ``spawn``, which needs the ``if __name__ ==
        "__main__":`` guard in the calling program, so only programs that have it (the daemon,
        the benchmarks) ask for them.

        Raises DatabaseCorrupt naming the file if it is damaged or not a p2psocial store
        (the file is never overwritten), StorageError if it cannot be opened at all.
        """
        path = Path(path)
        if path.exists():
            if not path.is_file():
                raise StorageError(f"{path} is not a file")
            with path.open("rb") as f:
                head = f.read(len(SQLITE_MAGIC))
            if head and head != SQLITE_MAGIC:
                raise DatabaseCorrupt(
                    f"{path} is not an SQLite database (damaged, or another program's file); "
                    "it was left untouched"
                )
        elif not create:
            raise StorageError(f"no store at {path}: run 'p2psocial init'")
        else:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)  # private messages live here: owner only
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open store {path}: {exc}") from exc
        store = cls(path, conn, verify_workers)
        try:
            store._prepare()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise DatabaseCorrupt(
                f"store {path} is damaged ({exc}); it was left untouched"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return store

    def _prepare(self) -> None:
        conn = self._conn
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and (version or tables):
            raise DatabaseCorrupt(
                f"{self.path} is an SQLite database of another program, not a p2psocial "
                "store; it was left untouched"
            )
        if version > LATEST:
            raise StorageError(
                f"store {self.path} has schema version {version}, newer than this "
                f"p2psocial knows ({LATEST}): upgrade p2psocial"
            )
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        for number in range(version, LATEST):
            with self._transaction():
                MIGRATIONS[number](self.db)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {number + 1}")

    def close(self) -> None:
        self.verifier.close()
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"store {self.path}: {exc}") from exc

    def integrity_check(self) -> list[str]:
        """SQLite's integrity check: ``["ok"]`` for a sound file."""
        with self._errors():
            return [row[0] for row in self._conn.execute("PRAGMA integrity_check")]

    # ------------------------------------------------------------------ writing

    def publish(self, keys: Keypair, content: Content, now_ms: int) -> Message:
        """Append a new entry to our own feed. Never forks: read-latest and write are
        one transaction. Raises InvalidContent/ContentTooLarge for bad content."""
        data = encode_content(content)
        with self._errors(), self._transaction() as conn:
            row = conn.execute(
                "SELECT latest_seq, latest_id, forked FROM feeds WHERE author = ?",
                (keys.public,),
            ).fetchone()
            seq, previous, forked = (row[0], row[1], row[2]) if row else (0, None, 0)
            if forked:
                raise FeedForked("our own feed is marked forked; refusing to append")
            entry = create_entry(keys, seq + 1, previous, now_ms, data)
            accepted = Accepted(entry, data, content_type(content), thread_root(content))
            self._insert(conn, [accepted], now_ms)
        return self._message(entry, data, now_ms)

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
            if accepted or forks:
                with self._transaction() as conn:
                    self._insert(conn, accepted, now_ms)
                    for held_id, other in forks:
                        result.forks.append(self._record_fork(conn, held_id, other, now_ms))
        result.stored = accepted
        return result

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
                plans[author] = plan_chain(state, offered, self._held_ids(state, offered))
            except InvalidEntry as exc:
                result.errors[author] = exc
        return plans

    def _insert(self, conn: sqlite3.Connection, accepted: Sequence[Accepted], now_ms: int) -> None:
        conn.executemany(
            "INSERT INTO entries (id, author, seq, ts, rx_ts, sort_ts, raw, content, ctype) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
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
            ],
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
        links = [(a.root, a.entry.id) for a in accepted if a.root is not None]
        if links:
            conn.executemany("INSERT OR IGNORE INTO links (root, id) VALUES (?, ?)", links)
        contacts = [
            (a.entry.author, a.entry.seq, a.content)
            for a in accepted
            if a.content_type == "contact"
        ]
        if contacts:
            conn.executemany(CONTACT_UPSERT, contact_rows(contacts))

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

    # ------------------------------------------------------------------ reading

    def _feed_states(self, authors: Sequence[bytes]) -> dict[bytes, FeedState]:
        states = {}
        for chunk in _chunks(authors):
            marks = ",".join("?" * len(chunk))
            for author, seq, latest, forked in self._conn.execute(
                f"SELECT author, latest_seq, latest_id, forked FROM feeds "
                f"WHERE author IN ({marks})",
                tuple(chunk),
            ):
                states[author] = FeedState(author, seq, latest, bool(forked))
        return states

    def _held_ids(self, state: FeedState, offered: Sequence[Offered]) -> dict[int, bytes]:
        old = [o.entry.seq for o in offered if o.entry.seq <= state.latest_seq]
        if not old:
            return {}
        rows = self._conn.execute(
            "SELECT seq, id FROM entries WHERE author = ? AND seq BETWEEN ? AND ?",
            (state.author, min(old), max(old)),
        )
        return dict(rows.fetchall())

    def _message(self, entry: Entry, content: bytes | None, received: int) -> Message:
        return Message.from_entry(entry, content, received)

    def _row_message(self, row: tuple[bytes, bytes, int, bytes, bytes | None, int, int]) -> Message:
        entry = decode_entry(row[3])
        return self._message(entry, row[4], row[6])

    def feed_info(self, author: bytes) -> FeedInfo | None:
        with self._errors():
            row = self._conn.execute(
                "SELECT latest_seq, latest_id, forked FROM feeds WHERE author = ?", (author,)
            ).fetchone()
        return FeedInfo(author, row[0], row[1], bool(row[2])) if row else None

    def feeds(self) -> list[FeedInfo]:
        with self._errors():
            rows = self._conn.execute(
                "SELECT author, latest_seq, latest_id, forked FROM feeds ORDER BY author"
            ).fetchall()
        return [FeedInfo(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def get(self, msg_id: bytes) -> Message:
        """The message with this id. Raises NotFound."""
        with self._errors():
            row = self._conn.execute(
                f"SELECT {_MSG_COLUMNS} FROM entries WHERE id = ?", (msg_id,)
            ).fetchone()
        if row is None:
            raise NotFound("no such message is stored here")
        return self._row_message(row)

    def feed(
        self, author: bytes, *, since_seq: int = 0, limit: int = 100, reverse: bool = False
    ) -> list[Message]:
        """Entries of one feed: ascending from ``since_seq + 1``, or newest first."""
        with self._errors():
            if reverse:
                rows = self._conn.execute(
                    f"SELECT {_MSG_COLUMNS} FROM entries WHERE author = ? "
                    "ORDER BY seq DESC LIMIT ?",
                    (author, limit),
                ).fetchall()
            else:
                rows = self._conn.execute(
                    f"SELECT {_MSG_COLUMNS} FROM entries WHERE author = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (author, since_seq, limit),
                ).fetchall()
        return [self._row_message(r) for r in rows]

    def entries_after(
        self, author: bytes, seq: int, limit: int
    ) -> list[tuple[bytes, bytes | None]]:
        """Raw ``(entry, content)`` pairs after ``seq``, for replication: no decoding."""
        with self._errors():
            return self._conn.execute(
                "SELECT raw, content FROM entries WHERE author = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (author, seq, limit),
            ).fetchall()

    def timeline(self, *, limit: int = 50, before: int | None = None) -> list[Message]:
        """Newest first by min(claimed time, receive time), optionally before a time."""
        with self._errors():
            rows = self._conn.execute(
                f"SELECT {_MSG_COLUMNS} FROM entries WHERE sort_ts < ? "
                "ORDER BY sort_ts DESC, rx DESC LIMIT ?",
                (before if before is not None else 2**63 - 1, limit),
            ).fetchall()
        return [self._row_message(r) for r in rows]

    def thread(self, root: bytes, *, limit: int = 500) -> list[Message]:
        """The root message (if held) and its replies, oldest first."""
        with self._errors():
            rows = self._conn.execute(
                f"SELECT {_MSG_COLUMNS} FROM entries WHERE id = ? OR id IN "
                "(SELECT id FROM links WHERE root = ?) ORDER BY id = ? DESC, sort_ts, rx LIMIT ?",
                (root, root, root, limit),
            ).fetchall()
        return [self._row_message(r) for r in rows]

    def forks(self) -> list[ForkProof]:
        with self._errors():
            rows = self._conn.execute(
                "SELECT author, seq, first, second, detected_ts FROM forks ORDER BY detected_ts"
            ).fetchall()
        return [ForkProof(*r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._errors():
            feeds, forked = self._conn.execute(
                "SELECT count(*), coalesce(sum(forked), 0) FROM feeds"
            ).fetchone()
            entries = self._conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        return {"feeds": feeds, "entries": entries, "forked_feeds": forked}

    # ------------------------------------------------------------------ follow graph

    def follows(self) -> dict[bytes, set[bytes]]:
        """Who follows whom: author -> the feeds it currently follows."""
        graph: dict[bytes, set[bytes]] = defaultdict(set)
        with self._errors():
            for author, contact in self._conn.execute(
                "SELECT author, contact FROM contacts WHERE following = 1"
            ):
                graph[author].add(contact)
        return graph

    def blocked_by(self, author: bytes) -> set[bytes]:
        """The feeds ``author`` currently blocks."""
        with self._errors():
            rows = self._conn.execute(
                "SELECT contact FROM contacts WHERE author = ? AND blocking = 1", (author,)
            ).fetchall()
        return {r[0] for r in rows}

    def contact_state(self, author: bytes, contact: bytes) -> tuple[bool, bool]:
        """(following, blocking) of ``author`` towards ``contact``."""
        with self._errors():
            row = self._conn.execute(
                "SELECT following, blocking FROM contacts WHERE author = ? AND contact = ?",
                (author, contact),
            ).fetchone()
        return (bool(row[0]), bool(row[1])) if row else (False, False)

    def replication_set(self, me: bytes, hops: int) -> dict[bytes, int]:
        """Feeds to replicate: within ``hops`` follows of ``me`` (me: 0), minus blocks."""
        return hops_from(me, self.follows(), self.blocked_by(me), hops)

    def latest_seqs(self) -> dict[bytes, tuple[int, bool]]:
        """Every stored feed's latest sequence and forked flag."""
        with self._errors():
            rows = self._conn.execute("SELECT author, latest_seq, forked FROM feeds").fetchall()
        return {r[0]: (r[1], bool(r[2])) for r in rows}

    def purge_feed(self, author: bytes) -> int:
        """Delete everything stored of a feed (used when we block it). Returns entries
        deleted. The contacts it published go too, so it no longer shapes our graph."""
        with self._errors(), self._transaction() as conn:
            deleted = conn.execute("DELETE FROM entries WHERE author = ?", (author,)).rowcount
            conn.execute("DELETE FROM feeds WHERE author = ?", (author,))
            conn.execute("DELETE FROM contacts WHERE author = ?", (author,))
            conn.execute("DELETE FROM forks WHERE author = ?", (author,))
            conn.execute("DELETE FROM inbox WHERE author = ?", (author,))
        return int(deleted)

    # ------------------------------------------------------------------ peers

    def remember_peer(self, address: str, feed: bytes, source: str, now_ms: int) -> None:
        with self._errors(), self._transaction() as conn:
            conn.execute(
                "INSERT INTO peers (address, feed, source, added_ts) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (address) DO UPDATE SET feed = excluded.feed",
                (address, feed, source, now_ms),
            )

    def forget_peer(self, address: str) -> bool:
        with self._errors(), self._transaction() as conn:
            return conn.execute("DELETE FROM peers WHERE address = ?", (address,)).rowcount > 0

    def known_peers(self) -> list[tuple[str, bytes, str]]:
        """(address, feed, source) of every remembered peer."""
        with self._errors():
            return [
                (r[0], r[1], r[2])
                for r in self._conn.execute("SELECT address, feed, source FROM peers")
            ]

    def peer_outcome(self, address: str, ok: bool, now_ms: int) -> None:
        with self._errors(), self._transaction() as conn:
            if ok:
                conn.execute(
                    "UPDATE peers SET last_ok_ts = ?, failures = 0 WHERE address = ?",
                    (now_ms, address),
                )
            else:
                conn.execute(
                    "UPDATE peers SET failures = failures + 1 WHERE address = ?", (address,)
                )

    # ------------------------------------------------------------------ invites (pubs)

    def add_invite(self, invite_key: bytes, uses: int, expires_ts: int | None, now_ms: int) -> None:
        with self._errors(), self._transaction() as conn:
            conn.execute(
                "INSERT INTO invites (invite_key, uses_left, expires_ts, created_ts) "
                "VALUES (?, ?, ?, ?)",
                (invite_key, uses, expires_ts, now_ms),
            )

    def use_invite(self, invite_key: bytes, now_ms: int) -> str | None:
        """Spend one use of an invite. None if it worked, else why not (in words)."""
        with self._errors(), self._transaction() as conn:
            row = conn.execute(
                "SELECT uses_left, expires_ts FROM invites WHERE invite_key = ?", (invite_key,)
            ).fetchone()
            if row is None:
                return "this pub does not know that invite"
            uses_left, expires = row
            if expires is not None and now_ms >= expires:
                return "the invite has expired"
            if uses_left <= 0:
                return "the invite is used up"
            conn.execute(
                "UPDATE invites SET uses_left = uses_left - 1 WHERE invite_key = ?", (invite_key,)
            )
        return None

    def index_private(
        self,
        accepted: Sequence[Accepted],
        open_content: Callable[[bytes, bytes], bytes | None],
    ) -> list[tuple[Accepted, bytes]]:
        """Try once to open each private entry in ``accepted``; file the ones we can read
        (``open_content(content bytes, author key) -> plaintext CBOR content or None``).
        Returns what was filed, each with its plaintext."""
        rows = []
        filed = []
        for item in accepted:
            if item.content is None or item.content_type is not None:
                continue  # public, or content not held
            plaintext = open_content(item.content, item.entry.author)
            if plaintext is None:
                continue
            from p2psocial.feed.content import decode_content

            root = thread_root(decode_content(plaintext))
            rows.append((item.entry.id, item.entry.author, item.entry.timestamp, plaintext, root))
            filed.append((item, plaintext))
        if rows:
            with self._errors(), self._transaction() as conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO inbox (id, author, sort_ts, plaintext, root) "
                    "SELECT ?, ?, min(?, rx_ts), ?, ? FROM entries WHERE id = ?",
                    [(i, a, t, p, r, i) for i, a, t, p, r in rows],
                )
        return filed

    def inbox(self, *, limit: int = 50, before: int | None = None) -> list[tuple[Message, bytes]]:
        """Private messages we can read, newest first, each with its plaintext content."""
        with self._errors():
            rows = self._conn.execute(
                f"SELECT {_MSG_COLUMNS_E}, i.plaintext FROM inbox i JOIN entries e ON e.id = i.id "
                "WHERE i.sort_ts < ? ORDER BY i.sort_ts DESC LIMIT ?",
                (before if before is not None else 2**63 - 1, limit),
            ).fetchall()
        return [(self._row_message(r[:7]), r[7]) for r in rows]

    def private_thread(self, root: bytes, *, limit: int = 500) -> list[tuple[Message, bytes]]:
        """A private thread we can read: its root (if ours to read) and replies, oldest first."""
        with self._errors():
            rows = self._conn.execute(
                f"SELECT {_MSG_COLUMNS_E}, i.plaintext FROM inbox i JOIN entries e ON e.id = i.id "
                "WHERE i.id = ? OR i.root = ? ORDER BY i.id = ? DESC, i.sort_ts LIMIT ?",
                (root, root, root, limit),
            ).fetchall()
        return [(self._row_message(r[:7]), r[7]) for r in rows]
