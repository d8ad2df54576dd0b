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

Interfaces: with none configured, one zeroconf instance (a *responder*) runs on every
IPv4 address except loopback. With ``Config.interfaces``, one responder runs per named
interface, on exactly its addresses, with all its sockets bound to that device
(``SO_BINDTODEVICE``): we neither hear nor answer anything on an excluded interface, and
if the binding fails there is no LAN discovery on that interface at all. Each responder
announces its own addresses (never loopback) with the port we listen on; if we listen on
one specific address, only that one.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import trio

from p2psocial.errors import InvalidId
from p2psocial.identity import feed_id, parse_feed_id

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from zeroconf import ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

    from p2psocial.daemon import Node
    from p2psocial.identity import Keypair

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


@dataclass(frozen=True)
class Segment:
    """The scope of one mDNS responder: the addresses it runs on, and the interface its
    sockets are bound to (None: every interface, as nothing is excluded)."""

    label: str
    device: str | None
    interfaces: tuple[ipaddress.IPv4Interface, ...]

    @property
    def networks(self) -> list[ipaddress.IPv4Network]:
        return [i.network for i in self.interfaces]


def select_interfaces(
    adapters: Iterable[tuple[str, Iterable[ipaddress.IPv4Interface]]], names: Sequence[str]
) -> tuple[list[Segment], list[str]]:
    """Where to run mDNS, from ``(interface name, its IPv4 addresses)`` pairs.

    With no ``names``: one segment over every non-loopback address, on no device in
    particular. With ``names``: one segment per named interface that has a non-loopback
    address, bound to that device, so that nothing is heard from or said on any other.
    Also returns the names that have no usable address."""
    usable: dict[str, list[ipaddress.IPv4Interface]] = {}
    for name, interfaces in adapters:
        for interface in interfaces:
            if interface.ip.is_loopback or interface.ip.is_unspecified:
                continue
            found = usable.setdefault(name, [])
            if interface not in found:
                found.append(interface)
    if not names:
        everything = tuple(dict.fromkeys(i for found in usable.values() for i in found))
        return ([Segment("all interfaces", None, everything)] if everything else []), []
    segments = [
        Segment(name, name, tuple(usable[name])) for name in dict.fromkeys(names) if name in usable
    ]
    return segments, [name for name in names if name not in usable]


def announce_addresses(segment: Segment, listen_host: str) -> list[ipaddress.IPv4Address]:
    """The addresses to put in our A records on ``segment``: all of its addresses when we
    listen on every address, else the listen address if it is one of them (else none: we
    only browse there)."""
    if listen_host in ("", "0.0.0.0", "::"):
        return [i.ip for i in segment.interfaces]
    return [i.ip for i in segment.interfaces if str(i.ip) == listen_host]


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
_KINDS: dict[str, EventKind] = {"Added": "added", "Updated": "updated", "Removed": "removed"}


@dataclass(frozen=True)
class BrowseEvent:
    responder: int
    """Index of the responder whose browser saw it."""
    name: str
    kind: EventKind


