"""A hostile peer (this test process) against a real daemon: it is cut off, the reason is
logged, nothing bad is stored, and the daemon keeps serving."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from p2psocial.config import parse_address
from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.identity import parse_feed_id
from p2psocial.net.connection import connect
from p2psocial.proto.handshake import NETWORK_KEY
from tests.e2e.daemons import DaemonProcess, wait_for
from tests.helpers import make_feed, make_keys

pytestmark = pytest.mark.e2e

EVIL = make_keys(666)


def forged() -> list[list[list[bytes]]]:
    feed = make_feed(EVIL, 2)
    raw = bytearray(feed[1][0].raw)
    raw[-1] ^= 1
    return [[[feed[0][0].raw, feed[0][1]], [bytes(raw), feed[1][1]]]]


def out_of_order() -> list[list[list[bytes]]]:
    feed = make_feed(EVIL, 3)
    return [[[feed[0][0].raw, feed[0][1]]], [[feed[2][0].raw, feed[2][1]]]]


def forked() -> list[list[list[bytes]]]:
    feed = make_feed(EVIL, 2)
    content = encode_content({"type": "post", "text": "another history"})
    other = create_entry(EVIL, 2, feed[0][0].id, 5, content)
    return [[[e.raw, c] for e, c in feed], [[other.raw, content]]]


CASES = {
    "forged": (forged, 0, "bad signature"),
    "out_of_order": (out_of_order, 1, "gap"),
    "forked": (forked, 2, "fork"),
}


async def send_batches(address: str, key: bytes, batches: list[list[list[bytes]]]) -> None:
    host, port = parse_address(address)
    async with connect(host, port, key, keys=EVIL, network_key=NETWORK_KEY) as conn:
        async with conn.stream("replicate.ebt", {"version": 1}) as stream:
            first = await stream.receive()
            assert "clock" in first  # the daemon tells its clock first
            for batch in batches:
                await stream.send({"entries": batch})
            with trio.fail_after(20):
                try:
                    async for _ in stream:
                        pass
                except Exception:  # the daemon cuts us off: exactly what we expect
                    pass
        await conn.wait_closed()


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_peer_is_cut_off(daemons: Callable[..., DaemonProcess], case: str) -> None:
    make_batches, stored, reason = CASES[case]
    victim = daemons("victim")
    victim.call("follow", feed_id=EVIL.feed_id)
    listen = victim.info["listen"]
    trio.run(send_batches, listen, parse_feed_id(victim.feed_id), make_batches())
    wait_for(lambda: "cutting off" in victim.log(), what="the cut-off in the log")
    line = next(x for x in victim.log().splitlines() if "cutting off" in x)
    assert EVIL.feed_id in line
    assert reason in line.lower()
    assert victim.count(EVIL.feed_id) == stored
    forks = victim.call("status")["forked_feeds"]
    assert [f["feed_id"] for f in forks] == ([EVIL.feed_id] if case == "forked" else [])
    victim.call("post", text="still serving")  # the daemon lives on
    assert victim.count() >= 2
