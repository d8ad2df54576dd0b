"""Display names: which name a person is shown for a feed (no I/O: given the data).

The rules, in order (issue #12, "names people can read"):

1. your petname for the feed (your own local name for it, never published);
2. else the name the feed gives itself (its latest self-``about`` with a name);
3. else the name most of the people you follow call it (their ``about`` naming it; a tie
   goes to the name first in code-point order, so the answer never depends on order);
4. else a short key, ``@abcd1234…`` (the first 8 characters of the key).

When two feeds you know would be shown the same name (compared case-folded), each is shown
with its short key beside it, ``Alice (@abcd1234…)``, so a peer cannot pass as another by
taking its name.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from p2psocial.errors import InvalidId
from p2psocial.identity import feed_id, parse_feed_id

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

SHORT_KEY_CHARS = 8


@dataclass(frozen=True, slots=True)
class NameData:
    """What the names are computed from (the store's ``profiles`` view and petnames)."""

    petnames: Mapping[bytes, str] = field(default_factory=dict)
    """Our petname per feed."""
    self_names: Mapping[bytes, str] = field(default_factory=dict)
    """The name each feed gives itself."""
    others: Mapping[bytes, Mapping[bytes, str]] = field(default_factory=dict)
    """Per feed: namer -> the name that namer calls it."""
    followed: frozenset[bytes] = frozenset()
    """The feeds we follow: only their names for others count."""


def short_key(feed: bytes) -> str:
    """``@abcd1234…``: the start of a feed id, for when no name is known."""
    return feed_id(feed)[: 1 + SHORT_KEY_CHARS] + "…"


def followed_name(feed: bytes, data: NameData) -> str | None:
    """The name most of the feeds we follow call ``feed`` (None: none of them names it)."""
    votes = Counter(
        name for namer, name in data.others.get(feed, {}).items() if namer in data.followed
    )
    if not votes:
        return None
    top = max(votes.values())
    return min(name for name, count in votes.items() if count == top)


def chosen_name(feed: bytes, data: NameData) -> str | None:
    """The name rules 1 to 3 give ``feed``, without disambiguation; None if none does."""
    petname = data.petnames.get(feed)
    if petname is not None:
        return petname
    own = data.self_names.get(feed)
    if own is not None:
        return own
    return followed_name(feed, data)


def display_names(feeds: Iterable[bytes], data: NameData) -> dict[bytes, str]:
    """The name shown for each of ``feeds``: the rules above, with a short key beside a
    name that another known feed would be shown too."""
    wanted = list(dict.fromkeys(feeds))
    known = set(data.petnames) | set(data.self_names) | set(wanted)
    known.update(f for f, namers in data.others.items() if not data.followed.isdisjoint(namers))
    chosen = {f: chosen_name(f, data) for f in known}
    uses = Counter(name.casefold() for name in chosen.values() if name is not None)
    shown = {}
    for feed in wanted:
        name = chosen[feed]
        if name is None:
            shown[feed] = short_key(feed)
        elif uses[name.casefold()] > 1:
            shown[feed] = f"{name} ({short_key(feed)})"
        else:
            shown[feed] = name
    return shown


def display_name(feed: bytes, data: NameData) -> str:
    """The name shown for one feed (:func:`display_names`)."""
    return display_names([feed], data)[feed]


# ----------------------------------------------------------------------------- mentions

_FEED_ID = re.compile(r"(?<![\w@])@[A-Za-z0-9+/]{43}=\.ed25519")
"""A full feed id written in text."""
MAX_CANDIDATES = 10
"""Most candidates listed for one name that does not resolve."""


def fold(name: str) -> str:
    """How names are compared: NFKC, case-folded."""
    return unicodedata.normalize("NFKC", name).casefold()


@dataclass(frozen=True, slots=True)
class Unresolved:
    """An ``@NAME`` that names no one feed."""

    name: str
    """As written (NFKC-normalised), without the ``@``."""
    ambiguous: bool
    """True: several feeds are known by that name; False: none is."""
    candidates: tuple[bytes, ...]
    """The feeds it could mean (ambiguous), or those whose names are close to it (unknown:
    same start, or a near spelling), at most :data:`MAX_CANDIDATES`."""


@dataclass(frozen=True, slots=True)
class Mentions:
    """What the ``@``-mentions of a text resolve to (:func:`resolve_mentions`)."""

    feeds: list[bytes]
    """The feeds mentioned, in the order of the text, each once: full feed ids written in
    it and names that name one feed."""
    unresolved: list[Unresolved]


def _blank_ids(text: str) -> str:
    """``text`` with its full feed ids blanked out (same length, so same positions)."""
    return _FEED_ID.sub(lambda m: " " * len(m.group(0)), text)


def _word(char: str) -> bool:
    return char == "_" or unicodedata.category(char)[0] in "LMN"


def _name_tokens(text: str) -> list[tuple[int, str]]:
    """(position, name) of each ``@NAME`` in ``text``: ``@`` after a start, space or
    punctuation (not an e-mail address's ``a@b``), then letters (with their combining
    marks), digits and ``_``, with ``.`` or ``-`` inside (``@Anne-Marie``, ``@bob.smith``;
    a trailing ``.`` ends the sentence, not the name; ``@ann's`` is ``@ann``)."""
    found = []
    at = text.find("@")
    while at != -1:
        start = at + 1
        if start < len(text) and _word(text[start]) and (at == 0 or not _word(text[at - 1])):
            if at == 0 or text[at - 1] != "@":
                end = pos = start
                while pos < len(text) and (_word(text[pos]) or text[pos] in ".-"):
                    pos += 1
                    if _word(text[pos - 1]):
                        end = pos
                found.append((at, text[start:end]))
        at = text.find("@", at + 1)
    return found


def mention_tokens(text: str) -> list[str]:
    """The ``@NAME`` tokens of ``text`` (NFKC, without ``@``), in order, each once; full
    feed ids are not names."""
    text = unicodedata.normalize("NFKC", text)
    return list(dict.fromkeys(name for _at, name in _name_tokens(_blank_ids(text))))


def names_known(data: NameData) -> dict[str, set[bytes]]:
    """Folded name -> the feeds known by it: the name each known feed is shown by (rules
    1 to 3, :func:`chosen_name`) and our petnames. The known feeds are those with a
    petname, a name of their own, or a name given them by someone we follow."""
    known = set(data.petnames) | set(data.self_names)
    known.update(f for f, namers in data.others.items() if not data.followed.isdisjoint(namers))
    index: dict[str, set[bytes]] = {}
    for feed in known:
        for name in (chosen_name(feed, data), data.petnames.get(feed)):
            if name is not None:
                index.setdefault(fold(name), set()).add(feed)
    return index


def resolve_name(name: str, known: Mapping[str, set[bytes]]) -> Unresolved | bytes:
    """The one feed ``name`` (without ``@``) names among ``known`` (:func:`names_known`),
    or why it names none."""
    folded = fold(name)
    feeds = known.get(folded, set())
    if len(feeds) == 1:
        return next(iter(feeds))
    if feeds:
        return Unresolved(name, True, tuple(sorted(feeds))[:MAX_CANDIDATES])
    close = [k for k in known if k.startswith(folded) or (len(k) > 2 and folded.startswith(k))]
    close += difflib.get_close_matches(folded, list(known), n=MAX_CANDIDATES, cutoff=0.7)
    candidates: list[bytes] = []
    for key in sorted(dict.fromkeys(close)):
        candidates.extend(f for f in sorted(known[key]) if f not in candidates)
    return Unresolved(name, False, tuple(candidates[:MAX_CANDIDATES]))


def resolve_mentions(text: str, data: NameData) -> Mentions:
    """Resolve the ``@``-mentions of ``text`` among the names we know (``data``): full
    feed ids as written, and each ``@NAME`` by :func:`resolve_name` (case and width
    folded), in the order of the text."""
    text = unicodedata.normalize("NFKC", text)
    found: list[tuple[int, bytes | Unresolved]] = []
    for match in _FEED_ID.finditer(text):
        try:
            found.append((match.start(), parse_feed_id(match.group(0))))
        except InvalidId:
            continue
    tokens = {name: at for at, name in reversed(_name_tokens(_blank_ids(text)))}
    known = names_known(data) if tokens else {}
    found += [(start, resolve_name(token, known)) for token, start in tokens.items()]
    feeds: list[bytes] = []
    unresolved: list[Unresolved] = []
    for _start, item in sorted(found, key=lambda pair: pair[0]):
        if isinstance(item, Unresolved):
            unresolved.append(item)
        elif item not in feeds:
            feeds.append(item)
    return Mentions(feeds, unresolved)


def unresolved_message(unresolved: Sequence[Unresolved], shown: Mapping[bytes, str]) -> str:
    """What is wrong with each name of ``unresolved``, its candidates listed by display
    name (``shown``) and feed id, on one line."""
    parts = []
    for item in unresolved:
        listed = ", ".join(f"{shown.get(f, short_key(f))} {feed_id(f)}" for f in item.candidates)
        if item.ambiguous:
            parts.append(f"@{item.name} is ambiguous: it could be {listed}")
        elif listed:
            parts.append(f"@{item.name} names no one you know (close: {listed})")
        else:
            parts.append(f"@{item.name} names no one you know")
    return "; ".join(parts) + "; write the feed id instead (@...ed25519)"
