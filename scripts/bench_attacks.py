#!/usr/bin/env python3
"""Benchmark: an honest sync of 20,000 entries between two real daemons, quiet and under
each attack of issue #11, with the receiving daemon's peak memory.

Prints one JSON line: per scenario the honest sync time (s), the victim's peak RSS (MB,
VmHWM), whether it survived, and for the floods how many log lines they produced. The
quiet sync, measured in the same run, is the machine's own yardstick: compare each
attack's time with it (``ratio_to_quiet``).

    python scripts/bench_attacks.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trio

from p2psocial.home import Home
from p2psocial.msgtypes.contact import contact_content
from p2psocial.proto.replication import make_note
from p2psocial.store.store import Store
from tests.e2e.daemons import DaemonProcess, wait_for
from tests.e2e.hostile import HostilePeer, InThread, dial
from tests.helpers import make_feed, make_keys, pairs

AUTHORS = [make_keys(1000 + i) for i in range(20)]
PER_AUTHOR = 1000
HELD = 0  # the victim holds AUTHORS[HELD]'s feed from the start (what replayers replay)


def history() -> list[list[tuple[bytes, bytes | None]]]:
    return [pairs(make_feed(keys, PER_AUTHOR)) for keys in AUTHORS]


def prepare(
    home: Path, feeds: list[list[tuple[bytes, bytes | None]]], follow: bool
) -> DaemonProcess:
    d = DaemonProcess(home, "--log-level", "info")
    d.cli("init")
    keys = Home(home).load_identity()
    with Store.open(home / "store.sqlite", owner=keys) as store:
        for items in feeds:
            store.append_batch(items, 2_000_000_000_000)
        if follow:
            for author in AUTHORS:
                content = contact_content(author.public, following=True, blocking=False)
                store.publish(keys, content, 1)
    return d.start()


def peak_rss_mb(d: DaemonProcess) -> float:
    assert d.proc is not None
    for line in Path(f"/proc/{d.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def liar(conn: Any, stream: Any) -> None:
    """Claims seq 2**40 of every feed the victim notes, and never sends one."""
    async for message in stream:
        clock = message.get("clock") if isinstance(message, dict) else None
        if clock:
            await stream.send({"clock": {f: make_note(2**40, False) for f in clock}})


# ---------------------------------------------------------------------------- attacks
Attack = Callable[
    [DaemonProcess, list[list[tuple[bytes, bytes | None]]]], AbstractContextManager[Any]
]


@contextmanager
def clients(victim: DaemonProcess, behaviours: list[tuple[Any, Any]]) -> Iterator[None]:
    """Hostile clients dialling the victim, each with its own key and behaviour."""
    listen, feed = victim.info["listen"], victim.feed_id

    async def all_of_them() -> None:
        async with trio.open_nursery() as nursery:
            for keys, behaviour in behaviours:
                nursery.start_soon(partial(dial, listen, feed, keys, behaviour, give_up_s=300))

    with InThread(all_of_them):
        yield


def liars(victim: DaemonProcess, feeds: Any) -> AbstractContextManager[Any]:
    return clients(victim, [(make_keys(700 + n), liar) for n in range(2)])


def replayers(victim: DaemonProcess, feeds: Any) -> AbstractContextManager[Any]:
    batch = [[raw, content] for raw, content in feeds[HELD]]

    async def replay(conn: Any, stream: Any) -> None:
        await stream.receive()
        while True:
            await stream.send({"entries": batch})

    return clients(victim, [(make_keys(710 + n), replay) for n in range(2)])


def many_streams(victim: DaemonProcess, feeds: Any) -> AbstractContextManager[Any]:
    async def streams(conn: Any, stream: Any) -> None:
        for _ in range(8000):
            await conn._send(lambda: conn._packets.open_stream("replicate.ebt", {})[1])
        await conn.wait_closed()

    return clients(victim, [(make_keys(720 + n), streams) for n in range(20)])


def half_frames(victim: DaemonProcess, feeds: Any) -> AbstractContextManager[Any]:
    import struct

    frame = struct.pack(">BIi", 0b1010, 1024 * 1024, 1) + os.urandom(900 * 1024)

    async def hold(conn: Any, stream: Any) -> None:
        await conn._send(lambda: frame)
        await conn.wait_closed()

    return clients(victim, [(make_keys(3000 + n), hold) for n in range(150)])


@contextmanager
def error_stream(victim: DaemonProcess, feeds: Any) -> Iterator[None]:
    class Raw:
        def to_body(self) -> dict[str, str]:
            return {"message": "boom"}

    async def end(conn: Any, stream: Any) -> None:
        await stream.receive()
        await conn._send(lambda: conn._packets.stream_end(stream.req_id, Raw()))
        await trio.sleep(5)

    with HostilePeer(make_keys(730), end) as evil:
        victim.call("peers.connect", address=evil.address, feed_id=evil.keys.feed_id)
        wait_for(lambda: evil.sessions >= 1, what="the victim to dial the hostile peer")
        yield


@contextmanager
def connection_flood(victim: DaemonProcess, feeds: Any) -> Iterator[None]:
    host, port = victim.info["listen"].split(":")

    async def flood() -> None:
        async def one() -> None:
            with trio.move_on_after(5):
                stream = await trio.open_tcp_stream(host, int(port))
                await stream.send_all(os.urandom(64))
                await stream.aclose()

        while True:
            async with trio.open_nursery() as nursery:
                for _ in range(50):
                    nursery.start_soon(one)

    with InThread(flood):
        yield


SCENARIOS: dict[str, Attack] = {
    "quiet": lambda victim, feeds: nullcontext(),
    "liars_2x_2pow40": liars,
    "replay_2_sessions": replayers,
    "streams_20x8000": many_streams,
    "half_frames_150": half_frames,
    "error_ended_stream": error_stream,
    "connection_flood": connection_flood,
}


def run(name: str, feeds: list[list[tuple[bytes, bytes | None]]]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        honest = prepare(Path(tmp) / "honest", feeds, follow=False)
        victim = prepare(Path(tmp) / "victim", [feeds[HELD]], follow=True)
        try:
            with SCENARIOS[name](victim, feeds):
                start = time.monotonic()
                victim.cli("connect", honest.address)
                target = len(AUTHORS) * PER_AUTHOR + len(AUTHORS)
                wait_for(lambda: victim.count() >= target, what="the honest sync", timeout=300)
                seconds = time.monotonic() - start
            alive = victim.proc is not None and victim.proc.poll() is None
            lines = sum(1 for x in victim.log().splitlines() if "connection failed" in x)
            return {
                "sync_s": round(seconds, 2),
                "peak_rss_mb": peak_rss_mb(victim),
                "alive": alive,
                "failed_connection_log_lines": lines,
            }
        finally:
            victim.stop()
            honest.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    feeds = history()
    names = ["quiet", *[n for n in SCENARIOS if n != "quiet" and (not args.only or n in args.only)]]
    results = {name: run(name, feeds) for name in names}
    quiet = results["quiet"]["sync_s"]
    for result in results.values():
        result["ratio_to_quiet"] = round(result["sync_s"] / quiet, 2) if quiet else None
    entries = (len(AUTHORS) - 1) * PER_AUTHOR
    print(json.dumps({"honest_entries": entries, "cores": os.cpu_count(), **results}))


if __name__ == "__main__":
    main()
