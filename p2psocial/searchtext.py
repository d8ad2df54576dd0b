"""Search text, sans-IO: what the full-text index holds of a post's text, and how a query
typed by a person becomes an FTS5 expression that SQLite can always run.

Theory of operation
-------------------
The index (``store/views/search.py``) is an SQLite FTS5 table whose tokenizer is
:data:`TOKENIZER`: ``unicode61`` folds case and the accents of Latin letters, and, with
the categories given, keeps letters, digits, marks (so Indic words stay whole) and
private-use characters in words. Everything else separates words. Before the tokenizer
sees a text, :func:`index_text` prepares it, the same way for what is indexed and for
every word of a query:

- NFKC compatibility folding (fullwidth letters are plain ones, ``ﬁ`` is ``fi``), then
  the combining accents of U+0300..U+036F are dropped (so Greek and Cyrillic letters lose
  theirs, as unicode61 already does for Latin ones) and a few letters without a
  decomposition are spelt out (``ł`` ``l``, ``ø`` ``o``, ``ß`` ``ss``, ``æ`` ``ae``, ...);
- each CJK character (Han ideographs, kana, Hangul, bopomofo) becomes a word of its own:
  Chinese and Japanese write no spaces, so a word inside a sentence is found as the
  *phrase* of its characters;
- each emoji (and other pictographic symbol: Unicode category So) becomes a word:
  unicode61 would drop it as a separator. The word is :data:`EMOJI_MARK` (a private-use
  character, so no typed word collides with it) and the code point in 6 hex digits;
  variation selectors, skin-tone modifiers and the keycap mark are dropped, so ``👍🏽`` is
  found by ``👍``.

A query (:func:`parse_query`) is plain words, all of which must be found. ``"two words"``
is a phrase (its words adjacent, in order; a quote left open runs to the end); ``word*``
is a prefix (at least :data:`MIN_PREFIX` characters); ``OR`` between two parts finds
either; ``-word`` (or ``NOT word``) leaves out posts that have it. Nothing else is an
operator: every other character is text, so FTS5's own syntax (column filters ``text:``,
``^``, ``NEAR(``, parentheses, stray quotes and stars) can never reach SQLite as syntax.
Each word is sent as a quoted FTS5 string of its prepared text, which the tokenizer
splits the same way it split the post (``e-mail`` is the phrase ``e mail``). A query
with nothing left to find, or too long, raises InvalidParams naming ``query``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from p2psocial.errors import InvalidParams

TOKENIZER = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
"""The FTS5 tokenizer of the search index (the index is rebuilt when it changes)."""
EMOJI_MARK = "\ue000"
"""First character of the word an emoji becomes (a private-use character)."""
MAX_QUERY = 1000
"""Most characters of a query."""
MAX_TERMS = 32
"""Most words and phrases in a query."""
MIN_PREFIX = 3
"""Fewest characters before a ``*``: a shorter prefix matches most of the index."""

_CJK = re.compile(
    "["
    "\u1100-\u11ff"  # Hangul jamo
    "\u3005\u3007\u3021-\u3029\u3038-\u303c"  # ideographic iteration and numbers
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3100-\u312f\u3131-\u318e\u31a0-\u31bf\u31f0-\u31ff"  # bopomofo, jamo, kana ext.
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\ua960-\ua97f\uac00-\ud7ff"  # Hangul syllables and jamo
    "\U00020000-\U0003134f"  # Han extensions B..G
    "]"
)
_SPELT = {
    "ł": "l",
    "Ł": "L",
    "ø": "o",
    "Ø": "O",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "ħ": "h",
    "Ħ": "H",
    "\u0131": "i",  # dotless i
    "ß": "ss",
    "ẞ": "SS",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "þ": "th",
    "Þ": "TH",
}
"""Letters without a decomposition, spelt as people type them without the accent."""
_SPECIAL = re.compile(
    "[\u0300-\u036f\u20e3\ufe00-\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f"
    "\U000e0100-\U000e01ef"  # dropped: accents, keycap, variation selectors, skin tones
    + "".join(_SPELT)
    + "\u00a9\u00ae\u2100-\u2bff\u3030\u303d\u3297\u3299\U0001f000-\U0001faff"  # symbols
    "]"
)
"""What :func:`index_text` drops, spells out, or makes a word of (emoji: each checked to
be of category So)."""
_WORK = re.compile(
    "[\u00aa\u00b2\u00b3\u00b5\u00b9\u00ba\u00bc-\u00be\u0132\u0133\u013f\u0140\u0149"
    "\u017f\u01c4-\u01cc\u01f1-\u01f3\u0300-\U0010ffff" + "".join(_SPELT) + "]"
)
"""A character the tokenizer alone would not fold as :func:`index_text` does. Latin
letters with accents are not: unicode61 folds those itself (``remove_diacritics 2``)."""
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_WORD_SPLIT = re.compile(r'(\s+|")')


def _special(match: re.Match[str]) -> str:
    char = match.group()
    spelt = _SPELT.get(char)
    if spelt is not None:
        return spelt
    category = unicodedata.category(char)
    if category == "So":
        return f" {EMOJI_MARK}{ord(char):06x} "
    if category[0] == "M" or category in ("Sk", "Cf"):
        return ""  # an accent, variation selector, keycap, skin tone or tag character
    return char  # another character of those blocks (an arrow, a maths sign): as it is


def index_text(text: str) -> str:
    """``text`` prepared for the FTS5 tokenizer (see the module docstring); the same for
    what is indexed and for each word of a query."""
    if text.isascii() or not _WORK.search(text):
        return text  # the tokenizer alone folds it
    text = _SPECIAL.sub(_special, unicodedata.normalize("NFKD", text))
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if _CJK.search(text):
        text = _CJK.sub(r" \g<0> ", text)
    return text


def words(prepared: str) -> list[str]:
    """The words the tokenizer finds in prepared text (before it folds their case): the
    runs of letters, digits, marks and private-use characters."""
    found: list[str] = []
    current: list[str] = []
    for char in prepared:
        category = unicodedata.category(char)
        if category[0] in "LNM" or category == "Co":
            current.append(char)
        elif current:
            found.append("".join(current))
            current = []
    if current:
        found.append("".join(current))
    return found


@dataclass(frozen=True, slots=True)
class Term:
    """One word or phrase of a query, prepared (:func:`index_text`)."""

    text: str
    prefix: bool = False
    """The last word is a prefix (``word*``)."""

    def expression(self) -> str:
        """The term as an FTS5 string (a phrase when it holds several words)."""
        quoted = '"' + self.text.replace('"', '""') + '"'
        return quoted + " *" if self.prefix else quoted

    @property
    def prefix_word(self) -> str | None:
        """For a prefix of one plain ASCII word, that word as the index holds it (so the
        whole words it begins can be looked up in the index's vocabulary); else None."""
        if not self.prefix:
            return None
        found = words(self.text)
        if len(found) != 1 or not found[0].isascii():
            return None
        return found[0].lower()


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: any of ``groups`` (each: all its terms), without ``excluded``."""

    groups: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...] = ()

    def expression(self, expand: dict[Term, list[str]] | None = None) -> str:
        """The FTS5 expression. ``expand``: for prefix terms, the whole words of the index
        they stand for (a plain OR of words ranks better and runs faster than a prefix)."""

        def one(term: Term) -> str:
            words = (expand or {}).get(term)
            if not words:
                return term.expression()
            return "(" + " OR ".join(Term(w).expression() for w in words) + ")"

        anyof = " OR ".join(
            "(" + " AND ".join(one(t) for t in group) + ")" for group in self.groups
        )
        if not self.excluded:
            return anyof
        return f"({anyof}) NOT ({' OR '.join(one(t) for t in self.excluded)})"

    @property
    def terms(self) -> list[Term]:
        return [t for group in self.groups for t in group] + list(self.excluded)


def _pieces(query: str) -> list[tuple[str, bool]]:
    """The query split into (text, quoted) pieces: quoted phrases and bare words. A quote
    left open runs to the end; a ``*`` right after a closing quote stays with the phrase."""
    pieces: list[tuple[str, bool]] = []
    quoted = False
    phrase: list[str] = []
    for part in _WORD_SPLIT.split(query):
        if part == '"':
            if quoted:
                pieces.append(("".join(phrase), True))
                phrase = []
            quoted = not quoted
        elif quoted:
            phrase.append(part)
        elif part and not part.isspace():
            if part.startswith("*") and pieces and pieces[-1][1] and not part.strip("*"):
                text, _ = pieces[-1]
                pieces[-1] = (text + "*", True)
            else:
                pieces.append((part, False))
    if quoted and phrase:
        pieces.append(("".join(phrase), True))
    return pieces


def _term(text: str) -> Term | None:
    """The term of one piece; None when nothing searchable is left of it."""
    prefix = text.endswith("*")
    text = text.strip("*")
    prepared = index_text(text).strip()
    found = words(prepared)
    if not found:
        return None
    last = found[-1]
    if prefix and (_CJK.fullmatch(last) or last.startswith(EMOJI_MARK)):
        prefix = False  # one such character is a whole word of the index
    if prefix and len(last) < MIN_PREFIX:
        raise InvalidParams(
            f"parameter 'query': a prefix needs at least {MIN_PREFIX} characters before "
            f"'*', not {last!r}",
            "query",
        )
    return Term(prepared, prefix)


def parse_query(query: str) -> Query:
    """The :class:`Query` a person typed (see the module docstring). Raises InvalidParams
    naming ``query`` when it is too long or nothing in it can be searched for."""
    if len(query) > MAX_QUERY:
        raise InvalidParams(
            f"parameter 'query' is {len(query)} characters long; the limit is {MAX_QUERY}",
            "query",
        )
    query = _CONTROL.sub(" ", query)  # FTS5 reads a query only up to a NUL
    if not query.strip():
        raise InvalidParams("parameter 'query' must not be empty", "query")
    groups: list[list[Term]] = [[]]
    excluded: list[Term] = []
    negate_next = False
    for text, quoted in _pieces(query):
        if not quoted and text == "OR":
            if groups[-1]:
                groups.append([])
            continue
        if not quoted and text == "AND":
            continue
        if not quoted and text == "NOT":
            negate_next = True
            continue
        negate = negate_next
        negate_next = False
        if not quoted and text.startswith("-") and len(text) > 1:
            negate, text = True, text[1:]
        term = _term(text)
        if term is None:
            continue
        (excluded if negate else groups[-1]).append(term)
    kept = tuple(tuple(group) for group in groups if group)
    count = sum(len(g) for g in kept) + len(excluded)
    if count > MAX_TERMS:
        raise InvalidParams(
            f"parameter 'query' has {count} words and phrases; the limit is {MAX_TERMS}",
            "query",
        )
    if not kept:
        what = "only words to leave out" if excluded else "no words to search for"
        raise InvalidParams(f"parameter 'query' has {what}: {query.strip()[:80]!r}", "query")
    return Query(kept, tuple(excluded))
