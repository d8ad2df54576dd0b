"""Notifications, read (the ``notifications`` view), and the read mark, written.

The read mark is a receive time (ms), kept in the core ``meta`` table under
``notifications_read`` (the view's tables are rebuilt whenever its version changes; the
mark must outlive that): a notification is read once the entry that made it was received
at or before the mark. A receive time rather than a sort time, so that an entry arriving
late with an old claimed time is still unread; a time rather than a row number, so that a
rebuild keeps what was read. Notifications by muted feeds are left out at read time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2psocial.errors import StorageError
from p2psocial.store.reads import Reads

if TYPE_CHECKING:
    from p2psocial.model import Message

READ_MARK = "notifications_read"
"""The ``meta`` key of the read mark."""

_SHOWN = "n.active = 1 AND n.author NOT IN (SELECT feed FROM mutes)"
"""The rows that are notifications now: not withdrawn, not by a muted feed."""


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification: what ``message`` (by someone else) tells us."""

    kind: str
    """``mention``, ``reply``, ``reaction``, ``repost`` or ``follow``."""
    message: Message
    target: bytes | None
    """Our message it is about (None for a mention or a follow)."""
    expression: str | None
    """A reaction's emoji, if it gave one."""
    in_thread: bool
    """A reply in a thread we replied in, not to our message (target: our reply)."""
    read: bool


class Notifications(Reads):
    """The owner's notifications, newest first, and what of them is read."""

    def _check_kept(self) -> None:
        if not self._view_kept("notifications"):
            raise StorageError("notifications are kept only when the store is opened by its owner")

    def notifications_read_mark(self) -> int:
        """The read mark: notifications received at or before it (ms) are read."""
        with self._errors():
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = ?", (READ_MARK,)
            ).fetchone()
        return row[0] if row is not None and type(row[0]) is int else 0

    def notifications(
        self, *, limit: int = 50, before: int | None = None, unread_only: bool = False
    ) -> list[Notification]:
        """Newest first by sort time (min(claimed, receive time)), before ``before`` (ms,
        exclusive); ``unread_only``: only those received after the read mark."""
        mark = self.notifications_read_mark()
        with self._errors():
            self._check_kept()
            rows = self._conn.execute(
                "SELECT n.kind, n.target, n.expression, n.in_thread, n.rx_ts, "
                "e.id, e.author, e.seq, e.raw, e.content, e.ts, e.rx_ts "
                "FROM notifications n JOIN entries e ON e.id = n.id "
                f"WHERE {_SHOWN} AND n.sort_ts < ? AND n.rx_ts > ? "
                "ORDER BY n.sort_ts DESC, n.id DESC LIMIT ?",
                (
                    before if before is not None else 2**63 - 1,
                    mark if unread_only else -1,
                    limit,
                ),
            ).fetchall()
        return [
            Notification(
                row[0],
                self._row_message(row[5:]),
                row[1],
                row[2],
                bool(row[3]),
                row[4] <= mark,
            )
            for row in rows
        ]

    def unread_notifications(self) -> int:
        """How many notifications were received after the read mark."""
        mark = self.notifications_read_mark()
        with self._errors():
            self._check_kept()
            return int(
                self._conn.execute(
                    f"SELECT count(*) FROM notifications n WHERE {_SHOWN} AND n.rx_ts > ?",
                    (mark,),
                ).fetchone()[0]
            )

    def mark_notifications_read(self, up_to: int) -> int:
        """Mark read every notification received at or before ``up_to`` (ms); the mark
        never moves back. Returns how many were unread and are read now."""
        with self._errors(), self._transaction() as conn:
            self._check_kept()
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (READ_MARK,)).fetchone()
            mark = row[0] if row is not None and type(row[0]) is int else 0
            if up_to <= mark:
                return 0
            marked = conn.execute(
                f"SELECT count(*) FROM notifications n WHERE {_SHOWN} "
                "AND n.rx_ts > ? AND n.rx_ts <= ?",
                (mark, up_to),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (READ_MARK, up_to),
            )
        return int(marked)

    def notification_context(self, owner: bytes) -> tuple[set[bytes], dict[bytes, bytes]]:
        """What the live filter needs to classify new entries as the view does: the ids of
        our messages held with content, and per thread we replied in our first reply."""
        with self._errors():
            self._check_kept()
            mine = {
                r[0]
                for r in self._conn.execute(
                    "SELECT id FROM entries WHERE author = ? AND content IS NOT NULL", (owner,)
                )
            }
            threads: dict[bytes, bytes] = {}
            for root, msg in self._conn.execute("SELECT root, id FROM notify_threads ORDER BY rx"):
                threads.setdefault(root, msg)
        return mine, threads

    def notifications_muted(self) -> frozenset[bytes]:
        """The feeds we muted, whose notifications are left out."""
        with self._errors():
            return frozenset(r[0] for r in self._conn.execute("SELECT feed FROM mutes"))
