"""``delete``: rules, and what a store does with one (content dropped, views forget)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from p2psocial.errors import UnpublishableContent
from p2psocial.identity import message_id
from p2psocial.msgtypes.delete import delete_content
from p2psocial.msgtypes.registry import check_publish
from p2psocial.msgtypes.vote import vote_content
from p2psocial.store.store import Store
from tests.helpers import make_keys, signed_feed

A, B = make_keys(1), make_keys(2)
NOW = 2_000_000_000_000


_feed = signed_feed


def _id(item: tuple[bytes, bytes]) -> str:
    import hashlib

    return message_id(hashlib.sha256(item[0]).digest())


def _rows(store: Store) -> dict[str, list[Any]]:
    tables = ("links", "votes", "deletions")
    return {t: sorted(store._conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}


def test_rules() -> None:
    check_publish(delete_content(message_id(b"\x01" * 32), "typo"))
    with pytest.raises(UnpublishableContent, match="message id"):
        check_publish({"type": "delete", "delete": "@x"})
    with pytest.raises(UnpublishableContent, match="reason"):
        check_publish({"type": "delete", "delete": message_id(b"\x01" * 32), "reason": 5})


def test_a_delete_drops_content_and_what_came_of_it(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite") as store:
        post = store.publish(A, {"type": "post", "text": "oops"}, NOW).entry
        pid = message_id(post.id)
        reply = store.publish(A, {"type": "post", "text": "re", "root": pid}, NOW).entry
        store.publish(B, vote_content(pid, 1), NOW)
        liked = store.publish(A, vote_content(message_id(reply.id), 1), NOW).entry
        assert len(store.thread(post.id)) == 2
        # someone else's delete is refused when we publish it...
        with pytest.raises(UnpublishableContent, match="only your own"):
            store.publish(B, delete_content(pid), NOW)
        # ...the author's own goes through
        store.publish(A, delete_content(message_id(reply.id)), NOW)
        store.publish(A, delete_content(message_id(liked.id)), NOW)
        shown = store.get(reply.id)
        assert shown.deleted and shown.content is None
        assert [m.id for m in store.thread(post.id)] == [post.id]  # the reply left the thread
        assert store.likes(reply.id) == []  # A's like (now deleted) no longer counts
        assert store.missing_content() == {}  # never asked for again
        before = {
            t: store._conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("links", "votes")
        }
        for view in ("links", "votes", "contacts", "deletions"):
            store.rebuild(view)
        after = {
            t: store._conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("links", "votes")
        }
        assert before == after


def test_a_delete_that_arrives_first_waits_for_its_target(tmp_path: Path) -> None:
    feed = _feed(A, [{"type": "post", "text": "soon gone"}])
    target = feed[0]
    with_delete = _feed(A, [{"type": "post", "text": "soon gone"}, delete_content(_id(target))])
    forged = _feed(B, [delete_content(_id(target))])  # B deleting A's post: not applied
    with Store.open(tmp_path / "s.sqlite") as store:
        assert not store.append_batch(forged, NOW).errors
        assert not store.append_batch([target], NOW).errors
        assert store.feed(A.public)[0].text == "soon gone"  # the forged delete did nothing
        assert not store.append_batch(with_delete[1:], NOW).errors
        held = store.feed(A.public)
        assert held[0].deleted and held[0].content is None and not held[1].deleted
    # A peer that already dropped the content sends the entry alone; the delete is known.
    with Store.open(tmp_path / "c.sqlite") as store:
        assert not store.append_batch([with_delete[1], (target[0], None)], NOW).errors
        assert store.feed(A.public)[0].deleted
        # a stale copy with the content is not taken back in
        result = store.append_batch([target], NOW)
        assert not result.filled and store.feed(A.public)[0].content is None


def test_deleting_in_the_same_batch_never_shows_the_content(tmp_path: Path) -> None:
    post = _feed(A, [{"type": "post", "text": "never seen"}])[0]
    both = _feed(A, [{"type": "post", "text": "never seen"}, delete_content(_id(post))])
    with Store.open(tmp_path / "s.sqlite") as store:
        result = store.append_batch(both, NOW)
        assert result.stored[0].content is None and result.stored[0].value is None
        assert store.feed(A.public)[0].deleted


def test_a_delete_is_for_good(tmp_path: Path) -> None:
    """A delete of a delete is refused when we publish it and ignored when received: the
    first delete stays applied, also after a rebuild (its target never comes back)."""
    with Store.open(tmp_path / "s.sqlite") as store:
        post = store.publish(A, {"type": "post", "text": "gone for good"}, NOW).entry
        first = store.publish(A, delete_content(message_id(post.id)), NOW).entry
        with pytest.raises(UnpublishableContent, match="for good"):
            store.publish(A, delete_content(message_id(first.id)), NOW)
    two = _feed(B, [{"type": "post", "text": "b's"}])
    two = _feed(B, [{"type": "post", "text": "b's"}, delete_content(_id(two[0]))])
    three = _feed(
        B,
        [{"type": "post", "text": "b's"}, delete_content(_id(two[0])), delete_content(_id(two[1]))],
    )
    with Store.open(tmp_path / "t.sqlite") as store:
        assert not store.append_batch(three, NOW).errors
        for _ in range(2):
            assert store.get(hashlib.sha256(three[0][0]).digest()).deleted
            assert store.get(hashlib.sha256(three[1][0]).digest()).content is not None
            store.rebuild("deletions")
