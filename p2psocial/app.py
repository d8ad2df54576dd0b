"""What a person or an app does with p2psocial: the same with a daemon or without one.

Theory of operation
-------------------
:class:`App` holds the actions behind the JSON-RPC methods: publishing (public and
private), following and blocking, invites, peers, status. It works on a store through a
*gateway* (the daemon's store thread, or inline calls for the CLI without a daemon) and
announces what it stores on an :class:`~p2psocial.events.EventBus` as one
:class:`~p2psocial.events.Stored` event per write, carrying the decoded entry the store
handed back: nothing decodes it again.

The daemon adds a :class:`Network` (replication, dialling, pub invites); without one, the
actions that need the network say so (``DaemonNotRunning``) or do what can be done alone
(a peer is remembered for when the daemon starts; an invite is redeemed directly).

Our publishes go through one :class:`Publisher`, which coalesces concurrent publishes into
one turn of the store thread.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

import trio

from p2psocial.blobfiles import BlobFiles
from p2psocial.blobstore import BlobStore
from p2psocial.config import DEFAULT_BLOB_MAX_SIZE, DEFAULT_BLOB_QUOTA
from p2psocial.errors import ConfigError, DaemonNotRunning, PrivateBoxError
from p2psocial.events import Stored
from p2psocial.feed.content import encode_content
from p2psocial.identity import feed_id
from p2psocial.msgtypes.contact import contact_content
from p2psocial.msgtypes.private import private_post, recipients_with_author
from p2psocial.proto.privatebox import seal_content

if TYPE_CHECKING:
    from collections.abc import Sequence

    from p2psocial.events import EventBus
    from p2psocial.feed.chain import Accepted
    from p2psocial.feed.content import Content
    from p2psocial.home import Home
    from p2psocial.identity import Keypair
    from p2psocial.store.gateway import Gateway
    from p2psocial.store.store import Store

T = TypeVar("T")

PUBLISH_BATCH = 64
"""Most publishes written in one turn of the store thread."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Network(Protocol):
    """What the daemon adds: peers, replication, and the pub side of invites."""

    @property
    def listen(self) -> str:
        """HOST:PORT peers reach us at."""
        ...

    @property
    def network_key(self) -> bytes:
        """The network key of the secret handshake."""
        ...

    def peers_report(self) -> dict[str, Any]:
        """``{"connected": [...], "known": [...]}`` (docs/rpc.md, ``peers.list``)."""
        ...

    def status_report(self) -> dict[str, Any]:
        """The daemon's part of ``status``: listen, replication, peers, hops, ..."""
        ...

    def dial(self, address: str, key: bytes) -> None:
        """Connect to a peer now and keep reconnecting."""
        ...

    async def create_invite(self, uses: int, expires_ms: int | None) -> str:
        """A new invite code; ConfigError unless the daemon runs as a pub."""
        ...

    def want_blob(self, digest: bytes) -> trio.Event:
        """Fetch a blob from peers, before other blobs; the event is set once it is held."""
        ...


# ----------------------------------------------------------------------------- writing


def set_contact(
    store: Store,
    keys: Keypair,
    contact: bytes,
    now: int,
    *,
    following: bool | None = None,
    blocking: bool | None = None,
) -> Accepted | None:
    """Publish our new stance towards ``contact`` (None: keep that flag), on the store.
    Returns None when nothing changes. Blocking purges everything stored of the feed."""
    if contact == keys.public:
        raise ConfigError("you cannot follow or block yourself")
    was_following, was_blocking = store.contact_state(keys.public, contact)
    follow = was_following if following is None else following
    block = was_blocking if blocking is None else blocking
    if block:
        follow = False  # a block ends a follow
    if (follow, block) == (was_following, was_blocking):
        return None
    accepted = store.publish(keys, contact_content(contact, following=follow, blocking=block), now)
    if block:
        store.purge_feed(contact)
    return accepted


