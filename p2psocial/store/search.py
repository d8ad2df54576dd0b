"""Full-text search of public posts: the ``search`` view (``views/search.py``), read.

A query (:func:`p2psocial.searchtext.parse_query`) becomes an FTS5 expression; the hits
are ranked by bm25 (FTS5's ``rank``: lower is a better match; the newest first among
equal ones). Ranking every hit of a common word would cost a bm25 score for each of them
(a word in one post in seven of a million-entry store: ~90 ms), so at most
:data:`WINDOW` hits are ranked: the newest by receive order (the index's rowid, walked
backwards at no cost). A rare word's hits are all ranked. A prefix of one plain word is
replaced by the words of the index it begins (up to :data:`MOST_EXPANDED`), which ranks
better and runs several times faster than FTS5's own prefix merge.

``before`` (a sort time in ms, exclusive) and mutes are applied to the hits before they
are counted into the window; deleted and blocked authors' posts are no longer in the
index at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2psocial.searchtext import Query, Term, parse_query
from p2psocial.store.reads import _MSG_COLUMNS, Reads
from p2psocial.store.views.search import edit_text, searchable_text

if TYPE_CHECKING:
    from p2psocial.model import Message

WINDOW = 2000
"""Most hits ranked by bm25 per search: the newest ones."""
MOST_EXPANDED = 32
"""Most words a prefix is replaced by; a prefix of more stays an FTS5 prefix."""
_NEVER = 2**63 - 1


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A post (or repost) matching a search."""

    message: Message
    rank: float
    """bm25: lower is a better match."""
    text: str
    """The text that was searched: the post's latest (edited) text, or a repost's comment."""
    edited: bool
    sort_ts: int


class Search(Reads):
    """Full-text search."""

    def search(self, query: str, *, limit: int = 20, before: int | None = None) -> list[SearchHit]:
        """The public posts matching ``query`` (see :mod:`p2psocial.searchtext`), best
        first; ``before``: only those sorted before it (ms). Raises InvalidParams naming
        ``query`` for a query with nothing to search for."""
        parsed = parse_query(query)
        limit = max(1, min(limit, WINDOW))
        with self._errors():
            expression = parsed.expression(self._expansions(parsed))
            wanted = limit
            while True:
                ranked = self._ranked(expression, wanted, before)
                hits = self._hits(ranked)
                if len(hits) >= limit or len(ranked) < wanted or wanted >= WINDOW:
                    return hits[:limit]
                wanted = min(WINDOW, wanted * 2)  # some hits had lost their content

    def _expansions(self, query: Query) -> dict[Term, list[str]]:
        expand: dict[Term, list[str]] = {}
        for term in query.terms:
            word = term.prefix_word
            if word is None:
                continue
            after = word[:-1] + chr(ord(word[-1]) + 1)
            found = [
                r[0]
                for r in self._conn.execute(
                    "SELECT term FROM search_vocab WHERE term >= ? AND term < ? LIMIT ?",
                    (word, after, MOST_EXPANDED + 1),
                )
            ]
            if len(found) <= MOST_EXPANDED:
                expand[term] = found or [word]
        return expand

    def _ranked(self, expression: str, limit: int, before: int | None) -> list[tuple[int, float]]:
        """(rx, bm25) of the best ``limit`` hits among the newest :data:`WINDOW`."""
        muted = self._conn.execute("SELECT 1 FROM mutes LIMIT 1").fetchone() is not None
        join, where = "", ""
        args: list[str | int] = [expression]
        if muted or before is not None:
            join = "JOIN entries e ON e.rx = search.rowid"
            if before is not None:
                where += " AND e.sort_ts < ?"
                args.append(before)
            if muted:
                where += " AND e.author NOT IN (SELECT feed FROM mutes)"
        rows = self._conn.execute(
            "SELECT rx, r FROM (SELECT search.rowid AS rx, bm25(search) AS r FROM search "
            f"{join} WHERE search MATCH ?{where} ORDER BY search.rowid DESC LIMIT ?) "
            "ORDER BY r, rx DESC LIMIT ?",
            (*args, WINDOW, limit),
        ).fetchall()
        return [(rx, rank) for rx, rank in rows]

    def _hits(self, ranked: list[tuple[int, float]]) -> list[SearchHit]:
        if not ranked:
            return []
        marks = ",".join("?" * len(ranked))
        rxs = [rx for rx, _ in ranked]
        rows = {
            r[0]: r
            for r in self._conn.execute(
                f"SELECT rx, sort_ts, ctype, {_MSG_COLUMNS} FROM entries "
                f"WHERE rx IN ({marks}) AND content IS NOT NULL",
                rxs,
            )
        }
        edits = dict(
            self._conn.execute(f"SELECT rx, seq FROM search_edits WHERE rx IN ({marks})", rxs)
        )
        hits = []
        for rx, rank in ranked:
            row = rows.get(rx)
            if row is None:
                continue  # its content was dropped (see views/search.py, forget)
            message = self._row_message(row[3:])
            text = searchable_text(row[2], message.value)
            if text is None:
                continue
            edited = None
            if rx in edits:
                edited = edit_text(self._conn, message.author, edits[rx])
            hits.append(SearchHit(message, rank, edited or text, edited is not None, row[1]))
        return hits
