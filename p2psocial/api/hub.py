"""Subscriptions, the per-connection outbox, and the hub the daemon publishes to. Sans-IO.

Theory of operation
-------------------
A handler opens a :class:`Subscription` through its call context; the subscription belongs
to one connection's :class:`Outbox` and is registered in the :class:`Hub` under a *kind*
(a name the daemon chooses, e.g. ``"messages"``). It carries the call's ``params`` and an
optional ``filter`` object the handler built from them.

The daemon calls :meth:`Hub.publish` with a kind, an item (a JSON object) and an optional
predicate ``match(subscription) -> bool``. ``publish`` never blocks and never waits for a
client: it encodes the item once, and for each matching subscription appends one
notification line to that subscription's bounded :class:`DropQueue`.

*Overflow.* When a subscription's queue is full (its client reads too slowly) new items are
dropped and counted. As soon as room returns, the next thing the client receives for that
subscription is a single ``overflow`` notification with the number dropped, followed by the
newer items. So a client learns exactly where its stream has a gap, and memory stays bounded
by ``max_queue`` lines per subscription. The subscription stays open.

*Outbox.* A connection's writer calls :meth:`Outbox.take` to get the next bytes to send:
answers first (their number is bounded by the server's in-flight limit), then notifications,
taken round-robin across the connection's subscriptions, so a busy subscription cannot
starve the others. A subscription is *pending* until the answer that announces its id has
been queued (:meth:`Subscription.activate`): items published meanwhile are kept, and no
notification can reach the client before the id it refers to.

Everything here runs in the daemon's trio thread; nothing here is thread-safe.
"""

from __future__ import annotations

