"""LAN discovery by mDNS / DNS-SD: announce ourselves, find peers, hand them to the scheduler.

Theory of operation
-------------------
Two layers, like the rest of the package:

* A sans-IO part (pure functions and the :class:`Directory` state machine) that knows the
  wire format of our DNS-SD service (docs/protocol.md section 7): it builds our TXT
  record, parses another node's TXT record and addresses into a :class:`LanPeer` or an
  :class:`Ignored` reason, chooses the interface addresses to use, and decides, service by
  service, whether a peer joined, moved or left. It never touches zeroconf, trio or a socket.

* A trio shell, :func:`run_lan`. zeroconf runs its own asyncio loop in a thread and calls
  browser handlers from yet another thread. Its events come into trio through a memory
  channel: the handler only calls ``TrioToken.run_sync_soon(send_nowait)`` and never raises
  (a full channel drops the event with a warning; a finished trio run is ignored). Every
  blocking zeroconf call (constructor, ``register_service``, ``get_service_info``,
  ``ServiceBrowser.cancel``, ``unregister_service``, ``close``) runs through
  ``trio.to_thread``; shutdown runs shielded, under a deadline, so it can neither be
  interrupted half-way nor hang the daemon. Unregistering sends goodbye records, so other
  nodes see us leave at once rather than when our records expire.

Interfaces: with none configured we use every IPv4 address except loopback; with
``Config.interfaces`` we use exactly the addresses of the named interfaces, and zeroconf's
shared listening socket is told (Linux ``IP_MULTICAST_ALL=0``) to take multicast only from
the interfaces it joined, so we neither hear nor answer queries from an excluded interface.
We announce the addresses of the chosen interfaces (never loopback) with the port we
listen on; if we listen on one specific address, only that one.

A discovered peer on our network key goes to ``Scheduler.add``: replication then runs as
with any peer (both sides dial; the replication layer drops the duplicate connection).
When its service leaves, we stop dialling it if the dial was ours.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import logging
import socket
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import trio

from p2psocial.errors import InvalidId
from p2psocial.identity import feed_id, parse_feed_id

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from zeroconf import ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

    from p2psocial.daemon import Node

log = logging.getLogger("p2psocial.lan")

SERVICE_TYPE = "_p2psocial._tcp.local."
"""The DNS-SD service type we announce and browse."""
LAN_VERSION = "1"
"""TXT ``v``: the protocol spoken on the advertised port (docs/protocol.md sections 3-5)."""
NETWORK_TAG_PREFIX = b"p2psocial-lan"
"""Hashed in front of the network key for TXT ``net`` (never the key itself)."""
INSTANCE_PREFIX = "p2psocial-"
MAX_LAN_PEERS = 64
"""Services on our network we dial at most at once (a LAN can announce thousands)."""
EVENT_QUEUE = 256
"""Browser events waiting for trio; more are dropped with a warning."""
RESOLVE_TIMEOUT_MS = 3000
MAX_RESOLVING = 8
"""Threads resolving services at once."""
CLOSE_TIMEOUT = 5.0
"""Seconds shutdown may take (goodbyes, then closing zeroconf) before it is abandoned."""
IP_MULTICAST_ALL = 49
"""Linux socket option (``<linux/in.h>``), not exported by Python's socket module."""


# ---------------------------------------------------------------------------- sans-IO


def network_tag(network_key: bytes) -> str:
    """TXT ``net``: 16 lowercase hex digits, the first 8 bytes of
    ``sha256(b"p2psocial-lan" || network_key)``. Tells networks apart without revealing the
    key."""
    return hashlib.sha256(NETWORK_TAG_PREFIX + network_key).hexdigest()[:16]


def instance_label(public_key: bytes) -> str:
    """The DNS label naming our service instance and host: ``p2psocial-`` and the first 8
    bytes of our public key in hex. Only a name; the TXT ``id`` is what counts."""
    return INSTANCE_PREFIX + public_key[:8].hex()


def service_name(public_key: bytes) -> str:
    """Our full service instance name, ``p2psocial-<16 hex>._p2psocial._tcp.local.``."""
    return f"{instance_label(public_key)}.{SERVICE_TYPE}"


def host_name(public_key: bytes) -> str:
    """The host name our A records are published under, ``p2psocial-<16 hex>.local.``."""
    return f"{instance_label(public_key)}.local."


