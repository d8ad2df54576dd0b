"""The ``links`` view: which message points at which message or feed, and how.

One row per (source message, destination id, relation), from what each content type says
its content links to (``msgtypes``: ``root`` for a reply in a thread, ``mention`` for a
feed named in a post; later likes, reposts and edits). Threads are read from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.msgtypes.registry import LINK_FIELDS, links_of
from p2psocial.store.views.base import View, execute_all

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from p2psocial.feed.chain import Accepted


class LinksView(View):
    name = "links"
    version = 1
    tables = ("links",)

    def create(self, conn: sqlite3.Connection) -> None:
        execute_all(
            conn,
            """
            CREATE TABLE links (
                dst         BLOB NOT NULL,             -- message id or feed key
                rel         TEXT NOT NULL,             -- 'root', 'mention', ...
                src         BLOB NOT NULL,             -- the linking message's id
                author      BLOB NOT NULL,             -- its author (for purging)
                PRIMARY KEY (dst, rel, src)
            ) WITHOUT ROWID;
            CREATE INDEX links_src ON links (src);
            """,
        )

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        rows = []
        fields = LINK_FIELDS
        for item in batch:
            value = item.value
            if type(value) is dict and not fields.isdisjoint(value.keys()):
                for dst, rel in links_of(value):
                    rows.append((dst, rel, item.entry.id, item.entry.author))
        if rows:
            conn.executemany(
                "INSERT OR IGNORE INTO links (dst, rel, src, author) VALUES (?, ?, ?, ?)", rows
            )

    def forget(self, conn: sqlite3.Connection, entries: Sequence[tuple[bytes, bytes, int]]) -> None:
        conn.executemany("DELETE FROM links WHERE src = ?", [(i,) for i, _a, _s in entries])
