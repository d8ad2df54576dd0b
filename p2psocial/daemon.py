"""The daemon: the composition root. Store + replication + peers + the local socket.

:func:`run_daemon` opens the store, starts every service in one nursery, writes
``daemon.json`` (listen address, feed id, pid) for ``p2psocial status``, and on
cancellation (SIGINT/SIGTERM in the CLI) closes connections with goodbyes, then the store.
The daemon owns the store while it runs; the CLI and apps reach it through the local
JSON-RPC socket (docs/rpc.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from p2psocial.feed.chain import Accepted
from p2psocial.identity import Keypair, feed_id
from p2psocial.model import Message
from p2psocial.net.connection import Connection, serve
from p2psocial.net.pubs import PubService, parse_pub_content, pub_content, redeem
from p2psocial.net.replicate import Replication
from p2psocial.net.scheduler import Scheduler
from p2psocial.private import make_opener
from p2psocial.store.gateway import StoreGateway
from p2psocial.store.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from p2psocial.config import Config
    from p2psocial.home import Home

log = logging.getLogger("p2psocial.daemon")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Node:
    """The running daemon's parts, as the RPC methods see them."""

    home: Home
    config: Config
    keys: Keypair
    gateway: StoreGateway
    replication: Replication
    scheduler: Scheduler
    listen: str = ""
    started: int = 0
    pub: PubService | None = None

    def message_stored(self, messages: Sequence[Message]) -> None:
        """Hook for live subscriptions (set by the API layer)."""

    def private_stored(self, filed: Sequence[tuple[Message, bytes]]) -> None:
        """Hook for live subscriptions to private messages we can read (set by the API)."""

    async def publish_private(
        self, text: str, to: Sequence[bytes], root: str | None = None
    ) -> tuple[Message, bytes]:
        """Seal, publish and file a private post; push it to peers and subscribers."""
        from p2psocial.private import publish_private

        keys = self.keys
        message, plaintext = await self.gateway.run(
            lambda s: publish_private(s, keys, text, to, now_ms(), root=root)
        )
        await self.published(message)
        self.private_stored([(message, plaintext)])
        return message, plaintext

    def learn_pubs(self, accepted: Sequence[Accepted]) -> None:
        """Pub addresses published in feeds become connection candidates."""
        for item in accepted:
            if item.content_type != "pub" or item.content is None:
                continue
            from p2psocial.feed.content import decode_content

            found = parse_pub_content(decode_content(item.content))
            if found is not None and found[1] != self.keys.public:
                self.scheduler.add_candidate(*found)

    async def set_contact(
        self, contact: bytes, *, following: bool | None = None, blocking: bool | None = None
    ) -> Message | None:
        """Follow/unfollow/block/unblock ``contact``, publishing the change if any."""
        from p2psocial.social import set_contact

        keys = self.keys

        def write(store: Store) -> Message | None:
            return set_contact(
                store, keys, contact, now_ms(), following=following, blocking=blocking
            )

        message = await self.gateway.run(write)
        await self.published(message)
        if message is None:
            await self.replication.refresh_graph()
        return message

    async def accept_invite(self, code: str) -> dict[str, Any]:
        """Redeem an invite: the pub follows us, we follow it, announce it, and connect."""
        from p2psocial.invite import parse_invite

        invite = parse_invite(code)
        await redeem(invite, self.keys, self.config.network_key)
        await self.set_contact(invite.pub_key, following=True)
        content = pub_content(invite.host, invite.port, invite.pub_key)
        message = await self.gateway.run(lambda s: s.publish(self.keys, content, now_ms()))
        await self.published(message)
        await self.gateway.run(
            lambda s: s.remember_peer(invite.address, invite.pub_key, "pub", now_ms())
        )
        self.scheduler.add(invite.address, invite.pub_key)
        return {"pub": feed_id(invite.pub_key), "address": invite.address}

    async def published(self, message: Message | None) -> None:
        if message is None:
            return
        from p2psocial.feed.content import content_type, decode_content
        from p2psocial.feed.entry import decode_entry

        entry = decode_entry(message.raw)
        kind = (
            content_type(decode_content(message.content_bytes)) if message.content_bytes else None
        )
        await self.replication.published(
            Accepted(entry, message.content_bytes, kind), message.received
        )

    async def status(self) -> dict[str, Any]:
        def read(store: Store) -> tuple[dict[str, int], list[Any]]:
            return store.counts(), store.forks()

        counts, forks = await self.gateway.run(read)
        return {
            "feed_id": self.keys.feed_id,
            "home": str(self.home.path),
            "running": True,
            "pid": os.getpid(),
            "listen": self.listen,
            "started": self.started,
            "feeds": counts["feeds"],
            "entries": counts["entries"],
            "forked_feeds": [
                {"feed_id": feed_id(f.author), "seq": f.seq, "detected": f.detected} for f in forks
            ],
            "replication": self.replication.progress(),
            "peers": len(self.replication.sessions),
            "hops": self.config.hops,
        }


