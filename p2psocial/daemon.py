"""The daemon: the composition root. Store + replication + peers + the local socket.

:func:`run_daemon` opens the store, wires the parts together and starts every service in
one nursery, writes ``daemon.json`` (listen address, feed id, pid) for ``p2psocial
status``, and on cancellation (SIGINT/SIGTERM in the CLI) closes connections with
goodbyes, then the store. The daemon owns the store while it runs; the CLI and apps reach
it through the local JSON-RPC socket (docs/rpc.md).

Wiring: every write ends in one ``Stored`` event on the :class:`~p2psocial.events.EventBus`
(``events.py``); replication, pub learning and the socket's live subscriptions subscribe
to it. The methods run over an :class:`~p2psocial.app.App`, to which this module adds the
network (:class:`DaemonNetwork`). Nothing imports this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from p2psocial.api.methods import build_registry, live_messages
from p2psocial.api.server import serve_unix
from p2psocial.app import App, now_ms
from p2psocial.errors import ConfigError, DaemonAlreadyRunning, DatabaseCorrupt, StorageError
from p2psocial.events import EventBus
from p2psocial.home import write_private
from p2psocial.net.blobs import BlobService
from p2psocial.net.connection import Connection, serve
from p2psocial.net.pubs import PubService, pub_learner
from p2psocial.net.replicate import Replication
from p2psocial.net.scheduler import Scheduler
from p2psocial.store.db import StructureCheck
from p2psocial.store.gateway import StoreGateway
from p2psocial.store.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from p2psocial.config import Config
    from p2psocial.home import Home
    from p2psocial.identity import Keypair

log = logging.getLogger("p2psocial.daemon")


@dataclass
class DaemonNetwork:
    """The daemon's network side, as the app sees it (:class:`p2psocial.app.Network`)."""

    config: Config
    replication: Replication
    scheduler: Scheduler = field(init=False)
    blobs: BlobService = field(init=False)
    listen: str = ""
    started: int = field(default_factory=now_ms)
    pub: PubService | None = None

    @property
    def network_key(self) -> bytes:
        return self.config.network_key

    def peers_report(self) -> dict[str, Any]:
        return {"connected": self.replication.peer_report(), "known": self.scheduler.report()}

    def status_report(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "listen": self.listen,
            "started": self.started,
            "replication": self.replication.progress(),
            "peers": len(self.replication.sessions),
            "hops": self.config.hops,
            "serve": self.config.serve,
            "blob_exchange": {**self.blobs.report(), "hops": self.config.blob_hops},
        }

    def dial(self, address: str, key: bytes) -> None:
        self.scheduler.add(address, key)

    def want_blob(self, digest: bytes) -> trio.Event:
        return self.blobs.want(digest)

    async def create_invite(self, uses: int, expires_ms: int | None) -> str:
        if self.pub is None:
            raise ConfigError("this daemon is not a pub: start it with 'p2psocial daemon --pub'")
        return await self.pub.create_invite(uses, expires_ms)


@dataclass
class Node:
    """The running daemon's parts (what ``run_daemon`` reports as started)."""

    home: Home
    config: Config
    keys: Keypair
    app: App
    network: DaemonNetwork

    @property
    def listen(self) -> str:
        return self.network.listen


