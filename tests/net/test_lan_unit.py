"""LAN discovery's trio shell without a network: zeroconf's TXT encoding of our record, the
thread-to-trio handler, acting on what is found. The decisions themselves are tested in
tests/proto/test_lan.py; the real thing, between network namespaces, in tests/e2e/test_lan.py."""

from __future__ import annotations

import ast
import threading
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any, cast

import pytest
import trio
from zeroconf import ServiceInfo, ServiceStateChange

import p2psocial.net.lan
from p2psocial.net.lan import (
    EVENT_QUEUE,
    BrowseEvent,
    Dialer,
    LanDiscovery,
    Responder,
    _ToTrio,
)
from p2psocial.net.scheduler import Scheduler
from p2psocial.proto.handshake import NETWORK_KEY
from p2psocial.proto.lan import (
    SERVICE_TYPE,
    LanPeer,
    Segment,
    host_name,
    parse_service,
    service_name,
    txt_properties,
)
from tests.helpers import make_keys

ME = make_keys(1).public
THEM = make_keys(2).public


# ---------------------------------------------------------------------------- TXT


def test_txt_bytes_as_documented() -> None:
    """The example in docs/protocol.md section 7, through zeroconf's own TXT encoder."""
    key = bytes.fromhex("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29")
    info = ServiceInfo(
        SERVICE_TYPE,
        service_name(key),
        port=8018,
        properties=txt_properties(key, NETWORK_KEY),
        server=host_name(key),
        addresses=[IPv4Address("192.168.1.20").packed],
    )
    assert info.name == "p2psocial-3b6a27bcceb6a42d._p2psocial._tcp.local."
    assert info.server == "p2psocial-3b6a27bcceb6a42d.local."
    assert info.text == (
        b"\x03v=1"
        b"\x38id=@O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=.ed25519"
        b"\x14net=7d18f542cfcd7560"
    )
    # and back: what a browsing node parses from it
    parsed = ServiceInfo(SERVICE_TYPE, info.name, properties=info.text)
    assert parse_service(
        parsed.properties, ["192.168.1.20"], 8018, me=ME, network_key=NETWORK_KEY
    ) == LanPeer("192.168.1.20:8018", key)


# ---------------------------------------------------------------------------- thread -> trio


def call_handler(handler: _ToTrio, name: str, change: ServiceStateChange) -> None:
    """Call the handler from another thread, as zeroconf's browser does."""
    thread = threading.Thread(
        target=lambda: handler(
            zeroconf=None,  # type: ignore[arg-type]
            service_type=SERVICE_TYPE,
            name=name,
            state_change=change,
        )
    )
    thread.start()
    thread.join()


def test_handler_delivers_events_in_order() -> None:
    async def main() -> list[BrowseEvent]:
        send, recv = trio.open_memory_channel[BrowseEvent](EVENT_QUEUE)
        handler = _ToTrio(trio.lowlevel.current_trio_token(), send)
        await trio.to_thread.run_sync(call_handler, handler, "x", ServiceStateChange.Added)
        await trio.to_thread.run_sync(call_handler, handler, "x", ServiceStateChange.Removed)
        return [await recv.receive(), await recv.receive()]

    assert trio.run(main) == [BrowseEvent(0, "x", "added"), BrowseEvent(0, "x", "removed")]


def test_handler_never_raises_when_full_closed_or_finished() -> None:
    async def main() -> _ToTrio:
        send, recv = trio.open_memory_channel[BrowseEvent](1)
        handler = _ToTrio(trio.lowlevel.current_trio_token(), send)
        for _ in range(3):  # the second and third do not fit: dropped
            await trio.to_thread.run_sync(call_handler, handler, "x", ServiceStateChange.Updated)
        await trio.testing.wait_all_tasks_blocked()
        assert recv.receive_nowait() == BrowseEvent(0, "x", "updated")
        with pytest.raises(trio.WouldBlock):
            recv.receive_nowait()
        await send.aclose()
        await trio.to_thread.run_sync(call_handler, handler, "x", ServiceStateChange.Added)
        return handler

    handler = trio.run(main)
    call_handler(handler, "x", ServiceStateChange.Removed)  # the trio run is over


