"""Channels, mutes and follow suggestions, read (and mutes written).

Mutes are our own local state (the ``mutes`` core table, never published): a muted feed is
still replicated and stored, unlike a blocked one, but left out of our views.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from p2psocial.msgtypes.post import channel_name
from p2psocial.store.reads import _MSG_COLUMNS_E, Reads
from p2psocial.store.views.channels import channel_counts

if TYPE_CHECKING:
    from p2psocial.model import Message


class Social(Reads):
    """Channels, mutes and suggestions."""

    # ------------------------------------------------------------------ channels

    def channel_posts(
        self, name: str, *, limit: int = 50, before: int | None = None
    ) -> list[Message]:
        """The public posts in channel ``name`` (``#`` and case do not matter), newest
        first by min(claimed time, receive time), before ``before``; muted authors' posts
        are left out. An invalid channel name has no posts."""
        canonical = channel_name(name)
        if canonical is None:
            return []
        with self._errors():
            rows = self._conn.execute(
                f"SELECT {_MSG_COLUMNS_E} FROM channels c JOIN entries e ON e.id = c.msg "
                "WHERE c.channel = ? AND c.sort_ts < ? "
                "AND c.author NOT IN (SELECT feed FROM mutes) "
                "ORDER BY c.sort_ts DESC, c.msg DESC LIMIT ?",
                (canonical, before if before is not None else 2**63 - 1, limit),
            ).fetchall()
        return [self._row_message(r) for r in rows]

    def channels(self, *, limit: int = 100) -> list[tuple[str, int, int]]:
        """(name, number of posts, latest post's sort time) of the channels in use, most
        posts first (ties by name); muted authors' posts are not counted."""
        with self._errors():
            return channel_counts(self._conn, limit)

    # ------------------------------------------------------------------ mutes

    def mute(self, feed: bytes, now_ms: int) -> bool:
        """Mute ``feed``: hidden from our views, still replicated. Returns whether it
        changed (False: already muted)."""
        with self._errors(), self._transaction() as conn:
            return (
                conn.execute(
                    "INSERT OR IGNORE INTO mutes (feed, set_ts) VALUES (?, ?)", (feed, now_ms)
                ).rowcount
                > 0
            )

    def unmute(self, feed: bytes) -> bool:
        """Unmute ``feed``. Returns whether it changed (False: it was not muted)."""
        with self._errors(), self._transaction() as conn:
            return conn.execute("DELETE FROM mutes WHERE feed = ?", (feed,)).rowcount > 0

    def mutes(self) -> list[bytes]:
        """The feeds we muted, by key."""
        with self._errors():
            return [r[0] for r in self._conn.execute("SELECT feed FROM mutes ORDER BY feed")]

    # ------------------------------------------------------------------ suggestions

    def suggestions(self, me: bytes, *, limit: int = 20) -> list[tuple[bytes, int]]:
        """Feeds the feeds ``me`` follows follow, that ``me`` does not follow, block or
        mute (and not ``me``): (feed, how many of my follows follow it), the most followed
        first, ties by key."""
        graph = self.follows()
        mine = graph.get(me, set())
        leave_out = mine | self.blocked_by(me) | set(self.mutes()) | {me}
        counts = Counter(
            feed for friend in mine for feed in graph.get(friend, ()) if feed not in leave_out
        )
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:limit]
