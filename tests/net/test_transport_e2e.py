"""Two real processes over TCP on loopback: this test and scripts/transport_peer.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import trio

from p2psocial.identity import parse_feed_id
from p2psocial.net.connection import connect
from p2psocial.proto.handshake import NETWORK_KEY
from tests.helpers import REPO, make_keys

pytestmark = pytest.mark.e2e

CLIENT = make_keys(21)


@pytest.fixture
def peer() -> Iterator[tuple[int, bytes]]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "transport_peer.py"), os.urandom(32).hex()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        yield info["port"], parse_feed_id(info["feed_id"])
    finally:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - only on a hung peer
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()


@pytest.mark.trio
async def test_thousand_concurrent_requests(peer: tuple[int, bytes]) -> None:
    port, key = peer
    async with connect("127.0.0.1", port, key, keys=CLIENT, network_key=NETWORK_KEY) as conn:
        answers: dict[int, object] = {}

        async def one(i: int) -> None:
            answers[i] = await conn.call("bench.echo", {"i": i, "pad": b"x" * (i % 97)})

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for i in range(1000):
                    nursery.start_soon(one, i)
        assert len(answers) == 1000
        assert all(answers[i] == {"i": i, "pad": b"x" * (i % 97)} for i in range(1000))


@pytest.mark.trio
async def test_ten_megabytes_both_ways(peer: tuple[int, bytes]) -> None:
    port, key = peer
    payload = os.urandom(10 * 1024 * 1024)
    chunk = 64 * 1024
    async with connect("127.0.0.1", port, key, keys=CLIENT, network_key=NETWORK_KEY) as conn:
        received = bytearray()
        with trio.fail_after(120):
            async with conn.stream("bench.pipe", {}) as stream:

                async def send_all() -> None:
                    for i in range(0, len(payload), chunk):
                        await stream.send(payload[i : i + chunk])
                    await stream.end()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send_all)
                    async for item in stream:
                        received += item
        assert bytes(received) == payload


@pytest.mark.trio
async def test_sink_counts_and_source_ends(peer: tuple[int, bytes]) -> None:
    port, key = peer
    async with connect("127.0.0.1", port, key, keys=CLIENT, network_key=NETWORK_KEY) as conn:
        with trio.fail_after(60):
            async with conn.stream("bench.source", {"bytes": 1_000_000, "chunk": 30_000}) as s:
                total = sum([len(item) async for item in s])
            assert total == 1_000_000
            async with conn.stream("bench.sink", {}) as s:
                for _ in range(10):
                    await s.send(b"y" * 1000)
                await s.end()
                assert await s.receive() == 10_000
