"""LAN discovery by mDNS between real daemons, each in its own network namespace.

No test here ever runs ``connect``: whatever connects was found by mDNS on an isolated
Ethernet segment (tests/e2e/netns.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.daemons import texts, wait_for
from tests.e2e.netns import Host, Lan, NetnsDaemon, isolated_lan, list_namespaces, netns_unavailable

pytestmark = pytest.mark.e2e

OTHER_NETWORK = "cd" * 32
Make = Callable[..., NetnsDaemon]


@pytest.fixture
def lan_factory() -> Iterator[Callable[[int], Lan]]:
    """Makes isolated LAN segments; deletes them afterwards and checks that they are gone."""
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(f"LAN tests need network namespaces: {reason}")
    with contextlib.ExitStack() as stack:
        made: list[Lan] = []

        def make(hosts: int) -> Lan:
            lan = stack.enter_context(isolated_lan(hosts))
            made.append(lan)
            return lan

        yield make
    left = set(list_namespaces()) & {n for lan in made for n in lan.namespaces}
    assert not left, f"namespaces not deleted: {sorted(left)}"


@pytest.fixture
def node(tmp_path: Path, lan_factory: Callable[[int], Lan]) -> Iterator[Make]:
    """Factory of daemons inside namespaces, each in a fresh home; all stopped afterwards,
    before the namespaces go (whatever is left running in them is killed with them)."""
    started: list[NetnsDaemon] = []

    def make(name: str, host: Host, *extra: str, start: bool = True) -> NetnsDaemon:
        d = NetnsDaemon(tmp_path / name, host, *extra)
        started.append(d)
        d.cli("init")
        if start:
            d.start()
        return d

    yield make
    with contextlib.ExitStack() as stops:
        for d in started:
            stops.callback(d.stop)


def whoami(d: NetnsDaemon) -> str:
    return d.cli("whoami").stdout.strip()


def connected(d: NetnsDaemon) -> set[str]:
    return {p["feed_id"] for p in d.call("peers.list")["connected"]}


def known(d: NetnsDaemon) -> set[str]:
    """The addresses the daemon's scheduler dials."""
    return {p["address"] for p in d.call("peers.list")["known"]}


def test_discover_sync_and_ignore_others(lan_factory: Callable[[int], Lan], node: Make) -> None:
    lan = lan_factory(3)
    h0, h1, h2 = lan.hosts
    lan.add_island(h2, "side0", "10.254.0.1/24")
    # Everything but A and B first, so A's and B's first queries meet all of them.
    c = node("c", h2, "--network-key", OTHER_NETWORK, start=False)
    d = node("d", h2, "--no-lan", start=False)
    e = node("e", h2, "--lan-interface", "side0", start=False)  # a segment of its own
    a = node("a", h0, "--lan-interface", "lan0", start=False)
    b = node("b", h1, start=False)
    ids = {x: whoami(x) for x in (a, b, c, d, e)}
    a.cli("post", "hello from the LAN")
    a.cli("follow", ids[b])
    b.cli("follow", ids[a])
    for x in (c, d, e):
        x.cli("follow", ids[a])
    for x in (c, d, e, a, b):
        x.start()
    assert f"at {e.host.address}" not in e.log()  # e announces only its side0 address

    wait_for(lambda: texts(b, ids[a]) == ["hello from the LAN"], what="a's post at b")
    wait_for(lambda: ids[b] in connected(a) and ids[a] in connected(b), what="a and b linked")
    assert f"found LAN peer {ids[b]} at {b.host.address}:" in a.log()
    assert f"found LAN peer {ids[a]} at {a.host.address}:" in b.log()

    # c, on another network key: seen, ignored, and it ignores them.
    wait_for(lambda: f"another network key: {ids[c]}" in a.log(), what="a ignoring c")
    wait_for(lambda: f"another network key: {ids[c]}" in b.log(), what="b ignoring c")
    wait_for(lambda: f"another network key: {ids[a]}" in c.log(), what="c ignoring a")
    assert "found LAN peer" not in c.log()
    assert c.count(ids[a]) == 0
    assert not connected(c)
    assert "cannot reach" not in a.log() + b.log()  # nobody dialled c or anything bogus

    # d (--no-lan) and e (mDNS only on an interface off the segment) are never seen.
    assert "mDNS" not in d.log()
    assert "mDNS on side0 (10.254.0.1/24)" in e.log()
    assert ids[a] not in e.log()
    assert ids[b] not in e.log()
    for x in (a, b):
        peers = x.call("peers.list")
        expected = {ids[a], ids[b]} - {whoami(x)}
        assert {p["feed_id"] for p in peers["connected"]} == expected
        assert {p["feed_id"] for p in peers["known"]} == expected  # dialled nobody else
        assert ids[d] not in x.log()
        assert ids[e] not in x.log()
    assert d.count(ids[a]) == 0
    assert e.count(ids[a]) == 0


def test_leave_is_seen_at_once(lan_factory: Callable[[int], Lan], node: Make) -> None:
    lan = lan_factory(2)
    a, b = node("a", lan.hosts[0]), node("b", lan.hosts[1])
    a_id, b_id = whoami(a), whoami(b)
    wait_for(lambda: f"found LAN peer {b_id}" in a.log(), what="a finding b")
    wait_for(lambda: f"found LAN peer {a_id}" in b.log(), what="b finding a")
    old_address = b.lan_address
    assert old_address in known(a)
    b.stop()
    assert "withdrew" in b.log()
    # Goodbye records, not the 75-minute record TTL: a sees b leave within seconds.
    wait_for(lambda: f"LAN peer {b_id} left" in a.log(), what="a noticing b left", timeout=15)
    assert old_address not in known(a)  # and stops dialling it
    b.start()  # back, on a new port: found again
    wait_for(lambda: a.log().count(f"found LAN peer {b_id}") == 2, what="a finding b again")
    wait_for(lambda: b_id in connected(a), what="a and b linked again")
