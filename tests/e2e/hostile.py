"""Hostile peers for end-to-end attacks: the project's own protocol machines, driven by
this test process, against real daemon processes.

:class:`HostilePeer` is a peer *server* running trio in a background thread, so a daemon
can dial it (``peers.connect``, or a ``pub`` entry) and meet whatever behaviour the test
gives its ``replicate.ebt`` stream. :func:`dial` runs a hostile *client* session.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from p2psocial.config import parse_address
from p2psocial.errors import P2PSocialError
from p2psocial.identity import Keypair, parse_feed_id
from p2psocial.net.connection import Connection, RpcStream, connect, serve, stream_handler
from p2psocial.proto.handshake import NETWORK_KEY

Behaviour = Callable[[Connection, RpcStream], Awaitable[None]]


class HostilePeer:
    """A peer server in a thread; ``behaviour(conn, stream)`` runs each replicate.ebt
    stream a daemon opens to it."""

    def __init__(self, keys: Keypair, behaviour: Behaviour) -> None:
        self.keys = keys
        self.behaviour = behaviour
        self.port = 0
        self.sessions = 0
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> HostilePeer:
        self._thread.start()
        if not self._ready.wait(20):
            raise AssertionError("the hostile peer did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None and self._scope is not None:
            self._token.run_sync_soon(self._scope.cancel)
        self._thread.join(20)

    async def _main(self) -> None:
        async def ebt(conn: Connection, args: Any, stream: RpcStream) -> None:
            self.sessions += 1
            await self.behaviour(conn, stream)

        async def hold(conn: Connection) -> None:
            await conn.wait_closed()

        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._scope = scope
            async with trio.open_nursery() as nursery:
                listeners = await nursery.start(
                    lambda task_status: serve(
                        "127.0.0.1",
                        0,
                        keys=self.keys,
                        network_key=NETWORK_KEY,
                        on_connection=hold,
                        handlers={"replicate.ebt": stream_handler(ebt)},
                        task_status=task_status,
                    )
                )
                self.port = listeners[0].socket.getsockname()[1]
                self._ready.set()


async def dial(
    address: str, feed: str, keys: Keypair, behaviour: Behaviour, *, give_up_s: float = 60
) -> None:
    """Dial the daemon at ``address`` (feed id ``feed``) as ``keys`` and run
    ``behaviour`` on a replicate.ebt stream; whatever the daemon does to us is fine."""
    host, port = parse_address(address)
    with trio.move_on_after(give_up_s):
        try:
            async with connect(
                host, port, parse_feed_id(feed), keys=keys, network_key=NETWORK_KEY
            ) as conn:
                async with conn.stream("replicate.ebt", {"version": 1}) as stream:
                    await behaviour(conn, stream)
        except P2PSocialError:  # the daemon cut us off: what an attack expects
            pass


class InThread:
    """Run ``fn()`` (async) in trio in a background thread until the block ends."""

    def __init__(self, fn: Callable[[], Awaitable[None]]) -> None:
        self.fn = fn
        self.error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            with trio.CancelScope() as scope:
                self._scope = scope
                self._started.set()
                await self.fn()

        try:
            trio.run(main)
        except BaseException as exc:  # handed to the test, which may look at it
            self.error = exc

    def __enter__(self) -> InThread:
        self._thread.start()
        self._started.wait(20)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None and self._scope is not None:
            try:
                self._token.run_sync_soon(self._scope.cancel)
            except trio.RunFinishedError:
                pass
        self._thread.join(20)
