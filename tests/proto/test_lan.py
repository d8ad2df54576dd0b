"""The sans-IO LAN discovery core: TXT records, parsing, filters, the directory, when to
resolve, whose dials to stop. No sockets, no zeroconf, no trio."""

from __future__ import annotations

import ast
import hashlib
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import p2psocial.proto.lan
from p2psocial.identity import feed_id
from p2psocial.proto.handshake import NETWORK_KEY
from p2psocial.proto.lan import (
    DialClaims,
    Directory,
    Ignored,
    IgnoreReason,
    Joined,
    LanPeer,
    Left,
    Lookups,
    Moved,
    Segment,
    Skipped,
    announce_addresses,
    choose_address,
    host_name,
    network_tag,
    parse_service,
    select_interfaces,
    service_name,
    txt_properties,
)
from tests.helpers import make_keys

ME = make_keys(1).public
THEM = make_keys(2).public
OTHER_KEY = bytes.fromhex("ab" * 32)


def props(key: bytes = THEM, network_key: bytes = NETWORK_KEY) -> dict[bytes, bytes | None]:
    """TXT properties as zeroconf hands them over: bytes keys and values."""
    return {k.encode(): v.encode() for k, v in txt_properties(key, network_key).items()}


def parse(
    properties: dict[bytes, bytes | None] | None = None,
    addresses: tuple[str, ...] = ("10.0.0.2",),
    port: int | None = 8018,
    networks: tuple[IPv4Network, ...] = (),
) -> LanPeer | Ignored:
    return parse_service(
        props() if properties is None else properties,
        addresses,
        port,
        me=ME,
        network_key=NETWORK_KEY,
        networks=networks,
    )


# ---------------------------------------------------------------------------- TXT


def test_network_tag_definition() -> None:
    expected = hashlib.sha256(b"p2psocial-lan" + NETWORK_KEY).hexdigest()[:16]
    assert network_tag(NETWORK_KEY) == expected == "7d18f542cfcd7560"
    assert network_tag(OTHER_KEY) != network_tag(NETWORK_KEY)


def test_names_and_txt_as_documented() -> None:
    """The example in docs/protocol.md section 7 (its bytes, through zeroconf's encoder:
    tests/net/test_lan_unit.py::test_txt_bytes_as_documented)."""
    key = bytes.fromhex("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29")
    assert service_name(key) == "p2psocial-3b6a27bcceb6a42d._p2psocial._tcp.local."
    assert host_name(key) == "p2psocial-3b6a27bcceb6a42d.local."
    txt = txt_properties(key, NETWORK_KEY)
    assert list(txt.items()) == [
        ("v", "1"),
        ("id", "@O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=.ed25519"),
        ("net", "7d18f542cfcd7560"),
    ]
    as_read = {k.encode(): v.encode() for k, v in txt.items()}
    assert parse_service(
        as_read, ["192.168.1.20"], 8018, me=ME, network_key=NETWORK_KEY
    ) == LanPeer("192.168.1.20:8018", key)


def test_txt_never_carries_the_network_key() -> None:
    txt = txt_properties(THEM, OTHER_KEY)
    joined = "".join(txt.values())
    assert OTHER_KEY.hex() not in joined
    assert "ab" * 8 not in joined


# ---------------------------------------------------------------------------- parsing


def test_parse_peer_on_our_network() -> None:
    assert parse() == LanPeer("10.0.0.2:8018", THEM)


def test_parse_ignores_self() -> None:
    assert parse(props(ME)) == Ignored(IgnoreReason.SELF)


def test_parse_ignores_other_network() -> None:
    result = parse(props(network_key=OTHER_KEY))
    assert isinstance(result, Ignored)
    assert result.reason is IgnoreReason.OTHER_NETWORK
    assert feed_id(THEM) in str(result)


@pytest.mark.parametrize("version", [None, b"0", b"2", b"", b"1.0", b"\xff"])
def test_parse_ignores_other_versions(version: bytes | None) -> None:
    p = props()
    if version is None:
        del p[b"v"]
    else:
        p[b"v"] = version
    result = parse(p)
    assert isinstance(result, Ignored)
    assert result.reason is IgnoreReason.VERSION


@pytest.mark.parametrize(
    "value", [None, b"", b"nonsense", b"@short.ed25519", b"%" + feed_id(THEM)[1:].encode()]
)
def test_parse_rejects_bad_feed_id(value: bytes | None) -> None:
    p = props()
    p[b"id"] = value
    result = parse(p)
    assert isinstance(result, Ignored)
    assert result.reason is IgnoreReason.MALFORMED


def test_parse_missing_net_is_another_network() -> None:
    p = props()
    del p[b"net"]
    assert parse(p) == Ignored(IgnoreReason.OTHER_NETWORK, feed_id(THEM))


