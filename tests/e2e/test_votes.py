"""Likes between real daemons: B likes A's post; A, who replicates B, counts it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.e2e.daemons import DaemonProcess, mesh, wait_for

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]


def test_a_like_travels_and_is_counted_once(daemons: Daemons) -> None:
    a, b = daemons("a"), daemons("b")
    mesh(a, b)
    post = a.call("post", text="worth a like")["id"]
    wait_for(lambda: b.call("get", id=post), what="the post at b")
    assert "liked (1 in all)" in b.cli("like", post, "--emoji", "🎉").stdout
    b.cli("like", post, "--emoji", "🎉")  # nothing new to publish
    wait_for(lambda: a.call("likes", id=post)["likes"] == 1, what="b's like at a")
    shown = json.loads(a.cli("likes", post, "--json").stdout)
    assert shown["by"] == [{"feed_id": b.feed_id, "expression": "🎉"}]
    assert b.feed_id in a.cli("likes", post).stdout
    b.cli("unlike", post)
    wait_for(lambda: a.call("likes", id=post)["likes"] == 0, what="the like taken back at a")
    assert "likes" in a.cli("feed", b.feed_id).stdout  # the vote reads as a sentence