class _Job:
    """One publish waiting for the store thread."""

    __slots__ = ("content", "done", "error", "opened", "stored")

    def __init__(self, content: Content, opened: tuple[bytes, dict[str, Any]] | None) -> None:
        self.content = content
        self.opened = opened
        self.done = trio.Event()
        self.stored: Accepted | None = None
        self.error: Exception | None = None


class Publisher:
    """Writes our new entries, coalescing concurrent publishes.

    A publish that finds the writer idle is written at once, by its own task. Publishes
    that arrive while a write is under way queue up, and the writer task (:meth:`run`)
    writes all of them in the next turn of the store thread: one thread hop for many (in
    arrival order, each its own transaction). Each is then announced on the bus. A write,
    once begun, is finished and announced even if its caller is cancelled: never half done.
    """

    def __init__(self, keys: Keypair, gateway: Gateway, bus: EventBus) -> None:
        self._keys = keys
        self._gateway = gateway
        self._bus = bus
        self._jobs: deque[_Job] = deque()
        self._busy = False
        self._wake = trio.Event()

    async def publish(
        self, content: Content, opened: tuple[bytes, dict[str, Any]] | None = None
    ) -> Accepted:
        """Append ``content`` to our feed; raises what ``Store.publish`` raises."""
        job = _Job(content, opened)
        if self._busy or self._jobs:
            self._jobs.append(job)
            self._wake.set()
            await job.done.wait()
        else:
            await self._write_shielded([job])
        if job.error is not None:
            raise job.error
        assert job.stored is not None  # set whenever error is not
        return job.stored

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """The writer task for queued publishes: runs until cancelled."""
        task_status.started()
        while True:
            if self._busy or not self._jobs:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            count = min(len(self._jobs), PUBLISH_BATCH)
            await self._write_shielded([self._jobs.popleft() for _ in range(count)])

    async def _write_shielded(self, batch: list[_Job]) -> None:
        self._busy = True
        try:
            with trio.CancelScope(shield=True):
                await self._write(batch)
        finally:
            self._busy = False
            if self._jobs:
                self._wake.set()

    async def _write(self, batch: list[_Job]) -> None:
        keys = self._keys

        def write(store: Store) -> None:
            for job in batch:
                try:
                    job.stored = store.publish(keys, job.content, now_ms(), opened=job.opened)
                except Exception as exc:  # handed to the caller, who answers it
                    job.error = exc

        try:
            await self._gateway.run(write)
        except Exception as exc:  # the store thread itself failed: every job fails
            for job in batch:
                job.error = job.error or exc
        for job in batch:
            if job.stored is not None:
                self._bus.emit(Stored([job.stored], local=True))
            job.done.set()


# ----------------------------------------------------------------------------- the app


