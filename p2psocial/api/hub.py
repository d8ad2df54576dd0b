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
newer items. So a client learns exactly where its stream has a gap. The subscription stays
open.

*Bounds (#11).* Notification bytes are bounded three ways: per subscription (``max_queue``
lines and ``max_queue_bytes``), per connection (the outbox's ``max_notification_bytes``,
all its subscriptions together) and across all connections (:class:`Usage`,
``max_notifications``). A notification that does not fit is dropped (and reported) as
above; one that would go past the total is kept only for a connection holding less than
``notification_floor`` bytes, so clients that read keep getting theirs while clients that
do not read hold the memory. A subscription holding nothing always has room for one.

*Outbox.* A connection's writer calls :meth:`Outbox.take` to get the next bytes to send:
answers first (the server bounds them, in number and bytes), then notifications, taken
round-robin across the connection's subscriptions, so a busy subscription cannot starve the
others. An answer longer than one take is handed out in pieces, and no notification is put
in the middle of it. A subscription is *pending* until the answer that announces its id has
been queued (:meth:`Subscription.activate`): items published meanwhile are kept, and no
notification can reach the client before the id it refers to. The outbox counts the bytes
it holds (:attr:`Outbox.answer_bytes`, :attr:`Outbox.notification_bytes`, and the totals
in :class:`Usage`); :meth:`Outbox.close` forgets all of it when the connection ends.

Everything here runs in the daemon's trio thread; nothing here is thread-safe.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from p2psocial.errors import LocalProtocolError
from p2psocial.proto.jsonrpc import (
    MESSAGE_NOTIFICATION_END,
    dumps,
    encode_overflow_notification,
    message_notification_start,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "DEFAULT_CONNECTION_NOTIFICATION_BYTES",
    "DEFAULT_QUEUE",
    "DEFAULT_QUEUE_BYTES",
    "DEFAULT_TOTAL_NOTIFICATION_BYTES",
    "NOTIFICATION_FLOOR",
    "Hub",
    "Outbox",
    "Subscription",
    "Usage",
]

DEFAULT_QUEUE = 1000
"""Items a subscription holds for a slow client before it starts dropping."""
DEFAULT_QUEUE_BYTES = 1 << 20
"""Notification bytes a subscription holds for a slow client before it starts dropping."""
DEFAULT_CONNECTION_NOTIFICATION_BYTES = 4 << 20
"""Notification bytes all subscriptions of one connection hold together, at most."""
DEFAULT_TOTAL_NOTIFICATION_BYTES = 64 << 20
"""Notification bytes all connections hold together before only the light ones queue."""
NOTIFICATION_FLOOR = 256 << 10
"""Past the total, a connection holding less than this still queues notifications."""
_SMALLEST_OVERHEAD = len(message_notification_start("s1") + MESSAGE_NOTIFICATION_END)
"""Bytes a ``message`` notification line adds to its item, at the least."""


@dataclass
class Usage:
    """Bytes held for the clients of one server, all connections together, and the bound
    on their notifications. The outboxes keep the counts; the server reads ``answers``."""

    max_notifications: int = DEFAULT_TOTAL_NOTIFICATION_BYTES
    notification_floor: int = NOTIFICATION_FLOOR
    answers: int = 0
    """Bytes of answers queued for writing or being built (batches)."""
    notifications: int = 0
    """Bytes of notification lines queued."""


