"""#12: the ``channels`` view on a store holding several real feeds: a post's channel
field and #tags, folding, edits, deletes, blocks, mutes, paging, and rebuilds."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from p2psocial.identity import message_id
from p2psocial.msgtypes.delete import delete_content
from p2psocial.msgtypes.edit import edit_content
from p2psocial.store.store import Store
from tests.helpers import Feeds, make_keys, post

ME, BOB, CAROL = (make_keys(n) for n in range(51, 54))
NOW = 10_000_000


def texts(store: Store, name: str, **kw: Any) -> list[str]:
    found = []
    for m in store.channel_posts(name, **kw):
        assert isinstance(m.content, dict)
        found.append(m.content["text"])
    return found


def rows(store: Store) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(store.path)
    try:
        return conn.execute("SELECT * FROM channels ORDER BY channel, msg").fetchall() + [
            ("edit", *r) for r in conn.execute("SELECT * FROM channel_edits ORDER BY author, seq")
        ]
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(tmp_path / "store.sqlite", owner=ME)
    yield s
    s.close()


def test_a_post_is_in_its_channel_field_and_its_tags(store: Store) -> None:
    feeds = Feeds(store)
    feeds.add(BOB, post("about bread", channel="Baking"))
    feeds.add(CAROL, post("sourdough #baking #bread, again #Bread"), post("no tags here"))
    feeds.add(BOB, post("a#b, &#1; and http://x.org/#anchor are not tags"))
    assert texts(store, "baking") == ["sourdough #baking #bread, again #Bread", "about bread"]
    assert texts(store, "bread") == ["sourdough #baking #bread, again #Bread"]
    assert store.channels() == [("baking", 2, 2000), ("bread", 1, 2000)]


def test_names_are_folded_and_a_hash_is_optional(store: Store) -> None:
    feeds = Feeds(store)
    feeds.add(BOB, post("#\uff23\uff21\uff26É time"), post("x", channel="#Café"), post("#café"))
    assert store.channels() == [("café", 3, 3000)]
    for asked in ("café", "#CAFÉ", "\uff23afé", "CAFE\u0301"):
        assert len(store.channel_posts(asked)) == 3, asked
    assert store.channel_posts("not a name!") == []
    assert store.channel_posts("") == []


def test_an_edit_by_the_author_changes_the_tags(store: Store) -> None:
    feeds = Feeds(store)
    [target] = feeds.add(BOB, post("first #old", channel="kept"))
    feeds.add(BOB, edit_content(target, "second #new"))
    assert texts(store, "old") == []
    assert texts(store, "new") == ["first #old"]  # the message itself, as stored
    assert len(store.channel_posts("kept")) == 1  # its own channel field stays
    # Someone else's edit of it changes nothing.
    feeds.add(CAROL, edit_content(target, "hijacked #spam"))
    assert texts(store, "spam") == [] and len(store.channel_posts("new")) == 1
    # A later edit wins; deleting it brings the one before back.
    [later] = feeds.add(BOB, edit_content(target, "third #newer"))
    assert [name for name, _n, _t in store.channels()] == ["kept", "newer"]
    feeds.add(BOB, delete_content(later))
    assert [name for name, _n, _t in store.channels()] == ["kept", "new"]


def test_an_edit_in_the_same_batch_and_one_before_the_posts_content(store: Store) -> None:
    feeds = Feeds(store)
    items = feeds.entries(BOB, post("#one"))
    target = message_id(store.append_batch([(items[0][0], None)], now_ms=NOW).stored[0].entry.id)
    assert store.channels() == []  # held without content
    feeds.add(BOB, edit_content(target, "#two"))
    assert store.channels() == []
    store.append_batch(items, now_ms=NOW)  # the content arrives
    assert [name for name, _n, _t in store.channels()] == ["two"]
    first = feeds.entries(CAROL, post("#a"))
    edit = feeds.entries(CAROL, edit_content(message_id(_entry_id(first[0][0])), "#b"))
    store.append_batch(first + edit, now_ms=NOW)
    assert [name for name, _n, _t in store.channels()] == ["b", "two"]


def _entry_id(raw: bytes) -> bytes:
    from p2psocial.feed.formats import decode_entry

    return decode_entry(raw).id


def test_deleting_a_post_or_blocking_its_author_drops_it(store: Store) -> None:
    feeds = Feeds(store)
    [gone, kept] = feeds.add(BOB, post("#topic one"), post("#topic two"))
    feeds.add(CAROL, post("#topic three"), post("#other"))
    feeds.add(BOB, delete_content(gone))
    assert texts(store, "topic") == ["#topic three", "#topic two"]
    store.purge_feed(CAROL.public)
    assert texts(store, "topic") == ["#topic two"]
    assert store.channels() == [("topic", 1, 2000)]
    assert kept


def test_muted_authors_are_left_out(store: Store) -> None:
    feeds = Feeds(store)
    feeds.add(BOB, post("#news bob"))
    feeds.add(CAROL, post("#news carol"), post("#gossip carol"))
    assert store.mute(CAROL.public, NOW)
    assert texts(store, "news") == ["#news bob"] and texts(store, "gossip") == []
    assert store.channels() == [("news", 1, 1000)]
    assert store.unmute(CAROL.public)
    assert texts(store, "news") == ["#news carol", "#news bob"]


def test_paging_newest_first_by_sort_time(store: Store) -> None:
    feeds = Feeds(store)
    for n in range(7):
        feeds.add(BOB if n % 2 else CAROL, post(f"#page {n}"))
    assert texts(store, "page", limit=3) == ["#page 6", "#page 5", "#page 4"]
    last = store.channel_posts("page", limit=3)[-1]
    before = min(last.timestamp, last.received)
    assert texts(store, "page", limit=3, before=before) == ["#page 3", "#page 2", "#page 1"]
    assert texts(store, "page", before=2000) == ["#page 0"]
    assert texts(store, "page", before=1000) == []
    # A claimed time in the future sorts by when it was received.
    feeds.count = 10**9
    feeds.add(BOB, post("#page future"))
    assert texts(store, "page", limit=1) == ["#page future"]
    assert store.channel_posts("page", limit=1)[0].received == NOW
    assert store.channels(limit=1) == [("page", 8, NOW)]


def test_channels_most_used_first_then_by_name(store: Store) -> None:
    feeds = Feeds(store)
    feeds.add(BOB, post("#b #c"), post("#c #a"), post("#c #b"))
    assert store.channels() == [("c", 3, 3000), ("b", 2, 3000), ("a", 1, 2000)]
    assert store.channels(limit=2) == [("c", 3, 3000), ("b", 2, 3000)]


def test_rebuild_gives_the_same_rows(store: Store) -> None:
    feeds = Feeds(store)
    [a, b] = feeds.add(BOB, post("#x", channel="y"), post("#z"))
    feeds.add(BOB, edit_content(a, "#w"), edit_content(b, "#v"))
    [c] = feeds.add(CAROL, post("#x #u"))
    feeds.add(CAROL, edit_content(a, "#t"), delete_content(c))
    [last] = feeds.add(BOB, edit_content(a, "#s"))
    feeds.add(BOB, delete_content(last))
    before = rows(store)
    assert {r[0] for r in before if r[0] != "edit"} == {"w", "y", "v"}
    assert store.rebuild("channels") == 9
    assert rows(store) == before