def txt_properties(public_key: bytes, network_key: bytes) -> dict[str, str]:
    """Our TXT record: protocol version, feed id and network tag, in this order."""
    return {"v": LAN_VERSION, "id": feed_id(public_key), "net": network_tag(network_key)}


class IgnoreReason(enum.Enum):
    """Why a discovered service is not dialled."""

    SELF = "it is us"
    OTHER_NETWORK = "another network key"
    VERSION = "unsupported or missing version"
    MALFORMED = "malformed record"
    NO_ADDRESS = "no usable address"
    TOO_MANY = "too many LAN peers"


@dataclass(frozen=True)
class LanPeer:
    """A node on our network, as its service announces it."""

    address: str
    """``host:port`` to dial."""
    key: bytes
    """Its public key (the handshake proves it)."""


@dataclass(frozen=True)
class Ignored:
    """A service we do not dial, and why."""

    reason: IgnoreReason
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


def _text(properties: Mapping[str, bytes | None], key: str) -> str | None:
    value = properties.get(key)
    if value is None:
        return None
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return None


def choose_address(
    addresses: Iterable[str], networks: Sequence[ipaddress.IPv4Network] = ()
) -> str | None:
    """The IPv4 address to dial among a service's addresses: the first in one of our own
    networks, else the first usable one. Loopback, unspecified, multicast, broadcast and
    non-IPv4 addresses are never chosen. None if there is none."""
    usable: list[ipaddress.IPv4Address] = []
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if (
            not isinstance(address, ipaddress.IPv4Address)
            or address.is_loopback
            or address.is_unspecified
            or address.is_multicast
            or address == ipaddress.IPv4Address("255.255.255.255")
        ):
            continue
        usable.append(address)
    for address in usable:
        if any(address in network for network in networks):
            return str(address)
    return str(usable[0]) if usable else None


def parse_service(
    properties: Mapping[bytes, bytes | None],
    addresses: Iterable[str],
    port: int | None,
    *,
    me: bytes,
    network_key: bytes,
    networks: Sequence[ipaddress.IPv4Network] = (),
) -> LanPeer | Ignored:
    """A discovered service's TXT properties, addresses and port as a peer to dial, or the
    reason to ignore it. Checks, in order: version, feed id, self, network tag, port,
    address. TXT keys are compared case-insensitively. Never raises on peer data."""
    props: dict[str, bytes | None] = {}
    for raw_key, value in properties.items():
        try:
            name = raw_key.decode("ascii").lower()
        except (UnicodeDecodeError, AttributeError):
            continue
        props.setdefault(name, value)
    version = _text(props, "v")
    if version != LAN_VERSION:
        return Ignored(IgnoreReason.VERSION, f"v={version!r}")
    id_text = _text(props, "id")
    try:
        key = parse_feed_id(id_text)
    except InvalidId as exc:
        return Ignored(IgnoreReason.MALFORMED, f"id: {exc}")
    if key == me:
        return Ignored(IgnoreReason.SELF)
    if _text(props, "net") != network_tag(network_key):
        return Ignored(IgnoreReason.OTHER_NETWORK, feed_id(key))
    if port is None or not 0 < port < 65536:
        return Ignored(IgnoreReason.MALFORMED, f"port {port!r} of {feed_id(key)}")
    address = choose_address(addresses, networks)
    if address is None:
        return Ignored(IgnoreReason.NO_ADDRESS, feed_id(key))
    return LanPeer(f"{address}:{port}", key)


def select_interfaces(
    adapters: Iterable[tuple[str, Iterable[ipaddress.IPv4Interface]]], names: Sequence[str]
) -> tuple[list[ipaddress.IPv4Interface], list[str]]:
    """The interface addresses to run mDNS on, from ``(interface name, its IPv4 addresses)``
    pairs: all non-loopback ones if ``names`` is empty, else exactly those of the named
    interfaces (still never loopback). Also returns the names that have no usable address."""
    chosen: list[ipaddress.IPv4Interface] = []
    found: set[str] = set()
    for name, interfaces in adapters:
        if names and name not in names:
            continue
        for interface in interfaces:
            if interface.ip.is_loopback or interface.ip.is_unspecified:
                continue
            if interface not in chosen:
                chosen.append(interface)
                found.add(name)
    return chosen, [n for n in names if n not in found]


