#!/usr/bin/env python3
"""Benchmark: handshakes per second and stream throughput between two processes on loopback.

Prints one JSON line beside the machine's raw secretbox throughput on one core, measured in
the same run with 4096-byte messages (box-stream's largest body, so the same per-call
overhead the stream pays):

    {"handshakes_per_s": h, "stream_mb_per_s": t, "secretbox_mb_per_s_1core": raw,
     "ratio_to_secretbox": t/raw}

The stream figure is one direction: the peer process (scripts/transport_peer.py) encrypts
and sends a ``bench.source`` stream of 64 KiB items; this process decrypts, deframes and
decodes them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trio

from p2psocial.identity import Keypair, parse_feed_id
from p2psocial.net.connection import connect
from p2psocial.proto.handshake import NETWORK_KEY
from p2psocial.proto.secretbox import SecretBox

if TYPE_CHECKING:
    from collections.abc import Iterator

MB = 1024 * 1024


def raw_secretbox_mb_per_s(seconds: float) -> float:
    """libsodium secretbox on 4096-byte messages, one core, by the fastest call path we
    have (the one box-stream itself uses), so the ratio is not flattered."""
    key, nonce, block = os.urandom(32), os.urandom(24), os.urandom(4096)
    box = SecretBox(key)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            box.seal(block, nonce)
        done += 500 * len(block)
    return done / MB / (time.perf_counter() - start)


async def measure(port: int, server: bytes, handshakes: int, stream_mb: int) -> tuple[float, float]:
    keys = Keypair.from_seed(os.urandom(32))
    start = time.perf_counter()
    for _ in range(handshakes):
        async with connect("127.0.0.1", port, server, keys=keys, network_key=NETWORK_KEY):
            pass
    hs_rate = handshakes / (time.perf_counter() - start)
    async with connect("127.0.0.1", port, server, keys=keys, network_key=NETWORK_KEY) as conn:
        total = stream_mb * MB
        received = 0
        start = time.perf_counter()
        async with conn.stream("bench.source", {"bytes": total, "chunk": 64 * 1024}) as s:
            async for item in s:
                received += len(item)
        seconds = time.perf_counter() - start
    if received != total:
        raise SystemExit(f"received {received} of {total} bytes")
    return hs_rate, total / MB / seconds


@contextmanager
def transport_peer() -> Iterator[tuple[int, bytes]]:
    """scripts/transport_peer.py in a process of its own: (its port, its key)."""
    with subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "transport_peer.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as peer:
        assert peer.stdout is not None and peer.stdin is not None
        info = json.loads(peer.stdout.readline())
        try:
            yield info["port"], parse_feed_id(info["feed_id"])
        finally:
            peer.stdin.close()
            peer.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--handshakes", type=int, default=200)
    parser.add_argument("--stream-mb", type=int, default=64)
    args = parser.parse_args()
    raw = raw_secretbox_mb_per_s(2.0)
    with transport_peer() as (port, key):
        hs, mbps = trio.run(measure, port, key, args.handshakes, args.stream_mb)
    print(
        json.dumps(
            {
                "handshakes_per_s": round(hs, 1),
                "stream_mb_per_s": round(mbps, 1),
                "secretbox_mb_per_s_1core": round(raw, 1),
                "ratio_to_secretbox": round(mbps / raw, 3),
                "secretbox_chunk": 4096,
            }
        )
    )


if __name__ == "__main__":
    main()