def test_parse_keys_are_case_insensitive() -> None:
    p = {k.upper(): v for k, v in props().items()}
    assert parse(p) == LanPeer("10.0.0.2:8018", THEM)


@pytest.mark.parametrize("port", [None, 0, 65536, -1])
def test_parse_rejects_bad_port(port: int | None) -> None:
    result = parse(port=port)
    assert isinstance(result, Ignored)
    assert result.reason is IgnoreReason.MALFORMED


@pytest.mark.parametrize(
    "addresses",
    [(), ("127.0.0.1",), ("0.0.0.0",), ("224.0.0.251",), ("fe80::1",), ("garbage",)],
)
def test_parse_needs_a_usable_address(addresses: tuple[str, ...]) -> None:
    result = parse(addresses=addresses)
    assert isinstance(result, Ignored)
    assert result.reason is IgnoreReason.NO_ADDRESS


def test_choose_address_prefers_our_networks() -> None:
    addresses = ["127.0.0.1", "172.17.0.1", "10.9.8.7"]
    assert choose_address(addresses) == "172.17.0.1"
    assert choose_address(addresses, [IPv4Network("10.9.8.0/24")]) == "10.9.8.7"
    assert choose_address(addresses, [IPv4Network("192.168.0.0/16")]) == "172.17.0.1"


@given(
    st.dictionaries(st.binary(max_size=10), st.none() | st.binary(max_size=80), max_size=6),
    st.lists(st.text(max_size=20), max_size=4),
    st.none() | st.integers(),
)
def test_parse_never_raises(
    properties: dict[bytes, bytes | None], addresses: list[str], port: int | None
) -> None:
    result = parse_service(properties, addresses, port, me=ME, network_key=NETWORK_KEY)
    assert isinstance(result, (LanPeer, Ignored))


# ---------------------------------------------------------------------------- interfaces


ADAPTERS = [
    ("lo", [IPv4Interface("127.0.0.1/8")]),
    ("eth0", [IPv4Interface("192.168.1.20/24")]),
    ("wlan0", [IPv4Interface("10.0.0.5/16"), IPv4Interface("10.1.0.5/16")]),
    ("docker0", []),
]


def test_all_interfaces_but_loopback_by_default() -> None:
    segments, missing = select_interfaces(ADAPTERS, ())
    assert segments == [
        Segment(
            "all interfaces",
            None,
            (
                IPv4Interface("192.168.1.20/24"),
                IPv4Interface("10.0.0.5/16"),
                IPv4Interface("10.1.0.5/16"),
            ),
        )
    ]
    assert missing == []


def test_nothing_to_run_on() -> None:
    assert select_interfaces([("lo", [IPv4Interface("127.0.0.1/8")])], ()) == ([], [])


def test_only_the_named_interfaces_each_bound_to_its_device() -> None:
    segments, missing = select_interfaces(ADAPTERS, ("wlan0", "nope", "docker0", "lo", "eth0"))
    assert segments == [
        Segment("wlan0", "wlan0", (IPv4Interface("10.0.0.5/16"), IPv4Interface("10.1.0.5/16"))),
        Segment("eth0", "eth0", (IPv4Interface("192.168.1.20/24"),)),
    ]
    assert segments[0].networks == [IPv4Network("10.0.0.0/16"), IPv4Network("10.1.0.0/16")]
    assert missing == ["nope", "docker0", "lo"]


def test_announced_addresses_follow_the_listen_address() -> None:
    segment = Segment("x", None, (IPv4Interface("192.168.1.20/24"), IPv4Interface("10.0.0.5/16")))
    everything = [IPv4Address("192.168.1.20"), IPv4Address("10.0.0.5")]
    assert announce_addresses(segment, "0.0.0.0") == everything
    assert announce_addresses(segment, "") == everything
    assert announce_addresses(segment, "10.0.0.5") == [IPv4Address("10.0.0.5")]
    assert announce_addresses(segment, "127.0.0.1") == []


# ---------------------------------------------------------------------------- directory


A = LanPeer("10.0.0.2:8018", THEM)
A_MOVED = LanPeer("10.0.0.2:9000", THEM)


def test_directory_join_update_leave() -> None:
    d = Directory()
    assert d.resolved("a", A) == [Joined("a", A)]
    assert d.resolved("a", A) == []  # an update that changes nothing
    assert d.resolved("a", A_MOVED) == [Moved("a", A, A_MOVED)]
    assert d.removed("a") == [Left("a", A_MOVED)]
    assert d.removed("a") == []
    assert d.peers == {}


