"""The ``channels`` view: which public posts are in which channel, from ``post`` and
``edit`` content.

A post is in the channel its ``channel`` field names and in each channel its text
``#tags`` (``msgtypes/post.py``, :func:`~p2psocial.msgtypes.post.channels`: canonical
names, NFKC and case-folded). An edit by the post's own author gives the post new text,
so new tags: the post's channels are then those of its latest edit's text (by sequence)
plus its original ``channel`` field. An edit naming someone else's post changes nothing.

Tables:

- ``channels``: one row per (channel, post), with the post's sort time (min(claimed
  time, receive time), the ``entries.sort_ts`` the timeline sorts by), so a channel pages
  newest first on its primary key;
- ``channel_edits``: every well-formed edit (author, seq, target): what re-derives a
  post's channels when an edit arrives, when a post's content arrives after its edit (a
  post first held without content), or when an edit is deleted (the one before it, or the
  post's own text, counts again).

A deleted post's rows go (:meth:`ChannelsView.forget`); both tables are keyed by
``author``, so the default purge removes a blocked feed's rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.errors import InvalidEntry
from p2psocial.feed.content import decode_content
from p2psocial.msgtypes.edit import parse_edit
from p2psocial.msgtypes.post import channel_name, channels
from p2psocial.store.views.base import View, execute_all, in_chunks

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from p2psocial.feed.chain import Accepted
    from p2psocial.msgtypes.base import Value

INSERT_ROW = (
    "INSERT OR IGNORE INTO channels (channel, sort_ts, msg, author) "
    "SELECT ?, sort_ts, id, author FROM entries WHERE id = ?"
)
"""A channel row for a stored post; its sort time is the one stored with the entry (the
same on every indexing of it, whenever its content arrived)."""


class ChannelsView(View):
    name = "channels"
    version = 1
    tables = ("channels", "channel_edits")
    content_types = frozenset({"post", "edit"})

    def create(self, conn: sqlite3.Connection) -> None:
        execute_all(
            conn,
            """
            CREATE TABLE channels (
                channel     TEXT NOT NULL,             -- canonical name, without '#'
                sort_ts     INTEGER NOT NULL,          -- the post's entries.sort_ts
                msg         BLOB NOT NULL,             -- the post
                author      BLOB NOT NULL,
                PRIMARY KEY (channel, sort_ts, msg)
            ) WITHOUT ROWID;
            CREATE INDEX channels_msg ON channels (msg);
            CREATE INDEX channels_author ON channels (author);
            CREATE TABLE channel_edits (
                author      BLOB NOT NULL,             -- who edited
                seq         INTEGER NOT NULL,          -- the edit entry
                target      BLOB NOT NULL,             -- the post edited
                PRIMARY KEY (author, seq)
            ) WITHOUT ROWID;
            CREATE INDEX channel_edits_target ON channel_edits (target, seq);
            """,
        )

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        rows: list[tuple[str, bytes]] = []
        posts: list[bytes] = []
        edits: list[tuple[bytes, int, bytes]] = []
        for item in batch:
            value = item.value
            if not isinstance(value, dict):
                continue
            if item.content_type == "post":
                posts.append(item.entry.id)
                rows.extend((name, item.entry.id) for name in channels(value))
            elif item.content_type == "edit":
                parsed = parse_edit(value)
                if parsed is not None:
                    edits.append((item.entry.author, item.entry.seq, parsed[0]))
        if rows:
            conn.executemany(INSERT_ROW, rows)
        if conn.execute("SELECT 1 FROM channel_edits LIMIT 1").fetchone() is not None:
            # A post whose content came after an edit of it (held without content first).
            for chunk, marks in in_chunks(posts):
                for (target,) in conn.execute(
                    f"SELECT DISTINCT target FROM channel_edits WHERE target IN ({marks})",
                    tuple(chunk),
                ).fetchall():
                    _derive(conn, target)
        if edits:
            conn.executemany(
                "INSERT OR IGNORE INTO channel_edits (author, seq, target) VALUES (?, ?, ?)",
                edits,
            )
            for target in dict.fromkeys(t for _a, _s, t in edits):
                _derive(conn, target)

    def forget(self, conn: sqlite3.Connection, entries: Sequence[tuple[bytes, bytes, int]]) -> None:
        conn.executemany("DELETE FROM channels WHERE msg = ?", [(i,) for i, _a, _s in entries])
        targets = []
        for _id, author, seq in entries:
            targets += [
                r[0]
                for r in conn.execute(
                    "DELETE FROM channel_edits WHERE author = ? AND seq = ? RETURNING target",
                    (author, seq),
                ).fetchall()
            ]
        for target in dict.fromkeys(targets):
            _derive(conn, target)


def _decoded(content: bytes | None) -> Value | None:
    if content is None:
        return None
    try:
        value = decode_content(content)
    except InvalidEntry:  # validated when stored; what does not decode is not indexed
        return None
    return value if isinstance(value, dict) else None


def _derive(conn: sqlite3.Connection, target: bytes) -> None:
    """Set the channel rows of post ``target`` from its text, or its latest edit's text
    by its own author, plus its own ``channel`` field."""
    conn.execute("DELETE FROM channels WHERE msg = ?", (target,))
    row = conn.execute(
        "SELECT author, content FROM entries WHERE id = ? AND ctype = 'post'", (target,)
    ).fetchone()
    post = _decoded(row[1]) if row is not None else None
    if row is None or post is None:
        return  # not held, held without content, or not a post
    found = channels(post)
    edit = conn.execute(
        "SELECT e.content FROM channel_edits c JOIN entries e "
        "ON e.author = c.author AND e.seq = c.seq "
        "WHERE c.target = ? AND c.author = ? AND e.content IS NOT NULL "
        "ORDER BY c.seq DESC LIMIT 1",
        (target, row[0]),
    ).fetchone()
    edited = _decoded(edit[0]) if edit is not None else None
    parsed = parse_edit(edited) if edited is not None else None
    if parsed is not None:
        named = channel_name(post.get("channel"))
        found = channels({"text": parsed[1], **({"channel": named} if named else {})})
    if found:
        conn.executemany(INSERT_ROW, [(name, target) for name in found])


def channel_counts(conn: sqlite3.Connection, limit: int) -> list[tuple[str, int, int]]:
    """(name, posts, latest sort time) of the channels most posted in, leaving out muted
    authors; ties by name."""
    return conn.execute(
        "SELECT channel, count(*) AS n, max(sort_ts) FROM channels "
        "WHERE author NOT IN (SELECT feed FROM mutes) "
        "GROUP BY channel ORDER BY n DESC, channel LIMIT ?",
        (limit,),
    ).fetchall()
