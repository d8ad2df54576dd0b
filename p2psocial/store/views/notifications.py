"""The ``notifications`` view: what others' entries tell the store's owner (mentions,
replies, reactions, reposts, follows), by the rules of ``msgtypes/notify.py``.

Kept only when the store is opened by its owner (it needs the owner's key); rebuilt when
its version changes, so nothing of ours lives in its tables: the read mark is in the core
``meta`` table (``store/notifications.py``).

"Ours" is judged as of the moment an entry was stored (receive order, ``entries.rx``): a
reply is to our message if that message was stored (with its content) before the reply,
and a reply is in a thread we replied in if our reply was stored before it. So indexing
entries one batch at a time and a rebuild, which replays them in receive order, give the
same rows. ``notify_threads`` lists the threads we replied in.

Reactions and follows are stances: per (author, kind, target) the latest entry by sequence
wins; a withdrawn like or an unfollow keeps its row with ``active = 0``, so an older entry
indexed later (its content filled in afterwards) cannot bring the notice back. When our
message is deleted its notifications go (``forget``), as do those of a deleted entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.msgtypes.base import message_field
from p2psocial.msgtypes.notify import (
    CONTENT_TYPES,
    FOLLOW,
    REACTION,
    classify,
    may_notify,
    references,
)
from p2psocial.store.views.base import View, execute_all, in_chunks

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Sequence

    from p2psocial.feed.chain import Accepted
    from p2psocial.msgtypes.base import Value
    from p2psocial.msgtypes.notify import Notice

_STANCES = (REACTION, FOLLOW)


class NotificationsView(View):
    name = "notifications"
    version = 1
    tables = ("notifications", "notify_threads")
    content_types = CONTENT_TYPES

    def __init__(self, owner: bytes) -> None:
        self.owner = owner

    def create(self, conn: sqlite3.Connection) -> None:
        execute_all(
            conn,
            """
            CREATE TABLE notifications (
                id          BLOB PRIMARY KEY,          -- the entry that tells us
                kind        TEXT NOT NULL,             -- mention, reply, reaction, repost, follow
                author      BLOB NOT NULL,             -- its author
                seq         INTEGER NOT NULL,          -- its sequence (latest stance wins)
                target      BLOB,                      -- our message it is about, if any
                in_thread   INTEGER NOT NULL,          -- 1: a reply in a thread we replied in
                expression  TEXT,                      -- a reaction's emoji
                active      INTEGER NOT NULL,          -- 0: a withdrawn like, an unfollow
                sort_ts     INTEGER NOT NULL,          -- min(claimed time, receive time)
                rx_ts       INTEGER NOT NULL           -- when the entry was stored (ms)
            ) WITHOUT ROWID;
            CREATE INDEX notifications_sort ON notifications (sort_ts);
            CREATE INDEX notifications_rx ON notifications (rx_ts);
            CREATE INDEX notifications_target ON notifications (target);
            CREATE INDEX notifications_stance ON notifications (author, kind, target);
            CREATE TABLE notify_threads (
                root        BLOB NOT NULL,             -- a thread we replied in
                id          BLOB NOT NULL,             -- our reply
                rx          INTEGER NOT NULL,          -- its receive order
                PRIMARY KEY (root, id)
            ) WITHOUT ROWID;
            CREATE INDEX notify_threads_id ON notify_threads (id);
            """,
        )

    def index(self, conn: sqlite3.Connection, batch: Sequence[Accepted]) -> None:
        owner = self.owner
        ours: list[tuple[bytes, bytes]] = []  # (root, our reply)
        pending: list[tuple[Accepted, Value]] = []  # others' entries that may notify
        for item in batch:
            value = item.value
            if type(value) is not dict:
                continue
            if item.entry.author == owner:
                root = message_field(value, "root") if item.content_type == "post" else None
                if root is not None:
                    ours.append((root, item.entry.id))
            elif may_notify(value):
                pending.append((item, value))
        if not ours and not pending:
            return
        stored = _stored(conn, [i for _r, i in ours] + [item.entry.id for item, _v in pending])
        if ours:
            conn.executemany(
                "INSERT OR IGNORE INTO notify_threads (root, id, rx) VALUES (?, ?, ?)",
                [(root, msg, stored[msg][0]) for root, msg in ours if msg in stored],
            )
        if pending:
            self._notify(conn, pending, stored)

    def _notify(
        self,
        conn: sqlite3.Connection,
        pending: Sequence[tuple[Accepted, Value]],
        stored: dict[bytes, tuple[int, int, int]],
    ) -> None:
        owner = self.owner
        asked = sorted({ref for _i, value in pending for ref in references(value)})
        mine = _ours(conn, owner, asked)
        threads = _threads(conn, asked)
        for item, value in pending:
            if item.entry.id not in stored:
                continue
            rx, rx_ts, sort_ts = stored[item.entry.id]

            def is_mine(msg: bytes, rx: int = rx) -> bool:
                return mine.get(msg, rx) < rx

            def my_reply_in(root: bytes, rx: int = rx) -> bytes | None:
                return next((m for r, m in threads.get(root, ()) if r < rx), None)

            notice = classify(value, item.entry.author, owner, is_mine, my_reply_in)
            if notice is None:
                continue
            if notice.kind in _STANCES and not self._newest_stance(conn, item, notice):
                continue
            conn.execute(
                "INSERT OR IGNORE INTO notifications (id, kind, author, seq, target, in_thread, "
                "expression, active, sort_ts, rx_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item.entry.id,
                    notice.kind,
                    item.entry.author,
                    item.entry.seq,
                    notice.target,
                    int(notice.in_thread),
                    notice.expression,
                    int(notice.active),
                    sort_ts,
                    rx_ts,
                ),
            )

    @staticmethod
    def _newest_stance(conn: sqlite3.Connection, item: Accepted, notice: Notice) -> bool:
        """Whether ``item`` is its author's newest stance of its kind towards the target;
        if so, the older one's row goes."""
        row = conn.execute(
            "SELECT id, seq FROM notifications WHERE author = ? AND kind = ? AND target IS ?",
            (item.entry.author, notice.kind, notice.target),
        ).fetchone()
        if row is None:
            return True
        if row[1] >= item.entry.seq:
            return False
        conn.execute("DELETE FROM notifications WHERE id = ?", (row[0],))
        return True

    def forget(self, conn: sqlite3.Connection, entries: Sequence[tuple[bytes, bytes, int]]) -> None:
        ids = [(i,) for i, _a, _s in entries]
        conn.executemany("DELETE FROM notifications WHERE id = ?", ids)
        conn.executemany("DELETE FROM notifications WHERE target = ?", ids)
        conn.executemany("DELETE FROM notify_threads WHERE id = ?", ids)

    def purge(self, conn: sqlite3.Connection, author: bytes) -> None:
        conn.execute("DELETE FROM notifications WHERE author = ?", (author,))


