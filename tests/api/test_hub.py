"""Subscriptions, outbox and hub, sans-IO: bounded queues, overflow notices, ordering."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2psocial.api.hub import Hub, Outbox, Subscription, Usage
from p2psocial.errors import LocalProtocolError
from p2psocial.proto.dropqueue import DropQueue


def lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(x) for x in data.splitlines()]


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def outbox() -> tuple[Outbox, Wakes]:
    wakes = Wakes()
    return Outbox(1, wakes), wakes


def test_drop_queue_reports_the_gap_in_order() -> None:
    q: DropQueue[Any] = DropQueue(3, lambda n: ("overflow", n))
    for i in range(10):
        q.push(i)
    assert len(q) == 3
    assert q.dropped == 7
    assert q.pop() == 0
    q.push(10)  # room again: the gap notice goes before the new item
    assert [q.pop() for _ in range(5)] == [1, 2, ("overflow", 7), 10, None]
    assert q.dropped_total == 7


def test_drop_queue_reports_the_gap_when_drained() -> None:
    q: DropQueue[Any] = DropQueue(1, lambda n: ("overflow", n))
    q.push("a")
    q.push("b")
    assert bool(q)
    assert [q.pop(), q.pop(), q.pop()] == ["a", ("overflow", 1), None]
    assert not q


def test_drop_queue_needs_room() -> None:
    with pytest.raises(LocalProtocolError):
        DropQueue(0, lambda n: n)


def test_publish_reaches_matching_subscriptions_of_the_kind() -> None:
    hub = Hub()
    box, _ = outbox()
    even = hub.open(box, "ticks", {"every": 2}, filter=2)
    every = hub.open(box, "ticks", {"every": 1}, filter=1)
    other = hub.open(box, "posts")
    for sub in (even, every, other):
        sub.activate()
    for n in range(4):

        def wants(sub: Subscription, n: int = n) -> bool:
            return bool(n % sub.filter == 0)

        hub.publish("ticks", {"n": n}, match=wants)
    assert (even.queued, every.queued, other.queued) == (2, 4, 0)
    assert even.params == {"every": 2}
    got = lines(box.take(1 << 20))
    # round-robin between the two subscriptions
    assert [(m["params"]["subscription"], m["params"]["message"]["n"]) for m in got] == [
        (even.id, 0),
        (every.id, 0),
        (even.id, 2),
        (every.id, 1),
        (every.id, 2),
        (every.id, 3),
    ]
    assert hub.publish("nobody", {"n": 1}) == 0


def test_publish_refuses_non_json_items() -> None:
    hub = Hub()
    box, _ = outbox()
    hub.open(box, "k")
    with pytest.raises(LocalProtocolError, match="not JSON"):
        hub.publish("k", {"x": object()})


def test_pending_subscription_keeps_items_until_activated() -> None:
    hub = Hub()
    box, wakes = outbox()
    sub = hub.open(box, "k")
    hub.publish("k", {"n": 1})
    assert box.take(1 << 20) == b""
    assert wakes.count == 0
    box.put_response(b'{"answer":1}\n')
    sub.activate()
    data = box.take(1 << 20)
    assert data.startswith(b'{"answer":1}\n')
    assert lines(data)[1]["params"]["message"] == {"n": 1}
    assert wakes.count == 2


def test_answers_come_before_notifications_and_release_their_slot() -> None:
    hub = Hub()
    box, _ = outbox()
    sub = hub.open(box, "k")
    sub.activate()
    hub.publish("k", {"n": 1})
    taken: list[int] = []
    box.put_response(b"[1]\n", lambda: taken.append(1))
    box.put_response(b"[2]\n", lambda: taken.append(2))
    assert box.take(4) == b"[1]\n"  # at least one line, then the size bound
    assert taken == [1]
    data = box.take(1 << 20)
    assert data.startswith(b"[2]\n")
    assert taken == [1, 2]
    assert not box.has_output()


def test_overflow_notice_on_the_wire() -> None:
    hub = Hub()
    box, _ = outbox()
    sub = hub.open(box, "k", max_queue=2)
    sub.activate()
    kept = [hub.publish("k", {"n": n}) for n in range(5)]
    assert kept == [1, 1, 0, 0, 0]
    assert sub.dropped_total == 3
    got = lines(box.take(1 << 20))
    assert [m["method"] for m in got] == ["message", "message", "overflow"]
    assert got[2]["params"] == {"subscription": sub.id, "dropped": 3}


def test_close_forgets_everywhere() -> None:
    hub = Hub()
    box, _ = outbox()
    sub = hub.open(box, "k")
    sub.activate()
    hub.publish("k", {"n": 1})
    sub.close()
    sub.close()
    assert sub.closed
    assert hub.subscriptions() == []
    assert hub.get(sub.id) is None
    assert box.take(1 << 20) == b""
    assert not sub.push_encoded(b"{}")
    assert "closed" in repr(sub)


def test_close_subscriptions_of_one_outbox_only() -> None:
    hub = Hub()
    box1, _ = outbox()
    box2, _ = outbox()
    hub.open(box1, "k")
    keep = hub.open(box2, "k")
    box1.close_subscriptions()
    assert hub.subscriptions("k") == [keep]
    assert len(hub) == 1
    assert isinstance(keep, Subscription)


def test_a_dropped_overflow_report_passes_its_count_on() -> None:
    q: DropQueue[Any] = DropQueue(1, lambda n: ("overflow", n))
    q.push("a")
    q.push(("overflow", 40), counts_as=40)
    q.push("b")
    assert [q.pop(), q.pop(), q.pop()] == ["a", ("overflow", 41), None]


# ------------------------------------------------------------------------------ byte bounds (#11)


def test_a_subscription_holds_at_most_its_bytes_then_reports_the_gap() -> None:
    hub = Hub()
    box, _ = outbox()
    sub = hub.open(box, "k", max_queue=1000, max_queue_bytes=1000)
    sub.activate()
    kept = [hub.publish("k", {"pad": "x" * 200}) for _ in range(10)]
    assert kept[:3] == [1, 1, 1] and sum(kept) == 3  # ~300 bytes a line
    assert sub.queued == 3 and sub.dropped_total == 7
    assert sub.queued_bytes <= 1000
    assert sub.queued_bytes == box.notification_bytes == box.usage.notifications
    got = lines(box.take(1 << 20))
    assert [m["method"] for m in got] == ["message"] * 3 + ["overflow"]
    assert got[3]["params"]["dropped"] == 7
    assert box.notification_bytes == box.usage.notifications == 0


def test_an_item_larger_than_the_bound_still_reaches_an_empty_queue() -> None:
    hub = Hub()
    box, _ = outbox()
    sub = hub.open(box, "k", max_queue_bytes=10)
    assert hub.publish("k", {"pad": "x" * 100}) == 1
    assert hub.publish("k", {"pad": "x"}) == 0
    assert sub.queued == 1


def test_the_subscriptions_of_one_connection_share_its_bound() -> None:
    hub = Hub()
    usage = hub.usage
    box = Outbox(1, Wakes(), usage=usage, max_notification_bytes=2000)
    other = Outbox(2, Wakes(), usage=usage, max_notification_bytes=2000)
    subs = [hub.open(box, "k") for _ in range(5)]
    reader = hub.open(other, "k")
    for sub in [*subs, reader]:
        sub.activate()
    for _ in range(4):
        hub.publish("k", {"pad": "x" * 300})
    assert box.notification_bytes <= 2000 + 500  # one line past it, at most
    assert sum(sub.dropped_total for sub in subs) > 0
    assert reader.queued == 4 and reader.dropped_total == 0  # not the other connection's
    assert usage.notifications == box.notification_bytes + other.notification_bytes


def test_past_the_total_only_light_connections_queue() -> None:
    usage = Usage(max_notifications=3000, notification_floor=1000)
    hub = Hub(usage)
    heavy = [Outbox(n, Wakes(), usage=usage) for n in range(3)]
    light = Outbox(9, Wakes(), usage=usage)
    for box in heavy:
        hub.open(box, "heavy").activate()
    hub.open(light, "light").activate()
    for _ in range(20):
        hub.publish("heavy", {"pad": "x" * 300})
    assert usage.notifications <= 3000 + 3 * 400
    assert all(box.notification_bytes >= 1000 for box in heavy)
    for _ in range(2):  # the total is reached, but this connection holds under the floor
        assert hub.publish("light", {"pad": "x" * 300}) == 1
    light.take(1 << 20)  # read: it stays light
    assert hub.publish("light", {"pad": "x" * 300}) == 1
    assert light.notification_bytes < 1000


def test_a_full_connection_still_counts_every_drop() -> None:
    hub = Hub()
    box = Outbox(1, Wakes(), usage=hub.usage, max_notification_bytes=1000)
    subs = [hub.open(box, "k") for _ in range(10)]
    for sub in subs:
        sub.activate()
    for _ in range(50):
        hub.publish("k", {"pad": "x" * 300})
    assert sum(sub.queued for sub in subs) + sum(sub.dropped_total for sub in subs) == 500
    delivered = dropped = 0
    while data := box.take(1 << 20):
        for m in lines(data):
            if m["method"] == "overflow":
                dropped += m["params"]["dropped"]
            else:
                delivered += 1
    assert delivered + dropped == 500
    assert box.notification_bytes == hub.usage.notifications == 0


def test_a_long_answer_is_taken_in_pieces_before_any_notification() -> None:
    hub = Hub()
    box, _ = outbox()
    sub = hub.open(box, "k")
    sub.activate()
    taken: list[int] = []
    answer = b'{"jsonrpc":"2.0","id":1,"result":"' + b"a" * 10_000 + b'"}\n'
    box.put_response(answer, lambda: taken.append(1))
    hub.publish("k", {"n": 1})
    assert box.answer_bytes == box.usage.answers == len(answer)
    pieces: list[bytes] = []
    while len(b"".join(pieces)) < len(answer):
        assert not taken
        piece = box.take(4096)
        assert 0 < len(piece) <= 4096 + 100  # (+ a notification line after the answer)
        pieces.append(piece)
    assert taken == [1]
    assert box.answer_bytes == box.usage.answers == 0
    data = b"".join(pieces)
    assert data.startswith(answer)  # whole, with the notification only after it
    assert lines(data[len(answer) :])[0]["params"]["message"] == {"n": 1}


def test_close_forgets_what_the_connection_held() -> None:
    hub = Hub()
    usage = hub.usage
    box = Outbox(1, Wakes(), usage=usage)
    sub = hub.open(box, "k")
    sub.activate()
    hub.publish("k", {"pad": "x" * 500})
    box.put_response(b"x" * 5000)
    box.take(100)  # part of the answer went out
    box.hold(300)  # a batch being built
    box.hold(-300)
    assert usage.answers == 4900 and usage.notifications > 0
    box.close()
    box.close()
    assert sub.closed and hub.subscriptions() == []
    assert (usage.answers, usage.notifications) == (0, 0)
    assert (box.answer_bytes, box.notification_bytes) == (0, 0)
    assert box.take(1 << 20) == b""
