"""The ``contacts`` view: the follow graph, from ``contact`` content.

One row per (author, contact): the latest stance (following, blocking) and the sequence
of the entry that set it; a later entry wins, whatever order entries are indexed in.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from p2psocial.msgtypes.contact import parse_contact
from p2psocial.store.views.base import View, execute_all

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from p2psocial.feed.chain import Accepted

UPSERT = (
    "INSERT INTO contacts (author, contact, following, blocking, seq) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (author, contact) DO UPDATE SET following = excluded.following, "
    "blocking = excluded.blocking, seq = excluded.seq WHERE excluded.seq > contacts.seq"
)


class ContactsView(View):
    name = "contacts"
    version = 2  # 2: contacts naming a 33-byte "feed id" (44 base64 chars, no '=') dropped
    tables = ("contacts",)
    content_types = frozenset({"contact"})

    def create(self, conn: sqlite3.Connection) -> None:
        execute_all(
            conn,
            """
            CREATE TABLE contacts (
                author      BLOB NOT NULL,
                contact     BLOB NOT NULL,
                following   INTEGER NOT NULL DEFAULT 0,
                blocking    INTEGER NOT NULL DEFAULT 0,
                seq         INTEGER NOT NULL,          -- the entry that set this state
                PRIMARY KEY (author, contact)
            ) WITHOUT ROWID;
            CREATE INDEX contacts_contact ON contacts (contact);
            """,
        )

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        rows = []
        for item in batch:
            if item.content_type == "contact" and isinstance(item.value, dict):
                parsed = parse_contact(item.value)
                if parsed is not None:
                    contact, following, blocking = parsed
                    rows.append(
                        (item.entry.author, contact, int(following), int(blocking), item.entry.seq)
                    )
        if rows:
            conn.executemany(UPSERT, rows)

    def forget(self, conn: sqlite3.Connection, entries: Sequence[tuple[bytes, bytes, int]]) -> None:
        conn.executemany(
            "DELETE FROM contacts WHERE author = ? AND seq = ?", [(a, s) for _i, a, s in entries]
        )


def follows(conn: sqlite3.Connection) -> dict[bytes, set[bytes]]:
    """Who follows whom: author -> the feeds it currently follows."""
    graph: dict[bytes, set[bytes]] = defaultdict(set)
    for author, contact in conn.execute("SELECT author, contact FROM contacts WHERE following = 1"):
        graph[author].add(contact)
    return graph


def followers_of(conn: sqlite3.Connection, feed: bytes) -> set[bytes]:
    """The feeds that currently follow ``feed`` (of those whose contacts we hold)."""
    rows = conn.execute(
        "SELECT author FROM contacts WHERE contact = ? AND following = 1", (feed,)
    ).fetchall()
    return {r[0] for r in rows}


def blocked_by(conn: sqlite3.Connection, author: bytes) -> set[bytes]:
    """The feeds ``author`` currently blocks."""
    rows = conn.execute(
        "SELECT contact FROM contacts WHERE author = ? AND blocking = 1", (author,)
    ).fetchall()
    return {r[0] for r in rows}


def stance(conn: sqlite3.Connection, author: bytes, contact: bytes) -> tuple[bool, bool]:
    """(following, blocking) of ``author`` towards ``contact``."""
    row = conn.execute(
        "SELECT following, blocking FROM contacts WHERE author = ? AND contact = ?",
        (author, contact),
    ).fetchone()
    return (bool(row[0]), bool(row[1])) if row else (False, False)


def hops_from(
    me: bytes, graph: dict[bytes, set[bytes]], blocked: set[bytes], max_hops: int
) -> dict[bytes, int]:
    """Feeds within ``max_hops`` follows of ``me`` (me at 0), never any we block."""
    distance = {me: 0}
    frontier = [me]
    for hop in range(1, max_hops + 1):
        following = []
        for author in frontier:
            for contact in graph.get(author, ()):
                if contact not in distance and contact not in blocked:
                    distance[contact] = hop
                    following.append(contact)
        frontier = following
    return distance