class _NotificationQueue:
    """A subscription's notification lines: at most ``maxlen`` lines and ``max_bytes`` bytes
    (a queue holding nothing has room for one line of any size). What does not fit is
    dropped and counted, and the gap is reported in order: by an overflow line inserted
    before the next line kept, or handed out by :meth:`pop` once the queue has drained.
    ``bytes`` counts what is held, overflow lines included."""

    def __init__(self, sub_id: str, maxlen: int, max_bytes: int) -> None:
        if maxlen < 1 or max_bytes < 1:
            raise LocalProtocolError(f"queue bounds must be at least 1, not {maxlen}/{max_bytes}")
        self._sub_id = sub_id
        self.maxlen = maxlen
        self.max_bytes = max_bytes
        self._items: deque[bytes] = deque()
        self.bytes = 0
        self.dropped = 0
        """Items dropped since the last overflow report."""
        self.dropped_total = 0
        """Items dropped over the queue's life."""

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items) or self.dropped > 0

    def has_room(self, size: int) -> bool:
        if not self._items:
            return True
        return len(self._items) < self.maxlen and self.bytes + size <= self.max_bytes

    def push(self, line: bytes) -> None:
        if self.dropped:
            self._append(encode_overflow_notification(self._sub_id, self.dropped))
            self.dropped = 0
        self._append(line)

    def _append(self, line: bytes) -> None:
        self._items.append(line)
        self.bytes += len(line)

    def pop(self) -> bytes | None:
        if self._items:
            line = self._items.popleft()
            self.bytes -= len(line)
            return line
        if self.dropped:
            count, self.dropped = self.dropped, 0
            return encode_overflow_notification(self._sub_id, count)
        return None

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0
        self.dropped = 0


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
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
    ) -> None:
        self.id = sub_id
        self.kind = kind
        self.params: Mapping[str, Any] = MappingProxyType(dict(params))
        self.filter = filter
        self._hub = hub
        self._outbox = outbox
        self._queue = _NotificationQueue(sub_id, max_queue, max_queue_bytes)
        self._start = message_notification_start(sub_id)
        self._overhead = len(self._start) + len(MESSAGE_NOTIFICATION_END)
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
    def queued_bytes(self) -> int:
        """Bytes of the notification lines waiting for the client."""
        return self._queue.bytes

    @property
    def dropped_total(self) -> int:
        """Items dropped because the client read too slowly, over the subscription's life."""
        return self._queue.dropped_total

    def push_encoded(self, message: bytes) -> bool:
        """Queue one item already encoded with :func:`dumps`. Returns whether it was kept
        (else it was dropped, to be reported: see the module docstring for the bounds)."""
        if self.closed:
            return False
        size = self._overhead + len(message)
        queue = self._queue
        outbox = self._outbox
        kept = queue.has_room(size) and not outbox._notifications_full(size)
        if kept:
            before = queue.bytes
            queue.push(b"".join((self._start, message, MESSAGE_NOTIFICATION_END)))
            outbox._count_notifications(queue.bytes - before)
        else:
            queue.dropped += 1
            queue.dropped_total += 1
        if self.active and self.id not in outbox._ready_set:
            outbox.mark_ready(self)
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
        self._outbox._count_notifications(-self._queue.bytes)
        self._queue.clear()
        self._hub._forget(self)
        self._outbox._forget(self)

    def _pop(self) -> bytes | None:
        before = self._queue.bytes
        line = self._queue.pop()
        self._outbox._count_notifications(self._queue.bytes - before)
        return line

    def _has_output(self) -> bool:
        return bool(self._queue)