async def run_daemon(
    home: Home,
    config: Config,
    *,
    task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until cancelled. Creates the identity and store on first run.

    The home folder is made (or tightened to) mode 0700. Raises DaemonAlreadyRunning if
    another daemon holds this home; IdentityError if the secret key is missing next to an
    existing store (a new identity is never made then); DatabaseCorrupt / StorageError /
    StoreOwnerMismatch if the store is damaged or not this identity's, saying what to do."""
    tightened = home.make_private()
    if tightened is not None:
        log.warning(
            "home folder %s was mode %04o, open to other users: tightened it to 0700",
            home.path,
            tightened,
        )
    with _home_lock(home):
        await _run(home, config, task_status)


@contextlib.contextmanager
def _home_lock(home: Home) -> Iterator[None]:
    """An exclusive lock on ``<home>/daemon.lock`` for the daemon's lifetime: one daemon per
    home, and the lock vanishes with the process however it ends."""
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
    """Check the identity and the store belong together and are intact, then serve.

    Every start checks the store's header, the edges of its b-trees and our feed's head
    (milliseconds), and runs SQLite's ``quick_check`` of every page beside the daemon's
    work (damage found stops the daemon). After an unclean stop (``daemon.running`` left
    behind) the full ``integrity_check`` runs before anything else."""
    if not home.has_identity():
        keys = home.create_identity(os.urandom(32))  # refused next to an existing store
        log.info("created identity %s in %s", keys.feed_id, home.path)
    else:
        keys = home.load_identity()
    unclean = home.unclean_stop()
    if unclean is not None:
        pid = unclean.get("pid")
        log.warning(
            "the last daemon%s did not stop cleanly: checking all of %s "
            "(integrity_check) before starting",
            f" (pid {pid})" if pid is not None else "",
            home.store_path,
        )
    full = unclean is not None
    store = await trio.to_thread.run_sync(
        lambda: Store.open(home.store_path, verify_workers=None, owner=keys, full_check=full)
    )
    home.mark_running(os.getpid(), now_ms())
    damaged = False
    try:
        await trio.to_thread.run_sync(store.verifier.warm_up)
        async with trio.open_nursery() as nursery:
            if not full:
                nursery.start_soon(_check_structure, home.store_path)
            # the API's pure reads run on a read-only connection beside the writer (#11)
            with StoreGateway.with_readers(store) as gateway:
                await _serve(home, config, keys, gateway, task_status)
    except BaseException as exc:
        damaged = _has_storage_error(exc)  # keep daemon.running: check all next time
        raise
    finally:
        store.close()
        if not damaged:
            home.clear_running()
        log.info("store closed")


async def _check_structure(path: Path) -> None:
    """SQLite's quick_check of the whole store, on a read-only connection of its own,
    beside the daemon's work. Damage found raises DatabaseCorrupt, which stops the daemon."""
    check = StructureCheck(path)
    try:
        seconds = await trio.to_thread.run_sync(check.run, abandon_on_cancel=True)
    except DatabaseCorrupt as exc:
        log.error("%s", exc)
        raise
    finally:
        check.interrupt()
    log.info("quick check of %s: ok (%.2f s)", path, seconds)


def _has_storage_error(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_has_storage_error(e) for e in exc.exceptions)
    return isinstance(exc, StorageError)


async def _serve(
    home: Home,
    config: Config,
    keys: Keypair,
    gateway: StoreGateway,
    task_status: trio.TaskStatus[Node],
) -> None:
    bus = EventBus()
    replication = Replication(
        gateway,
        keys.public,
        hops=config.hops,
        now=now_ms,
        bus=bus,
        serve_follows_only=config.serve == "follows",
    )
    network = DaemonNetwork(config, replication)
    app = App(
        home,
        keys,
        gateway,
        bus,
        network=network,
        blob_max_size=config.blob_max_size,
        blob_quota=config.blob_quota,
    )
    blobs = BlobService(app.blobs, gateway, keys.public, hops=config.blob_hops, bus=bus)
    replication.purge_listeners.append(lambda _feed: blobs.graph_changed())
    network.blobs = blobs
    handlers = {**replication.handlers(), **blobs.handlers()}
    scheduler = Scheduler(
        replication,
        gateway,
        keys,
        config.network_key,
        now_ms,
        handlers=handlers,
        companions=[blobs.open_session],
    )
    network.scheduler = scheduler
    node = Node(home, config, keys, app, network)
    bus.subscribe(pub_learner(keys.public, scheduler.add_candidate))
    async with trio.open_nursery() as nursery:
        await nursery.start(replication.run)
        await nursery.start(app.run)
        await nursery.start(blobs.run)
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
        network.listen = f"{shown_host}:{bound[1]}"
        if config.pub:

            async def follow(newcomer: bytes) -> object:
                return await app.set_contact(newcomer, following=True)

            network.pub = PubService(
                gateway, keys, config.public_address or network.listen, now_ms, follow
            )
            handlers.update(network.pub.handlers())
        server = await nursery.start(
            lambda task_status: serve_unix(
                home.socket_path, build_registry(app), task_status=task_status
            )
        )
        bus.subscribe(live_messages(server.hub, keys.feed_id))
        blobs.progress.subscribe(lambda item: server.hub.publish("blobs", item))
        await nursery.start(scheduler.run)
        if config.lan:
            from p2psocial.net.lan import run_lan

            await nursery.start(
                lambda task_status: run_lan(
                    keys=keys,
                    network_key=config.network_key,
                    listen=(host, bound[1]),
                    interfaces=config.interfaces,
                    dialer=scheduler,
                    task_status=task_status,
                )
            )
        _write_info(home, keys, network)
        log.info("daemon %s listening on %s", keys.feed_id, network.listen)
        # What start-up made (modules, the config, the store's views) lives as long as
        # the daemon: out of the collector's sight, full collections that land inside a
        # request are shorter (bench_views at 1M entries: thread p99 18.8 -> 10 ms).
        gc.freeze()
        task_status.started(node)
        try:
            await trio.sleep_forever()
        finally:
            log.info("shutting down")
            with trio.CancelScope(shield=True):  # goodbyes to every peer at once
                async with trio.open_nursery() as closing:
                    for session in list(replication.sessions.values()):
                        closing.start_soon(session.conn.aclose, "daemon shutting down")
            _remove_info(home)


def _write_info(home: Home, keys: Keypair, network: DaemonNetwork) -> None:
    info = {
        "pid": os.getpid(),
        "feed_id": keys.feed_id,
        "listen": network.listen,
        "socket": str(home.socket_path),
        "started": network.started,
    }
    write_private(home.daemon_info_path, json.dumps(info) + "\n")  # 0600 whatever the umask


def _remove_info(home: Home) -> None:
    try:
        info = json.loads(home.daemon_info_path.read_text())
        if info.get("pid") == os.getpid():
            home.daemon_info_path.unlink()
    except (OSError, ValueError):
        pass
