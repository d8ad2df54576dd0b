"""search, in-process (the same method the socket serves)."""

from __future__ import annotations

from typing import Any

import pytest

from p2psocial.api.local import LocalCaller
from p2psocial.errors import RpcError
from p2psocial.proto.jsonrpc import INVALID_PARAMS
from p2psocial.store.store import Store
from tests.helpers import make_keys, signed_feed


def _params_error(caller: LocalCaller, **params: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        caller.call("search", **params)
    assert info.value.code == INVALID_PARAMS
    return info.value


def test_search_answers_messages_with_their_rank(caller: LocalCaller) -> None:
    me = caller.call("whoami")["feed_id"]
    one = caller.call("post", text="Meet me at the café 🎉")
    two = caller.call("post", text="café, café, café")
    caller.call("post", text="nothing to see")
    hits = caller.call("search", query="cafe")
    assert [h["id"] for h in hits] == [two["id"], one["id"]]  # more of the word ranks first
    first = hits[0]
    assert first["author"] == me and first["content"] == {
        "type": "post",
        "text": "café, café, café",
    }
    assert first["text"] == "café, café, café" and first["edited"] is False
    assert isinstance(first["rank"], float) and first["rank"] < hits[1]["rank"]
    assert isinstance(first["sort_ts"], int)
    assert {k for k in one if k != "rank"} <= set(hits[1])  # the message's own JSON form
    assert [h["id"] for h in caller.call("search", query="🎉")] == [one["id"]]
    assert caller.call("search", query="cafe", limit=1) == hits[:1]
    assert caller.call("search", query="zebra") == []


def test_search_pages_with_before(caller: LocalCaller) -> None:
    for n in range(5):
        caller.call("post", text=f"heron number {n}")
    hits = caller.call("search", query="heron")
    cut = sorted(h["sort_ts"] for h in hits)[2]
    older = caller.call("search", query="heron", before=cut)
    assert sorted(h["id"] for h in older) == sorted(h["id"] for h in hits if h["sort_ts"] < cut)


def test_search_follows_edits_and_deletes(caller: LocalCaller) -> None:
    post = caller.call("post", text="draft about walruses")["id"]
    caller.call("edit", id=post, text="final text about narwhals")
    assert caller.call("search", query="walruses") == []
    hit = caller.call("search", query="narwhals")[0]
    assert hit["id"] == post and hit["edited"] is True
    assert hit["text"] == "final text about narwhals"
    caller.call("delete", id=post)
    assert caller.call("search", query="narwhals") == []


def test_search_leaves_out_muted_feeds(caller: LocalCaller, store_of: Store) -> None:
    other = make_keys(40)
    feed = signed_feed(other, [{"type": "post", "text": "a pelican from elsewhere"}])
    store_of.append_batch(feed, now_ms=10_000)
    caller.call("post", text="my own pelican")
    assert len(caller.call("search", query="pelican")) == 2
    caller.call("mute", feed_id=other.feed_id)
    assert [h["text"] for h in caller.call("search", query="pelican")] == ["my own pelican"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "  *  "}, "query"),
        ({"query": "-only"}, "query"),
        ({"query": "ab*"}, "query"),
        ({"query": "x" * 1001}, "query"),
        ({"query": 5}, "query"),
        ({"query": "x", "limit": 0}, "limit"),
        ({"query": "x", "limit": 1001}, "limit"),
        ({"query": "x", "before": -1}, "before"),
        ({"query": "x", "text": "y"}, "text"),
    ],
)
def test_search_errors_name_the_param(
    caller: LocalCaller, params: dict[str, Any], named: str
) -> None:
    error = _params_error(caller, **params)
    assert error.data == {"type": "InvalidParams", "param": named}
    assert repr(named) in error.message


@pytest.mark.parametrize(
    "query", ['"', "NEAR(a b", "text:x", "^x", "a OR", "(x", "x\x00y", "'; DROP TABLE x"]
)
def test_hostile_queries_never_reach_sqlite_as_syntax(caller: LocalCaller, query: str) -> None:
    caller.call("post", text="x y text a b")
    error: RpcError | None = None
    try:
        hits = caller.call("search", query=query)
    except RpcError as exc:
        error, hits = exc, []
    if error is not None:
        assert error.code == INVALID_PARAMS
        assert error.data == {"type": "InvalidParams", "param": "query"}
    assert isinstance(hits, list)
