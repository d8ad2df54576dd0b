"""Reading the store: messages, feeds, threads, the follow graph, the private inbox.

Everything here is a read; it hands back domain objects (``model.py``), not rows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cbor2

from p2psocial.errors import DatabaseCorrupt, NotFound
from p2psocial.feed.formats import decode_entry
from p2psocial.model import FeedInfo, ForkProof, Message
from p2psocial.store.db import StoreBase
from p2psocial.store.views import contacts, votes
from p2psocial.store.views.deletions import deletions_for

_MSG_COLUMNS = "id, author, seq, raw, content, ts, rx_ts"
_MSG_COLUMNS_E = "e.id, e.author, e.seq, e.raw, e.content, e.ts, e.rx_ts"


def _plain(plaintext: bytes) -> dict[str, Any]:
    try:
        value = cbor2.loads(plaintext)
    except Exception:  # damaged in the file; the entry's own row says more
        return {}
    return value if isinstance(value, dict) else {}


class Reads(StoreBase):
    """What the store holds, read."""

    def _deleted_marked(self, messages: list[Message]) -> list[Message]:
        """``messages`` with ``deleted`` set on those their author took back."""
        empty = [m.id for m in messages if m.content_bytes is None]
        if not empty:
            return messages
        authors = {m.id: m.author for m in messages}
        gone = {t for t, a in deletions_for(self._conn, empty) if authors.get(t) == a}
        return [replace(m, deleted=True) if m.id in gone else m for m in messages]

    def _row_message(self, row: tuple[bytes, bytes, int, bytes, bytes | None, int, int]) -> Message:
        """A stored row as a message. Everything stored was valid when it was stored, so a
        row that no longer decodes is damage to the file: DatabaseCorrupt."""
        try:
            return Message.from_entry(decode_entry(row[3]), row[4], row[6])
        except Exception as exc:  # InvalidEntry, or cbor2's errors on damaged content
            raise DatabaseCorrupt(
                f"store {self.path} is damaged: a stored entry no longer decodes ({exc}); "
                "run 'p2psocial check', and restore the store from a backup"
            ) from exc

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
        return self._deleted_marked([self._row_message(row)])[0]

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
        return self._deleted_marked([self._row_message(r) for r in rows])

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

    def thread(self, root: bytes, *, limit: int = 500) -> list[Message]:
        """The root message (if held) and its replies, oldest first."""
        with self._errors():
            rows = self._conn.execute(
                f"SELECT {_MSG_COLUMNS} FROM entries WHERE id = ? OR id IN "
                "(SELECT src FROM links WHERE dst = ? AND rel = 'root') "
                "ORDER BY id = ? DESC, sort_ts, rx LIMIT ?",
                (root, root, root, limit),
            ).fetchall()
        return self._deleted_marked([self._row_message(r) for r in rows])

    def forks(self) -> list[ForkProof]:
        with self._errors():
            rows = self._conn.execute(
                "SELECT author, seq, first, second, detected_ts FROM forks ORDER BY detected_ts"
            ).fetchall()
        return [ForkProof(*r) for r in rows]

    def _view_kept(self, name: str) -> bool:
        """Whether this store keeps view ``name`` (owner-only views are not always kept)."""
        return (
            self._conn.execute("SELECT 1 FROM views WHERE name = ?", (name,)).fetchone() is not None
        )

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
        with self._errors():
            return contacts.follows(self._conn)

    def followers(self, feed: bytes) -> set[bytes]:
        """The feeds that follow ``feed``, of those whose contacts we hold."""
        with self._errors():
            return contacts.followers_of(self._conn, feed)

    def blocked_by(self, author: bytes) -> set[bytes]:
        """The feeds ``author`` currently blocks."""
        with self._errors():
            return contacts.blocked_by(self._conn, author)

    def likes(self, msg: bytes) -> list[tuple[bytes, str | None]]:
        """(voter, expression) of everyone who currently likes ``msg``."""
        with self._errors():
            return votes.likes(self._conn, msg)

    def like_counts(self, msgs: list[bytes]) -> dict[bytes, int]:
        """How many currently like each of ``msgs`` (absent: none)."""
        with self._errors():
            return votes.like_counts(self._conn, msgs)

    def contact_state(self, author: bytes, contact: bytes) -> tuple[bool, bool]:
        """(following, blocking) of ``author`` towards ``contact``."""
        with self._errors():
            return contacts.stance(self._conn, author, contact)

    def replication_set(self, me: bytes, hops: int) -> dict[bytes, int]:
        """Feeds to replicate: within ``hops`` follows of ``me`` (me: 0), minus blocks."""
        return contacts.hops_from(me, self.follows(), self.blocked_by(me), hops)

    def latest_seqs(self) -> dict[bytes, tuple[int, bool]]:
        """Every stored feed's latest sequence and forked flag."""
        with self._errors():
            rows = self._conn.execute("SELECT author, latest_seq, forked FROM feeds").fetchall()
        return {r[0]: (r[1], bool(r[2])) for r in rows}

    def inbox(
        self, *, limit: int = 50, before: int | None = None
    ) -> list[tuple[Message, dict[str, Any]]]:
        """Private messages we can read, newest first, each with its plaintext content."""
        with self._errors():
            rows = self._conn.execute(
                f"SELECT {_MSG_COLUMNS_E}, i.plaintext FROM inbox i JOIN entries e ON e.id = i.id "
                "WHERE i.sort_ts < ? ORDER BY i.sort_ts DESC LIMIT ?",
                (before if before is not None else 2**63 - 1, limit),
            ).fetchall()
        return [(self._row_message(r[:7]), _plain(r[7])) for r in rows]

    def private_thread(
        self, root: bytes, *, limit: int = 500
    ) -> list[tuple[Message, dict[str, Any]]]:
        """A private thread we can read: its root (if ours to read) and replies, oldest first."""
        with self._errors():
            rows = self._conn.execute(
                f"SELECT {_MSG_COLUMNS_E}, i.plaintext FROM inbox i JOIN entries e ON e.id = i.id "
                "WHERE i.id = ? OR i.root = ? ORDER BY i.id = ? DESC, i.sort_ts LIMIT ?",
                (root, root, root, limit),
            ).fetchall()
        return [(self._row_message(r[:7]), _plain(r[7])) for r in rows]