def test_directory_reports_a_reason_once() -> None:
    d = Directory()
    other = Ignored(IgnoreReason.OTHER_NETWORK, "x")
    assert d.resolved("c", other) == [Skipped("c", other)]
    assert d.resolved("c", other) == []
    mine = Ignored(IgnoreReason.SELF)
    assert d.resolved("c", mine) == [Skipped("c", mine)]
    assert d.removed("c") == []
    assert d.resolved("c", other) == [Skipped("c", other)]  # it came back


def test_directory_peer_switching_network_leaves() -> None:
    d = Directory()
    d.resolved("a", A)
    other = Ignored(IgnoreReason.OTHER_NETWORK, "x")
    assert d.resolved("a", other) == [Left("a", A), Skipped("a", other)]
    assert d.resolved("a", A) == [Joined("a", A)]


def test_directory_limit() -> None:
    d = Directory(limit=2)
    for i in range(2):
        d.resolved(f"s{i}", LanPeer(f"10.0.0.{i + 1}:1", bytes([i]) * 32))
    changes = d.resolved("s9", A)
    assert len(changes) == 1
    assert isinstance(changes[0], Skipped)
    assert changes[0].why.reason is IgnoreReason.TOO_MANY
    d.removed("s0")
    assert d.resolved("s9", A) == [Joined("s9", A)]


# ---------------------------------------------------------------------------- when to resolve


def test_lookups_one_at_a_time_and_forgotten_when_removed() -> None:
    lookups: Lookups[str] = Lookups()
    assert lookups.event("s", "added") is True  # start a lookup
    attempt = lookups.attempt("s")
    assert lookups.event("s", "updated") is False  # one is running already
    assert lookups.outcome("s", attempt) == "again"  # its answer is stale
    attempt = lookups.attempt("s")
    assert lookups.outcome("s", attempt) == "use"
    lookups.finished("s")
    assert len(lookups) == 1  # still announced
    assert lookups.event("s", "updated") is True  # nothing running: start another
    lookups.finished("s")  # e.g. it could not resolve
    assert lookups.event("s", "removed") is False
    assert len(lookups) == 0


def test_lookups_removed_while_resolving() -> None:
    lookups: Lookups[tuple[int, str]] = Lookups()
    key = (0, "s")
    assert lookups.event(key, "added")
    attempt = lookups.attempt(key)
    assert lookups.event(key, "removed") is False
    assert len(lookups) == 1  # kept while its lookup runs
    assert lookups.outcome(key, attempt) == "drop"
    lookups.finished(key)
    assert len(lookups) == 0


def test_lookups_removed_then_back_while_resolving() -> None:
    lookups: Lookups[str] = Lookups()
    assert lookups.event("s", "added")
    attempt = lookups.attempt("s")
    lookups.event("s", "removed")
    assert lookups.event("s", "added") is False
    assert lookups.outcome("s", attempt) == "again"


def test_lookups_task_cancelled() -> None:
    """A lookup task that ends without an answer (cancelled, failed) leaves nothing busy."""
    lookups: Lookups[str] = Lookups()
    assert lookups.event("s", "added")
    lookups.attempt("s")
    lookups.finished("s")
    assert lookups.event("s", "updated") is True
    lookups.finished("s")
    lookups.finished("nothing")  # harmless


def test_lookups_keeps_services_apart() -> None:
    lookups: Lookups[tuple[int, str]] = Lookups()
    assert lookups.event((0, "s"), "added")
    assert lookups.event((1, "s"), "added")  # the same name through another responder


# ---------------------------------------------------------------------------- whose dials


def test_claims_stop_only_our_dials() -> None:
    claims = DialClaims()
    claims.claim(A, dialled_already=False)
    assert claims.release(A, []) is True
    assert claims.release(A, []) is False  # once
    other = LanPeer("10.0.0.3:1", bytes(32))
    claims.claim(other, dialled_already=True)  # dialled before LAN discovery found it
    assert claims.release(other, []) is False


def test_claims_keep_a_peer_still_announced_elsewhere() -> None:
    claims = DialClaims()
    claims.claim(A, dialled_already=False)
    claims.claim(A, dialled_already=True)  # the same peer through another interface
    assert claims.release(A, [A]) is False  # gone from one, still announced on the other
    assert claims.release(A, []) is True


def test_claims_match_the_key() -> None:
    claims = DialClaims()
    claims.claim(A, dialled_already=False)
    assert claims.release(LanPeer(A.address, ME), []) is False


# ---------------------------------------------------------------------------- no I/O

FORBIDDEN = {"trio", "zeroconf", "ifaddr", "socket", "time", "os", "random", "asyncio"}


def test_imports_nothing_that_does_io() -> None:
    tree = ast.parse(Path(p2psocial.proto.lan.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module.split(".")[0])
    assert "p2psocial" in imported  # the walk sees the imports
    assert not imported & FORBIDDEN