class _ToTrio:
    """A ServiceBrowser handler (called in zeroconf's browser thread) that passes events to
    trio through a memory channel. It never blocks and never raises: an exception would
    kill the browser thread, and a blocked handler would stall zeroconf."""

    def __init__(
        self,
        token: trio.lowlevel.TrioToken,
        send: trio.MemorySendChannel[BrowseEvent],
        responder: int = 0,
    ) -> None:
        self.token = token
        self.send = send
        self.responder = responder

    def __call__(
        self, *, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        try:
            kind = _KINDS.get(state_change.name)
            if kind is not None:
                event = BrowseEvent(self.responder, name, kind)
                self.token.run_sync_soon(self._deliver, event)
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


def _bind_to_device(zc: Zeroconf, device: str) -> bool:
    """Bind all of ``zc``'s sockets to ``device`` (Linux ``SO_BINDTODEVICE``); False, with
    the reason logged, if that could not be done.

    zeroconf receives on one socket bound to ``0.0.0.0:5353``, and Linux hands that socket
    a group's packets from every interface on which anything on the host joined the group.
    Unbound, it would hear queries from excluded interfaces and answer them (by unicast,
    through that socket), announcing us exactly where the user said not to. Bound, it
    hears and sends on ``device`` only. (``IP_MULTICAST_ALL=0`` is no substitute: with
    several mDNS stacks sharing the port through ``SO_REUSEPORT``, some kernels then
    spread the group's packets among them, so each one misses some.) Called before we
    register, when there is nothing to announce yet."""
    option = getattr(socket, "SO_BINDTODEVICE", None)
    if option is None:
        log.error("cannot keep mDNS to %s: no SO_BINDTODEVICE on this platform", device)
        return False
    # zeroconf has no public handle on its sockets; its engine lists them as readers and
    # senders, each ``sock`` an asyncio TransportSocket (which passes setsockopt through).
    engine = zc.engine
    wrapped = [*getattr(engine, "readers", ()), *getattr(engine, "senders", ())]
    sockets = [w.sock for w in wrapped if hasattr(getattr(w, "sock", None), "setsockopt")]
    if not any(tuple(getattr(w, "sock_name", ()))[:1] == ("0.0.0.0",) for w in wrapped):
        log.error("cannot keep mDNS to %s: zeroconf's listening socket not found", device)
        return False
    try:
        for sock in sockets:
            sock.setsockopt(socket.SOL_SOCKET, option, device.encode())
    except OSError as exc:
        log.error("cannot keep mDNS to %s: %s", device, exc)
        return False
    return True


class Responder:
    """One zeroconf instance on one segment: its sockets, our service there, its browser."""

    def __init__(self, index: int, segment: Segment, zc: Zeroconf) -> None:
        self.index = index
        self.segment = segment
        self.zc = zc
        self.info: ServiceInfo | None = None
        self.browser: ServiceBrowser | None = None

    @classmethod
    async def open(cls, index: int, segment: Segment) -> Responder | None:
        """Open zeroconf's sockets on ``segment`` (bound to its device if it has one);
        None, logged, if that fails."""
        from zeroconf import IPVersion, Zeroconf

        try:
            zc = await trio.to_thread.run_sync(
                lambda: Zeroconf(
                    interfaces=[str(i.ip) for i in segment.interfaces],
                    ip_version=IPVersion.V4Only,
                    use_asyncio=False,
                )
            )
        except OSError as exc:
            log.warning("no mDNS on %s: cannot open its sockets: %s", segment.label, exc)
            return None
        if segment.device is not None and not _bind_to_device(zc, segment.device):
            await trio.to_thread.run_sync(zc.close)
            log.error("no mDNS on %s: it could leak onto other interfaces", segment.label)
            return None
        log.info("mDNS on %s (%s)", segment.label, ", ".join(map(str, segment.interfaces)))
        return cls(index, segment, zc)

    async def register(
        self,
        keys: Keypair,
        network_key: bytes,
        addresses: Sequence[ipaddress.IPv4Address],
        port: int,
    ) -> None:
        """Announce our service here (probe, then announce). If zeroconf cannot finish
        that in time, we only browse here (logged)."""
        from zeroconf import EventLoopBlocked, ServiceInfo

        info = ServiceInfo(
            SERVICE_TYPE,
            service_name(keys.public),
            port=port,
            properties=txt_properties(keys.public, network_key),
            server=host_name(keys.public),
            addresses=[a.packed for a in addresses],
        )
        try:
            await trio.to_thread.run_sync(
                lambda: self.zc.register_service(info, allow_name_change=True)
            )
        except EventLoopBlocked as exc:
            log.warning("cannot announce us on %s: %r", self.segment.label, exc)
            return
        self.info = info
        log.info(
            "announcing %s on %s as %s at %s port %d",
            keys.feed_id,
            self.segment.label,
            info.name,
            ", ".join(map(str, addresses)),
            port,
        )

    async def browse(self, send: trio.MemorySendChannel[BrowseEvent]) -> None:
        """Start browsing; events go to ``send``."""
        from zeroconf import ServiceBrowser

        handler = _ToTrio(trio.lowlevel.current_trio_token(), send, self.index)
        self.browser = await trio.to_thread.run_sync(
            lambda: ServiceBrowser(self.zc, SERVICE_TYPE, handlers=[handler])
        )

    def lookup(self, name: str) -> tuple[dict[bytes, bytes | None], list[str], int | None] | None:
        """A service's TXT properties, IPv4 addresses and port, or None if it does not
        resolve (blocking: run in a thread)."""
        from zeroconf import Error, IPVersion

        try:
            info = self.zc.get_service_info(SERVICE_TYPE, name, timeout=RESOLVE_TIMEOUT_MS)
        except Error as exc:  # a name or records zeroconf rejects
            log.info("cannot resolve LAN service %r: %r", name, exc)
            return None
        if info is None:
            return None
        return dict(info.properties), info.parsed_addresses(IPVersion.V4Only), info.port

    def close_sync(self) -> None:
        """Stop browsing, say goodbye, close (blocking: run in a thread)."""
        from zeroconf import EventLoopBlocked

        try:
            if self.browser is not None:
                self.browser.cancel()
            if self.info is not None:
                self.zc.unregister_service(self.info)
                log.info("withdrew %s from %s", self.info.name, self.segment.label)
        except EventLoopBlocked as exc:
            log.warning("mDNS goodbye on %s did not complete: %r", self.segment.label, exc)
        finally:
            self.zc.close()


@dataclass
class _Resolving:
    epoch: int = 0
    last: EventKind = "added"
    busy: bool = False


class LanDiscovery:
    """The running discovery: the responders, and the peers they found."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.responders: list[Responder] = []
        self.directory = Directory()
        self.dialled: dict[str, bytes] = {}
        """Addresses whose scheduler dial we started (so only we stop them)."""
        self._names: dict[tuple[int, str], _Resolving] = {}
        self._limiter = trio.CapacityLimiter(MAX_RESOLVING)

    async def open(self, segments: Sequence[Segment], listen_host: str, port: int) -> None:
        """A responder on each segment, announcing us where we can be reached."""
        for segment in segments:
            responder = await Responder.open(len(self.responders), segment)
            if responder is None:
                continue
            self.responders.append(responder)
            addresses = announce_addresses(segment, listen_host)
            if addresses:
                await responder.register(
                    self.node.keys, self.node.config.network_key, addresses, port
                )
            else:
                log.info(
                    "listening on %s only, not an address of %s: looking for peers there "
                    "without announcing us",
                    listen_host,
                    segment.label,
                )

    async def run(self, task_status: trio.TaskStatus[None]) -> None:
        """Browse on every responder and act on what is found, until cancelled."""
        send, recv = trio.open_memory_channel[BrowseEvent](EVENT_QUEUE)
        with send, recv:
            for responder in self.responders:
                await responder.browse(send)
            async with trio.open_nursery() as nursery:
                task_status.started()
                async for event in recv:
                    self._event(event, nursery)

    async def aclose(self) -> None:
        """Close every responder at once (goodbyes first), shielded, within CLOSE_TIMEOUT."""
        with trio.move_on_after(CLOSE_TIMEOUT, shield=True) as scope:
            async with trio.open_nursery() as nursery:
                for responder in self.responders:
                    nursery.start_soon(self._close, responder)
        if scope.cancelled_caught:
            log.warning("mDNS shutdown took over %.0f s; abandoned", CLOSE_TIMEOUT)

    @staticmethod
    async def _close(responder: Responder) -> None:
        await trio.to_thread.run_sync(responder.close_sync, abandon_on_cancel=True)

    def _event(self, event: BrowseEvent, nursery: trio.Nursery) -> None:
        key = (event.responder, event.name)
        state = self._names.setdefault(key, _Resolving())
        state.epoch += 1
        state.last = event.kind
        if event.kind == "removed":
            self._apply(self.directory.removed(self._entry(key)))
            if not state.busy:
                del self._names[key]
        elif not state.busy:
            state.busy = True
            nursery.start_soon(self._resolve_task, key, state)

    def _entry(self, key: tuple[int, str]) -> str:
        """The directory's name for a service as seen by one responder."""
        return f"{key[1]} via {self.responders[key[0]].segment.label}"

    async def _resolve_task(self, key: tuple[int, str], state: _Resolving) -> None:
        responder = self.responders[key[0]]
        try:
            while True:
                epoch = state.epoch
                raw = await trio.to_thread.run_sync(
                    responder.lookup, key[1], abandon_on_cancel=True, limiter=self._limiter
                )
                if state.epoch != epoch:
                    if state.last == "removed":
                        return
                    continue  # updated meanwhile: resolve again
                if raw is None:
                    log.debug("could not resolve %s", self._entry(key))
                    return
                found = parse_service(
                    *raw,
                    me=self.node.keys.public,
                    network_key=self.node.config.network_key,
                    networks=responder.segment.networks,
                )
                self._apply(self.directory.resolved(self._entry(key), found))
                return
        finally:
            state.busy = False
            if state.last == "removed":
                self._names.pop(key, None)

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
        """Stop the scheduler's dial of a departed LAN peer, if we started it (a live
        session is left to end by itself)."""
        if self.dialled.get(peer.address) != peer.key:
            return
        if peer in self.directory.peers.values():
            return  # still announced, seen through another interface
        del self.dialled[peer.address]
        self.node.scheduler.remove(peer.address, peer.key)


async def run_lan(
    node: Node, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Announce ``node`` on the LAN and dial the peers found there, until cancelled.

    Reports started once our service is registered. If there is nothing to run on (no
    usable interface, sockets that cannot be opened or kept to the named interfaces), that
    is logged and the daemon runs without LAN discovery: it is not an error."""
    from p2psocial.config import parse_address

    config = node.config
    listen_host, _ = config.listen_address
    _, port = parse_address(node.listen)
    adapters = await trio.to_thread.run_sync(_read_adapters)
    segments, missing = select_interfaces(adapters, config.interfaces)
    for name in missing:
        log.warning("LAN interface %s not found or has no IPv4 address; not used", name)
    discovery = LanDiscovery(node)
    try:
        await discovery.open(segments, listen_host, port)
        if not discovery.responders:
            log.warning("LAN discovery off: no interface to run mDNS on")
            task_status.started()
            return
        await discovery.run(task_status)
    finally:
        await discovery.aclose()
