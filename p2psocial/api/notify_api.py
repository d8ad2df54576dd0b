"""JSON-RPC methods for notifications: ``notifications`` and ``notifications.mark_read``;
the unread count ``status`` answers; the live ``subscribe`` filter ``notifications``.

The live filter classifies each newly stored entry with the same function the
``notifications`` view indexes with (``msgtypes/notify.py``). The view asks the store
which messages are ours; the live filter cannot (it runs in the daemon's event loop, which
never waits on the store), so when the first ``notifications`` subscription of a server
opens, it loads once what the view knows (the ids of our messages, the threads we replied
in, the feeds we muted) and keeps it current from the stored-entry events. It forgets all
of it when the last such subscription has closed. Mutes changed while subscribed apply
from the next ``subscribe`` on.
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any

import trio

from p2psocial.identity import message_id
from p2psocial.model import Message
from p2psocial.msgtypes.base import message_field
from p2psocial.msgtypes.delete import parse_delete
from p2psocial.msgtypes.notify import REACTION, REPLY, Notice, classify, may_notify

if TYPE_CHECKING:
    from collections.abc import Callable

    from p2psocial.api.hub import Hub, Subscription
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App
    from p2psocial.events import Stored
    from p2psocial.feed.chain import Accepted
    from p2psocial.store.notifications import Notification
    from p2psocial.store.store import Store

__all__ = [
    "FILTER",
    "notification_json",
    "register_notify_methods",
    "unread_notifications",
    "watch_notifications",
]

FILTER = "notifications"
"""The ``subscribe`` filter that delivers notifications live."""
MAX_LIMIT = 1000


def _json(
    kind: str,
    message: Message,
    target: bytes | None,
    expression: str | None,
    in_thread: bool,
    read: bool,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": kind,
        "read": read,
        "message": message.to_json(),
        "target": message_id(target) if target is not None else None,
    }
    if kind == REACTION:
        item["expression"] = expression
    if kind == REPLY:
        item["in_thread"] = in_thread
    return item


def notification_json(n: Notification) -> dict[str, Any]:
    """The JSON form of a notification (docs/rpc.md, "notifications")."""
    return _json(n.kind, n.message, n.target, n.expression, n.in_thread, n.read)


async def unread_notifications(app: App) -> int:
    """How many notifications are unread (``status``'s ``notifications_unread``)."""
    return await app.gateway.read(lambda s: s.unread_notifications())


def register_notify_methods(registry: MethodRegistry, app: App) -> None:
    @registry.method("notifications")
    async def notifications(params: Params, ctx: CallContext) -> Any:
        limit = params.optional_int("limit", 50, min_value=1, max_value=MAX_LIMIT)
        before = params.optional_int("before", min_value=0)
        unread = params.optional_bool("unread", False)
        params.reject_unknown()

        def read(store: Store) -> list[dict[str, Any]]:
            found = store.notifications(limit=limit, before=before, unread_only=unread)
            return [notification_json(n) for n in found]

        return await app.gateway.read(read)

    @registry.method("notifications.mark_read")
    async def mark_read(params: Params, ctx: CallContext) -> Any:
        up_to = params.optional_int("up_to", min_value=0)
        params.reject_unknown()
        until = up_to if up_to is not None else time.time_ns() // 1_000_000

        def write(store: Store) -> tuple[int, int]:
            return store.mark_notifications_read(until), store.unread_notifications()

        marked, unread = await app.gateway.run(write)
        return {"marked": marked, "unread": unread}


# ----------------------------------------------------------------------------- live


class LiveNotifications:
    """Publishes a notification item to every ``notifications`` subscription of ``hub``
    for each newly stored entry the view would list (see the module docstring)."""

    def __init__(self, app: App, hub: Hub) -> None:
        self.owner = app.keys.public
        self.hub = hub
        self.mine: set[bytes] = set()
        self.threads: dict[bytes, bytes] = {}
        self.muted: frozenset[bytes] = frozenset()
        self.ready = trio.Event()
        self.opening = 0
        """Subscribe calls under way (the watcher stays while any is)."""
        self._remove: Callable[[], None] = app.bus.subscribe(self.on_stored)

    def load(self, mine: set[bytes], threads: dict[bytes, bytes]) -> None:
        """Take what the store knows; what events taught meanwhile is newer."""
        self.mine |= mine
        self.threads = {**self.threads, **threads}
        self.ready.set()

    def close(self) -> None:
        self._remove()
        if _watchers.get(self.hub) is self:
            del _watchers[self.hub]

    def on_stored(self, event: Stored) -> None:
        if not self.opening and not any(_wants(s) for s in self.hub.subscriptions("messages")):
            self.close()
            return
        owner = self.owner
        for accepted in event.entries:
            value = accepted.value
            author = accepted.entry.author
            if author == owner:
                self._learn(accepted.entry.id, accepted.content_type, value)
                continue
            if type(value) is not dict or not may_notify(value) or author in self.muted:
                continue
            notice = classify(value, author, owner, self.mine.__contains__, self.threads.get)
            if notice is not None and notice.active:
                self.hub.publish("messages", self._item(accepted, notice), _wants)

    def _learn(self, msg: bytes, content_type: str | None, value: object) -> None:
        self.mine.add(msg)
        if type(value) is not dict:
            return
        if content_type == "post":
            root = message_field(value, "root")
            if root is not None:
                self.threads.setdefault(root, msg)
        elif content_type == "delete":
            target = parse_delete(value)
            if target is not None:
                self.mine.discard(target)
                self.threads = {r: m for r, m in self.threads.items() if m != target}

    @staticmethod
    def _item(accepted: Accepted, notice: Notice) -> dict[str, Any]:
        message = Message.from_accepted(accepted)
        return _json(
            notice.kind, message, notice.target, notice.expression, notice.in_thread, False
        )


_watchers: weakref.WeakKeyDictionary[Hub, LiveNotifications] = weakref.WeakKeyDictionary()


def _wants(sub: Subscription) -> bool:
    return bool(sub.filter and sub.filter[0] == FILTER)


async def watch_notifications(app: App, ctx: CallContext) -> None:
    """Make ready the live ``notifications`` filter of the hub ``ctx`` subscribes on
    (called by ``subscribe`` before it opens such a subscription). Nothing without a
    hub: the subscription is refused then."""
    hub = ctx.hub
    if hub is None:
        return
    owner = app.keys.public
    while True:
        watcher = _watchers.get(hub)
        if watcher is None:
            watcher = _watchers[hub] = LiveNotifications(app, hub)
            watcher.opening += 1
            try:
                mine, threads = await app.gateway.read(lambda s: s.notification_context(owner))
                watcher.load(mine, threads)
            except BaseException:
                watcher.close()
                raise
            finally:
                watcher.opening -= 1
                watcher.ready.set()
            break
        watcher.opening += 1
        try:
            await watcher.ready.wait()
        finally:
            watcher.opening -= 1
        if _watchers.get(hub) is watcher:
            break
    watcher.opening += 1
    try:
        watcher.muted = await app.gateway.read(lambda s: s.notifications_muted())
    finally:
        watcher.opening -= 1
