"""A reply to a private message stays private (#11): ``private.reply`` answers it to the same
readers, and ``post`` refuses to reply to it in public. In-process (LocalCaller), on a
store holding other people's private messages as replication would store them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from p2psocial.api.local import LocalCaller
from p2psocial.errors import RpcError
from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.home import Home
from p2psocial.identity import Keypair, message_id
from p2psocial.proto.jsonrpc import INVALID_CONTENT, INVALID_ID, INVALID_PARAMS, NOT_FOUND
from p2psocial.proto.privatebox import seal_content
from p2psocial.store.store import Store
from tests.helpers import make_keys

ANN, BOB = make_keys(2), make_keys(3)


class Peer:
    """Another person's feed, written into our store as replication would."""

    def __init__(self, keys: Keypair, store: Store) -> None:
        self.keys, self.store = keys, store
        self.seq = 0
        self.previous: bytes | None = None

    def append(self, content: dict[str, Any] | bytes) -> str:
        self.seq += 1
        encoded = encode_content(content)
        entry = create_entry(self.keys, self.seq, self.previous, 1_000 + self.seq, encoded)
        self.previous = entry.id
        assert not self.store.append_batch([(entry.raw, encoded)], 2_000_000).errors
        return message_id(entry.id)

    def send_private(self, inner: dict[str, Any], boxed_to: list[Keypair]) -> str:
        readers = [self.keys.public, *(k.public for k in boxed_to)]
        return self.append(seal_content(inner, readers, rng_bytes=os.urandom))


@pytest.fixture
def env(tmp_path: Path):
    home = Home(tmp_path / "home")
    keys = home.create_identity(b"\x07" * 32)
    store = Store.open(home.store_path, owner=keys)
    yield LocalCaller(home, keys, store), keys, Peer(ANN, store)
    store.close()


def error_of(caller: LocalCaller, method: str, **params: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        caller.call(method, **params)
    return info.value


def test_a_reply_goes_to_the_same_readers_in_the_same_thread(env: Any) -> None:
    caller, me, ann = env
    recps = [ANN.feed_id, me.feed_id, BOB.feed_id]
    question = ann.send_private({"type": "post", "text": "dinner?", "recps": recps}, [me, BOB])
    reply = caller.call("private.reply", id=question, text="yes!")
    assert reply["private"] is True
    assert reply["content"]["text"] == "yes!"
    assert reply["content"]["root"] == question
    assert reply["content"]["recps"] == [me.feed_id, ANN.feed_id, BOB.feed_id]
    assert [m["id"] for m in caller.call("private.thread", root=question)] == [
        question,
        reply["id"],
    ]
    # Our own reply is sealed on our feed: the public envelope shows nothing.
    envelope = caller.call("get", id=reply["id"])
    assert envelope["private"] is True and envelope["content"] is None
    # A reply to the reply stays in the thread of the root, to the same readers.
    again = caller.call("private.reply", id=reply["id"], text="at 8")
    assert again["content"]["root"] == question
    assert again["content"]["recps"] == [me.feed_id, ANN.feed_id, BOB.feed_id]
    # Nothing public was published in the thread.
    assert [m["private"] for m in caller.call("thread", root=question)] == [True]


def test_a_reply_to_our_own_private_message(env: Any) -> None:
    caller, me, _ann = env
    sent = caller.call("private.publish", to=[ANN.feed_id], text="psst")
    reply = caller.call("private.reply", id=sent["id"], text="and another thing")
    assert reply["content"]["recps"] == [me.feed_id, ANN.feed_id]
    assert reply["content"]["root"] == sent["id"]


def test_a_peer_naming_a_bad_root_gets_a_reply_in_its_own_thread(env: Any) -> None:
    caller, me, ann = env
    inner = {"type": "post", "text": "hi", "recps": [ANN.feed_id, me.feed_id], "root": "\x1b[2J"}
    odd = ann.send_private(inner, [me])
    assert caller.call("private.reply", id=odd, text="hello")["content"]["root"] == odd


def test_what_cannot_be_replied_to_privately(env: Any) -> None:
    caller, me, ann = env
    public = ann.append({"type": "post", "text": "public"})
    error = error_of(caller, "private.reply", id=public, text="x")
    assert error.code == INVALID_PARAMS and error.data["param"] == "id"
    assert "public message" in error.message and "'post'" in error.message
    not_for_us = ann.send_private(
        {"type": "post", "text": "for bob", "recps": [ANN.feed_id, BOB.feed_id]}, [BOB]
    )
    error = error_of(caller, "private.reply", id=not_for_us, text="x")
    assert error.code == INVALID_PARAMS and error.data["param"] == "id"
    assert "cannot read" in error.message
    error = error_of(caller, "private.reply", id="%" + "A" * 43 + "=.sha256", text="x")
    assert error.code == NOT_FOUND
    error = error_of(caller, "private.reply", id="%nope", text="x")
    assert error.code == INVALID_ID and error.data["param"] == "id"
    mine = caller.call("private.publish", to=[ANN.feed_id], text="psst")["id"]
    error = error_of(caller, "private.reply", id=mine, text="   ")
    assert error.code == INVALID_PARAMS and error.data["param"] == "text"
    error = error_of(caller, "private.reply", id=mine, text="x", root=mine)
    assert error.code == INVALID_PARAMS and error.data["param"] == "root"
    hostile = ann.send_private(
        {"type": "post", "text": "x", "recps": [ANN.feed_id, me.feed_id, "@\u202eevil"]}, [me]
    )
    error = error_of(caller, "private.reply", id=hostile, text="x")
    assert error.code == INVALID_CONTENT and error.data["param"] == "id"
    assert "not a feed id" in error.message
    before = caller.call("feed.info")["latest_seq"]
    assert before == 1  # only "psst": nothing was published by the refused calls


def test_post_refuses_a_public_reply_to_a_private_message(env: Any) -> None:
    caller, me, ann = env
    secret = ann.send_private(
        {"type": "post", "text": "secret", "recps": [ANN.feed_id, me.feed_id]}, [me]
    )
    error = error_of(caller, "post", text="oops", root=secret)
    assert error.code == INVALID_PARAMS and error.data["param"] == "root"
    assert "private message" in error.message and "dm reply" in error.message
    assert "private.reply" in error.message
    public = ann.append({"type": "post", "text": "public"})
    error = error_of(caller, "post", text="oops", root=public, branch=secret)
    assert error.code == INVALID_PARAMS and error.data["param"] == "branch"
    # One we cannot read is refused as well: `get` says it is private.
    sealed = ann.send_private({"type": "post", "text": "x", "recps": [ANN.feed_id]}, [BOB])
    assert error_of(caller, "post", text="oops", root=sealed).data["param"] == "root"
    assert error_of(caller, "feed.info").code == NOT_FOUND  # nothing of ours was published
    # Public replies still work, also to messages not stored here.
    assert caller.call("post", text="ok", root=public)["content"]["root"] == public
    unknown = message_id(b"\x42" * 32)
    assert caller.call("post", text="ok", root=unknown)["content"]["root"] == unknown
