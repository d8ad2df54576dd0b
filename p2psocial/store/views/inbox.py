"""The ``inbox`` view: private messages we can read, with their plaintext.

Filled in the transaction that stores the entry (the store opens each private entry once
with the owner's key before its views index it), so no private message we can read is
ever stored unfiled. Entries we cannot open are not listed: we learn nothing of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.msgtypes.base import message_field
from p2psocial.store.views.base import View, execute_all

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from p2psocial.feed.chain import Accepted


class InboxView(View):
    name = "inbox"
    version = 1
    tables = ("inbox",)
    content_types = frozenset({""})
    private = True

    def create(self, conn: sqlite3.Connection) -> None:
        execute_all(
            conn,
            """
            CREATE TABLE inbox (
                id          BLOB PRIMARY KEY,          -- the entry's id
                author      BLOB NOT NULL,
                sort_ts     INTEGER NOT NULL,          -- min(claimed time, receive time)
                plaintext   BLOB NOT NULL,             -- the decrypted CBOR content
                root        BLOB                       -- thread root, if it replies
            ) WITHOUT ROWID;
            CREATE INDEX inbox_sort ON inbox (sort_ts);
            CREATE INDEX inbox_root ON inbox (root);
            """,
        )

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        rows = [
            (
                item.entry.id,
                item.entry.author,
                min(item.entry.timestamp, item.received),
                item.plaintext,
                message_field(item.private_value, "root"),
            )
            for item in batch
            if item.plaintext is not None and item.private_value is not None
        ]
        if rows:
            conn.executemany(
                "INSERT OR IGNORE INTO inbox (id, author, sort_ts, plaintext, root) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def forget(self, conn: sqlite3.Connection, entries: Sequence[tuple[bytes, bytes, int]]) -> None:
        conn.executemany("DELETE FROM inbox WHERE id = ?", [(i,) for i, _a, _s in entries])
