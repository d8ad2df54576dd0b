"""edit, repost, cards, history, timeline and thread as cards, in-process (the same
methods the socket serves)."""

from __future__ import annotations

import base64

import pytest

from p2psocial.api.local import LocalCaller
from p2psocial.errors import RpcError
from p2psocial.feed.formats import decode_entry
from p2psocial.proto.jsonrpc import INVALID_CONTENT, INVALID_ID, INVALID_PARAMS, NOT_FOUND
from p2psocial.store.store import Store
from tests.helpers import make_keys, signed_feed

BOB = make_keys(2)


def test_edit_your_own_post_and_read_its_history(caller: LocalCaller) -> None:
    post = caller.call("post", text="teh first")["id"]
    result = caller.call("edit", id=post, text="the first")
    assert result["message"]["content"] == {"type": "edit", "edit": post, "text": "the first"}
    assert result["post"]["text"] == "the first" and result["post"]["edited"] is True
    (card,) = caller.call("timeline")  # the edit itself is bookkeeping: not in the timeline
    assert card["id"] == post and card["text"] == "the first"
    assert card["content"]["text"] == "teh first"  # the signed content is unchanged
    shown = caller.call("history", id=post)
    assert [(v["text"], v["edit"]) for v in shown["history"]] == [
        ("teh first", False),
        ("the first", True),
    ]


def test_edit_errors(caller: LocalCaller, store_of: Store) -> None:
    bob_post = signed_feed(BOB, [{"type": "post", "text": "bob's"}])
    store_of.append_batch(bob_post, 2_000)
    bob_id = caller.call("feed", feed_id=BOB.feed_id)[0]["id"]
    with pytest.raises(RpcError) as info:
        caller.call("edit", id=bob_id, text="mine now")
    assert info.value.code == INVALID_CONTENT and "only your own" in info.value.message
    like = caller.call("like", id=bob_id)["message"]["id"]
    with pytest.raises(RpcError) as info:
        caller.call("edit", id=like, text="x")
    assert info.value.code == INVALID_CONTENT and "only posts" in info.value.message
    post = caller.call("post", text="soon gone")["id"]
    caller.call("delete", id=post)
    with pytest.raises(RpcError) as info:
        caller.call("edit", id=post, text="x")
    assert info.value.code == INVALID_CONTENT and "deleted" in info.value.message
    for params, code, param in (
        ({"id": "%nope", "text": "x"}, INVALID_ID, "id"),
        ({"id": like, "text": " "}, INVALID_PARAMS, "text"),
        ({"id": like}, INVALID_PARAMS, "text"),
        ({"id": like, "text": "x", "extra": 1}, INVALID_PARAMS, "extra"),
    ):
        with pytest.raises(RpcError) as info:
            caller.call("edit", **params)
        assert info.value.code == code and info.value.data["param"] == param


def test_repost_carries_the_original_and_counts(caller: LocalCaller, store_of: Store) -> None:
    store_of.append_batch(signed_feed(BOB, [{"type": "post", "text": "share me"}]), 2_000)
    caller.call("follow", feed_id=BOB.feed_id)
    original = caller.call("feed", feed_id=BOB.feed_id)[0]
    card = caller.call("repost", id=original["id"], comment="so true")
    content = card["content"]
    assert content["repost"] == original["id"] and content["comment"] == "so true"
    assert decode_entry(base64.b64decode(content["entry"])).author == BOB.public
    assert card["repost"]["held"] is True
    assert card["repost"]["message"]["text"] == "share me"
    assert card["repost"]["message"]["counts"]["reposts"] == 1
    timeline = caller.call("timeline")
    assert [c["id"] for c in timeline] == [card["id"], original["id"]]
    (shown,) = caller.call("cards", ids=[original["id"]])
    assert shown["counts"] == {"replies": 0, "likes": 0, "reposts": 1}
    # an original not held: the reference alone
    unknown = "%" + base64.b64encode(b"\x05" * 32).decode() + ".sha256"
    alone = caller.call("repost", id=unknown)
    assert "entry" not in alone["content"] and alone["repost"]["held"] is False


def test_repost_errors(caller: LocalCaller) -> None:
    secret = caller.call("private.publish", to=[BOB.feed_id], text="psst")["id"]
    with pytest.raises(RpcError) as info:
        caller.call("repost", id=secret)
    assert info.value.code == INVALID_PARAMS and "private message" in info.value.message
    post = caller.call("post", text="gone")["id"]
    caller.call("delete", id=post)
    with pytest.raises(RpcError) as info:
        caller.call("repost", id=post)
    assert info.value.code == INVALID_PARAMS and "deleted" in info.value.message
    with pytest.raises(RpcError) as info:
        caller.call("repost", id=post, comment="")
    assert info.value.data["param"] == "comment"
    with pytest.raises(RpcError) as info:
        caller.call("cards", ids=["%nope"])
    assert info.value.code == INVALID_ID
    with pytest.raises(RpcError) as info:
        caller.call("history", id="%" + "A" * 43 + "=.sha256")
    assert info.value.code == NOT_FOUND


def test_timeline_pages_by_sort_time_and_folds_nothing_itself(caller: LocalCaller) -> None:
    ids = [
        caller.call("post", text=f"n{i}", cw="spoiler" if i == 1 else None)["id"] for i in range(3)
    ]
    first = caller.call("timeline", limit=2)
    assert [c["id"] for c in first] == ids[:0:-1]
    assert first[1]["cw"] == "spoiler" and first[1]["text"] == "n1"  # clients fold it
    rest = caller.call("timeline", limit=2, before=first[-1]["sort_ts"])
    assert [c["id"] for c in rest] == [ids[0]]


def test_thread_cards_have_depth(caller: LocalCaller) -> None:
    root = caller.call("post", text="root")["id"]
    reply = caller.call("post", text="reply", root=root)["id"]
    deeper = caller.call("post", text="deeper", root=root, branch=reply)["id"]
    shown = caller.call("thread", root=root)
    assert [(c["id"], c["depth"], c["parent"]) for c in shown] == [
        (root, 0, None),
        (reply, 1, root),
        (deeper, 2, reply),
    ]
    assert shown[0]["counts"]["replies"] == 2
