"""The ``search`` view: a full-text index of public posts (and repost comments).

Theory of operation
-------------------
``search`` is an SQLite FTS5 table without content (``content=''``): it holds the index
alone, never the text a second time (the text is in ``entries.content``). Its rowid is the
entry's ``rx``, so a hit is one rowid lookup away from its entry, and rowids close together
keep the index small. What is indexed of a post is its text prepared by
:func:`p2psocial.searchtext.index_text` (accents, emoji, CJK), of a repost its comment.

A contentless FTS5 table forgets a row only when told the very text it indexed (SQLite
3.40 has no ``contentless_delete``), so every change is made while that text can still be
read:

- an ``edit`` by the post's own author (the latest by sequence wins) takes the post's
  current text out and puts the new one in; ``search_edits`` records which edit's text is
  indexed (also for a post whose content is not held yet, so it is indexed with it);
- a ``delete`` by the target's author is applied here, in :meth:`SearchView.index`, which
  sees the delete before the store drops the target's content (the store indexes a
  batch, then applies its deletes): a post or repost leaves the index; a deleted edit
  gives the post back the text of the edit before it, or its own;
- :meth:`SearchView.purge` (a blocked feed) runs while the feed's entries are still held.

:meth:`SearchView.forget` is then left with nothing to do; if it ever finds a forgotten
entry still indexed, whose text is gone, it marks the view for a rebuild at the next
opening, and searches skip entries without content meanwhile (``store/search.py``).

The view's version includes the Unicode version of Python's ``unicodedata``: the text is
prepared with it, and the index must be rebuilt when it changes what it prepares.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from p2psocial.errors import InvalidEntry
from p2psocial.feed.content import decode_content
from p2psocial.msgtypes.delete import parse_delete
from p2psocial.msgtypes.edit import parse_edit
from p2psocial.msgtypes.repost import parse_repost
from p2psocial.searchtext import TOKENIZER, index_text
from p2psocial.store.views.base import View, execute_all
from p2psocial.store.views.deletions import deletions_for

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Sequence

    from p2psocial.feed.chain import Accepted

_CHUNK = 500
INDEXED_TYPES = ("post", "repost")
INSERT = "INSERT INTO search (rowid, text) VALUES (?, ?)"
REMOVE = "INSERT INTO search (search, rowid, text) VALUES ('delete', ?, ?)"


def _unicode_version() -> int:
    major, minor, *_ = (int(part) for part in unicodedata.unidata_version.split("."))
    return major * 100 + minor


def searchable_text(content_type: str | None, value: Any) -> str | None:
    """What is indexed of a public message's content: a post's text, a repost's
    comment; None for anything else (or a malformed one)."""
    if type(value) is not dict:
        return None
    if content_type == "post":
        text = value.get("text")
        return text if type(text) is str and text.strip() else None
    if content_type == "repost":
        parsed = parse_repost(value)
        return parsed[1] if parsed is not None else None
    return None


def _decoded(content: bytes | None) -> Any:
    if content is None:
        return None
    try:
        return decode_content(content)
    except InvalidEntry:  # validated when stored
        return None


def _chunks(items: Sequence[Any]) -> Iterable[tuple[Sequence[Any], str]]:
    for i in range(0, len(items), _CHUNK):
        chunk = items[i : i + _CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def edit_text(conn: sqlite3.Connection, author: bytes, seq: int) -> str | None:
    """The new text of ``author``'s edit at ``seq``, if it is held."""
    row = conn.execute(
        "SELECT content FROM entries WHERE author = ? AND seq = ?", (author, seq)
    ).fetchone()
    value = _decoded(row[0]) if row is not None else None
    parsed = parse_edit(value) if type(value) is dict else None
    return parsed[1] if parsed is not None else None


def _rxs(conn: sqlite3.Connection, runs: Sequence[Sequence[bytes]]) -> dict[bytes, int]:
    """The ``rx`` of each stored entry of ``runs`` (each in receive order). A batch just
    stored, or a chunk of a rebuild, is a run of consecutive entries: read as one range
    (a few times faster than a lookup per id); anything else id by id."""
    ids = [i for run in runs for i in run]
    ends = [
        conn.execute("SELECT rx FROM entries WHERE id = ?", (i,)).fetchone()
        for run in runs
        for i in (run[0], run[-1])
    ]
    if all(end is not None for end in ends):
        first, last = min(e[0] for e in ends), max(e[0] for e in ends)
        if last - first <= 4 * len(ids) + 64:
            found = dict(
                conn.execute(
                    "SELECT id, rx FROM entries WHERE rx BETWEEN ? AND ?", (first, last)
                ).fetchall()
            )
            if all(i in found for i in ids):
                return found
    found = {}
    for chunk, marks in _chunks(ids):
        found.update(
            conn.execute(f"SELECT id, rx FROM entries WHERE id IN ({marks})", chunk).fetchall()
        )
    return found


