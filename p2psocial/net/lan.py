"""LAN discovery by mDNS / DNS-SD, the trio shell: announce us, browse, hand peers to a dialer.

Theory of operation
-------------------
What to announce, how to read what others announce and what changed are decided in
:mod:`p2psocial.proto.lan` (sans-IO). This module does the I/O: it reads the host's
interfaces (ifaddr), runs zeroconf, and carries out those decisions on a :class:`Dialer`
(the daemon's ``Scheduler``). It knows nothing of the daemon: :func:`run_lan` gets our
keypair, the network key, where we listen, the interfaces to use and the dialer.

zeroconf runs its own asyncio loop in a thread and calls browser handlers from yet another
thread. Its events come into trio through a memory channel: the handler only calls
``TrioToken.run_sync_soon(send_nowait)`` and never raises (a full channel drops the event
with a warning; a finished trio run is ignored). Every blocking zeroconf call
(constructor, ``register_service``, ``get_service_info``, ``ServiceBrowser.cancel``,
``unregister_service``, ``close``) runs through ``trio.to_thread``; shutdown runs shielded,
under a deadline, so it can neither be interrupted half-way nor hang the daemon.
Unregistering sends goodbye records, so other nodes see us leave at once rather than when
our records expire.

Interfaces: with none named, one zeroconf instance (a *responder*) runs on every IPv4
address except loopback. With ``interfaces``, one responder runs per named interface, on
exactly its addresses, with all its sockets bound to that device (``SO_BINDTODEVICE``): we
neither hear nor answer anything on an excluded interface, and if the binding fails there
is no LAN discovery on that interface at all. Each responder announces its own addresses
(never loopback) with the port we listen on; if we listen on one specific address, only
that one.

A discovered peer on our network key goes to ``Dialer.add``: replication then runs as with
any peer (both sides dial; the replication layer drops the duplicate connection). When its
service leaves, we stop dialling it if the dial was ours.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import trio

from p2psocial.identity import feed_id
from p2psocial.proto.lan import (
    SERVICE_TYPE,
    DialClaims,
    Directory,
    EventKind,
    IgnoreReason,
    Joined,
    LanPeer,
    Left,
    Lookups,
    Moved,
    Segment,
    announce_addresses,
    host_name,
    parse_service,
    select_interfaces,
    service_name,
    txt_properties,
)

if TYPE_CHECKING:
    from collections.abc import Container, Sequence

    from zeroconf import ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

    from p2psocial.identity import Keypair
    from p2psocial.proto.lan import Change

log = logging.getLogger("p2psocial.lan")

EVENT_QUEUE = 256
"""Browser events waiting for trio; more are dropped with a warning."""
RESOLVE_TIMEOUT_MS = 3000
MAX_RESOLVING = 8
"""Threads resolving services at once."""
CLOSE_TIMEOUT = 5.0
"""Seconds shutdown may take (goodbyes, then closing zeroconf) before it is abandoned."""


class Dialer(Protocol):
    """What LAN discovery needs of whoever dials peers (``net.scheduler.Scheduler`` is one)."""

    @property
    def dials(self) -> Container[str]:
        """The addresses dialled now."""

    def add(self, address: str, key: bytes) -> None:
        """Dial ``address``, expecting ``key``, from now on (redial at once if known)."""

    def remove(self, address: str, key: bytes) -> bool:
        """Stop dialling ``address`` if it is dialled for ``key``; whether it was."""


# ---------------------------------------------------------------------------- thread -> trio

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


# ---------------------------------------------------------------------------- discovery

ServiceKey = tuple[int, str]
"""A service as one responder sees it: the responder's index and the service's name."""


class LanDiscovery:
    """The running discovery: the responders, and the peers they found."""

    def __init__(self, *, keys: Keypair, network_key: bytes, dialer: Dialer) -> None:
        self.keys = keys
        self.network_key = network_key
        self.dialer = dialer
        self.responders: list[Responder] = []
        self.directory = Directory()
        self.lookups: Lookups[ServiceKey] = Lookups()
        self.claims = DialClaims()
        """Dials we started (so only we stop them)."""
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
                await responder.register(self.keys, self.network_key, addresses, port)
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
        if event.kind == "removed":
            self._apply(self.directory.removed(self._entry(key)))
        if self.lookups.event(key, event.kind):
            nursery.start_soon(self._resolve_task, key)

    def _entry(self, key: ServiceKey) -> str:
        """The directory's name for a service as seen by one responder."""
        return f"{key[1]} via {self.responders[key[0]].segment.label}"

    async def _resolve_task(self, key: ServiceKey) -> None:
        responder = self.responders[key[0]]
        try:
            while True:
                attempt = self.lookups.attempt(key)
                raw = await trio.to_thread.run_sync(
                    responder.lookup, key[1], abandon_on_cancel=True, limiter=self._limiter
                )
                outcome = self.lookups.outcome(key, attempt)
                if outcome == "drop":
                    return
                if outcome == "again":
                    continue  # updated meanwhile: resolve again
                if raw is None:
                    log.debug("could not resolve %s", self._entry(key))
                    return
                found = parse_service(
                    *raw,
                    me=self.keys.public,
                    network_key=self.network_key,
                    networks=responder.segment.networks,
                )
                self._apply(self.directory.resolved(self._entry(key), found))
                return
        finally:
            self.lookups.finished(key)

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
        self.claims.claim(peer, dialled_already=peer.address in self.dialer.dials)
        self.dialer.add(peer.address, peer.key)

    def _stop_dialling(self, peer: LanPeer) -> None:
        """Stop the dial of a departed LAN peer, if we started it (a live session is left
        to end by itself)."""
        if self.claims.release(peer, self.directory.peers.values()):
            self.dialer.remove(peer.address, peer.key)


async def run_lan(
    *,
    keys: Keypair,
    network_key: bytes,
    listen: tuple[str, int],
    interfaces: Sequence[str] = (),
    dialer: Dialer,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Announce us on the LAN and hand the peers found there to ``dialer``, until cancelled.

    ``listen`` is the host we listen on as configured (``0.0.0.0`` or ``""`` for every
    address, else the one address we announce) and the port we are actually bound to.
    ``interfaces`` are the interfaces to run mDNS on (none: all but loopback).

    Reports started once our service is registered. If there is nothing to run on (no
    usable interface, sockets that cannot be opened or kept to the named interfaces), that
    is logged and we return without LAN discovery: it is not an error."""
    listen_host, port = listen
    adapters = await trio.to_thread.run_sync(_read_adapters)
    segments, missing = select_interfaces(adapters, interfaces)
    for name in missing:
        log.warning("LAN interface %s not found or has no IPv4 address; not used", name)
    discovery = LanDiscovery(keys=keys, network_key=network_key, dialer=dialer)
    try:
        await discovery.open(segments, listen_host, port)
        if not discovery.responders:
            log.warning("LAN discovery off: no interface to run mDNS on")
            task_status.started()
            return
        await discovery.run(task_status)
    finally:
        await discovery.aclose()