# ---------------------------------------------------------------------------- acting on it

A = LanPeer("10.0.0.2:8018", THEM)
A_MOVED = LanPeer("10.0.0.2:9000", THEM)


def scheduler() -> Scheduler:
    """A real scheduler that is not running: it records dials and starts no task."""
    return Scheduler(cast(Any, None), cast(Any, None), make_keys(1), NETWORK_KEY, lambda: 0)


def discovery(dialer: Dialer) -> LanDiscovery:
    return LanDiscovery(keys=make_keys(1), network_key=NETWORK_KEY, dialer=dialer)


def test_the_scheduler_is_a_dialer() -> None:
    s = scheduler()
    dialer: Dialer = s  # structural: mypy checks that Scheduler satisfies Dialer
    d = discovery(dialer)
    d._apply(d.directory.resolved("a", A))
    assert list(s.dials) == [A.address]
    d._apply(d.directory.resolved("a", A_MOVED))
    assert list(s.dials) == [A_MOVED.address]
    d._apply(d.directory.removed("a"))
    assert list(s.dials) == []


def test_a_dial_we_did_not_start_is_kept() -> None:
    s = scheduler()
    s.add(A.address, A.key)  # known before LAN discovery saw it (store, invite, pub)
    d = discovery(s)
    d._apply(d.directory.resolved("a", A))
    d._apply(d.directory.removed("a"))
    assert list(s.dials) == [A.address]


def test_a_peer_seen_through_two_interfaces_is_dialled_until_gone_from_both() -> None:
    s = scheduler()
    d = discovery(s)
    d._apply(d.directory.resolved("a via eth0", A))
    d._apply(d.directory.resolved("a via wlan0", A))
    d._apply(d.directory.removed("a via eth0"))
    assert list(s.dials) == [A.address]
    d._apply(d.directory.removed("a via wlan0"))
    assert list(s.dials) == []


TXT = dict[bytes, bytes | None]


class FakeResponder(Responder):
    """A responder without zeroconf: lookups answer from a table."""

    def __init__(self, answers: dict[str, tuple[TXT, list[str], int]]) -> None:
        segment = Segment("lan0", "lan0", (IPv4Interface("10.0.0.1/24"),))
        super().__init__(0, segment, cast(Any, None))
        self.answers = answers

    def lookup(self, name: str) -> tuple[TXT, list[str], int | None] | None:
        return self.answers.get(name)


def test_browse_events_resolve_and_dial() -> None:
    them: TXT = {k.encode(): v.encode() for k, v in txt_properties(THEM, NETWORK_KEY).items()}
    me: TXT = {k.encode(): v.encode() for k, v in txt_properties(ME, NETWORK_KEY).items()}
    s = scheduler()
    d = discovery(s)
    d.responders.append(FakeResponder({"them": (them, ["10.0.0.2"], 8018), "me": (me, [], 1)}))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            d._event(BrowseEvent(0, "them", "added"), nursery)
            d._event(BrowseEvent(0, "me", "added"), nursery)
            d._event(BrowseEvent(0, "gone", "added"), nursery)  # does not resolve
        assert list(s.dials) == [A.address]
        assert set(d.directory.peers) == {"them via lan0"}
        async with trio.open_nursery() as nursery:
            d._event(BrowseEvent(0, "them", "removed"), nursery)
            d._event(BrowseEvent(0, "me", "removed"), nursery)
            d._event(BrowseEvent(0, "gone", "removed"), nursery)
        assert list(s.dials) == []
        assert len(d.lookups) == 0

    trio.run(main)


def test_the_shell_does_not_know_the_daemon() -> None:
    """No import of the daemon, its API or CLI, not even for type checking (a cycle)."""
    tree = ast.parse(Path(p2psocial.net.lan.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module)
    assert "p2psocial.proto.lan" in imported
    for module in imported:
        assert module.split(".")[:2] not in (
            ["p2psocial", "daemon"],
            ["p2psocial", "api"],
            ["p2psocial", "cli"],
        ), module