def announce_addresses(
    chosen: Sequence[ipaddress.IPv4Interface], listen_host: str
) -> list[ipaddress.IPv4Address]:
    """The addresses to put in our A records: all chosen ones when we listen on every
    address, else the listen address if it is one of them (else none: we only browse)."""
    if listen_host in ("", "0.0.0.0", "::"):
        return [i.ip for i in chosen]
    return [i.ip for i in chosen if str(i.ip) == listen_host]


@dataclass(frozen=True)
class Joined:
    name: str
    peer: LanPeer


@dataclass(frozen=True)
class Moved:
    name: str
    old: LanPeer
    new: LanPeer


@dataclass(frozen=True)
class Left:
    name: str
    peer: LanPeer


@dataclass(frozen=True)
class Skipped:
    name: str
    why: Ignored


Change = Joined | Moved | Left | Skipped


@dataclass
class Directory:
    """The services seen on the LAN and what changed; no I/O.

    Feed it each resolved service (:meth:`resolved`) and each removal (:meth:`removed`); it
    returns the changes to act on. A service is reported as skipped only when the reason
    changes, so a chatty LAN does not flood the log."""

    limit: int = MAX_LAN_PEERS
    peers: dict[str, LanPeer] = field(default_factory=dict)
    ignored: dict[str, Ignored] = field(default_factory=dict)

    def resolved(self, name: str, result: LanPeer | Ignored) -> list[Change]:
        old = self.peers.get(name)
        if isinstance(result, Ignored):
            changes: list[Change] = []
            if old is not None:
                del self.peers[name]
                changes.append(Left(name, old))
            if self.ignored.get(name) != result:
                self.ignored[name] = result
                changes.append(Skipped(name, result))
            return changes
        self.ignored.pop(name, None)
        if old == result:
            return []
        if old is None and len(self.peers) >= self.limit:
            why = Ignored(IgnoreReason.TOO_MANY, f"{self.limit} already")
            self.ignored[name] = why
            return [Skipped(name, why)]
        self.peers[name] = result
        return [Joined(name, result)] if old is None else [Moved(name, old, result)]

    def removed(self, name: str) -> list[Change]:
        self.ignored.pop(name, None)
        old = self.peers.pop(name, None)
        return [] if old is None else [Left(name, old)]


# ---------------------------------------------------------------------------- trio shell

EventKind = Literal["added", "updated", "removed"]


@dataclass(frozen=True)
class BrowseEvent:
    name: str
    kind: EventKind


class _ToTrio:
    """A ServiceBrowser handler (called in zeroconf's browser thread) that passes events to
    trio through a memory channel. It never blocks and never raises: an exception would
    kill the browser thread, and a blocked handler would stall zeroconf."""

    def __init__(self, token: trio.lowlevel.TrioToken, send: trio.MemorySendChannel[BrowseEvent]):
        self.token = token
        self.send = send

    def __call__(
        self, *, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        try:
            kind: EventKind = {"Added": "added", "Updated": "updated", "Removed": "removed"}[
                state_change.name
            ]
            self.token.run_sync_soon(self._deliver, BrowseEvent(name, kind))
        except trio.RunFinishedError:
            pass  # the daemon is gone; nobody to tell
        except Exception:  # the thread boundary: raising would kill zeroconf's browser thread
            log.exception("cannot pass a LAN event to trio")

    def _deliver(self, event: BrowseEvent) -> None:
        # Runs in trio's thread, outside any task: must not raise either.
        try:
            self.send.send_nowait(event)
        except trio.WouldBlock:
            log.warning("LAN events arrive too fast; dropped %s %s", event.kind, event.name)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # shutting down


def _read_adapters() -> list[tuple[str, list[ipaddress.IPv4Interface]]]:
    """Each network interface's name and IPv4 addresses (ifaddr, a zeroconf dependency)."""
    import ifaddr

    out: list[tuple[str, list[ipaddress.IPv4Interface]]] = []
    for adapter in ifaddr.get_adapters():
        v4 = [
            ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}")
            for ip in adapter.ips
            if isinstance(ip.ip, str)
        ]
        out.append((adapter.nice_name, v4))
    return out


