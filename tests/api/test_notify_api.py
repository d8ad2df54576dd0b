"""#12: ``notifications``, ``notifications.mark_read``, ``status``'s unread count
(in-process, LocalCaller), and the live ``subscribe`` filter ``notifications`` on a real
hub fed by the store's own stored-entry events."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from p2psocial.api import notify_api
from p2psocial.api.hub import Hub, Outbox, Subscription
from p2psocial.api.local import LocalCaller
from p2psocial.api.methods import build_registry, live_messages
from p2psocial.api.params import Params
from p2psocial.app import App
from p2psocial.errors import RpcError
from p2psocial.events import EventBus, Stored
from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.home import Home
from p2psocial.identity import Keypair, message_id
from p2psocial.proto.jsonrpc import INVALID_PARAMS
from p2psocial.store.gateway import InlineGateway
from p2psocial.store.store import Store
from tests.helpers import make_keys

BOB, CAROL = make_keys(82), make_keys(83)


class Peers:
    """Others' real signed feeds, stored as a peer's batches (received at ``now``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.heads: dict[bytes, tuple[int, bytes | None]] = {}
        self.now = 10_000

    def add(self, keys: Keypair, content: dict[str, Any], bus: EventBus | None = None) -> str:
        seq, previous = self.heads.get(keys.public, (0, None))
        data = encode_content(content)
        self.now += 1000
        entry = create_entry(keys, seq + 1, previous, self.now, data)
        self.heads[keys.public] = (seq + 1, entry.id)
        result = self.store.append_batch([(entry.raw, data)], now_ms=self.now)
        assert not result.errors and len(result.stored) == 1
        if bus is not None:  # as replication announces what it stored
            bus.emit(Stored(result.stored, local=False))
        return message_id(entry.id)


def test_notifications_and_mark_read(home_store: tuple[Home, Keypair, Store]) -> None:
    home, keys, store = home_store
    caller = LocalCaller(home, keys, store)
    peers = Peers(store)
    me = caller.call("whoami")["feed_id"]
    mine = caller.call("post", text="my post")["id"]
    assert caller.call("notifications") == []
    assert caller.call("status")["notifications_unread"] == 0
    peers.add(BOB, {"type": "post", "text": "re", "root": mine})
    peers.add(BOB, {"type": "vote", "vote": {"link": mine, "value": 1, "expression": "🎉"}})
    peers.add(CAROL, {"type": "contact", "contact": me, "following": True})
    found = caller.call("notifications")
    assert [(n["kind"], n["target"], n["read"]) for n in found] == [
        ("follow", None, False),
        ("reaction", mine, False),
        ("reply", mine, False),
    ]
    follow, like, reply = found
    assert like["expression"] == "🎉" and "expression" not in reply and "in_thread" not in like
    assert reply["in_thread"] is False and reply["message"]["content"]["text"] == "re"
    assert reply["message"]["author"] == BOB.feed_id and follow["message"]["seq"] == 1
    assert caller.call("status")["notifications_unread"] == 3
    assert [n["kind"] for n in caller.call("notifications", limit=1)] == ["follow"]
    older = caller.call("notifications", before=follow["message"]["timestamp"])
    assert [n["kind"] for n in older] == ["reaction", "reply"]
    upto = like["message"]["received"]
    assert caller.call("notifications.mark_read", up_to=upto) == {"marked": 2, "unread": 1}
    assert [n["kind"] for n in caller.call("notifications", unread=True)] == ["follow"]
    assert [n["read"] for n in caller.call("notifications")] == [False, True, True]
    assert caller.call("notifications.mark_read") == {"marked": 1, "unread": 0}
    assert caller.call("notifications.mark_read") == {"marked": 0, "unread": 0}
    assert caller.call("notifications", unread=True) == []
    assert caller.call("status")["notifications_unread"] == 0


@pytest.mark.parametrize(
    ("method", "params", "param"),
    [
        ("notifications", {"limit": 0}, "limit"),
        ("notifications", {"limit": 1001}, "limit"),
        ("notifications", {"before": -1}, "before"),
        ("notifications", {"unread": "yes"}, "unread"),
        ("notifications", {"kind": "reply"}, "kind"),
        ("notifications.mark_read", {"up_to": "now"}, "up_to"),
        ("notifications.mark_read", {"before": 1}, "before"),
    ],
)
def test_bad_params_are_named(
    caller: LocalCaller, method: str, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(RpcError) as info:
        caller.call(method, **params)
    assert info.value.code == INVALID_PARAMS and info.value.data["param"] == param


class Connection:
    """What a socket connection's call context is to a method: a hub and an outbox."""

    def __init__(self, hub: Hub) -> None:
        self.hub: Hub | None = hub
        self.connection_count = 1
        self.outbox = Outbox(1, lambda: None)
        self.subs: dict[str, Subscription] = {}

    def subscribe(self, kind: str, params: Any = None, filter: Any = None) -> Subscription:
        assert self.hub is not None
        raw = params.to_dict() if isinstance(params, Params) else params
        sub = self.hub.open(self.outbox, kind, raw, filter)
        sub.activate()
        self.subs[sub.id] = sub
        return sub

    def unsubscribe(self, sub_id: str) -> bool:
        sub = self.subs.pop(sub_id, None)
        if sub is None:
            return False
        sub.close()
        return True

    def received(self) -> list[dict[str, Any]]:
        return [json.loads(x)["params"] for x in self.outbox.take(1 << 20).splitlines()]


def test_live_filter_delivers_what_the_view_lists(home_store: tuple[Home, Keypair, Store]) -> None:
    home, keys, store = home_store
    bus = EventBus()
    app = App(home, keys, InlineGateway(store), bus)
    registry = build_registry(app)
    hub = Hub()
    bus.subscribe(live_messages(hub, keys.feed_id))  # as the daemon wires it
    conn = Connection(hub)
    peers = Peers(store)
    me = keys.feed_id

    async def call(method: str, **params: Any) -> Any:
        return await registry.call(method, Params(params), conn)

    async def main() -> None:
        mine = (await call("post", text="before subscribing"))["id"]
        store.mute(CAROL.public, 1)
        sub = await call("subscribe", filter="notifications")
        assert sub["filter"] == "notifications"
        others = await call("subscribe")  # every message, for comparison
        peers.add(BOB, {"type": "post", "text": "re", "root": mine}, bus)
        peers.add(BOB, {"type": "post", "text": "unrelated"}, bus)
        peers.add(BOB, {"type": "vote", "vote": {"link": mine, "value": 0}}, bus)
        peers.add(CAROL, {"type": "post", "text": "muted", "root": mine}, bus)
        got = conn.received()
        live = [p["message"] for p in got if p["subscription"] == sub["subscription"]]
        assert [(n["kind"], n["target"], n["read"]) for n in live] == [("reply", mine, False)]
        assert live[0]["message"]["content"]["text"] == "re"
        listed = await call("notifications")
        assert live[0]["message"] == listed[0]["message"]
        assert sum(p["subscription"] == others["subscription"] for p in got) == 4
        # Our reply published while subscribed makes its thread ours at once.
        root = peers.add(BOB, {"type": "post", "text": "a thread of bob's"}, bus)
        ours = (await call("post", text="replying", root=root))["id"]
        peers.add(BOB, {"type": "post", "text": "hi", "mentions": [me]}, bus)
        peers.add(BOB, {"type": "post", "text": "in it", "root": root, "branch": root}, bus)
        live = [p["message"] for p in conn.received() if p["subscription"] == sub["subscription"]]
        assert [(n["kind"], n["target"]) for n in live] == [("mention", None), ("reply", ours)]
        assert live[1]["in_thread"] is True
        newest = await call("notifications", limit=2)
        assert [n["message"] for n in live] == [n["message"] for n in newest[::-1]]
        # When no notifications subscription is left, the filter lets go of what it held.
        assert await call("unsubscribe", subscription=sub["subscription"]) is True
        assert hub in notify_api._watchers
        peers.add(BOB, {"type": "post", "text": "re again", "root": mine}, bus)
        assert hub not in notify_api._watchers
        assert all(p["subscription"] != sub["subscription"] for p in conn.received())

    trio.run(main)


def test_live_filter_needs_the_daemon(caller: LocalCaller) -> None:
    with pytest.raises(RpcError) as info:
        caller.call("subscribe", filter="notifications")
    assert "daemon" in info.value.message
