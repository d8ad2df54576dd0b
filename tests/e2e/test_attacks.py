"""Attacks on a real daemon by hostile peers speaking the real protocol (issue #11): each
failure found, reproduced, and shown fixed, with an honest sync alongside."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
import trio

from p2psocial.net.connection import Connection, RpcStream
from p2psocial.proto import packets
from tests.e2e.daemons import DaemonProcess, texts, wait_for
from tests.e2e.hostile import HostilePeer
from tests.helpers import make_keys

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]
EVIL = make_keys(666)


class _RawError:
    """An error body of the peer's choosing (ErrorInfo always has all three fields)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def to_body(self) -> dict[str, Any]:
        return self.body


def ends_with(body: dict[str, Any]) -> Callable[[Connection, RpcStream], Any]:
    async def behaviour(conn: Connection, stream: RpcStream) -> None:
        await stream.receive()  # the daemon's clock
        await conn._send(
            lambda: conn._packets.stream_end(
                stream.req_id, cast(packets.ErrorInfo, _RawError(body))
            )
        )
        await trio.sleep(5)

    return behaviour


ENDED = "ended replication with an error"


@pytest.mark.parametrize(
    ("body", "logged"),
    [
        ({"message": "boom"}, ENDED),
        ({"message": "boom", "name": "Error"}, ENDED),
        ({"message": "boom", "name": "Error", "code": "x"}, ENDED),
        ({"name": 5}, "broke the protocol"),  # not an error body at all
    ],
)
def test_a_peer_ending_replication_with_an_error_does_not_end_the_daemon(
    daemons: Daemons, body: dict[str, Any], logged: str
) -> None:
    """Before: the daemon exited with status 1 ("error: : boom (code 0)") as soon as a
    peer it dialled ended replicate.ebt with an error body."""
    victim, friend = daemons("victim"), daemons("friend")
    with HostilePeer(EVIL, ends_with(body)) as evil:
        victim.call("peers.connect", address=evil.address, feed_id=EVIL.feed_id)
        wait_for(lambda: evil.sessions >= 2, what="the daemon to dial the peer again")
    assert victim.proc is not None and victim.proc.poll() is None, victim.log()[-2000:]
    friend.call("post", text="honest")
    victim.call("follow", feed_id=friend.feed_id)
    victim.cli("connect", friend.address)
    wait_for(lambda: texts(victim, friend.feed_id) == ["honest"], what="the honest sync")
    assert logged in victim.log()
