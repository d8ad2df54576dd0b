"""Replication between real daemon processes over TCP on loopback."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest

from p2psocial.client import Client
from tests.e2e.daemons import DaemonProcess, texts, wait_for

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]


def test_two_peers_sync_both_ways(daemons: Daemons) -> None:
    a, b = daemons("a"), daemons("b")
    a.call("post", text="from a")
    b.call("post", text="from b")
    a.call("follow", feed_id=b.feed_id)
    b.call("follow", feed_id=a.feed_id)
    b.cli("connect", a.address)
    wait_for(lambda: texts(b, a.feed_id) == ["from a"], what="a's post at b")
    wait_for(lambda: texts(a, b.feed_id) == ["from b"], what="b's post at a")
    peers = b.call("peers.list")["connected"]
    assert [p["feed_id"] for p in peers] == [a.feed_id]
    status = b.call("status")
    assert status["listen"].startswith("127.0.0.1:")
    assert status["replication"]["entries_behind"] == 0


def test_friend_of_friend_through_middle(daemons: Daemons) -> None:
    a, b, c = daemons("a"), daemons("b"), daemons("c")
    for i in range(5):
        a.call("post", text=f"a{i}")
    b.call("follow", feed_id=a.feed_id)
    c.call("follow", feed_id=b.feed_id)  # c reaches a at two hops, through b's follow
    b.cli("connect", a.address)
    c.cli("connect", b.address)
    wait_for(lambda: texts(c, a.feed_id) == [f"a{i}" for i in range(5)], what="a's feed at c")
    connected = {p["feed_id"] for p in c.call("peers.list")["connected"]}
    assert a.feed_id not in connected  # c never talked to a directly


def test_hops_limit_excludes_further_feeds(daemons: Daemons) -> None:
    a, b = daemons("a"), daemons("b", "--hops", "1")
    a_friend = daemons("friend")
    a_friend.call("post", text="two hops from b")
    a.call("follow", feed_id=a_friend.feed_id)
    a.cli("connect", a_friend.address)
    wait_for(lambda: texts(a, a_friend.feed_id) == ["two hops from b"], what="friend at a")
    b.call("follow", feed_id=a.feed_id)
    b.cli("connect", a.address)
    wait_for(lambda: b.count(a.feed_id) == 1, what="a's follow entry at b")
    assert b.count(a_friend.feed_id) == 0


def test_live_push_through_subscription(daemons: Daemons) -> None:
    a, b = daemons("a"), daemons("b")
    b.call("follow", feed_id=a.feed_id)
    b.cli("connect", a.address)
    wait_for(lambda: b.call("peers.list")["connected"], what="connection")
    with Client.for_home(b.home, timeout=30) as client:
        sub = client.subscribe("subscribe", filter="feed", feed_id=a.feed_id)
        posted = a.call("post", text="live!")
        # The deadline only guards against a hang; latency is measured by bench_sync.
        message = next(iter(sub))
        assert message["id"] == posted["id"]
        assert message["content"]["text"] == "live!"
        # The notification carries the receive time the store recorded.
        assert message["received"] == b.call("get", id=posted["id"])["received"]


def test_kill_mid_sync_and_resume(daemons: Daemons) -> None:
    a = daemons("a")
    for i in range(300):
        a.call("post", text=f"entry {i}")
    b = daemons("b")
    b.call("follow", feed_id=a.feed_id)
    b.cli("connect", a.address)
    wait_for(lambda: b.count() > 1, what="sync to begin")
    b.kill()  # SIGKILL: no goodbye, no clean close
    db = b.home / "store.sqlite"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    b.start()  # it remembers a and reconnects by itself
    wait_for(lambda: b.count(a.feed_id) == 300, what="all of a's entries at b", timeout=60)
    seqs = [m["seq"] for m in b.call("feed", feed_id=a.feed_id, limit=1000)]
    assert seqs == list(range(1, 301))  # nothing lost, nothing duplicated
    b.stop()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count = conn.execute("SELECT count(*), count(DISTINCT id) FROM entries").fetchone()
        assert count[0] == count[1]


def test_block_purges_and_refuses(daemons: Daemons) -> None:
    a, b = daemons("a"), daemons("b")
    b.call("post", text="soon blocked")
    a.call("follow", feed_id=b.feed_id)
    b.call("follow", feed_id=a.feed_id)
    a.cli("connect", b.address)
    wait_for(lambda: texts(a, b.feed_id) == ["soon blocked"], what="b's post at a")
    result = a.call("block", feed_id=b.feed_id)
    assert result["changed"]
    assert a.count(b.feed_id) == 0  # purged at once
    wait_for(lambda: not a.call("peers.list")["connected"], what="b disconnected")
    b.call("post", text="after the block")
    b.cli("connect", a.address)  # b dials a: a refuses it after the handshake
    wait_for(
        lambda: "refused" in b.log() or "not welcome" in a.log() or "failed" in b.log(),
        what="refusal",
        timeout=20,
    )
    assert a.count(b.feed_id) == 0
    assert not a.call("peers.list")["connected"]


def test_cli_posts_through_running_daemon(daemons: Daemons) -> None:
    a = daemons("a")
    out = a.cli("post", "via the socket").stdout.strip()
    assert out.startswith("%")
    assert "via the socket" in a.cli("timeline").stdout
    status = a.cli("status", "--json").stdout
    assert '"running":true' in status


def test_serve_follows_only_serves_friends_and_refuses_strangers(daemons: Daemons) -> None:
    private = daemons("private", "--serve", "follows")
    private.call("post", text="for friends")
    assert private.call("status")["serve"] == "follows"
    friend, stranger = daemons("friend"), daemons("stranger")
    private.call("follow", feed_id=friend.feed_id)
    for d in (friend, stranger):
        d.call("follow", feed_id=private.feed_id)
        d.cli("connect", private.address)
    wait_for(lambda: texts(friend, private.feed_id) == ["for friends"], what="the friend served")
    wait_for(lambda: "refused" in stranger.log() or "failed" in stranger.log(), what="refusal")
    assert texts(stranger, private.feed_id) == []
    assert not any(
        p["feed_id"] == stranger.feed_id for p in private.call("peers.list")["connected"]
    )
