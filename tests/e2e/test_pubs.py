"""Pubs and invites with real daemons: people who never meet sync through a pub."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.e2e.daemons import DaemonProcess, texts, wait_for

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def invite(pub: DaemonProcess, *args: str) -> str:
    return pub.cli("invite", "create", *args).stdout.strip()


def test_two_strangers_sync_through_a_pub(daemons: Daemons) -> None:
    pub = daemons("pub", "--pub", "--no-lan")
    x, y = daemons("x", "--no-lan"), daemons("y", "--no-lan")
    out = x.cli("invite", "accept", invite(pub)).stdout
    assert pub.feed_id in out
    y.cli("invite", "accept", invite(pub, "--uses", "1", "--expires", "1h"))
    # The pub follows both; each follows the pub, so each wants the other at two hops.
    wait_for(
        lambda: {p["feed_id"] for p in x.call("peers.list")["connected"]} == {pub.feed_id},
        what="x connected to the pub",
    )
    x.call("post", text="hello y, via the pub")
    wait_for(
        lambda: texts(y, x.feed_id) == ["hello y, via the pub"], what="x's post at y", timeout=30
    )
    assert {p["feed_id"] for p in y.call("peers.list")["connected"]} == {pub.feed_id}
    announced = [
        m["content"]
        for m in x.call("feed", feed_id=x.feed_id, limit=10)
        if m["content"]["type"] == "pub"
    ]
    assert announced and announced[0]["address"]["key"] == pub.feed_id

    # y goes offline; x posts; y comes back and catches up through the pub.
    y.stop()
    x.call("post", text="while you were away")
    wait_for(lambda: "while you were away" in texts(pub, x.feed_id), what="post at the pub")
    y.start()
    wait_for(
        lambda: texts(y, x.feed_id) == ["hello y, via the pub", "while you were away"],
        what="y catching up",
        timeout=40,
    )


def test_invite_misuse_says_why(daemons: Daemons) -> None:
    pub = daemons("pub", "--pub", "--no-lan")
    x = daemons("x", "--no-lan")
    other = daemons("other", "--no-lan", "--network-key", "ab" * 32)

    bad = x.cli("invite", "accept", "not-a-code", check=False)
    assert bad.returncode == 1
    assert "malformed" in bad.stderr

    code = invite(pub)
    dead = f"127.0.0.1:{free_port()}:" + code.split(":", 2)[2]
    gone = x.cli("invite", "accept", dead, check=False)
    assert gone.returncode == 1
    assert "unreachable" in gone.stderr

    x.cli("invite", "accept", code)
    again = daemons("again", "--no-lan")
    used = again.cli("invite", "accept", code, check=False)
    assert used.returncode == 1
    assert "used up" in used.stderr

    expired = again.cli("invite", "accept", invite(pub, "--expires", "0.001s"), check=False)
    assert expired.returncode == 1
    assert "expired" in expired.stderr

    wrong = other.cli("invite", "accept", invite(pub), check=False)
    assert wrong.returncode == 1
    assert "network" in wrong.stderr

    not_pub = x.cli("invite", "create", check=False)
    assert not_pub.returncode == 1
    assert "not a pub" in not_pub.stderr


def test_accept_without_a_daemon(daemons: Daemons) -> None:
    pub = daemons("pub", "--pub", "--no-lan")
    x = daemons("x", "--no-lan", start=False)
    x.cli("init")
    x.cli("invite", "accept", invite(pub))  # redeemed from the CLI process itself
    x.start()
    wait_for(lambda: x.call("peers.list")["connected"], what="x connects to the pub")
    # x's follow of the pub and its pub announcement reach the pub.
    wait_for(lambda: pub.count(x.feed_id) == 2, what="x's feed at the pub")
