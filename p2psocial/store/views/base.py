"""The view interface, and the replay that rebuilds a view (see the package docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import cbor2

from p2psocial.errors import InvalidEntry
from p2psocial.feed.chain import Accepted
from p2psocial.feed.formats import decode_entry

if TYPE_CHECKING:
    import logging
    import sqlite3
    from collections.abc import Iterator, Sequence

    from p2psocial.msgtypes.private import Opener

REBUILD_CHUNK = 5000
ID_CHUNK = 500
"""Most ids one ``IN (...)`` query binds (SQLite bounds the variables per statement)."""


def in_chunks(ids: Sequence[bytes]) -> Iterator[tuple[Sequence[bytes], str]]:
    """``ids`` in chunks for ``WHERE x IN ({marks})``: (chunk, its ``?,?,...``)."""
    for i in range(0, len(ids), ID_CHUNK):
        chunk = ids[i : i + ID_CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def execute_all(conn: sqlite3.Connection, script: str) -> None:
    """Run the ``;``-separated statements of ``script`` inside the caller's transaction
    (``executescript`` would commit it first)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def index_all(views: Sequence[View], conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
    """Index ``batch`` into every view, each given only the entries of its content types
    (grouped once, so a view for a rare type costs nothing on the ingest hot path)."""
    groups: dict[str, list[Accepted]] | None = None
    for view in views:
        if view.content_types is None:
            view.index(conn, batch)
            continue
        if groups is None:
            groups = {}
            for item in batch:
                groups.setdefault(item.content_type or "", []).append(item)
        mine = [item for kind in view.content_types for item in groups.get(kind, ())]
        if mine:
            view.index(conn, mine)


class View:
    """A derived table (or a few), kept by the store. Subclasses set the class fields."""

    name: ClassVar[str]
    version: ClassVar[int]
    tables: ClassVar[tuple[str, ...]]
    """Every table (and so its indexes) the view owns, dropped by :meth:`drop`."""
    private: ClassVar[bool] = False
    """Whether it needs private entries opened (``Accepted.private_value``)."""
    content_types: ClassVar[frozenset[str] | None] = None
    """The content types it indexes (``""``: private or content-less entries); None: it
    looks at every entry. The store hands a view only the entries of its types."""

    def create(self, conn: sqlite3.Connection) -> None:
        raise NotImplementedError

    def drop(self, conn: sqlite3.Connection) -> None:
        for table in self.tables:
            conn.execute(f"DROP TABLE IF EXISTS {table}")

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        """Index newly stored entries (in sequence order per feed)."""
        raise NotImplementedError

    def forget(self, conn: sqlite3.Connection, entries: Sequence[tuple[bytes, bytes, int]]) -> None:
        """Remove every row these entries (id, author, seq) gave this view: their author
        deleted them. A view whose rows come from entries must override this."""

    def rebuilt(self, conn: sqlite3.Connection) -> None:
        """Called once a rebuild has replayed every stored entry: for work done once over
        the whole rebuilt view (the search index merges its segments)."""

    def purge(self, conn: sqlite3.Connection, author: bytes) -> None:
        """Remove every row ``author``'s entries gave this view (each table's ``author``)."""
        for table in self.tables:
            conn.execute(f"DELETE FROM {table} WHERE author = ?", (author,))


def open_private(batch: Sequence[Accepted], opener: Opener) -> None:
    """Open every private entry in ``batch`` once with our key; fill ``plaintext`` and
    ``private_value`` of those we can read."""
    for item in batch:
        if item.content_type is None and type(item.value) is bytes and item.plaintext is None:
            opened = opener(item.value, item.entry.author)
            if opened is not None:
                item.plaintext, item.private_value = opened


def stored_entries(
    conn: sqlite3.Connection, content_types: frozenset[str] | None = None
) -> Iterator[list[Accepted]]:
    """Every stored entry, decoded, in receive order, in chunks; ``content_types``: only
    the public entries of these types (``""``: also private ones), None: all of them.

    Content was checked when it was stored, so it is decoded without the canonical-form
    check here (a row whose content no longer decodes is left out: damage is for
    ``p2psocial check`` to report, never for a view to index)."""
    where = ""
    if content_types is not None:
        named = sorted(t for t in content_types if t)
        clauses = [f"ctype IN ({','.join('?' * len(named))})"] if named else []
        if "" in content_types:
            clauses.append("(ctype IS NULL AND content IS NOT NULL)")
        where = f" AND ({' OR '.join(clauses) or '0'})"
        params: tuple[object, ...] = tuple(named)
    else:
        params = ()
    loads = cbor2.loads
    last = 0
    while True:
        rows = conn.execute(
            "SELECT rx, raw, content, ctype, rx_ts FROM entries "
            f"WHERE rx > ?{where} ORDER BY rx LIMIT ?",
            (last, *params, REBUILD_CHUNK),
        ).fetchall()
        if not rows:
            return
        chunk = []
        for _rx, raw, content, ctype, rx_ts in rows:
            value = None
            if content is not None:
                try:
                    value = loads(content)
                    entry = decode_entry(raw)
                except Exception:  # damaged in the file (cbor2 raises several types)
                    continue
                if type(value) is dict:
                    kind = value.get("type")
                    ctype = kind if type(kind) is str else None
                elif type(value) is bytes:
                    ctype = None
                else:
                    continue
            else:
                try:
                    entry = decode_entry(raw)
                except InvalidEntry:
                    continue
                ctype = None
            item = Accepted(entry, content, ctype, value)
            item.received = rx_ts
            chunk.append(item)
        last = rows[-1][0]
        yield chunk


def rebuild_views(
    conn: sqlite3.Connection, views: Sequence[View], opener: Opener | None, log: logging.Logger
) -> int:
    """Drop ``views`` and replay every stored entry into them in one pass (in the caller's
    transaction): each entry is read and decoded once for all of them, and when every view
    names its content types, entries of other types are not even read. Returns the number
    of stored entries the replay covered."""
    if not views:
        return 0
    names = ", ".join(f"{v.name} (version {v.version})" for v in views)
    wanted: frozenset[str] | None = frozenset()
    for view in views:
        if view.content_types is None or wanted is None:
            wanted = None
        else:
            wanted = wanted | view.content_types
    total = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    log.info("rebuilding %s from the stored entries", names)
    for view in views:
        view.drop(conn)
        view.create(conn)
    private = opener is not None and any(view.private for view in views)
    done = 0
    for chunk in stored_entries(conn, wanted):
        if private and opener is not None:
            open_private(chunk, opener)
        index_all(views, conn, chunk)
        done += len(chunk)
        if done % (REBUILD_CHUNK * 20) < len(chunk) and total > REBUILD_CHUNK:
            log.info("rebuilding %s: %d of %d entries", names, done, total)
    for view in views:
        view.rebuilt(conn)
    return int(total)