from collections import deque
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from p2psocial.errors import LocalProtocolError
from p2psocial.proto.dropqueue import DropQueue
from p2psocial.proto.jsonrpc import (
    dumps,
    encode_message_notification,
    encode_overflow_notification,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["DEFAULT_QUEUE", "Hub", "Outbox", "Subscription"]

DEFAULT_QUEUE = 1000
"""Items a subscription holds for a slow client before it starts dropping."""


class Subscription:
    """One client's subscription. Created by the server for a handler; read by the daemon.

    ``id`` is unique for the hub's life; ``kind``, ``params`` (read-only) and ``filter``
    are what the handler gave; the daemon's ``match`` predicates read them.
    """

    def __init__(
        self,
        hub: Hub,
        outbox: Outbox,
        sub_id: str,
        kind: str,
        params: Mapping[str, Any],
        filter: Any,
        max_queue: int,
    ) -> None:
        self.id = sub_id
        self.kind = kind
        self.params: Mapping[str, Any] = MappingProxyType(dict(params))
        self.filter = filter
        self._hub = hub
        self._outbox = outbox
        self._queue: DropQueue[bytes] = DropQueue(
            max_queue, lambda count: encode_overflow_notification(sub_id, count)
        )
        self.active = False
        self.closed = False

    def __repr__(self) -> str:
        state = "closed" if self.closed else "active" if self.active else "pending"
        return f"<Subscription {self.id} kind={self.kind!r} {state} queued={self.queued}>"

    @property
    def connection_id(self) -> int:
        return self._outbox.connection_id

    @property
    def queued(self) -> int:
        """Notification lines waiting for the client."""
        return len(self._queue)

    @property
    def dropped_total(self) -> int:
        """Items dropped because the client read too slowly, over the subscription's life."""
        return self._queue.dropped_total

    def push_encoded(self, message: bytes) -> bool:
        """Queue one item already encoded with :func:`dumps`. Returns whether it was kept."""
        if self.closed:
            return False
        kept = self._queue.push(encode_message_notification(self.id, message))
        if self.active:
            self._outbox.mark_ready(self)
        return kept

    def activate(self) -> None:
        """Start delivering (the answer announcing this id is queued ahead of any item)."""
        if self.closed or self.active:
            return
        self.active = True
        self._outbox.mark_ready(self)

    def close(self) -> None:
        """Stop: forget the queued items and leave the hub and the outbox. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._hub._forget(self)
        self._outbox._forget(self)

    def _pop(self) -> bytes | None:
        return self._queue.pop()

    def _has_output(self) -> bool:
        return bool(self._queue)


class Outbox:
    """What waits to be written to one connection: answers, then subscription notifications.

    ``wake`` is called (synchronously) whenever something new becomes ready to send. The
    number of answers is bounded by the caller (the server's in-flight limit); notifications
    are bounded per subscription.
    """

    def __init__(self, connection_id: int, wake: Callable[[], None]) -> None:
        self.connection_id = connection_id
        self._wake = wake
        self._responses: deque[tuple[bytes, Callable[[], None] | None]] = deque()
        self._ready: deque[Subscription] = deque()
        self._ready_set: set[str] = set()
        self.subscriptions: dict[str, Subscription] = {}

    @property
    def pending_responses(self) -> int:
        return len(self._responses)

    def has_output(self) -> bool:
        return bool(self._responses) or bool(self._ready)

    def put_response(self, data: bytes, on_taken: Callable[[], None] | None = None) -> None:
        """Queue an answer line; ``on_taken`` runs when :meth:`take` hands it to the writer."""
        self._responses.append((data, on_taken))
        self._wake()

    def mark_ready(self, sub: Subscription) -> None:
        if sub.id not in self._ready_set and sub._has_output():
            self._ready_set.add(sub.id)
            self._ready.append(sub)
            self._wake()

    def take(self, max_bytes: int) -> bytes:
        """Up to about ``max_bytes`` of lines to send (at least one line if any is ready).

        Answers come first, then one notification per ready subscription in turn.
        """
        out = bytearray()
        while self._responses and (not out or len(out) + len(self._responses[0][0]) <= max_bytes):
            data, on_taken = self._responses.popleft()
            out += data
            if on_taken is not None:
                on_taken()
        while self._ready and (not out or len(out) < max_bytes):
            sub = self._ready.popleft()
            line = sub._pop()
            if line is not None:
                out += line
            if sub._has_output() and not sub.closed:
                self._ready.append(sub)
            else:
                self._ready_set.discard(sub.id)
        return bytes(out)

    def close_subscriptions(self) -> None:
        """Close every subscription of this connection (on disconnect)."""
        for sub in list(self.subscriptions.values()):
            sub.close()

    def _forget(self, sub: Subscription) -> None:
        self.subscriptions.pop(sub.id, None)
        if sub.id in self._ready_set:
            self._ready_set.discard(sub.id)
            self._ready.remove(sub)


class Hub:
    """All open subscriptions of a server, by kind. The daemon publishes items here.

    Call it only from the trio thread that runs the server.
    """

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, Subscription]] = {}
        self._by_id: dict[str, Subscription] = {}
        self._counter = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def publish(
        self,
        kind: str,
        item: Mapping[str, Any],
        match: Callable[[Subscription], bool] | None = None,
    ) -> int:
        """Queue ``item`` for every open subscription of ``kind`` that ``match`` accepts.

        Never blocks. Returns how many subscriptions queued it (those that had to drop it
        are not counted). Raises :class:`LocalProtocolError` if ``item`` is not
        JSON-compatible; an exception from ``match`` propagates.
        """
        subs = self._by_kind.get(kind)
        if not subs:
            return 0
        encoded: bytes | None = None
        kept = 0
        for sub in list(subs.values()):
            if match is not None and not match(sub):
                continue
            if encoded is None:
                try:
                    encoded = dumps(item)
                except (TypeError, ValueError) as exc:
                    raise LocalProtocolError(
                        f"published item is not JSON-compatible: {exc}"
                    ) from exc
            kept += sub.push_encoded(encoded)
        return kept

    def subscriptions(self, kind: str | None = None) -> list[Subscription]:
        """The open subscriptions, all or of one kind."""
        if kind is None:
            return list(self._by_id.values())
        return list(self._by_kind.get(kind, {}).values())

    def get(self, sub_id: str) -> Subscription | None:
        return self._by_id.get(sub_id)

    def open(
        self,
        outbox: Outbox,
        kind: str,
        params: Mapping[str, Any] | None = None,
        filter: Any = None,
        *,
        max_queue: int = DEFAULT_QUEUE,
    ) -> Subscription:
        """Create a pending subscription owned by ``outbox`` (the server does this)."""
        self._counter += 1
        sub = Subscription(self, outbox, f"s{self._counter}", kind, params or {}, filter, max_queue)
        self._by_kind.setdefault(kind, {})[sub.id] = sub
        self._by_id[sub.id] = sub
        outbox.subscriptions[sub.id] = sub
        return sub

    def _forget(self, sub: Subscription) -> None:
        self._by_id.pop(sub.id, None)
        subs = self._by_kind.get(sub.kind)
        if subs is not None:
            subs.pop(sub.id, None)
            if not subs:
                del self._by_kind[sub.kind]
