"""#12: ``profile``, ``profile.set``, ``name.set`` and ``names``, in-process (LocalCaller)."""

from __future__ import annotations

import pytest

from p2psocial.api.local import LocalCaller
from p2psocial.errors import RpcError
from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.identity import blob_id
from p2psocial.msgtypes.names import short_key
from p2psocial.proto.jsonrpc import INVALID_CONTENT, INVALID_ID, INVALID_PARAMS
from tests.helpers import make_keys

BOB = make_keys(2)


def test_profile_set_publishes_an_about(caller: LocalCaller) -> None:
    me = caller.call("whoami")["feed_id"]
    empty = caller.call("profile")
    assert empty == {
        "feed_id": me,
        "name": None,
        "bio": None,
        "avatar": None,
        "petname": None,
        "display_name": me[:9] + "…",
    }
    avatar = blob_id(b"\x03" * 32)
    result = caller.call("profile.set", name="Alice", bio="hello", avatar=avatar)
    assert result["message"]["content"] == {
        "type": "about",
        "about": me,
        "name": "Alice",
        "bio": "hello",
        "avatar": avatar,
    }
    assert result["profile"]["display_name"] == "Alice"
    caller.call("profile.set", bio="changed")
    assert caller.call("profile", feed_id=me) == {
        **empty,
        "name": "Alice",
        "bio": "changed",
        "avatar": avatar,
        "display_name": "Alice",
    }


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"name": ""}, "name"),
        ({"name": "a\x1bb"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"bio": "b" * 1001}, "bio"),
        ({"avatar": "&nope"}, "avatar"),
        ({"name": 5}, "name"),
        ({"nick": "x"}, "nick"),
    ],
)
def test_profile_set_refuses_what_breaks_a_rule(
    caller: LocalCaller, params: dict[str, object], param: str
) -> None:
    with pytest.raises(RpcError) as info:
        caller.call("profile.set", **params)
    assert info.value.code == INVALID_PARAMS and info.value.data["param"] == param
    assert caller.call("timeline") == []  # nothing was published


def test_nothing_to_set_and_an_about_of_another_feed_are_refused(caller: LocalCaller) -> None:
    with pytest.raises(RpcError) as info:
        caller.call("profile.set")
    assert info.value.code == INVALID_CONTENT
    with pytest.raises(RpcError) as info:
        caller.call("publish", content={"type": "about", "about": BOB.feed_id, "name": "B"})
    assert info.value.code == INVALID_CONTENT and "your own feed id" in info.value.message


def test_petnames_set_clear_and_names(home_store) -> None:
    home, keys, s = home_store
    caller = LocalCaller(home, keys, s)
    data = encode_content({"type": "about", "about": BOB.feed_id, "name": "Bob"})
    s.append_batch([(create_entry(BOB, 1, None, 1_000, data).raw, data)], now_ms=2_000)
    carol = make_keys(3).feed_id
    assert caller.call("names", feed_ids=[BOB.feed_id, carol]) == {
        BOB.feed_id: "Bob",
        carol: short_key(make_keys(3).public),
    }
    set_ = caller.call("name.set", feed_id=BOB.feed_id, petname="brother")
    assert set_["changed"] is True and set_["petname"] == "brother"
    assert set_["name"] == "Bob" and set_["display_name"] == "brother"
    assert caller.call("name.set", feed_id=BOB.feed_id, petname="brother")["changed"] is False
    assert caller.call("names", feed_ids=[BOB.feed_id]) == {BOB.feed_id: "brother"}
    assert caller.call("feed", feed_id=keys.feed_id) == []  # nothing of ours published
    cleared = caller.call("name.set", feed_id=BOB.feed_id, petname=None)
    assert cleared["changed"] is True and cleared["petname"] is None
    assert caller.call("names", feed_ids=[BOB.feed_id]) == {BOB.feed_id: "Bob"}


def test_name_params_are_checked(caller: LocalCaller) -> None:
    with pytest.raises(RpcError) as info:
        caller.call("name.set", feed_id=BOB.feed_id)
    assert info.value.code == INVALID_PARAMS and info.value.data["param"] == "petname"
    with pytest.raises(RpcError) as info:
        caller.call("name.set", feed_id=BOB.feed_id, petname="a\u202eb")
    assert info.value.code == INVALID_PARAMS and info.value.data["param"] == "petname"
    with pytest.raises(RpcError) as info:
        caller.call("name.set", feed_id="@nope", petname="x")
    assert info.value.code == INVALID_ID and info.value.data["param"] == "feed_id"
    with pytest.raises(RpcError) as info:
        caller.call("names", feed_ids=["@nope"])
    assert info.value.code == INVALID_ID and info.value.data["param"] == "feed_ids"
    with pytest.raises(RpcError) as info:
        caller.call("names", feed_ids=[BOB.feed_id] * 1001)
    assert info.value.code == INVALID_PARAMS
    with pytest.raises(RpcError) as info:
        caller.call("profile", feed_id="@nope")
    assert info.value.code == INVALID_ID


def test_profile_by_name(world) -> None:
    caller, feeds = world
    feeds.add(BOB, {"type": "about", "about": BOB.feed_id, "name": "Bobby"})
    assert caller.call("profile", name="bobby")["feed_id"] == BOB.feed_id
    assert caller.call("profile", name="@Bobby")["name"] == "Bobby"
    with pytest.raises(RpcError) as info:
        caller.call("profile", name="nobody")
    assert info.value.data["param"] == "name" and "nobody" in info.value.message
    with pytest.raises(RpcError) as info:
        caller.call("profile", name="Bobby", feed_id=BOB.feed_id)
    assert info.value.data["param"] == "feed_id"
