"""The ``profiles`` view: what feeds say about themselves and call each other.

From ``about`` content (``msgtypes/about.py``):

- ``profiles``: one row per author whose self-``about`` (``about`` = its own feed) set a
  field; per field (name, bio, avatar) the value of the latest entry (by sequence) that
  held a valid one, and that entry's sequence;
- ``named``: one row per (author, feed) for an ``about`` by author about *another* feed
  with a valid name: what the author calls it (the latest by sequence wins). It is what
  "the name most of the people you follow call them" counts (``msgtypes/names.py``).

A malformed field is skipped (the entry stays stored). Both tables are keyed by
``author``, so the default purge removes what a blocked feed said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.msgtypes.about import FIELDS, parse_about
from p2psocial.store.views.base import View, execute_all

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from p2psocial.feed.chain import Accepted


def _upsert_field(name: str) -> str:
    return (
        f"INSERT INTO profiles (author, {name}, {name}_seq) VALUES (?, ?, ?) "
        f"ON CONFLICT (author) DO UPDATE SET {name} = excluded.{name}, "
        f"{name}_seq = excluded.{name}_seq "
        f"WHERE profiles.{name}_seq IS NULL OR excluded.{name}_seq > profiles.{name}_seq"
    )


UPSERT_FIELD = {name: _upsert_field(name) for name in FIELDS}
UPSERT_NAMED = (
    "INSERT INTO named (author, feed, name, seq) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (author, feed) DO UPDATE SET name = excluded.name, seq = excluded.seq "
    "WHERE excluded.seq > named.seq"
)


class ProfilesView(View):
    name = "profiles"
    version = 1
    tables = ("profiles", "named")
    content_types = frozenset({"about"})

    def create(self, conn: sqlite3.Connection) -> None:
        execute_all(
            conn,
            """
            CREATE TABLE profiles (
                author      BLOB PRIMARY KEY,
                name        TEXT,
                name_seq    INTEGER,                   -- the entry that set the name
                bio         TEXT,
                bio_seq     INTEGER,
                avatar      TEXT,
                avatar_seq  INTEGER
            ) WITHOUT ROWID;
            CREATE TABLE named (
                author      BLOB NOT NULL,             -- who calls
                feed        BLOB NOT NULL,             -- the feed called
                name        TEXT NOT NULL,
                seq         INTEGER NOT NULL,
                PRIMARY KEY (author, feed)
            ) WITHOUT ROWID;
            CREATE INDEX named_feed ON named (feed);
            """,
        )

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        fields: dict[str, list[tuple[bytes, str, int]]] = {name: [] for name in FIELDS}
        named: list[tuple[bytes, bytes, str, int]] = []
        for item in batch:
            if item.content_type != "about" or not isinstance(item.value, dict):
                continue
            about = parse_about(item.value)
            if about is None:
                continue
            author, seq = item.entry.author, item.entry.seq
            if about.about == author:
                for name, value in (
                    ("name", about.name),
                    ("bio", about.bio),
                    ("avatar", about.avatar),
                ):
                    if value is not None:
                        fields[name].append((author, value, seq))
            elif about.name is not None:
                named.append((author, about.about, about.name, seq))
        for name, rows in fields.items():
            if rows:
                conn.executemany(UPSERT_FIELD[name], rows)
        if named:
            conn.executemany(UPSERT_NAMED, named)


def profile(conn: sqlite3.Connection, author: bytes) -> dict[str, str | None]:
    """``author``'s own name, bio and avatar (None where it set none)."""
    row = conn.execute(
        "SELECT name, bio, avatar FROM profiles WHERE author = ?", (author,)
    ).fetchone()
    return dict(zip(FIELDS, row if row else (None, None, None), strict=True))


def self_names(conn: sqlite3.Connection) -> dict[bytes, str]:
    """The name every feed gives itself."""
    return {
        r[0]: r[1] for r in conn.execute("SELECT author, name FROM profiles WHERE name IS NOT NULL")
    }


def names_by_followed(conn: sqlite3.Connection, me: bytes) -> dict[bytes, dict[bytes, str]]:
    """What the feeds ``me`` follows call other feeds: feed -> namer -> name (the
    ``contacts`` view says whom ``me`` follows)."""
    others: dict[bytes, dict[bytes, str]] = {}
    for author, feed, name in conn.execute(
        "SELECT n.author, n.feed, n.name FROM contacts c JOIN named n ON n.author = c.contact "
        "WHERE c.author = ? AND c.following = 1 AND c.blocking = 0",
        (me,),
    ):
        others.setdefault(feed, {})[author] = name
    return others
