"""The ``deletions`` view: which message each ``delete`` entry takes back, and by whom.

A delete may arrive before its target (a peer that already dropped the content sends the
target's entry alone, later): the row waits here, and the store applies it when the
target comes. Only a delete by the target's own author is ever applied (the store checks
that against the stored target)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.msgtypes.delete import parse_delete
from p2psocial.store.views.base import View, execute_all, in_chunks

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Sequence

    from p2psocial.feed.chain import Accepted


class DeletionsView(View):
    name = "deletions"
    version = 1
    tables = ("deletions",)
    content_types = frozenset({"delete"})

    def create(self, conn: sqlite3.Connection) -> None:
        execute_all(
            conn,
            """
            CREATE TABLE deletions (
                target      BLOB NOT NULL,             -- the message taken back
                author      BLOB NOT NULL,             -- who published the delete
                id          BLOB NOT NULL,             -- the delete entry
                PRIMARY KEY (target, author)
            ) WITHOUT ROWID;
            """,
        )

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        rows = []
        for item in batch:
            if item.content_type == "delete" and isinstance(item.value, dict):
                target = parse_delete(item.value)
                if target is not None:
                    rows.append((target, item.entry.author, item.entry.id))
        if rows:
            conn.executemany(
                "INSERT OR IGNORE INTO deletions (target, author, id) VALUES (?, ?, ?)", rows
            )


def deletions_for(conn: sqlite3.Connection, ids: Iterable[bytes]) -> list[tuple[bytes, bytes]]:
    """(target, author of the delete) for every delete naming one of ``ids``."""
    found: list[tuple[bytes, bytes]] = []
    for chunk, marks in in_chunks(list(ids)):
        found += conn.execute(
            f"SELECT target, author FROM deletions WHERE target IN ({marks})", tuple(chunk)
        ).fetchall()
    return found
