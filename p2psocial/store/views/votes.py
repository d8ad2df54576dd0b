"""The ``votes`` view: who likes which message, from ``vote`` content.

One row per (message, voter): the latest vote by sequence wins (a later ``value 0``
withdraws a like), whatever order entries are indexed in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.msgtypes.vote import parse_vote
from p2psocial.store.views.base import View, execute_all, in_chunks

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from p2psocial.feed.chain import Accepted

UPSERT = (
    "INSERT INTO votes (msg, author, value, expression, seq) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (msg, author) DO UPDATE SET value = excluded.value, "
    "expression = excluded.expression, seq = excluded.seq WHERE excluded.seq > votes.seq"
)


class VotesView(View):
    name = "votes"
    version = 1
    tables = ("votes",)
    content_types = frozenset({"vote"})

    def create(self, conn: sqlite3.Connection) -> None:
        execute_all(
            conn,
            """
            CREATE TABLE votes (
                msg         BLOB NOT NULL,             -- the message voted on
                author      BLOB NOT NULL,             -- the voter
                value       INTEGER NOT NULL,          -- 1: likes it, 0: withdrawn
                expression  TEXT,                      -- an emoji, if given
                seq         INTEGER NOT NULL,          -- the vote entry that set this
                PRIMARY KEY (msg, author)
            ) WITHOUT ROWID;
            CREATE INDEX votes_author ON votes (author);
            """,
        )

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        rows = []
        for item in batch:
            if item.content_type == "vote" and isinstance(item.value, dict):
                parsed = parse_vote(item.value)
                if parsed is not None:
                    link, value, expression = parsed
                    rows.append((link, item.entry.author, value, expression, item.entry.seq))
        if rows:
            conn.executemany(UPSERT, rows)

    def forget(self, conn: sqlite3.Connection, entries: Sequence[tuple[bytes, bytes, int]]) -> None:
        conn.executemany(
            "DELETE FROM votes WHERE author = ? AND seq = ?", [(a, s) for _i, a, s in entries]
        )


def likes(conn: sqlite3.Connection, msg: bytes) -> list[tuple[bytes, str | None]]:
    """(voter, expression) of everyone who currently likes ``msg``, by voter key."""
    return conn.execute(
        "SELECT author, expression FROM votes WHERE msg = ? AND value = 1 ORDER BY author",
        (msg,),
    ).fetchall()


def like_counts(conn: sqlite3.Connection, msgs: Sequence[bytes]) -> dict[bytes, int]:
    """How many currently like each of ``msgs`` (absent: none)."""
    counts: dict[bytes, int] = {}
    for chunk, marks in in_chunks(msgs):
        counts.update(
            conn.execute(
                f"SELECT msg, count(*) FROM votes WHERE value = 1 AND msg IN ({marks}) "
                "GROUP BY msg",
                tuple(chunk),
            ).fetchall()
        )
    return counts