def _stored(conn: sqlite3.Connection, ids: Sequence[bytes]) -> dict[bytes, tuple[int, int, int]]:
    """(receive order, receive time, sort time) of each stored entry of ``ids``."""
    found: dict[bytes, tuple[int, int, int]] = {}
    for chunk, marks in in_chunks(ids):
        for msg, rx, rx_ts, sort_ts in conn.execute(
            f"SELECT id, rx, rx_ts, sort_ts FROM entries WHERE id IN ({marks})", tuple(chunk)
        ):
            found[msg] = (rx, rx_ts, sort_ts)
    return found


def _ours(conn: sqlite3.Connection, owner: bytes, ids: Sequence[bytes]) -> dict[bytes, int]:
    """The receive order of each of ``ids`` that is our message, held with its content."""
    found: dict[bytes, int] = {}
    for chunk, marks in in_chunks(ids):
        found.update(
            conn.execute(
                f"SELECT id, rx FROM entries WHERE id IN ({marks}) AND author = ? "
                "AND content IS NOT NULL",
                (*chunk, owner),
            ).fetchall()
        )
    return found


def _threads(
    conn: sqlite3.Connection, roots: Iterable[bytes]
) -> dict[bytes, list[tuple[int, bytes]]]:
    """Our replies in each of the threads ``roots``: (receive order, id), oldest first."""
    found: dict[bytes, list[tuple[int, bytes]]] = {}
    for chunk, marks in in_chunks(list(roots)):
        for root, rx, msg in conn.execute(
            f"SELECT root, rx, id FROM notify_threads WHERE root IN ({marks}) ORDER BY rx",
            tuple(chunk),
        ):
            found.setdefault(root, []).append((rx, msg))
    return found
