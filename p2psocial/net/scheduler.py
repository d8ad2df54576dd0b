"""Outbound connections: one dialling task per known peer, with exponential backoff.

A peer that works is redialled a second after a session ends; one that fails waits 1, 2, 4,
... seconds, capped at :data:`MAX_BACKOFF` (a dead pub is not hammered, but is tried again
forever at a low rate). A peer already connected (it dialled us) is not dialled.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from p2psocial.errors import P2PSocialError
from p2psocial.identity import Keypair, feed_id
from p2psocial.net.connection import connect

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from p2psocial.net.connection import Connection, Handlers
    from p2psocial.net.replicate import Replication
    from p2psocial.store.gateway import StoreGateway

log = logging.getLogger("p2psocial.scheduler")

MAX_BACKOFF = 300.0
CONNECTED_RECHECK = 5.0
MAX_CANDIDATE_CONNECTIONS = 4
"""Outbound connections to peers learnt from feeds (pub announcements), at most."""


@dataclass
class DialState:
    address: str
    key: bytes
    failures: int = 0
    last_error: str | None = None
    next_attempt: float = 0.0
    cancel: trio.CancelScope | None = None
    candidate: bool = False
    """Learnt from a feed rather than asked for: dialled only while there is room."""


class Scheduler:
    """Keeps dialling the peers it was given, for as long as it runs."""

    def __init__(
        self,
        replication: Replication,
        gateway: StoreGateway,
        keys: Keypair,
        network_key: bytes,
        now_ms: Callable[[], int],
        *,
        handlers: Handlers | None = None,
        companions: Sequence[Callable[[Connection], Awaitable[None]]] = (),
    ) -> None:
        self.replication = replication
        self.handlers = handlers
        """Peer RPC handlers of the connections we dial (default: replication's)."""
        self.companions = tuple(companions)
        """Sessions run beside replication on each connection we dial (the blob exchange)."""
        self.gateway = gateway
        self.keys = keys
        self.network_key = network_key
        self.now_ms = now_ms
        self.dials: dict[str, DialState] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        peers = await self.gateway.run(lambda s: s.known_peers())
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for address, key, _source in peers:
                self.add(address, key)
            task_status.started()
            await trio.sleep_forever()

    def add_candidate(self, address: str, key: bytes) -> None:
        """A peer learnt from a feed: dialled (with backoff) while fewer than
        MAX_CANDIDATE_CONNECTIONS such peers are connected."""
        if address in self.dials or self.replication.is_connected(key):
            return
        self.add(address, key, candidate=True)

    def _room_for_candidate(self) -> bool:
        connected = sum(
            1 for s in self.dials.values() if s.candidate and self.replication.is_connected(s.key)
        )
        return connected < MAX_CANDIDATE_CONNECTIONS

    def add(self, address: str, key: bytes, *, candidate: bool = False) -> None:
        """Dial ``address`` (expecting ``key``) from now on; redial at once if known."""
        state = self.dials.get(address)
        if state is not None and state.key == key:
            state.failures = 0
            state.candidate = state.candidate and candidate
            if state.cancel is not None:
                state.cancel.cancel()  # wake it from its backoff sleep
            return
        if state is not None and state.cancel is not None:
            state.cancel.cancel()
        state = DialState(address, key, candidate=candidate)
        self.dials[address] = state
        if self._nursery is not None:
            self._nursery.start_soon(self._dial_forever, state)

    def remove(self, address: str, key: bytes) -> bool:
        """Stop dialling ``address`` (if it is dialled for ``key``). A live session with
        the peer is left to end by itself. Returns whether a dial was dropped."""
        state = self.dials.get(address)
        if state is None or state.key != key:
            return False
        del self.dials[address]
        if state.cancel is not None:
            state.cancel.cancel()  # its task sees it is no longer listed, and ends
        return True

    async def _dial_forever(self, state: DialState) -> None:
        from p2psocial.config import parse_address

        host, port = parse_address(state.address)
        while self.dials.get(state.address) is state:
            if self.replication.is_connected(state.key) or (
                state.candidate and not self._room_for_candidate()
            ):
                await self._pause(state, CONNECTED_RECHECK)
                continue
            try:
                async with connect(
                    host,
                    port,
                    state.key,
                    keys=self.keys,
                    network_key=self.network_key,
                    handlers=self.handlers
                    if self.handlers is not None
                    else self.replication.handlers(),
                ) as conn:
                    state.failures = 0
                    state.last_error = None
                    await self.gateway.run(
                        lambda s: s.peer_outcome(state.address, True, self.now_ms())
                    )
                    async with trio.open_nursery() as companions:
                        for companion in self.companions:
                            companions.start_soon(companion, conn)
                        await self.replication.open_session(conn, state.address)
                        companions.cancel_scope.cancel()
                delay = 1.0
            except (P2PSocialError, OSError) as exc:  # no peer's error ends the daemon
                state.failures += 1
                state.last_error = str(exc)
                await self.gateway.run(
                    lambda s: s.peer_outcome(state.address, False, self.now_ms())
                )
                delay = min(MAX_BACKOFF, 2.0 ** (state.failures - 1))
                delay *= random.uniform(0.8, 1.2)
                log.info(
                    "cannot reach %s at %s (%s); retrying in %.0f s",
                    feed_id(state.key),
                    state.address,
                    exc,
                    delay,
                )
            await self._pause(state, delay)

    async def _pause(self, state: DialState, seconds: float) -> None:
        state.next_attempt = trio.current_time() + seconds
        with trio.CancelScope() as scope:
            state.cancel = scope
            await trio.sleep(seconds)
        state.cancel = None

    def report(self) -> list[dict[str, object]]:
        now = trio.current_time()
        return [
            {
                "address": s.address,
                "feed_id": feed_id(s.key),
                "connected": self.replication.is_connected(s.key),
                "failures": s.failures,
                "last_error": s.last_error,
                "retry_in_s": round(max(0.0, s.next_attempt - now), 1),
            }
            for s in self.dials.values()
        ]
