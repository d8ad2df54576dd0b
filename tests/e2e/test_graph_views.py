"""followers / following between real daemons, with names."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.e2e.daemons import DaemonProcess, mesh, wait_for

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]


def test_followers_and_following(daemons: Daemons) -> None:
    a, b, c = daemons("a"), daemons("b"), daemons("c")
    b.call("profile.set", name="Bea")
    mesh(a, b)  # a and b follow each other
    c.call("follow", feed_id=a.feed_id)  # a does not replicate c: c's follow is unknown to a
    wait_for(lambda: b.feed_id in a.call("contacts")["followers"], what="b's follow at a")
    wait_for(lambda: "Bea" in a.cli("followers").stdout, what="b's name at a")
    lines = [json.loads(x) for x in a.cli("followers", "--json").stdout.splitlines()]
    assert lines == [{"feed_id": b.feed_id, "name": "Bea"}]
    assert b.feed_id in a.cli("following").stdout
    theirs = [
        json.loads(x)["feed_id"]
        for x in a.cli("following", b.feed_id, "--json").stdout.splitlines()
    ]
    assert theirs == [a.feed_id]
    assert a.cli("followers", c.feed_id).stdout.strip() == "no followers known"
