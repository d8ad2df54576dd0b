"""#12: ``channel`` and ``channels``, and ``post``'s ``channel`` and ``cw``, in-process
(LocalCaller: the same method bodies the daemon's socket runs)."""

from __future__ import annotations

import pytest

from p2psocial.errors import RpcError
from p2psocial.proto.jsonrpc import INVALID_PARAMS
from tests.helpers import make_keys, post

BOB = make_keys(72)


def test_post_in_a_channel_behind_a_warning(world) -> None:
    caller, _feeds = world
    posted = caller.call("post", text="the ending #Films", channel="#Spoilers", cw="plot")
    assert posted["content"] == {
        "type": "post",
        "text": "the ending #Films",
        "channel": "Spoilers",
        "cw": "plot",
    }
    for name in ("spoilers", "films"):
        assert [m["id"] for m in caller.call("channel", name=name)] == [posted["id"]]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"channel": "two words"}, "channel"),
        ({"channel": "#"}, "channel"),
        ({"channel": "x" * 70}, "channel"),
        ({"channel": 5}, "channel"),
        ({"cw": "   "}, "cw"),
        ({"cw": "w" * 201}, "cw"),
        ({"mention_names": "yes"}, "mention_names"),
    ],
)
def test_post_params_are_checked(world, params: dict[str, object], param: str) -> None:
    caller, _feeds = world
    with pytest.raises(RpcError) as info:
        caller.call("post", text="x", **params)
    assert info.value.code == INVALID_PARAMS and info.value.data["param"] == param
    assert caller.call("feed") == []  # nothing was published


def test_channel_pages_newest_first_and_channels_count(world) -> None:
    caller, feeds = world
    feeds.add(BOB, *(post(f"#Bread loaf {n}") for n in range(5)), post("#cake"))
    mine = caller.call("post", text="my #bread")
    page = caller.call("channel", name="#BREAD", limit=4)
    assert [m["content"]["text"] for m in page] == [
        "my #bread",
        "#Bread loaf 4",
        "#Bread loaf 3",
        "#Bread loaf 2",
    ]
    assert {k: page[0][k] for k in mine} == mine  # a card: the message form and more
    assert page[0]["sort_ts"] == min(mine["timestamp"], mine["received"])
    before = min(page[-1]["timestamp"], page[-1]["received"])
    rest = caller.call("channel", name="bread", before=before)
    assert [m["content"]["text"] for m in rest] == ["#Bread loaf 1", "#Bread loaf 0"]
    assert caller.call("channel", name="nothing-here") == []
    assert caller.call("channels") == [
        {"name": "bread", "count": 6, "latest": mine["timestamp"]},
        {"name": "cake", "count": 1, "latest": 6000},
    ]
    assert caller.call("channels", limit=1)[0]["name"] == "bread"


@pytest.mark.parametrize(
    ("method", "params", "param"),
    [
        ("channel", {}, "name"),
        ("channel", {"name": "a b"}, "name"),
        ("channel", {"name": "x" * 100}, "name"),
        ("channel", {"name": "x", "limit": 0}, "limit"),
        ("channel", {"name": "x", "before": -1}, "before"),
        ("channel", {"name": "x", "page": 2}, "page"),
        ("channels", {"limit": 1001}, "limit"),
        ("channels", {"name": "x"}, "name"),
    ],
)
def test_channel_params_are_checked(
    world, method: str, params: dict[str, object], param: str
) -> None:
    caller, _feeds = world
    with pytest.raises(RpcError) as info:
        caller.call(method, **params)
    assert info.value.code == INVALID_PARAMS and info.value.data["param"] == param
