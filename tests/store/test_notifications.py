"""#12: the notifications view and its reads, on real stores holding several real feeds:
each kind, each thing that is not a notification, unread and the read mark, rebuilds."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2psocial.errors import StorageError
from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.identity import Keypair, message_id, parse_message_id
from p2psocial.store.notifications import Notification
from p2psocial.store.store import Store
from tests.helpers import make_keys

ME, BOB, CAROL = make_keys(71), make_keys(72), make_keys(73)


class World:
    """Our store, our publishes, and others' real signed feeds arriving as peers'
    batches. Every entry claims a later time than the one before (1000 ms apart), so
    notifications sort in the order their entries were added."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.heads: dict[bytes, tuple[int, bytes | None]] = {}
        self.clock = 1_000_000
        self.received = 5_000_000

    def tick(self) -> int:
        self.clock += 1000
        return self.clock

    def mine(self, content: dict[str, Any]) -> str:
        """Publish ``content`` in our feed; its id."""
        return message_id(self.store.publish(ME, content, self.tick()).entry.id)

    def signed(self, keys: Keypair, *contents: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        items = []
        for content in contents:
            seq, previous = self.heads.get(keys.public, (0, None))
            data = encode_content(content)
            entry = create_entry(keys, seq + 1, previous, self.tick(), data)
            self.heads[keys.public] = (seq + 1, entry.id)
            items.append((entry.raw, data))
        return items

    def add(
        self, keys: Keypair, *contents: dict[str, Any], received: int | None = None
    ) -> list[str]:
        """Store ``keys``'s next entries, received at ``received`` (default: later than
        anything before); their ids."""
        if received is None:
            self.received += 10
            received = self.received
        result = self.store.append_batch(self.signed(keys, *contents), now_ms=received)
        assert not result.errors, result.errors
        return [message_id(a.entry.id) for a in result.stored]


def post(text: str, **fields: Any) -> dict[str, Any]:
    return {"type": "post", "text": text, **fields}


def vote(target: str, value: int = 1, expression: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"link": target, "value": value}
    if expression is not None:
        body["expression"] = expression
    return {"type": "vote", "vote": body}


def contact(who: Keypair, following: bool = True, blocking: bool = False) -> dict[str, Any]:
    return {"type": "contact", "contact": who.feed_id, "following": following, "blocking": blocking}


def seen(store: Store, **kw: Any) -> list[tuple[str, str, str | None]]:
    """(kind, source id, target id) of the notifications, newest first."""
    return [
        (n.kind, n.message.key, message_id(n.target) if n.target else None)
        for n in store.notifications(**kw)
    ]


def table(store: Store) -> list[tuple[Any, ...]]:
    return (
        store._conn.execute("SELECT * FROM notifications ORDER BY id").fetchall()
        + store._conn.execute("SELECT * FROM notify_threads ORDER BY root, id").fetchall()
    )


@pytest.fixture
def world(tmp_path: Path):
    s = Store.open(tmp_path / "store.sqlite", owner=ME)
    yield World(s)
    s.close()


def test_each_kind(world: World) -> None:
    mine = world.mine(post("my post"))
    [reply, like, repost, follow, mention] = world.add(
        BOB,
        post("nice one", root=mine),
        vote(mine, expression="🎉"),
        {"type": "repost", "repost": mine, "comment": "look"},
        contact(ME),
        post("hi", mentions=[ME.feed_id]),
    )
    [in_text] = world.add(CAROL, post(f"ask {ME.feed_id} about it"))
    assert seen(world.store) == [
        ("mention", in_text, None),
        ("mention", mention, None),
        ("follow", follow, None),
        ("repost", repost, mine),
        ("reaction", like, mine),
        ("reply", reply, mine),
    ]
    found = {n.kind: n for n in world.store.notifications()}
    assert found["reaction"].expression == "🎉" and found["repost"].expression is None
    assert found["reply"].message.text == "nice one" and found["reply"].message.author == BOB.public
    assert not any(n.read or n.in_thread for n in found.values())
    assert world.store.unread_notifications() == 6


def test_replies_by_branch_and_in_threads_we_replied_in(world: World) -> None:
    [root] = world.add(CAROL, post("a thread of carol's"))
    [early] = world.add(BOB, post("before we joined", root=root))
    ours = world.mine(post("we join in", root=root, branch=root))
    [later, to_us] = world.add(
        BOB,
        post("after we joined", root=root, branch=early),
        post("answering us", root=root, branch=ours),
    )
    [carols] = world.add(CAROL, post("me too", root=root))
    assert seen(world.store) == [
        ("reply", carols, ours),
        ("reply", to_us, ours),
        ("reply", later, ours),
    ]
    flags = {n.message.key: n.in_thread for n in world.store.notifications()}
    assert flags == {carols: True, later: True, to_us: False}
    assert early not in flags  # stored before our reply: the thread was not ours yet
    before = table(world.store)
    world.store.rebuild("notifications")
    assert table(world.store) == before


def test_what_is_not_a_notification(world: World) -> None:
    mine = world.mine(post("my post"))
    world.mine(post("replying to myself", root=mine))
    world.mine(vote(mine))
    world.mine(post(f"me: {ME.feed_id}", mentions=[ME.feed_id]))
    [theirs] = world.add(CAROL, post("carol's post"))
    world.add(
        BOB,
        vote(theirs),  # a like of someone else's post
        post("a reply to carol", root=theirs),
        vote(mine, expression="👍"),
        vote(mine, 0),  # ... withdrawn
        contact(ME),
        contact(ME, following=False),  # an unfollow
        {"type": "repost", "repost": theirs},
        post("mentions carol", mentions=[CAROL.feed_id]),
        vote("%" + "A" * 43 + "=.sha256"),  # a message not held here
    )
    world.add(CAROL, contact(ME), contact(ME, following=False, blocking=True))
    assert seen(world.store) == []
    assert world.store.unread_notifications() == 0
    [like] = world.add(BOB, vote(mine, expression="❤️"))  # liked again: a new notification
    assert seen(world.store) == [("reaction", like, mine)]


def test_a_muted_feed_is_left_out_until_unmuted(world: World) -> None:
    mine = world.mine(post("my post"))
    [reply] = world.add(BOB, post("from bob", root=mine))
    [like] = world.add(CAROL, vote(mine))
    world.store.mute(BOB.public, 1)
    assert seen(world.store) == [("reaction", like, mine)]
    assert world.store.unread_notifications() == 1
    assert world.store.mark_notifications_read(world.received) == 1  # bob's is not counted
    world.store.unmute(BOB.public)
    assert seen(world.store) == [("reaction", like, mine), ("reply", reply, mine)]
    assert [n.read for n in world.store.notifications()] == [True, True]


def test_deleted_sources_and_targets_take_their_notifications(world: World) -> None:
    mine = world.mine(post("my post"))
    other = world.mine(post("another"))
    [reply, like] = world.add(BOB, post("re", root=mine), vote(mine))
    [kept] = world.add(CAROL, post("re other", root=other))
    world.add(BOB, {"type": "delete", "delete": reply})  # bob takes his reply back
    assert seen(world.store) == [("reply", kept, other), ("reaction", like, mine)]
    world.mine({"type": "delete", "delete": mine})  # we delete our post: its like goes
    assert seen(world.store) == [("reply", kept, other)]
    world.add(CAROL, post("re deleted", root=mine))  # a reply to it now tells nothing
    assert seen(world.store) == [("reply", kept, other)]
    before = table(world.store)
    world.store.rebuild("notifications")
    assert table(world.store) == before


def test_a_blocked_feed_is_purged(world: World) -> None:
    mine = world.mine(post("my post"))
    world.add(BOB, post("re", root=mine), contact(ME))
    [like] = world.add(CAROL, vote(mine))
    world.store.purge_feed(BOB.public)
    assert seen(world.store) == [("reaction", like, mine)]


def test_unread_and_the_read_mark(world: World) -> None:
    mine = world.mine(post("my post"))
    [first] = world.add(BOB, post("one", root=mine), received=7_000)
    [second] = world.add(CAROL, post("two", root=mine), received=8_000)
    store = world.store
    assert store.unread_notifications() == 2 and store.notifications_read_mark() == 0
    assert store.mark_notifications_read(7_000) == 1
    assert [(n.message.key, n.read) for n in store.notifications()] == [
        (second, False),
        (first, True),
    ]
    assert [n.message.key for n in store.notifications(unread_only=True)] == [second]
    assert store.mark_notifications_read(6_000) == 0  # the mark never moves back
    assert store.notifications_read_mark() == 7_000
    # An entry received late that claims an old time is still unread.
    world.clock = 0
    [late] = world.add(BOB, post("late", root=mine), received=9_000)
    assert store.notifications()[-1].message.key == late  # it sorts oldest
    assert store.unread_notifications() == 2
    store.rebuild("notifications")  # the mark is not the view's: a rebuild keeps it
    assert store.unread_notifications() == 2
    assert store.mark_notifications_read(9_000) == 2 and store.unread_notifications() == 0
    assert all(n.read for n in store.notifications()) and late in seen_ids(store)


def seen_ids(store: Store) -> list[str]:
    return [n.message.key for n in store.notifications()]


def test_paging_newest_first(world: World) -> None:
    mine = world.mine(post("my post"))
    ids = world.add(BOB, *(post(f"reply {i}", root=mine) for i in range(7)))
    store = world.store
    page = store.notifications(limit=3)
    assert [n.message.key for n in page] == ids[::-1][:3]
    older = store.notifications(limit=3, before=_sort_ts(page[-1]))
    assert [n.message.key for n in older] == ids[::-1][3:6]


def _sort_ts(n: Notification) -> int:
    return min(n.message.timestamp, n.message.received)


def test_one_batch_many_batches_and_a_rebuild_agree(tmp_path: Path) -> None:
    """The same entries indexed in one batch, one entry per batch, and rebuilt."""
    source = World(Store.open(tmp_path / "source.sqlite", owner=ME))
    root = source.mine(post("root"))
    [carols] = source.add(CAROL, post("carol's thread"))
    reply_in = source.mine(post("we reply in carol's", root=carols))
    source.add(
        BOB,
        post("re", root=root),
        vote(root, expression="🔥"),
        vote(root, 0),
        vote(root),
        contact(ME),
        post("in carol's", root=carols, branch=reply_in),
        {"type": "repost", "repost": root},
        post("hey", mentions=[{"link": ME.feed_id}]),
    )
    source.add(CAROL, post("me too", root=carols), contact(ME), contact(ME, following=False))
    rows = source.store._conn.execute(
        "SELECT raw, content, rx_ts FROM entries ORDER BY rx"
    ).fetchall()
    expected = table(source.store)
    assert len(seen(source.store)) == 7
    source.store.rebuild("notifications")
    assert table(source.store) == expected
    source.store.close()
    for name, size in (("whole", len(rows)), ("single", 1)):
        with Store.open(tmp_path / f"{name}.sqlite", owner=ME) as other:
            for i in range(0, len(rows), size):
                chunk = rows[i : i + size]
                result = other.append_batch([(r, c) for r, c, _ts in chunk], now_ms=chunk[0][2])
                assert not result.errors
            if name == "whole":  # one receive time, entries grouped by feed: the rest agrees
                assert [r[:8] for r in table(other) if len(r) > 3] == [
                    r[:8] for r in expected if len(r) > 3
                ]
            else:
                assert table(other) == expected


def test_a_store_opened_without_its_owner_keeps_no_notifications(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with Store.open(path, owner=ME) as s:
        world = World(s)
        mine = world.mine(post("my post"))
        world.add(BOB, post("re", root=mine))
        assert s.unread_notifications() == 1
    with Store.open(path) as s:
        with pytest.raises(StorageError, match="opened by its owner"):
            s.notifications()
    with Store.open(path, owner=ME) as s:  # rebuilt at the owner's next opening
        assert [n.target for n in s.notifications()] == [parse_message_id(mine)]


# What an entry says: (author: 0 us, 1 bob, 2 carol; what; which earlier message; new batch?)
steps = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(["post", "reply", "like", "unlike", "repost", "follow", "unfollow"]),
        st.integers(0, 30),
        st.booleans(),
    ),
    max_size=30,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
def test_batches_and_a_rebuild_agree(
    tmp_path: Path, steps: list[tuple[int, str, int, bool]]
) -> None:
    """Whatever the entries and however they are split into batches, a rebuild gives the
    rows indexing gave."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        world = World(Store.open(Path(folder) / "s.sqlite", owner=ME))
        ids: list[str] = []
        batch: list[tuple[bytes, bytes]] = []

        def flush() -> None:
            if batch:
                result = world.store.append_batch(batch, now_ms=world.tick())
                assert not result.errors
                ids.extend(message_id(a.entry.id) for a in result.stored)
                batch.clear()

        for who, what, pick, new_batch in steps:
            if new_batch:
                flush()
            target = ids[pick % len(ids)] if ids else None
            if what == "post" or target is None:
                content = post(f"hi {ME.feed_id}" if pick % 3 == 0 else "hi")
            elif what == "reply":
                content = post("re", root=target, branch=target)
            elif what in ("like", "unlike"):
                content = vote(target, 1 if what == "like" else 0)
            elif what == "repost":
                content = {"type": "repost", "repost": target}
            else:
                content = contact(ME, following=what == "follow")
            if who == 0:
                flush()
                ids.append(world.mine(content))
            else:
                batch.extend(world.signed((BOB, CAROL)[who - 1], content))
        flush()
        indexed = table(world.store)
        world.store.rebuild("notifications")
        assert table(world.store) == indexed
        world.store.close()
