"""LAN discovery decisions: our DNS-SD service, reading others', and what changed.

Theory of operation
-------------------
A node announces one DNS-SD service (docs/protocol.md section 7): type
:data:`SERVICE_TYPE`, an instance and host name derived from its public key
(:func:`service_name`, :func:`host_name`), and a TXT record (:func:`txt_properties`) with
the protocol version, its feed id and a *network tag*, a hash that tells networks apart
without revealing the network key (:func:`network_tag`).

Where: :func:`select_interfaces` turns the host's interfaces and the ones the user named
into :class:`Segment` s, one per mDNS responder to run, and :func:`announce_addresses` says
which of a segment's addresses to announce given the address we listen on.

What others announce: the shell browses, and for each service that is added, updated or
removed, :class:`Lookups` says when to resolve it (one lookup per service at a time; an
answer overtaken by a newer event is resolved again or dropped). :func:`parse_service`
reads a resolved service into a :class:`LanPeer` to dial or the :class:`Ignored` reason not
to, never raising on peer data. :class:`Directory` keeps what every service last said and
reports each change once (:class:`Joined`, :class:`Moved`, :class:`Left`,
:class:`Skipped`), capped at :data:`MAX_LAN_PEERS` peers. :class:`DialClaims` remembers
which dials LAN discovery started, so that a peer leaving stops only those.

Nothing here does I/O: no sockets, no zeroconf, no trio, no clock. ``p2psocial.net.lan``
feeds it what zeroconf reports and carries out what it decides.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from p2psocial.errors import InvalidId
from p2psocial.identity import feed_id, parse_feed_id

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

SERVICE_TYPE = "_p2psocial._tcp.local."
"""The DNS-SD service type we announce and browse."""
LAN_VERSION = "1"
"""TXT ``v``: the protocol spoken on the advertised port (docs/protocol.md sections 3-5)."""
NETWORK_TAG_PREFIX = b"p2psocial-lan"
"""Hashed in front of the network key for TXT ``net`` (never the key itself)."""
INSTANCE_PREFIX = "p2psocial-"
MAX_LAN_PEERS = 64
"""Services on our network we dial at most at once (a LAN can announce thousands)."""


# ---------------------------------------------------------------------------- our service


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


# ---------------------------------------------------------------------------- reading others'


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


# ---------------------------------------------------------------------------- interfaces


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


# ---------------------------------------------------------------------------- when to resolve

EventKind = Literal["added", "updated", "removed"]
"""What a browser says about a service."""
Outcome = Literal["use", "again", "drop"]
"""What to do with a lookup's answer: use it; resolve again (the service was updated
meanwhile); drop it (the service was removed meanwhile)."""

K = TypeVar("K", bound=Hashable)


@dataclass
class _Lookup:
    epoch: int = 0
    """Events seen so far: an answer is current only if none came during its lookup."""
    last: EventKind = "added"
    busy: bool = False
    """A lookup task runs for it."""


class Lookups(Generic[K]):
    """When to resolve a service, from the browser's events about it; no I/O.

    A lookup can take seconds, and events keep coming meanwhile, so at most one runs per
    service (``K``: whatever names a service, for the shell a responder and a name).
    :meth:`event` says whether to start a lookup task. Before each attempt the task takes
    :meth:`attempt`; after it, :meth:`outcome` says what to do with the answer. When the
    task ends, however it ends, it calls :meth:`finished`. A removed service is forgotten
    as soon as no lookup runs for it."""

    def __init__(self) -> None:
        self._names: dict[K, _Lookup] = {}

    def __len__(self) -> int:
        """Services remembered (seen and not removed, or with a lookup running)."""
        return len(self._names)

    def event(self, key: K, kind: EventKind) -> bool:
        """Note an event; True if a lookup task must start for ``key`` now."""
        state = self._names.setdefault(key, _Lookup())
        state.epoch += 1
        state.last = kind
        if kind == "removed":
            if not state.busy:
                del self._names[key]
            return False
        if state.busy:
            return False  # the running task sees the new epoch and resolves again
        state.busy = True
        return True

    def attempt(self, key: K) -> int:
        """A token for the lookup about to start (only while its task runs)."""
        return self._names[key].epoch

    def outcome(self, key: K, attempt: int) -> Outcome:
        """What to do with the answer of the lookup started with ``attempt``."""
        state = self._names[key]
        if state.epoch == attempt:
            return "use"
        return "drop" if state.last == "removed" else "again"

    def finished(self, key: K) -> None:
        """The lookup task for ``key`` has ended."""
        state = self._names.get(key)
        if state is None:
            return
        state.busy = False
        if state.last == "removed":
            del self._names[key]


# ---------------------------------------------------------------------------- what changed


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


@dataclass
class DialClaims:
    """The dials LAN discovery started (address to key), so that it stops only those: a
    peer that was dialled anyway (known from the store, an invite, a pub) is left alone
    when its service leaves."""

    ours: dict[str, bytes] = field(default_factory=dict)

    def claim(self, peer: LanPeer, *, dialled_already: bool) -> None:
        """We are about to dial ``peer``; ``dialled_already`` if its address was dialled
        before we asked."""
        if not dialled_already:
            self.ours[peer.address] = peer.key

    def release(self, peer: LanPeer, announced: Collection[LanPeer]) -> bool:
        """``peer``'s service left or moved: True if we must stop dialling it, that is if
        the dial is ours and no service still in ``announced`` (the directory's peers, for
        one seen through several interfaces) asks for it."""
        if self.ours.get(peer.address) != peer.key or peer in announced:
            return False
        del self.ours[peer.address]
        return True
