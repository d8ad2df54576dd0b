"""like / unlike / likes, in-process (the same methods the socket serves)."""

from __future__ import annotations

import pytest

from p2psocial.api.local import LocalCaller
from p2psocial.errors import RpcError
from p2psocial.proto.jsonrpc import INVALID_CONTENT, INVALID_ID, INVALID_PARAMS
from tests.helpers import make_keys


def test_like_unlike_and_likes(caller: LocalCaller) -> None:
    me = caller.call("whoami")["feed_id"]
    post = caller.call("post", text="like me")["id"]
    first = caller.call("like", id=post)
    assert first["changed"] and first["likes"] == 1
    assert first["message"]["content"] == {"type": "vote", "vote": {"link": post, "value": 1}}
    assert caller.call("like", id=post) == {
        "id": post,
        "changed": False,
        "message": None,
        "likes": 1,
    }
    again = caller.call("like", id=post, emoji="🎉")  # a new expression is a new vote
    assert again["changed"] and again["likes"] == 1
    assert caller.call("likes", id=post) == {
        "id": post,
        "likes": 1,
        "by": [{"feed_id": me, "expression": "🎉"}],
    }
    gone = caller.call("unlike", id=post)
    assert gone["changed"] and gone["likes"] == 0
    assert caller.call("unlike", id=post)["changed"] is False
    assert caller.call("likes", id=post)["likes"] == 0


def test_like_errors(caller: LocalCaller) -> None:
    with pytest.raises(RpcError) as info:
        caller.call("like", id="%nope")
    assert info.value.code == INVALID_ID and info.value.data["param"] == "id"
    post = caller.call("post", text="x")["id"]
    with pytest.raises(RpcError) as info:
        caller.call("like", id=post, emoji="two words")
    assert info.value.code == INVALID_CONTENT
    secret = caller.call("private.publish", to=[make_keys(2).feed_id], text="psst")["id"]
    with pytest.raises(RpcError) as info:
        caller.call("like", id=secret)
    assert info.value.code == INVALID_PARAMS and "private message" in info.value.message