class Outbox:
    """What waits to be written to one connection: answers, then subscription notifications.

    ``wake`` is called (synchronously) whenever something new becomes ready to send. The
    answers are bounded by the caller (the server's in-flight and byte limits), which reads
    :attr:`answer_bytes`; notifications are bounded per subscription, by
    ``max_notification_bytes`` for the connection, and in total by ``usage``.
    """

    def __init__(
        self,
        connection_id: int,
        wake: Callable[[], None],
        *,
        usage: Usage | None = None,
        max_notification_bytes: int = DEFAULT_CONNECTION_NOTIFICATION_BYTES,
    ) -> None:
        self.connection_id = connection_id
        self._wake = wake
        self.usage = usage if usage is not None else Usage()
        self.max_notification_bytes = max_notification_bytes
        self._responses: deque[tuple[bytes, Callable[[], None] | None]] = deque()
        self._offset = 0  # bytes of the first response already taken
        self._ready: deque[Subscription] = deque()
        self._ready_set: set[str] = set()
        self.subscriptions: dict[str, Subscription] = {}
        self.answer_bytes = 0
        """Bytes of answers held for this connection: queued and not yet taken, and
        :meth:`hold`-ed by batches being built."""
        self.notification_bytes = 0
        """Bytes of notification lines queued in this connection's subscriptions."""

    @property
    def pending_responses(self) -> int:
        return len(self._responses)

    def has_output(self) -> bool:
        return bool(self._responses) or bool(self._ready)

    def hold(self, size: int) -> None:
        """Count ``size`` bytes of answers being built (a batch's) as held (negative:
        release them)."""
        self.answer_bytes += size
        self.usage.answers += size

    def put_response(self, data: bytes, on_taken: Callable[[], None] | None = None) -> None:
        """Queue an answer line; ``on_taken`` runs when :meth:`take` has handed all of it
        to the writer."""
        self._responses.append((data, on_taken))
        self.hold(len(data))
        self._wake()

    def _notifications_full(self, size: int) -> bool:
        """Whether a notification of ``size`` bytes goes past this connection's bound, or
        past the total while this connection holds at least the floor."""
        held = self.notification_bytes
        if held and held + size > self.max_notification_bytes:
            return True
        usage = self.usage
        return held >= usage.notification_floor and (
            usage.notifications + size > usage.max_notifications
        )

    def _count_notifications(self, delta: int) -> None:
        self.notification_bytes += delta
        self.usage.notifications += delta

    def mark_ready(self, sub: Subscription) -> None:
        if sub.id not in self._ready_set and sub._has_output():
            self._ready_set.add(sub.id)
            self._ready.append(sub)
            self._wake()

    def take(self, max_bytes: int) -> bytes:
        """Up to about ``max_bytes`` of bytes to send (some, if anything is ready).

        Answers come first: whole ones while they fit, then, when the next does not, the
        part of it that fills ``max_bytes`` (the rest comes with the next takes, before
        anything else). Then one notification line per ready subscription in turn.
        """
        out = bytearray()
        while self._responses and len(out) < max_bytes:
            data, on_taken = self._responses[0]
            start = self._offset
            piece = memoryview(data)[start : start + max_bytes - len(out)]
            out += piece
            self.hold(-len(piece))
            if start + len(piece) < len(data):
                self._offset = start + len(piece)
                break
            self._responses.popleft()
            self._offset = 0
            if on_taken is not None:
                on_taken()
        if self._responses:  # never a notification in the middle of an answer
            return bytes(out)
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

    def close(self) -> None:
        """The connection is gone: close its subscriptions and forget the answers not yet
        taken (their ``on_taken`` callbacks are not run). Idempotent."""
        self.close_subscriptions()
        while self._responses:
            data, _on_taken = self._responses.popleft()
            self.hold(self._offset - len(data))
            self._offset = 0

    def _forget(self, sub: Subscription) -> None:
        self.subscriptions.pop(sub.id, None)
        if sub.id in self._ready_set:
            self._ready_set.discard(sub.id)
            self._ready.remove(sub)


class Hub:
    """All open subscriptions of a server, by kind. The daemon publishes items here.

    Call it only from the trio thread that runs the server.
    """

    def __init__(self, usage: Usage | None = None) -> None:
        self.usage = usage if usage is not None else Usage()
        """Bytes held for clients across the server's connections, and the notification
        total (the server gives its outboxes this object)."""
        self._by_kind: dict[str, dict[str, Subscription]] = {}
        self._by_outbox: dict[str, dict[Outbox, dict[str, Subscription]]] = {}
        """The same subscriptions, grouped by connection: see :meth:`publish`."""
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

        Cost: one ``match`` per subscription of the kind, and for each that keeps the item,
        one line. Subscriptions are walked connection by connection; once a connection
        has no room left (its own bound, or the total), its other subscriptions only count
        the item as dropped, so clients that never read cost little more than ``match``.
        """
        groups = self._by_outbox.get(kind)
        if not groups:
            return 0
        encoded: bytes | None = None
        smallest = 0  # the shortest line the item can make (any subscription id)
        kept = 0
        for outbox, subs in list(groups.items()):
            full = False
            ready = outbox._ready_set
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
                    smallest = len(encoded) + _SMALLEST_OVERHEAD
                if full:  # dropped and counted, inline: this is the hot loop
                    queue = sub._queue
                    queue.dropped += 1
                    queue.dropped_total += 1
                    if sub.active and sub.id not in ready:
                        outbox.mark_ready(sub)
                elif sub.push_encoded(encoded):
                    kept += 1
                else:
                    full = outbox._notifications_full(smallest)
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
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
    ) -> Subscription:
        """Create a pending subscription owned by ``outbox`` (the server does this)."""
        self._counter += 1
        sub = Subscription(
            self,
            outbox,
            f"s{self._counter}",
            kind,
            params or {},
            filter,
            max_queue,
            max_queue_bytes,
        )
        self._by_kind.setdefault(kind, {})[sub.id] = sub
        self._by_outbox.setdefault(kind, {}).setdefault(outbox, {})[sub.id] = sub
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
        groups = self._by_outbox.get(sub.kind)
        if groups is not None:
            group = groups.get(sub._outbox)
            if group is not None:
                group.pop(sub.id, None)
                if not group:
                    del groups[sub._outbox]
            if not groups:
                del self._by_outbox[sub.kind]
