"""#12: ``mute``, ``unmute``, ``mutes``, ``suggest``, and ``post`` resolving ``@NAME``s
(``mention_names``), in-process (LocalCaller: the same method bodies the daemon runs)."""

from __future__ import annotations

import pytest

from p2psocial.api.local import LocalCaller
from p2psocial.errors import RpcError
from p2psocial.msgtypes.contact import contact_content
from p2psocial.msgtypes.names import short_key
from p2psocial.proto.jsonrpc import INVALID_ID, INVALID_PARAMS
from tests.helpers import make_keys, post

ALICE, ALICE2, BOB, CAROL, DAVE = (make_keys(n) for n in range(81, 86))


def about(who, name: str) -> dict[str, object]:
    return {"type": "about", "about": who.feed_id, "name": name}


def follow(who) -> dict[str, object]:
    return contact_content(who.public, following=True, blocking=False)


def error(caller: LocalCaller, method: str, **params: object) -> RpcError:
    with pytest.raises(RpcError) as info:
        caller.call(method, **params)
    return info.value


def test_mute_unmute_and_mutes(world) -> None:
    caller, feeds = world
    feeds.add(BOB, about(BOB, "Bob"), post("#tea bob"))
    assert caller.call("mutes") == []
    assert caller.call("mute", feed_id=BOB.feed_id) == {"feed_id": BOB.feed_id, "changed": True}
    assert caller.call("mute", feed_id=BOB.feed_id)["changed"] is False
    assert caller.call("mutes") == [{"feed_id": BOB.feed_id, "display_name": "Bob"}]
    assert caller.call("channel", name="tea") == []  # hidden from my views
    assert caller.call("feed", feed_id=BOB.feed_id) != []  # still stored
    assert caller.call("unmute", name="@bob") == {"feed_id": BOB.feed_id, "changed": True}
    assert caller.call("unmute", feed_id=BOB.feed_id)["changed"] is False
    assert caller.call("mutes") == []
    assert len(caller.call("channel", name="tea")) == 1
    assert caller.call("mute", name="BOB")["feed_id"] == BOB.feed_id  # by the name shown
    assert caller.call("feed") == []  # nothing was ever published


def test_mute_errors(world) -> None:
    caller, feeds = world
    me = caller.call("whoami")["feed_id"]
    feeds.add(ALICE, about(ALICE, "Alice"))
    feeds.add(ALICE2, about(ALICE2, "alice"))
    for params, param in (
        ({"feed_id": me}, "feed_id"),
        ({}, "feed_id"),
        ({"feed_id": BOB.feed_id, "name": "x"}, "feed_id"),
        ({"feed_id": BOB.feed_id, "why": "x"}, "why"),
    ):
        e = error(caller, "mute", **params)
        assert (e.code, e.data["param"]) == (INVALID_PARAMS, param), params
    e = error(caller, "mute", feed_id="@nope")
    assert (e.code, e.data["param"]) == (INVALID_ID, "feed_id")
    e = error(caller, "unmute", name="alice")
    assert (e.code, e.data["param"]) == (INVALID_PARAMS, "name")
    assert "@alice is ambiguous" in e.message
    assert {c["feed_id"] for c in e.data["candidates"]["alice"]} == {
        ALICE.feed_id,
        ALICE2.feed_id,
    }
    assert "names no one you know" in error(caller, "mute", name="zed").message


def test_suggest_ranks_and_names(world) -> None:
    caller, feeds = world
    for friend in (ALICE, BOB):
        caller.call("follow", feed_id=friend.feed_id)
    feeds.add(ALICE, follow(CAROL), follow(DAVE))
    feeds.add(BOB, follow(CAROL), about(CAROL, "Caz"))
    assert caller.call("suggest") == [
        {"feed_id": CAROL.feed_id, "followed_by": 2, "display_name": "Caz"},
        {"feed_id": DAVE.feed_id, "followed_by": 1, "display_name": short_key(DAVE.public)},
    ]
    assert len(caller.call("suggest", limit=1)) == 1
    caller.call("mute", feed_id=CAROL.feed_id)
    assert [s["feed_id"] for s in caller.call("suggest")] == [DAVE.feed_id]
    for params in ({"limit": 0}, {"limit": 1001}, {"feed_id": DAVE.feed_id}):
        assert error(caller, "suggest", **params).code == INVALID_PARAMS


def test_post_resolves_names_in_the_text(world) -> None:
    caller, feeds = world
    [bobs] = feeds.add(BOB, about(BOB, "Bob"))
    caller.call("name.set", feed_id=CAROL.feed_id, petname="Cee")
    text = f"hi @bob, @cee and {DAVE.feed_id}; @bob again"
    posted = caller.call("post", text=text, mention_names=True, mentions=[bobs])
    assert posted["content"]["mentions"] == [bobs, BOB.feed_id, CAROL.feed_id, DAVE.feed_id]
    # Without mention_names the text is left as it is (the default for API clients).
    plain = caller.call("post", text="hi @nobody")
    assert "mentions" not in plain["content"]


def test_post_refuses_an_ambiguous_or_unknown_name_listing_the_candidates(world) -> None:
    caller, feeds = world
    feeds.add(ALICE, about(ALICE, "Alice"))
    feeds.add(ALICE2, about(ALICE2, "alice"))
    feeds.add(BOB, about(BOB, "Bobby"))
    e = error(caller, "post", text="@ALICE meet @bob and @zed", mention_names=True)
    assert e.code == INVALID_PARAMS and e.data["param"] == "text"
    assert e.message.startswith("parameter 'text': @ALICE is ambiguous: it could be ")
    assert f"@bob names no one you know (close: Bobby {BOB.feed_id})" in e.message
    assert "@zed names no one you know;" in e.message
    shown = {ALICE.feed_id: f"Alice ({short_key(ALICE.public)})"}
    shown[ALICE2.feed_id] = f"alice ({short_key(ALICE2.public)})"
    assert {c["feed_id"]: c["display_name"] for c in e.data["candidates"]["ALICE"]} == shown
    assert e.data["candidates"]["bob"] == [{"feed_id": BOB.feed_id, "display_name": "Bobby"}]
    assert e.data["candidates"]["zed"] == []
    assert caller.call("feed") == []  # nothing was published


def test_post_mentions_take_feed_and_message_ids(world) -> None:
    caller, _feeds = world
    first = caller.call("post", text="first")["id"]
    posted = caller.call("post", text="see", mentions=[first, BOB.feed_id, first])
    assert posted["content"]["mentions"] == [first, BOB.feed_id]
    for bad, code in (([5], INVALID_PARAMS), (["%nope"], INVALID_ID), (["x"], INVALID_ID)):
        e = error(caller, "post", text="x", mentions=bad)
        assert (e.code, e.data["param"]) == (code, "mentions")
    e = error(caller, "post", text="x", mentions=[BOB.feed_id] * 101)
    assert (e.code, e.data["param"]) == (INVALID_PARAMS, "mentions")
    names = " ".join(f"@{make_keys(200 + n).feed_id[1:]}" for n in range(101))
    e = error(caller, "post", text=names, mention_names=True)
    assert (e.code, e.data["param"]) == (INVALID_PARAMS, "mentions")