def _restrict_listen_socket(zc: Zeroconf) -> None:
    """Make zeroconf's shared listening socket take multicast only from the interfaces it
    joined. Linux delivers a group's packets to every socket bound to the port once any
    socket joined the group on any interface (``IP_MULTICAST_ALL`` defaults to 1), so
    without this we would hear, and answer by unicast, queries from excluded interfaces."""
    if not sys.platform.startswith("linux"):
        return
    sock = getattr(zc.engine, "_listen_socket", None)  # zeroconf keeps no public handle
    if not isinstance(sock, socket.socket):
        log.warning("cannot restrict mDNS to the chosen interfaces: no listen socket found")
        return
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
    except OSError as exc:
        log.warning("cannot restrict mDNS to the chosen interfaces: %s", exc)


@dataclass
class _Resolving:
    epoch: int = 0
    last: EventKind = "added"
    busy: bool = False


class LanDiscovery:
    """The running discovery: zeroconf, our registration, the browser, and the peers."""

    def __init__(
        self,
        node: Node,
        zc: Zeroconf,
        networks: Sequence[ipaddress.IPv4Network],
    ) -> None:
        self.node = node
        self.zc = zc
        self.networks = networks
        self.directory = Directory()
        self.info: ServiceInfo | None = None
        self.browser: ServiceBrowser | None = None
        self.dialled: dict[str, bytes] = {}
        """Addresses whose scheduler dial we started (so only we stop them)."""
        self._names: dict[str, _Resolving] = {}
        self._limiter = trio.CapacityLimiter(MAX_RESOLVING)

    async def register(self, addresses: Sequence[ipaddress.IPv4Address], port: int) -> None:
        """Announce our service (probe, then announce) on the chosen interfaces."""
        from zeroconf import ServiceInfo

        keys = self.node.keys
        info = ServiceInfo(
            SERVICE_TYPE,
            service_name(keys.public),
            port=port,
            properties=txt_properties(keys.public, self.node.config.network_key),
            server=host_name(keys.public),
            addresses=[a.packed for a in addresses],
        )
        await trio.to_thread.run_sync(
            lambda: self.zc.register_service(info, allow_name_change=True)
        )
        self.info = info
        log.info(
            "announcing %s on the LAN as %s at %s port %d",
            keys.feed_id,
            info.name,
            ", ".join(map(str, addresses)),
            port,
        )

    async def browse(self, nursery: trio.Nursery) -> None:
        """Browse for other nodes until cancelled."""
        from zeroconf import ServiceBrowser

        send, recv = trio.open_memory_channel[BrowseEvent](EVENT_QUEUE)
        handler = _ToTrio(trio.lowlevel.current_trio_token(), send)
        with send, recv:
            self.browser = await trio.to_thread.run_sync(
                lambda: ServiceBrowser(self.zc, SERVICE_TYPE, handlers=[handler])
            )
            async for event in recv:
                self._event(event, nursery)

    def _event(self, event: BrowseEvent, nursery: trio.Nursery) -> None:
        state = self._names.setdefault(event.name, _Resolving())
        state.epoch += 1
        state.last = event.kind
        if event.kind == "removed":
            self._apply(self.directory.removed(event.name))
            if not state.busy:
                del self._names[event.name]
        elif not state.busy:
            state.busy = True
            nursery.start_soon(self._resolve_task, event.name, state)

    async def _resolve_task(self, name: str, state: _Resolving) -> None:
        try:
            while True:
                epoch = state.epoch
                found = await self._resolve(name)
                if state.epoch != epoch:
                    if state.last == "removed":
                        return
                    continue  # updated meanwhile: resolve again
                if found is None:
                    log.debug("could not resolve %s", name)
                else:
                    self._apply(self.directory.resolved(name, found))
                return
        finally:
            state.busy = False
            if state.last == "removed":
                self._names.pop(name, None)

    async def _resolve(self, name: str) -> LanPeer | Ignored | None:
        def lookup() -> tuple[dict[bytes, bytes | None], list[str], int | None] | None:
            from zeroconf import IPVersion

            info = self.zc.get_service_info(SERVICE_TYPE, name, timeout=RESOLVE_TIMEOUT_MS)
            if info is None:
                return None
            return dict(info.properties), info.parsed_addresses(IPVersion.V4Only), info.port

        raw = await trio.to_thread.run_sync(lookup, abandon_on_cancel=True, limiter=self._limiter)
        if raw is None:
            return None
        properties, addresses, port = raw
        return parse_service(
            properties,
            addresses,
            port,
            me=self.node.keys.public,
            network_key=self.node.config.network_key,
            networks=self.networks,
        )

    def _apply(self, changes: Sequence[Change]) -> None:
        for change in changes:
            if isinstance(change, Joined):
                log.info(
                    "found LAN peer %s at %s (%s)",
                    feed_id(change.peer.key),
                    change.peer.address,
                    change.name,
                )
                self._dial(change.peer)
            elif isinstance(change, Moved):
                log.info(
                    "LAN peer %s moved from %s to %s",
                    feed_id(change.new.key),
                    change.old.address,
                    change.new.address,
                )
                self._stop_dialling(change.old)
                self._dial(change.new)
            elif isinstance(change, Left):
                log.info(
                    "LAN peer %s left (%s at %s)",
                    feed_id(change.peer.key),
                    change.name,
                    change.peer.address,
                )
                self._stop_dialling(change.peer)
            else:
                level = logging.DEBUG if change.why.reason is IgnoreReason.SELF else logging.INFO
                log.log(level, "ignoring LAN service %s: %s", change.name, change.why)

    def _dial(self, peer: LanPeer) -> None:
        scheduler = self.node.scheduler
        if peer.address not in scheduler.dials:
            self.dialled[peer.address] = peer.key
        scheduler.add(peer.address, peer.key)

    def _stop_dialling(self, peer: LanPeer) -> None:
        """Stop the scheduler's dial of a departed LAN peer, if we started it.

        The Scheduler has no public way to drop a dial yet; this does what a
        ``Scheduler.remove(address)`` would: forget the dial state and wake its task, which
        then ends (a live session is left to end by itself)."""
        if self.dialled.get(peer.address) != peer.key:
            return
        del self.dialled[peer.address]
        dials = self.node.scheduler.dials
        state = dials.get(peer.address)
        if state is not None and state.key == peer.key:
            del dials[peer.address]
            if state.cancel is not None:
                state.cancel.cancel()

    def close_sync(self) -> None:
        """Stop browsing, say goodbye, close zeroconf (blocking; run in a thread)."""
        from zeroconf import EventLoopBlocked

        try:
            if self.browser is not None:
                self.browser.cancel()
            if self.info is not None:
                self.zc.unregister_service(self.info)
                log.info("withdrew %s from the LAN", self.info.name)
        except EventLoopBlocked as exc:
            log.warning("mDNS goodbye did not complete: %r", exc)
        finally:
            self.zc.close()


