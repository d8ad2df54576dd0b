"""#11, failure 8: a reply to a private message must not leak into a public thread.

Three real daemons that replicate each other: A writes B privately; B answers with the
real console script's ``dm reply``; A reads the answer in ``dm thread``; C, who holds both
feeds, finds no public reply in ``thread`` and cannot read the private one; and ``post
--reply-to`` the private message is refused, naming ``dm reply``."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from p2psocial.errors import RpcError
from p2psocial.proto.jsonrpc import INVALID_PARAMS
from tests.e2e.daemons import DaemonProcess, mesh, wait_for

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]


def test_a_private_reply_stays_among_the_readers(daemons: Daemons) -> None:
    a, b, c = daemons("a"), daemons("b"), daemons("c")
    mesh(a, b, c)
    question = json.loads(
        a.cli("dm", "send", "--to", b.feed_id, "the door code?", "--json").stdout
    )["id"]
    wait_for(lambda: b.call("private.inbox"), what="the question in b's inbox")

    answer = json.loads(b.cli("dm", "reply", question, "it is 4711", "--json").stdout)
    assert answer["private"] is True
    assert answer["content"]["recps"] == [b.feed_id, a.feed_id]
    assert answer["content"]["root"] == question

    # A reads the answer in the private thread.
    wait_for(lambda: len(a.call("private.thread", root=question)) == 2, what="the answer at a")
    shown = a.cli("dm", "thread", question).stdout
    assert "the door code?" in shown and "it is 4711" in shown
    ids = [
        json.loads(x)["id"] for x in a.cli("dm", "thread", question, "--json").stdout.splitlines()
    ]
    assert ids == [question, answer["id"]]

    # C holds both entries (it replicates a and b) and reads neither.
    wait_for(lambda: c.count(b.feed_id) >= 3, what="b's answer at c")  # 2 follows + answer
    envelope = c.call("get", id=answer["id"])
    assert envelope["private"] is True and envelope["content"] is None
    assert c.call("private.inbox") == []
    assert c.call("private.thread", root=question) == []
    public = c.call("thread", root=question)
    assert [m["id"] for m in public] == [question]  # the root's envelope, no reply
    assert all(m["private"] for m in public)
    for feed in (a.feed_id, b.feed_id):
        for m in c.call("feed", feed_id=feed, limit=1000):
            assert not (m["content"] or {}).get("root"), m  # no public reply anywhere
    thread_at_c = c.cli("thread", question).stdout
    assert "it is 4711" not in thread_at_c and "the door code?" not in thread_at_c
    assert "(private message)" in thread_at_c
    assert "it is 4711" not in c.cli("timeline").stdout
    # C cannot reply in a thread it cannot read.
    refused = c.cli("dm", "reply", question, "me too", check=False)
    assert refused.returncode == 1 and "cannot read" in refused.stderr

    # A public reply to the private message is refused, by the CLI and by the method.
    before = b.count(b.feed_id)
    leak = b.cli("post", "--reply-to", question, "it is 4711, everyone", check=False)
    assert leak.returncode == 1
    assert "is a private message" in leak.stderr and "p2psocial dm reply" in leak.stderr
    leak = b.cli("post", "--reply-to", answer["id"], "again", check=False)
    assert leak.returncode == 1 and "dm reply" in leak.stderr
    for params in ({"root": question}, {"root": answer["id"], "branch": answer["id"]}):
        with pytest.raises(RpcError) as info:
            b.call("post", text="leak", **params)
        assert info.value.code == INVALID_PARAMS and info.value.data["param"] == "root"
    root = b.call("post", text="a public thread")["id"]
    with pytest.raises(RpcError) as info:
        b.call("post", text="leak", root=root, branch=question)
    assert info.value.code == INVALID_PARAMS and info.value.data["param"] == "branch"
    assert b.count(b.feed_id) == before + 1  # only the public root
