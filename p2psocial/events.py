"""The one event for "entries were stored", and the bus that fans it out.

Ingest (entries from peers) and our own publishes both end in one :class:`Stored` event
carrying the entries decoded once (:class:`~p2psocial.feed.chain.Accepted`: content
decoded, private content opened if it is ours to read). Subscribers (the JSON-RPC hub,
replication's clocks and follow graph, pub address learning; later the web client and
blob wants) read the decoded form and never decode the bytes again.

Subscribers are plain functions called in the emitter's trio task: they must not block
(schedule async work instead). One that raises is a bug: it is logged with its traceback,
and the others still get the event, so one broken subscriber cannot stop ingest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from p2psocial.feed.chain import Accepted

log = logging.getLogger("p2psocial.events")


@dataclass(frozen=True, slots=True)
class Stored:
    """Entries just stored, in sequence order per feed, all in one transaction."""

    entries: Sequence[Accepted]
    local: bool
    """True for our own publish, False for entries received from a peer."""


class EventBus:
    """Delivers each :class:`Stored` event to every subscriber, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Stored], None]] = []

    def subscribe(self, subscriber: Callable[[Stored], None]) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)

        def remove() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return remove

    def emit(self, event: Stored) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("a subscriber to stored entries failed: %r", subscriber)
