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
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from p2psocial.feed.chain import Accepted

log = logging.getLogger("p2psocial.events")

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Stored:
    """Entries just stored, in sequence order per feed, all in one transaction."""

    entries: Sequence[Accepted]
    local: bool
    """True for our own publish, False for entries received from a peer."""


class Listeners(Generic[E]):
    """Delivers each event to every listener, in the order they subscribed. A listener that
    raises is a bug: it is logged with its traceback, and the others still get the event."""

    def __init__(self, what: str = "events") -> None:
        self.what = what
        self._subscribers: list[Callable[[E], None]] = []

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self, subscriber: Callable[[E], None]) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)

        def remove() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return remove

    def emit(self, event: E) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("a subscriber to %s failed: %r", self.what, subscriber)


class EventBus(Listeners[Stored]):
    """Delivers each :class:`Stored` event to every subscriber, in subscription order."""

    def __init__(self) -> None:
        super().__init__("stored entries")
