"""The ``posts`` view on stores built from several real feeds: the timeline of followed
feeds, edits (only the author's, the latest wins), reposts shown from the entry they carry,
deleted posts shown as deleted, and cards with their counts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from p2psocial.api.cards import cards, history, threaded
from p2psocial.errors import NotFound
from p2psocial.identity import message_id
from p2psocial.msgtypes.contact import contact_content
from p2psocial.msgtypes.delete import delete_content
from p2psocial.msgtypes.edit import edit_content
from p2psocial.msgtypes.repost import repost_content
from p2psocial.msgtypes.vote import vote_content
from p2psocial.store.store import Store
from tests.helpers import make_keys, signed_feed

ME, ALICE, BOB, CAROL = make_keys(1), make_keys(2), make_keys(3), make_keys(4)
NOW = 2_000_000_000_000


def _id(item: tuple[bytes, bytes]) -> bytes:
    return hashlib.sha256(item[0]).digest()


def _texts(store: Store) -> list[str | None]:
    page = store.timeline_page(ME.public, limit=50)
    return [c["text"] for c in cards(store, ME.public, [m for _t, m in page])]


def test_the_timeline_is_posts_and_reposts_of_followed_feeds(tmp_path: Path) -> None:
    alice = signed_feed(
        ALICE,
        [
            {"type": "post", "text": "alice one"},
            {"type": "about", "about": ALICE.feed_id, "name": "Alice"},
            {"type": "x-unknown", "text": "not a post"},
            {"type": "post", "text": "alice two"},
        ],
    )
    bob = signed_feed(BOB, [{"type": "post", "text": "bob, not followed"}])
    with Store.open(tmp_path / "s.sqlite", owner=ME) as store:
        assert not store.append_batch(alice + bob, NOW).errors
        assert _texts(store) == []  # nobody followed yet
        store.publish(ME, contact_content(ALICE.public, following=True, blocking=False), NOW)
        store.publish(ME, {"type": "post", "text": "mine"}, NOW + 1)
        assert _texts(store) == ["mine", "alice two", "alice one"]
        # paging: before the sort time of the second item
        page = store.timeline_page(ME.public, limit=1, before=1004)
        assert [m.text for _t, m in page] == ["alice one"]
        assert store.mute(ALICE.public, NOW)
        assert _texts(store) == ["mine"]  # muted: hidden, still stored
        assert store.feed(ALICE.public) != []


def test_edits_only_the_authors_latest_wins_and_history(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", owner=ME) as store:
        store.publish(ME, contact_content(ALICE.public, following=True, blocking=False), NOW)
        first = signed_feed(ALICE, [{"type": "post", "text": "helo"}])
        target = message_id(_id(first[0]))
        rest = signed_feed(
            ALICE,
            [
                {"type": "post", "text": "helo"},
                edit_content(target, "hello"),
                edit_content(target, "hello!"),
            ],
        )
        # Bob "edits" Alice's post: stored, never used
        forged = signed_feed(BOB, [edit_content(target, "bob was here")])
        assert not store.append_batch(rest + forged, NOW).errors
        assert _texts(store) == ["hello!"]
        card = history(store, ME.public, _id(first[0]))
        assert card["edited"] is True
        assert [v["text"] for v in card["history"]] == ["helo", "hello", "hello!"]
        # after a rebuild, the same
        store.rebuild("posts")
        assert _texts(store) == ["hello!"]


def test_a_repost_is_shown_from_the_entry_it_carries(tmp_path: Path) -> None:
    original = signed_feed(CAROL, [{"type": "post", "text": "carol's words"}])[0]
    target = message_id(_id(original))
    forged_body = original[1].replace(b"words", b"lies!")
    alice = signed_feed(
        ALICE,
        [
            repost_content(target, comment="worth reading", original=original),
            {"type": "repost", "repost": target, "entry": original[0], "content": forged_body},
            repost_content(message_id(b"\x09" * 32)),  # an original nobody holds
        ],
    )
    with Store.open(tmp_path / "s.sqlite", owner=ME) as store:
        store.publish(ME, contact_content(ALICE.public, following=True, blocking=False), NOW)
        assert not store.append_batch(alice, NOW).errors  # Carol's feed is not replicated
        page = store.timeline_page(ME.public)
        shown = cards(store, ME.public, [m for _t, m in page])
        unknown, forged, good = shown
        assert good["repost"]["held"] is True and good["repost"]["comment"] == "worth reading"
        assert good["repost"]["message"]["text"] == "carol's words"
        assert good["repost"]["message"]["author"] == CAROL.feed_id
        # the forged copy is not used: the honest carried one is shown for both
        assert forged["repost"]["message"]["text"] == "carol's words"
        assert unknown["repost"] == {
            "id": message_id(b"\x09" * 32),
            "comment": None,
            "held": False,
            "message": None,
        }
        with pytest.raises(NotFound):  # shown from the carried copy: the original is not held
            store.get(_id(original))
    # once Carol deletes it and that reaches us, the carried copy is no longer shown
    delete = signed_feed(CAROL, [{"type": "post", "text": "carol's words"}, delete_content(target)])
    with Store.open(tmp_path / "s.sqlite", owner=ME) as store:
        assert not store.append_batch(delete, NOW).errors
        page = store.timeline_page(ME.public)
        good = cards(store, ME.public, [m for _t, m in page])[-1]
        assert good["repost"]["message"]["deleted"] is True
        assert good["repost"]["message"]["text"] is None


def test_deleted_posts_show_as_deleted_and_counts(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", owner=ME) as store:
        store.publish(ME, contact_content(ALICE.public, following=True, blocking=False), NOW)
        post = store.publish(ME, {"type": "post", "text": "count me"}, NOW + 1).entry
        gone = store.publish(ME, {"type": "post", "text": "oops"}, NOW + 2).entry
        pid = message_id(post.id)
        alice = signed_feed(
            ALICE,
            [
                {"type": "post", "text": "re", "root": pid},
                vote_content(pid, 1),
                repost_content(pid),
            ],
        )
        bob = signed_feed(BOB, [vote_content(pid, 1), vote_content(pid, 0)])
        assert not store.append_batch(alice + bob, NOW).errors
        store.publish(ME, delete_content(message_id(gone.id)), NOW + 3)
        for _ in range(2):  # incrementally, then rebuilt from the entries
            page = store.timeline_page(ME.public)
            shown = {c["id"]: c for c in cards(store, ME.public, [m for _t, m in page])}
            assert shown[message_id(gone.id)]["deleted"] is True
            assert shown[message_id(gone.id)]["text"] is None
            assert shown[pid]["counts"] == {"replies": 1, "likes": 1, "reposts": 1}
            store.rebuild("posts")


def test_threads_indent_by_who_answered_whom(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", owner=ME) as store:
        root = store.publish(ME, {"type": "post", "text": "root"}, NOW).entry
        rid = message_id(root.id)
        a = signed_feed(ALICE, [{"type": "post", "text": "a", "root": rid, "branch": rid}])
        aid = message_id(_id(a[0]))
        b = signed_feed(BOB, [{"type": "post", "text": "b", "root": rid, "branch": aid}])
        c = signed_feed(CAROL, [{"type": "post", "text": "c", "root": rid}])
        assert not store.append_batch(a + b + c, NOW).errors
        shown = threaded(cards(store, ME.public, store.thread(root.id)))
        assert [(x["text"], x["depth"]) for x in shown] == [
            ("root", 0),
            ("a", 1),
            ("b", 2),
            ("c", 1),
        ]
        assert shown[2]["parent"] == aid and shown[0]["parent"] is None
