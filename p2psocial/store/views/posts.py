"""The ``posts`` view: what a timeline walks, and how posts changed since.

- ``entries_posts``: a partial index of the entries that are posts or reposts, by sort
  time and author, so a timeline page is one backwards walk of it. SQLite keeps it as
  entries are stored (no Python runs per post); a post its author deleted keeps its
  ``ctype`` (``store/ingest.py``), so it stays in place and is shown as deleted;
- ``edits``: each valid ``edit`` (its author wrote the target, held and not deleted):
  the new text by sequence, so the latest wins and the history can be shown;
- ``reposted``: the original entry and content a repost carried, when it verifies
  (``msgtypes/repost.py``), so a repost of a feed we do not replicate can be shown.

A repost whose target is not held yet is kept (shown once the target is). A ``delete``
of an original by its author drops the copies reposts carried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.msgtypes.delete import parse_delete
from p2psocial.msgtypes.edit import parse_edit
from p2psocial.msgtypes.repost import embedded, parse_repost
from p2psocial.store.views.base import View, execute_all

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from p2psocial.feed.chain import Accepted


class PostsView(View):
    name = "posts"
    version = 2
    tables = ("edits", "reposted")
    content_types = frozenset({"repost", "edit", "delete"})

    def create(self, conn: sqlite3.Connection) -> None:
        execute_all(
            conn,
            """
            CREATE INDEX entries_posts ON entries (sort_ts, author)
                WHERE ctype IN ('post', 'repost');
            CREATE TABLE edits (
                target      BLOB NOT NULL,             -- the post edited
                seq         INTEGER NOT NULL,          -- the edit's sequence in its feed
                author      BLOB NOT NULL,             -- who edited (must be the post's)
                id          BLOB NOT NULL,             -- the edit entry
                ts          INTEGER NOT NULL,          -- its claimed time
                text        TEXT NOT NULL,
                PRIMARY KEY (target, author, seq)
            ) WITHOUT ROWID;
            CREATE TABLE reposted (
                id          BLOB NOT NULL,             -- the original message
                via         BLOB NOT NULL,             -- the repost that carried it
                author      BLOB NOT NULL,             -- the repost's author (for purging)
                origin      BLOB NOT NULL,             -- the original's author
                raw         BLOB NOT NULL,             -- its signed entry
                content     BLOB NOT NULL,             -- its content bytes
                PRIMARY KEY (id, via)
            ) WITHOUT ROWID;
            CREATE INDEX reposted_via ON reposted (via);
            """,
        )

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        edits, carried, deletes = [], [], []
        for item in batch:
            value = item.value
            if type(value) is not dict:
                continue
            entry = item.entry
            kind = item.content_type
            if kind == "repost":
                parsed = parse_repost(value)
                original = embedded(value) if parsed is not None else None
                if parsed is not None and original is not None:
                    carried.append(
                        (
                            parsed[0],
                            entry.id,
                            entry.author,
                            original.author,
                            original.raw,
                            original.content,
                        )
                    )
            elif kind == "edit":
                edit = parse_edit(value)
                if edit is not None:
                    target, text = edit
                    edits.append((target, entry.seq, entry.author, entry.id, entry.timestamp, text))
            elif kind == "delete":
                deleted = parse_delete(value)
                if deleted is not None:
                    deletes.append((deleted, entry.author))
        if edits or carried:  # what an applied delete took back stays out (on rebuild too)
            edits = [e for e in edits if _editable(conn, e[0], e[2])]
            carried = [c for c in carried if not _deleted(conn, c[0], c[3])]
        if edits:
            conn.executemany(
                "INSERT OR IGNORE INTO edits (target, seq, author, id, ts, text) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                edits,
            )
        if carried:
            conn.executemany(
                "INSERT OR IGNORE INTO reposted (id, via, author, origin, raw, content) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                carried,
            )
        if deletes:  # the original's author took it back: drop the copies reposts carried
            conn.executemany("DELETE FROM reposted WHERE id = ? AND origin = ?", deletes)

    def drop(self, conn: sqlite3.Connection) -> None:
        super().drop(conn)
        conn.execute("DROP INDEX IF EXISTS entries_posts")
        conn.execute("DROP TABLE IF EXISTS posts")  # version 1 kept a table of its own

    def forget(self, conn: sqlite3.Connection, entries: Sequence[tuple[bytes, bytes, int]]) -> None:
        for msg, author, seq in entries:
            # a deleted post loses its edits; a deleted edit no longer counts
            conn.execute("DELETE FROM edits WHERE target = ? AND author = ?", (msg, author))
            conn.execute("DELETE FROM edits WHERE author = ? AND seq = ?", (author, seq))
            conn.execute("DELETE FROM reposted WHERE id = ? AND origin = ?", (msg, author))
            conn.execute("DELETE FROM reposted WHERE via = ?", (msg,))

    def purge(self, conn: sqlite3.Connection, author: bytes) -> None:
        super().purge(conn, author)
        conn.execute("DELETE FROM reposted WHERE origin = ?", (author,))


def _editable(conn: sqlite3.Connection, target: bytes, author: bytes) -> bool:
    """Whether ``author`` may edit ``target``: a post of theirs we hold, not deleted (an
    edit comes after its post in the same feed, so the post is always held first)."""
    row = conn.execute(
        "SELECT author, content IS NULL FROM entries WHERE id = ?", (target,)
    ).fetchone()
    return row is not None and row[0] == author and not (row[1] and _deleted(conn, target, author))


def _deleted(conn: sqlite3.Connection, target: bytes, author: bytes) -> bool:
    """Whether ``author`` deleted ``target`` (a delete we hold; the deletions view)."""
    return (
        conn.execute(
            "SELECT 1 FROM deletions WHERE target = ? AND author = ?", (target, author)
        ).fetchone()
        is not None
    )