async def run_daemon(
    home: Home,
    config: Config,
    *,
    task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until cancelled. Creates the identity and store on first run.

    Raises DaemonAlreadyRunning if another daemon holds this home."""
    home.path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _home_lock(home):
        await _run(home, config, task_status)


@contextlib.contextmanager
def _home_lock(home: Home) -> Iterator[None]:
    """An exclusive lock on ``<home>/daemon.lock`` for the daemon's lifetime: one daemon per
    home, and the lock vanishes with the process however it ends."""
    from p2psocial.api.server import DaemonAlreadyRunning

    path = home.path / "daemon.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DaemonAlreadyRunning(
                f"another daemon is already running on {home.path} (it holds {path})"
            ) from None
        yield
    finally:
        os.close(fd)


async def _run(home: Home, config: Config, task_status: trio.TaskStatus[Node]) -> None:
    if not home.has_identity():
        keys = home.create_identity(os.urandom(32))
        log.info("created identity %s in %s", keys.feed_id, home.path)
    else:
        keys = home.load_identity()
    store = Store.open(home.store_path, verify_workers=None)
    try:
        await trio.to_thread.run_sync(store.verifier.warm_up)
        gateway = StoreGateway(store)
        node_box: list[Node] = []

        def on_stored(accepted: Sequence[Accepted], received: int) -> None:
            if node_box:
                node_box[0].learn_pubs(accepted)
                node_box[0].message_stored(
                    [Message.from_entry(a.entry, a.content, received) for a in accepted]
                )

        def on_private(filed: list[tuple[Message, bytes]]) -> None:
            if node_box:
                node_box[0].private_stored(filed)

        replication = Replication(
            gateway,
            keys.public,
            hops=config.hops,
            now=now_ms,
            on_stored=on_stored,
            private_opener=make_opener(keys),
            on_private=on_private,
        )
        scheduler = Scheduler(replication, gateway, keys, config.network_key, now_ms)
        node = Node(home, config, keys, gateway, replication, scheduler, started=now_ms())
        handlers = dict(replication.handlers())
        node_box.append(node)
        async with trio.open_nursery() as nursery:
            await nursery.start(replication.run)
            host, port = config.listen_address

            async def hold(conn: Connection) -> None:
                await conn.wait_closed()

            listeners = await nursery.start(
                lambda task_status: serve(
                    host,
                    port,
                    keys=keys,
                    network_key=config.network_key,
                    on_connection=hold,
                    handlers=handlers,
                    accept=replication.accept,
                    task_status=task_status,
                )
            )
            bound = listeners[0].socket.getsockname()
            shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
            node.listen = f"{shown_host}:{bound[1]}"
            if config.pub:

                async def follow(newcomer: bytes) -> Message | None:
                    return await node.set_contact(newcomer, following=True)

                node.pub = PubService(
                    gateway, keys, config.public_address or node.listen, now_ms, follow
                )
                handlers.update(node.pub.handlers())
            from p2psocial.api.daemon_api import start_api

            await start_api(nursery, node)
            await nursery.start(scheduler.run)
            if config.lan:
                from p2psocial.net.lan import run_lan

                await nursery.start(run_lan, node)
            _write_info(home, node)
            log.info("daemon %s listening on %s", keys.feed_id, node.listen)
            task_status.started(node)
            try:
                await trio.sleep_forever()
            finally:
                log.info("shutting down")
                with trio.CancelScope(shield=True):
                    for session in list(replication.sessions.values()):
                        await session.conn.aclose("daemon shutting down")
                _remove_info(home)
    finally:
        store.close()
        log.info("store closed")


def _write_info(home: Home, node: Node) -> None:
    info = {
        "pid": os.getpid(),
        "feed_id": node.keys.feed_id,
        "listen": node.listen,
        "socket": str(home.socket_path),
        "started": node.started,
    }
    tmp = home.daemon_info_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info) + "\n")
    tmp.replace(home.daemon_info_path)


def _remove_info(home: Home) -> None:
    try:
        info = json.loads(home.daemon_info_path.read_text())
        if info.get("pid") == os.getpid():
            home.daemon_info_path.unlink()
    except (OSError, ValueError):
        pass