def _with_edits(conn: sqlite3.Connection, rows: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """``rows`` with the text of an edit that came before its post's content did."""
    edited: dict[int, tuple[bytes, int]] = {}
    for chunk, marks in _chunks([rx for rx, _ in rows]):
        for rx, author, seq in conn.execute(
            f"SELECT s.rx, e.author, s.seq FROM search_edits s JOIN entries e "
            f"ON e.rx = s.rx WHERE s.rx IN ({marks})",
            chunk,
        ):
            edited[rx] = (author, seq)
    if not edited:
        return rows
    return [
        (rx, (edit_text(conn, *edited[rx]) or text) if rx in edited else text) for rx, text in rows
    ]


def _edit_seq(conn: sqlite3.Connection, rx: int) -> int | None:
    row = conn.execute("SELECT seq FROM search_edits WHERE rx = ?", (rx,)).fetchone()
    return row[0] if row is not None else None


def _set_edit(conn: sqlite3.Connection, rx: int, seq: int | None) -> None:
    if seq is None:
        conn.execute("DELETE FROM search_edits WHERE rx = ?", (rx,))
    else:
        conn.execute(
            "INSERT INTO search_edits (rx, seq) VALUES (?, ?) "
            "ON CONFLICT (rx) DO UPDATE SET seq = excluded.seq",
            (rx, seq),
        )


def indexed_text(
    conn: sqlite3.Connection, rx: int, author: bytes, ctype: str | None, content: bytes | None
) -> str | None:
    """The text the index holds for entry ``rx`` (prepared), from what is stored: its
    latest edit's or its own; None if it is not indexed."""
    text = searchable_text(ctype, _decoded(content))
    if text is None:
        return None
    edit = _edit_seq(conn, rx)
    if edit is not None:
        text = edit_text(conn, author, edit) or text
    return index_text(text)


class _Pending:
    """The texts a batch of edits and deletes changes, applied at the end: FTS5 writes
    its pending changes out whenever a row is deleted after an insert or a rowid comes
    out of order, so one sorted removal and one sorted insertion per batch keep that to
    twice, not twice per edit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.before: dict[int, str | None] = {}
        self.after: dict[int, str | None] = {}
        self.deleted: set[int] = set()
        """Posts and reposts deleted in this batch (their content goes after it)."""

    def current(
        self, rx: int, author: bytes, ctype: str | None, content: bytes | None
    ) -> str | None:
        if rx in self.after:
            return self.after[rx]
        return indexed_text(self.conn, rx, author, ctype, content)

    def change(self, rx: int, old: str | None, new: str | None) -> None:
        self.before.setdefault(rx, old)
        self.after[rx] = new

    def apply(self) -> None:
        removed = sorted(
            (rx, old)
            for rx, old in self.before.items()
            if old is not None and self.after[rx] != old
        )
        added = sorted(
            (rx, new)
            for rx, new in self.after.items()
            if new is not None and self.before[rx] != new
        )
        if removed:
            self.conn.executemany(REMOVE, removed)
        if added:
            self.conn.executemany(INSERT, added)


def _edit(pending: _Pending, item: Accepted) -> None:
    """An edit by the post's own author, later than the one indexed: its text replaces
    the post's (or waits for the post's content, when that is not held yet)."""
    parsed = parse_edit(item.value)  # type: ignore[arg-type]
    if parsed is None:
        return
    conn = pending.conn
    target, text = parsed
    author, seq = item.entry.author, item.entry.seq
    row = conn.execute(
        "SELECT rx, author, ctype, content FROM entries WHERE id = ?", (target,)
    ).fetchone()
    if row is None or row[1] != author or row[2] not in ("post", None):
        return  # not held, someone else's post (invalid), or not a post
    rx = row[0]
    if rx in pending.deleted or (
        row[3] is None and (target, author) in deletions_for(conn, [target])
    ):
        return  # its author deleted the post
    edit = _edit_seq(conn, rx)
    if edit is not None and edit >= seq:
        return  # a later edit is indexed already
    old = pending.current(rx, author, row[2], row[3])
    if old is not None:
        pending.change(rx, old, index_text(text))
    _set_edit(conn, rx, seq)


def _delete(pending: _Pending, item: Accepted) -> None:
    """A delete by the target's own author: a post or repost leaves the index; a deleted
    edit whose text is indexed gives the post the text of its edit before, or its own."""
    target = parse_delete(item.value)  # type: ignore[arg-type]
    if target is None:
        return
    conn = pending.conn
    row = conn.execute(
        "SELECT rx, author, seq, ctype, content FROM entries WHERE id = ?", (target,)
    ).fetchone()
    if row is None or row[1] != item.entry.author or row[4] is None:
        return  # not held, not the author's own, or gone already
    rx, author, seq, ctype, content = row
    if ctype in INDEXED_TYPES:
        old = pending.current(rx, author, ctype, content)
        pending.change(rx, old, None)
        pending.deleted.add(rx)
        _set_edit(conn, rx, None)
        return
    if ctype != "edit":
        return
    value = _decoded(content)
    parsed = parse_edit(value) if type(value) is dict else None
    post = (
        conn.execute(
            "SELECT rx, author, seq, ctype, content FROM entries WHERE id = ?", (parsed[0],)
        ).fetchone()
        if parsed is not None
        else None
    )
    if parsed is None or post is None or post[1] != author or _edit_seq(conn, post[0]) != seq:
        return  # not a usable edit, or its text is not the one indexed
    post_rx, _author, post_seq, post_ctype, post_content = post
    old = pending.current(post_rx, author, post_ctype, post_content)
    previous = None
    for earlier, earlier_content in conn.execute(
        "SELECT seq, content FROM entries WHERE author = ? AND seq > ? AND seq < ? "
        "AND ctype = 'edit' ORDER BY seq DESC",
        (author, post_seq, seq),
    ).fetchall():
        earlier_value = _decoded(earlier_content)
        earlier_edit = parse_edit(earlier_value) if type(earlier_value) is dict else None
        if earlier_edit is not None and earlier_edit[0] == parsed[0]:
            previous = earlier
            break
    _set_edit(conn, post_rx, previous)
    if old is not None:  # still indexed (not deleted in this batch)
        pending.change(post_rx, old, indexed_text(conn, post_rx, author, post_ctype, post_content))


class SearchView(View):
    name = "search"
    version = 10_000 + _unicode_version()
    tables = ("search_vocab", "search", "search_edits")
    content_types = frozenset({"post", "repost", "edit", "delete"})

    def create(self, conn: sqlite3.Connection) -> None:
        execute_all(
            conn,
            f"""
            CREATE VIRTUAL TABLE search USING fts5 (
                text, content='', tokenize="{TOKENIZER}"
            );
            -- the index's words, for turning a prefix into the words it begins
            CREATE VIRTUAL TABLE search_vocab USING fts5vocab (search, row);
            CREATE TABLE search_edits (
                rx          INTEGER PRIMARY KEY,       -- the post edited (entries.rx)
                seq         INTEGER NOT NULL           -- the edit whose text is indexed
            );
            """,
        )

    # ------------------------------------------------------------------ indexing

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        docs: dict[str, list[tuple[bytes, str]]] = {}  # by type, each in receive order
        changes: list[Accepted] = []
        for item in batch:
            kind = item.content_type
            if kind == "post" or kind == "repost":
                text = searchable_text(kind, item.value)
                if text is not None:
                    docs.setdefault(kind, []).append((item.entry.id, text))
            elif (kind == "edit" or kind == "delete") and type(item.value) is dict:
                changes.append(item)
        if docs:
            self._add(conn, list(docs.values()))
        if changes:
            changes.sort(key=lambda item: item.entry.seq)  # each feed's in its order
            pending = _Pending(conn)
            for item in changes:  # after the posts they may name
                if item.content_type == "edit":
                    _edit(pending, item)
                else:
                    _delete(pending, item)
            pending.apply()

    def _add(self, conn: sqlite3.Connection, runs: list[list[tuple[bytes, str]]]) -> None:
        found = _rxs(conn, [[i for i, _ in run] for run in runs])
        rows = sorted((found[i], text) for run in runs for i, text in run if i in found)
        if conn.execute("SELECT 1 FROM search_edits LIMIT 1").fetchone() is not None:
            rows = _with_edits(conn, rows)
        conn.executemany(INSERT, [(rx, index_text(text)) for rx, text in rows])

    def rebuilt(self, conn: sqlite3.Connection) -> None:
        # merged into one segment: a little smaller and faster to search (0.3 s per 1M)
        conn.execute("INSERT INTO search (search) VALUES ('optimize')")

    # ------------------------------------------------------------------ taking back

    def forget(self, conn: sqlite3.Connection, entries: Sequence[tuple[bytes, bytes, int]]) -> None:
        for msg, _author, _seq in entries:
            row = conn.execute("SELECT rx FROM entries WHERE id = ?", (msg,)).fetchone()
            if row is None:
                continue
            if conn.execute("SELECT 1 FROM search_docsize WHERE id = ?", row).fetchone():
                # :meth:`index` did not see this delete and the text is gone: the index
                # can no longer drop it; rebuild the view at the next opening (searches
                # skip entries without content until then)
                conn.execute("UPDATE views SET version = 0 WHERE name = ?", (self.name,))
            conn.execute("DELETE FROM search_edits WHERE rx = ?", row)

    def purge(self, conn: sqlite3.Connection, author: bytes) -> None:
        rows = conn.execute(
            "SELECT rx, ctype, content FROM entries WHERE author = ? AND ctype IN (?, ?)",
            (author, *INDEXED_TYPES),
        ).fetchall()
        removed = [
            (rx, old)
            for rx, ctype, content in rows
            for old in [indexed_text(conn, rx, author, ctype, content)]
            if old is not None
        ]
        conn.executemany(REMOVE, removed)
        conn.execute(
            "DELETE FROM search_edits WHERE rx IN (SELECT rx FROM entries WHERE author = ?)",
            (author,),
        )
