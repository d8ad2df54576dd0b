"""Reading what people post: the timeline (the ``entries_posts`` index of the ``posts``
view), and what changed a post since (edits, likes, replies, reposts, a carried
original)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from p2psocial.errors import NotFound
from p2psocial.feed.formats import decode_entry
from p2psocial.model import Message
from p2psocial.msgtypes.repost import parse_repost
from p2psocial.store.reads import _MSG_COLUMNS, Reads
from p2psocial.store.views.base import in_chunks
from p2psocial.store.views.deletions import deletions_for
from p2psocial.store.views.votes import like_counts

if TYPE_CHECKING:
    from collections.abc import Sequence

_NEVER = 2**63 - 1


@dataclass(slots=True)
class Edit:
    """One edit of a post: the text it gave the post, when, and its entry."""

    id: bytes
    seq: int
    timestamp: int
    text: str


@dataclass(slots=True)
class Extras:
    """What a post card shows beyond the message itself."""

    replies: int = 0
    likes: int = 0
    reposts: int = 0
    edits: list[Edit] = field(default_factory=list)
    """Its author's edits, oldest first: the last one's text is the post's text now."""
    original: Message | None = None
    """For a repost: the message shared (held, or carried and verified), if known."""
    original_extras: Extras | None = None


class Posts(Reads):
    """The timeline and what a post card shows."""

    def timeline_page(
        self, me: bytes, *, limit: int = 50, before: int | None = None
    ) -> list[tuple[int, Message]]:
        """Posts and reposts by ``me`` and the feeds ``me`` follows (not muted), newest
        first: (sort time, message) pairs; ``before``: only those sorted before it (ms)."""
        with self._errors():
            rows = self._conn.execute(
                "SELECT sort_ts, id, author, seq, raw, content, ts, rx_ts "
                "FROM entries INDEXED BY entries_posts "
                "WHERE ctype IN ('post', 'repost') AND sort_ts < ? AND (author = ? OR author IN "
                "(SELECT contact FROM contacts WHERE author = ? AND following = 1 "
                "AND blocking = 0)) AND author NOT IN (SELECT feed FROM mutes) "
                "ORDER BY sort_ts DESC, author DESC, rx DESC LIMIT ?",
                (before if before is not None else _NEVER, me, me, limit),
            ).fetchall()
        messages = self._deleted_marked([self._row_message(r[1:]) for r in rows])
        return [(r[0], m) for r, m in zip(rows, messages, strict=True)]

    def extras(self, messages: Sequence[Message]) -> dict[bytes, Extras]:
        """What each public message's card shows: counts, its author's edits, and for a
        repost the message it shares (with that one's own extras)."""
        with self._errors():
            found = self._extras(messages)
            originals: dict[bytes, bytes] = {}
            for m in messages:
                if isinstance(m.value, dict) and m.value.get("type") == "repost":
                    parsed = parse_repost(m.value)
                    if parsed is not None:
                        originals[m.id] = parsed[0]
            if originals:
                held = self._originals(list(set(originals.values())))
                inner = self._extras(list(held.values()))
                for repost, target in originals.items():
                    original = held.get(target)
                    if original is not None:
                        found[repost].original = original
                        found[repost].original_extras = inner[original.id]
            return found

    def _extras(self, messages: Sequence[Message]) -> dict[bytes, Extras]:
        found = {m.id: Extras() for m in messages}
        ids = list(found)
        authors = {m.id: m.author for m in messages}
        conn = self._conn
        for chunk, marks in in_chunks(ids):
            for dst, rel, count in conn.execute(
                f"SELECT dst, rel, count(*) FROM links WHERE dst IN ({marks}) "
                "AND rel IN ('root', 'repost') GROUP BY dst, rel",
                tuple(chunk),
            ):
                if rel == "root":
                    found[dst].replies = count
                else:
                    found[dst].reposts = count
            for target, author, edit_id, seq, ts, text in conn.execute(
                f"SELECT target, author, id, seq, ts, text FROM edits WHERE target IN ({marks}) "
                "ORDER BY target, seq",
                tuple(chunk),
            ):
                if authors[target] == author:  # only the post's own author edits it
                    found[target].edits.append(Edit(edit_id, seq, ts, text))
        for msg, count in like_counts(conn, ids).items():
            found[msg].likes = count
        return found

    def _originals(self, targets: Sequence[bytes]) -> dict[bytes, Message]:
        """The reposted messages: held ones from the entries, else a carried copy."""
        held: dict[bytes, Message] = {}
        for chunk, marks in in_chunks(targets):
            rows = self._conn.execute(
                f"SELECT {_MSG_COLUMNS} FROM entries WHERE id IN ({marks})", tuple(chunk)
            ).fetchall()
            for message in self._deleted_marked([self._row_message(r) for r in rows]):
                held[message.id] = message
        missing = [t for t in targets if t not in held]
        for chunk, marks in in_chunks(missing):
            rows = self._conn.execute(
                f"SELECT id, raw, content FROM reposted WHERE id IN ({marks}) GROUP BY id",
                tuple(chunk),
            ).fetchall()
            gone = {t for t, _a in deletions_for(self._conn, [r[0] for r in rows])}
            for msg, raw, content in rows:
                if msg in gone:
                    continue  # its author's delete reached us: the copy is not shown
                held[msg] = Message.from_entry(decode_entry(raw), content, 0)
        return held

    def edit_history(self, msg: bytes) -> list[Edit]:
        """The edits of post ``msg`` by its own author, oldest first. Raises NotFound."""
        with self._errors():
            row = self._conn.execute("SELECT author FROM entries WHERE id = ?", (msg,)).fetchone()
            if row is None:
                raise NotFound("no such message is stored here")
            return [
                Edit(*r)
                for r in self._conn.execute(
                    "SELECT id, seq, ts, text FROM edits WHERE target = ? AND author = ? "
                    "ORDER BY seq",
                    (msg, row[0]),
                )
            ]
