"""#12: names people can read, between real daemons."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.daemons import DaemonProcess, wait_for

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]


def test_a_replicated_name_and_a_petname_show_in_the_timeline(daemons: Daemons) -> None:
    a, b = daemons("a"), daemons("b")
    b_id = b.feed_id
    b.cli("profile", "set", "--name", "Bob", "--bio", "from b")
    b.cli("post", "hello from b")
    a.call("follow", feed_id=b_id)
    a.cli("connect", b.address)
    wait_for(lambda: a.count(b_id) >= 2, what="a to replicate b")
    shown = a.cli("timeline").stdout
    assert f"  Bob  {b_id}  #2  " in shown and "hello from b" in shown
    assert a.call("profile", feed_id=b_id)["bio"] == "from b"
    a.cli("name", b_id, "my friend b")
    shown = a.cli("timeline").stdout
    assert f"  my friend b  {b_id}  #2  " in shown and "  Bob  " not in shown
    assert a.call("names", feed_ids=[b_id]) == {b_id: "my friend b"}
    # The petname stays on a: b, and what b publishes, know nothing of it.
    assert b.call("names", feed_ids=[b_id]) == {b_id: "Bob"}
    assert a.count(b_id) == 2
