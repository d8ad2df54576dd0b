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

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from p2psocial.identity import feed_id

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

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