async def run_lan(
    node: Node, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Announce ``node`` on the LAN and dial the peers found there, until cancelled.

    Reports started once our service is registered (or LAN discovery found nothing to run
    on, which is logged as a warning and is not an error: the daemon runs without it)."""
    from zeroconf import IPVersion, Zeroconf

    from p2psocial.config import parse_address

    config = node.config
    listen_host, _ = config.listen_address
    _, port = parse_address(node.listen)
    adapters = await trio.to_thread.run_sync(_read_adapters)
    chosen, missing = select_interfaces(adapters, config.interfaces)
    for name in missing:
        log.warning("LAN interface %s not found or has no IPv4 address; not used", name)
    if not chosen:
        log.warning("LAN discovery off: no IPv4 interface to use")
        task_status.started()
        return
    try:
        zc = await trio.to_thread.run_sync(
            lambda: Zeroconf(
                interfaces=[str(i.ip) for i in chosen],
                ip_version=IPVersion.V4Only,
                use_asyncio=False,
            )
        )
    except OSError as exc:
        log.warning("LAN discovery off: cannot open mDNS sockets: %s", exc)
        task_status.started()
        return
    discovery = LanDiscovery(node, zc, [i.network for i in chosen])
    try:
        _restrict_listen_socket(zc)
        log.info("mDNS on %s", ", ".join(str(i) for i in chosen))
        announce = announce_addresses(chosen, listen_host)
        if announce:
            await discovery.register(announce, port)
        else:
            log.warning("listening on %s, not on a LAN interface: browsing only", listen_host)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(discovery.browse, nursery)
            task_status.started()
    finally:
        with trio.move_on_after(CLOSE_TIMEOUT, shield=True) as scope:
            await trio.to_thread.run_sync(discovery.close_sync, abandon_on_cancel=True)
        if scope.cancelled_caught:
            log.warning("mDNS shutdown took over %.0f s; abandoned", CLOSE_TIMEOUT)
