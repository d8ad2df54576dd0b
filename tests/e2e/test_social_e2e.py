"""#12 between real daemons, through the Python client's typed helpers: a repost reaches
a follower who does not replicate the original's author, who still reads and verifies the
original from the entry it carries; an edit reaches followers; counts follow."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.daemons import DaemonProcess, wait_for

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]


def test_a_repost_carries_the_original_to_who_does_not_replicate_its_author(
    daemons: Daemons,
) -> None:
    a, b = daemons("a"), daemons("b")
    c = daemons("c", "--hops", "1")  # follows B, so it replicates B only
    b.call("follow", feed_id=a.feed_id)
    c.call("follow", feed_id=b.feed_id)
    a.call("follow", feed_id=b.feed_id)  # to hear of the repost and the like
    a.cli("profile", "set", "--name", "Ann")
    b.cli("connect", a.address)
    c.cli("connect", b.address)
    with a.client() as client:
        post = client.post("the original words")["id"]
        client.edit(post, "the original words, fixed")
    wait_for(lambda: b.call("get", id=post), what="a's post at b")
    with b.client() as client:
        (card,) = wait_for(
            lambda: [x for x in client.timeline() if x["edited"]], what="a's edit at b"
        )
        assert card["text"] == "the original words, fixed" and card["author_name"] == "Ann"
        shared = client.repost(post, comment="read this")
        assert shared["repost"]["held"] is True
        client.like(post)
    with c.client() as client:
        cards = wait_for(
            lambda: [x for x in client.timeline() if "repost" in x], what="b's repost at c"
        )
        (repost,) = cards
        assert repost["repost"]["comment"] == "read this"
        original = repost["repost"]["message"]
        assert original["author"] == a.feed_id  # verified from the carried entry...
        assert original["text"] == "the original words"  # ...as it was when reposted
        assert c.call("feeds") and a.feed_id not in {f["feed_id"] for f in c.call("feeds")}
        timeline = c.cli("timeline").stdout
        assert "reposted" in timeline and "  | " in timeline and "the original words" in timeline
    with a.client() as client:
        (mine,) = wait_for(
            lambda: [x for x in client.timeline() if x["counts"]["reposts"]],
            what="b's repost counted at a",
        )
        assert mine["counts"]["reposts"] == 1
        wait_for(lambda: client.likes(post)["likes"] == 1 or None, what="b's like at a")
        kinds = {n["kind"] for n in client.notifications()}
        assert {"repost", "reaction", "follow"} <= kinds
