"""Notifications between real daemons (#12): B follows A, replies to and likes A's post;
A's ``notifications`` (the real socket, the real CLI) lists them, a ``subscribe`` with
filter ``notifications`` receives them live, and ``--mark-read`` clears the unread count."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.daemons import DaemonProcess, mesh, wait_for

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]


def test_b_replies_to_and_likes_a_post_and_a_is_told(daemons: Daemons) -> None:
    a, b = daemons("a"), daemons("b")
    with a.client() as client:
        live = client.subscribe("subscribe", filter="notifications")
        post = a.call("post", text="hello from a")["id"]
        b.cli("profile", "set", "--name", "Bee")
        mesh(a, b)
        wait_for(lambda: b.call("get", id=post), what="a's post at b")
        reply = b.call("post", text="hi a!", root=post)["id"]
        assert "liked" in b.cli("like", post, "--emoji", "👍").stdout
        plain = b.call("post", text="just a post of b's")["id"]  # tells a nothing
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            item = live.get(timeout=1)
            if item is not None:
                got.append(item)
        kinds = {n["kind"]: n for n in got}
        assert sorted(kinds) == ["follow", "reaction", "reply"], got
        assert kinds["reply"]["message"]["id"] == reply and kinds["reply"]["target"] == post
        assert kinds["reaction"]["expression"] == "👍" and kinds["reaction"]["target"] == post
        assert all(n["message"]["author"] == b.feed_id and not n["read"] for n in got)
        wait_for(lambda: a.call("get", id=plain), what="b's plain post at a")
        assert live.get(timeout=0.5) is None  # it was not a notification
    listed = wait_for(lambda: a.call("notifications"), what="notifications at a")
    assert [n["kind"] for n in listed] == ["reaction", "reply", "follow"]
    assert [n["message"] for n in listed] == [
        kinds[k]["message"] for k in ("reaction", "reply", "follow")
    ]
    out = a.cli("notifications").stdout
    short = post[:10] + "…"
    assert f"  Bee  reacted 👍 to your post {short}\n" in out
    assert f"  Bee  replied to your post {short}\n    hi a!\n" in out
    assert "  Bee  started following you\n" in out
    assert "notifications: 3 unread" in a.cli("status").stdout
    shown = [
        json.loads(x) for x in a.cli("notifications", "--json", "--unread").stdout.splitlines()
    ]
    assert [n["message"]["author_name"] for n in shown] == ["Bee"] * 3
    assert a.cli("notifications", "--mark-read").stdout.endswith("marked 3 read; 0 unread\n")
    assert "notifications: 0 unread" in a.cli("status").stdout
    assert a.call("status")["notifications_unread"] == 0
    assert a.cli("notifications", "--unread").stdout == "no unread notifications\n"
    # b takes the like back: a's notification of it goes.
    b.cli("unlike", post)
    wait_for(
        lambda: [n["kind"] for n in a.call("notifications")] == ["reply", "follow"],
        what="the withdrawn like gone at a",
    )
