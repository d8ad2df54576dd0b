"""Two real processes over TCP on loopback: this test and a peer process, either
scripts/transport_peer.py or this very module run as ``python -m tests.net.test_transport_e2e
MODE SEED`` (a peer that reports how its side of the connection closed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio

from p2psocial.identity import Keypair, parse_feed_id
from p2psocial.net.connection import Connection, Handlers, connect, serve
from p2psocial.proto.handshake import NETWORK_KEY
from tests.helpers import REPO, make_keys

pytestmark = pytest.mark.e2e

CLIENT = make_keys(21)


@contextmanager
def spawn(*argv: str) -> Iterator[tuple[subprocess.Popen[str], int, bytes]]:
    """Run a peer process that prints ``{"port": P, "feed_id": F}`` first and serves until
    its stdin closes: (process, port, its key)."""
    proc = subprocess.Popen(
        [sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        yield proc, info["port"], parse_feed_id(info["feed_id"])
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


@pytest.fixture
def peer() -> Iterator[tuple[int, bytes]]:
    script = str(REPO / "scripts" / "transport_peer.py")
    with spawn(script, os.urandom(32).hex()) as (_proc, port, key):
        yield port, key


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


# ---------------------------------------------------------------------------- closing


async def close_peer(mode: str, seed: bytes) -> None:
    """The peer process: serve one connection; in mode ``leave`` call ``test.ping`` on it and
    then close it from this side, in mode ``hold`` wait for the other side to close it.
    Then print one JSON line saying how this side saw the close."""
    keys = Keypair.from_seed(seed)

    async def echo(conn: Connection, args: Any) -> Any:
        return args

    async def on_connection(conn: Connection) -> None:
        if mode == "leave":
            assert await conn.call("test.ping", {}) == "pong"
            await conn.aclose("peer leaves")
        await conn.wait_closed()
        report = {"clean": conn.closed_cleanly, "reason": conn.close_reason}
        print(json.dumps(report), flush=True)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            lambda task_status: serve(
                "127.0.0.1",
                0,
                keys=keys,
                network_key=NETWORK_KEY,
                on_connection=on_connection,
                handlers={"test.echo": echo},
                task_status=task_status,
            )
        )
        port = listeners[0].socket.getsockname()[1]
        print(json.dumps({"port": port, "feed_id": keys.feed_id}), flush=True)
        await trio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)
        nursery.cancel_scope.cancel()


@pytest.fixture(params=["us", "peer"])
def closing_peer(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[str, subprocess.Popen[str], int, bytes]]:
    """(who closes, peer process, port, key) for a close_peer process."""
    closer: str = request.param
    mode = "leave" if closer == "peer" else "hold"
    argv = ("-m", "tests.net.test_transport_e2e", mode, os.urandom(32).hex())
    with spawn(*argv) as (proc, port, key):
        yield closer, proc, port, key


@pytest.mark.trio
async def test_close_started_by_either_side_is_clean_for_both(
    closing_peer: tuple[str, subprocess.Popen[str], int, bytes],
) -> None:
    closer, proc, port, key = closing_peer
    pinged = trio.Event()

    async def ping(conn: Connection, args: Any) -> Any:
        pinged.set()
        return "pong"

    handlers: Handlers = {"test.ping": ping}
    assert proc.stdout is not None
    with trio.fail_after(20):
        async with connect(
            "127.0.0.1", port, key, keys=CLIENT, network_key=NETWORK_KEY, handlers=handlers
        ) as conn:
            if closer == "peer":
                await conn.wait_closed()
                assert pinged.is_set()
            else:
                assert await conn.call("test.echo", {"x": 1}) == {"x": 1}
        line = await trio.to_thread.run_sync(proc.stdout.readline, abandon_on_cancel=True)
    theirs = json.loads(line)
    assert conn.closed_cleanly, conn.close_reason
    assert theirs["clean"], theirs["reason"]
    if closer == "peer":
        assert (conn.close_reason, theirs["reason"]) == ("closed by peer", "peer leaves")
    else:
        assert (conn.close_reason, theirs["reason"]) == ("closed", "closed by peer")


if __name__ == "__main__":
    trio.run(close_peer, sys.argv[1], bytes.fromhex(sys.argv[2]))
