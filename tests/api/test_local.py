"""The in-process caller: the same methods, answers and errors as the socket, no daemon."""

from __future__ import annotations

import pytest

from p2psocial.api.local import LocalCaller
from p2psocial.errors import RpcError
from p2psocial.identity import feed_id
from p2psocial.proto.jsonrpc import INVALID_CONTENT, INVALID_PARAMS, METHOD_NOT_FOUND, NOT_FOUND
from tests.helpers import make_keys


def test_answers_are_json_as_on_the_socket(caller: LocalCaller) -> None:
    me = caller.call("whoami")["feed_id"]
    posted = caller.call("post", text="hi", mentions=[me])
    assert posted["content"] == {"type": "post", "text": "hi", "mentions": [me]}
    assert caller.call("get", id=posted["id"]) == posted
    (card,) = caller.call("timeline")
    assert {k: card[k] for k in posted} == posted  # a card is the message and more
    assert caller.call("feed.info")["latest_seq"] == 1
    status = caller.call("status")
    assert status["running"] is False and status["entries"] == 1 and "rpc" not in status


def test_errors_are_the_rpc_errors_the_client_raises(caller: LocalCaller) -> None:
    with pytest.raises(RpcError) as info:
        caller.call("timeline", limit=5000)
    assert info.value.code == INVALID_PARAMS and info.value.data["param"] == "limit"
    with pytest.raises(RpcError) as info:
        caller.call("nope")
    assert info.value.code == METHOD_NOT_FOUND
    with pytest.raises(RpcError) as info:
        caller.call("get", id="%" + "A" * 43 + "=.sha256")
    assert info.value.code == NOT_FOUND
    with pytest.raises(RpcError) as info:
        caller.call("publish", content={"type": "contact", "contact": "nobody"})
    assert info.value.code == INVALID_CONTENT and "feed id" in info.value.message
    with pytest.raises(RpcError) as info:
        caller.call("publish", content={"type": "post", "text": "x" * 9000})
    assert info.value.data == {"type": "ContentTooLarge", "param": "content", "limit": 8192}


def test_what_needs_the_daemon_says_so(caller: LocalCaller) -> None:
    with pytest.raises(RpcError, match="live subscriptions need the running daemon"):
        caller.call("subscribe")
    with pytest.raises(RpcError, match="needs the pub's daemon running"):
        caller.call("invite.create")
    other = feed_id(b"\x01" * 32)
    answer = caller.call("peers.connect", address="127.0.0.1:9", feed_id=other)
    assert answer["dialling"] is False
    assert caller.call("peers.list")["known"][0]["feed_id"] == other


def test_private_messages_are_filed_without_decrypting_again(caller: LocalCaller) -> None:
    other = make_keys(2).feed_id
    sent = caller.call("private.publish", to=[other], text="psst")
    assert sent["private"] is True and sent["content"]["text"] == "psst"
    assert [m["id"] for m in caller.call("private.inbox")] == [sent["id"]]
    assert caller.call("get", id=sent["id"])["content"] is None  # the envelope: sealed