class App:
    """The actions of one person's p2psocial, on their store, with or without a daemon."""

    def __init__(
        self,
        home: Home,
        keys: Keypair,
        gateway: Gateway,
        bus: EventBus,
        *,
        network: Network | None = None,
        network_key: bytes | None = None,
        blob_max_size: int = DEFAULT_BLOB_MAX_SIZE,
        blob_quota: int = DEFAULT_BLOB_QUOTA,
    ) -> None:
        self.home = home
        self.keys = keys
        self.gateway = gateway
        self.bus = bus
        self.network = network
        self.network_key = network_key if network is None else network.network_key
        self.publisher = Publisher(keys, gateway, bus)
        self.blobs = BlobStore(
            BlobFiles(home.path / "blobs"),
            gateway,
            keys.public,
            max_size=blob_max_size,
            quota=blob_quota,
        )

    @property
    def running(self) -> bool:
        """Whether this is the daemon (with a network), not the CLI on its own."""
        return self.network is not None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The app's own task (the publisher's writer): run it in a nursery until done."""
        await self.publisher.run(task_status=task_status)

    async def publish(self, content: Content) -> Accepted:
        return await self.publisher.publish(content)

    async def publish_private(
        self,
        text: str,
        to: Sequence[bytes],
        root: str | None = None,
        *,
        attachments: Sequence[dict[str, Any]] = (),
    ) -> Accepted:
        """Seal and publish a private post to ``to`` (and us); it is filed in our inbox.

        Raises BadRecipients, InvalidId, LocalContentTooLarge; nothing is published then."""
        readers = recipients_with_author(self.keys.public, to)
        content = private_post(text, readers, root=root)
        if attachments:
            content["mentions"] = list(attachments)
        ciphertext = seal_content(content, readers, rng_bytes=os.urandom)
        accepted = await self.publisher.publish(
            ciphertext, opened=(encode_content(content), content)
        )
        if accepted.private_value is None:  # pragma: no cover - we are always a reader
            raise PrivateBoxError("could not file our own private message")
        return accepted

    async def set_contact(
        self, contact: bytes, *, following: bool | None = None, blocking: bool | None = None
    ) -> Accepted | None:
        """Follow/unfollow/block/unblock ``contact``, publishing the change if any."""
        keys = self.keys

        def write(store: Store) -> Accepted | None:
            return set_contact(
                store, keys, contact, now_ms(), following=following, blocking=blocking
            )

        accepted = await self.gateway.run(write)
        if accepted is not None:
            self.bus.emit(Stored([accepted], local=True))
        return accepted

    async def accept_invite(self, code: str) -> dict[str, Any]:
        """Redeem an invite: the pub follows us, we follow it, announce it, and connect."""
        from p2psocial.config import load_config
        from p2psocial.invite import parse_invite
        from p2psocial.msgtypes.pub import pub_content
        from p2psocial.net.pubs import redeem

        invite = parse_invite(code)
        network_key = self.network_key or load_config(self.home.path).network_key
        await redeem(invite, self.keys, network_key)
        await self.set_contact(invite.pub_key, following=True)
        await self.publish(pub_content(invite.host, invite.port, invite.pub_key))
        await self.gateway.run(
            lambda s: s.remember_peer(invite.address, invite.pub_key, "pub", now_ms())
        )
        if self.network is not None:
            self.network.dial(invite.address, invite.pub_key)
        return {"pub": feed_id(invite.pub_key), "address": invite.address}

    async def create_invite(self, uses: int, expires_ms: int | None) -> str:
        if self.network is None:
            raise DaemonNotRunning(
                "invite create needs the pub's daemon running ('p2psocial daemon --pub')"
            )
        return await self.network.create_invite(uses, expires_ms)

    async def connect(self, address: str, key: bytes) -> bool:
        """Remember a peer (the daemon reconnects after restarts) and dial it now if the
        daemon runs. Returns whether it is being dialled."""
        await self.gateway.run(lambda s: s.remember_peer(address, key, "manual", now_ms()))
        if self.network is None:
            return False
        self.network.dial(address, key)
        return True

    async def peers(self) -> dict[str, Any]:
        if self.network is not None:
            return self.network.peers_report()
        known = await self.gateway.run(lambda s: s.known_peers())
        return {
            "connected": [],
            "known": [
                {"address": a, "feed_id": feed_id(k), "connected": False} for a, k, _src in known
            ],
        }

    async def status(self) -> dict[str, Any]:
        def read(store: Store) -> tuple[dict[str, int], list[Any]]:
            return store.counts(), store.forks()

        counts, forks = await self.gateway.read(read)
        result: dict[str, Any] = {
            "feed_id": self.keys.feed_id,
            "home": str(self.home.path),
            "running": self.network is not None,
            "feeds": counts["feeds"],
            "entries": counts["entries"],
            "forked_feeds": [
                {"feed_id": feed_id(f.author), "seq": f.seq, "detected": f.detected} for f in forks
            ],
        }
        result["blobs"] = await self.blobs.totals()
        if self.network is not None:
            result.update(self.network.status_report())
        return result
