"""The ``blobrefs`` view: which entries refer to which blobs (attachments, thumbnails,
avatars), and the keys of private attachments.

It decides what the daemon fetches (the blobs that entries of feeds near us refer to,
thumbnails first) and what it may drop: a blob nobody's entry refers to any more (the post
was deleted, its author blocked) goes, unless it is ours (``store/blobs.py``). Kept only
for the store's owner, like the inbox: the keys of private attachments come from private
messages opened with the owner's key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.msgtypes.blobs import blob_refs
from p2psocial.store.views.base import View, execute_all

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from p2psocial.feed.chain import Accepted


class BlobRefsView(View):
    name = "blobrefs"
    version = 1
    tables = ("blobrefs",)
    content_types = frozenset({"post", "about", ""})
    private = True

    def create(self, conn: sqlite3.Connection) -> None:
        execute_all(
            conn,
            """
            CREATE TABLE blobrefs (
                blob        BLOB NOT NULL,             -- 32-byte sha256
                msg         BLOB NOT NULL,             -- the referring entry's id
                kind        TEXT NOT NULL,             -- 'full', 'thumb', 'avatar'
                author      BLOB NOT NULL,             -- its author (for purging)
                size        INTEGER,                   -- the size the entry claims
                key         BLOB,                      -- opens a private attachment
                PRIMARY KEY (blob, msg, kind)
            ) WITHOUT ROWID;
            CREATE INDEX blobrefs_msg ON blobrefs (msg);
            CREATE INDEX blobrefs_author ON blobrefs (author);
            """,
        )

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        rows = []
        for item in batch:
            value = item.private_value if item.private_value is not None else item.value
            if type(value) is not dict:
                continue
            if "mentions" not in value and value.get("type") != "about":
                continue
            private = item.private_value is not None
            for ref in blob_refs(value):
                key = ref.key if private else None
                rows.append((ref.blob, item.entry.id, ref.kind, item.entry.author, ref.size, key))
        if rows:
            conn.executemany(
                "INSERT OR IGNORE INTO blobrefs (blob, msg, kind, author, size, key) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def forget(self, conn: sqlite3.Connection, entries: Sequence[tuple[bytes, bytes, int]]) -> None:
        conn.executemany("DELETE FROM blobrefs WHERE msg = ?", [(i,) for i, _a, _s in entries])
