#!/usr/bin/env python3
"""Benchmark: blobs between two daemon processes on loopback (#13).

Two phases, each with a fresh pair of daemons A (sender) and B (receiver), run as users run
them: A adds random files (``blobs.add {path, pin: true}``) and posts them as attachments
(4 per post); B follows A. The clock starts when B is told to connect to A
(``peers.connect``) and stops when B holds every blob (``status`` -> ``blobs``), so it
covers replicating the few posts, B's wants, and the downloads.

- big: ``--big-mib`` MiB in 5 MiB blobs (the size cap);
- small: ``--small-count`` blobs of 50 KiB.

In the same run, the raw transport stream rate: ``--raw-mib`` MiB of 256 KiB byte items
(the size of a ``blobs.get`` chunk) sent over one ``Connection.stream`` by another process
(scripts/transport_peer.py) and received here, over real loopback TCP through the real
handshake, box-stream and packet-stream: two cores, as between two daemons. The ratio is
taken to that rate; ``raw_stream_one_process_MBps`` is the same stream between two tasks
of this process (one core for both ends), for comparison; ``disk_write_fsync_MBps`` is the
disk's rate for the same bytes in 5 MiB files, each fsynced (every blob is, on arrival), and
``ratio_big_to_min_raw_disk`` the big-blob rate against the lower of the two (measured
last, as it leaves the disk busy). Prints one JSON line (MB means 2**20 bytes)::

    {"big_MBps": b, "small_blobs_per_s": n, "small_MBps": s, "raw_stream_MBps": r,
     "ratio_big_to_raw": b/r, "peak_rss_mb_receiver": m, "targets": {...}, ...}

``peak_rss_mb_receiver`` is the larger of the two receiving daemons' own peak resident
memory (VmHWM, read at the end of each phase). Targets (the issue's): big-blob throughput
at least 0.5 of the raw stream rate, receiver peak RSS under 150 MB.

    python scripts/bench_blobs.py [--big-mib N] [--small-count N] [--raw-mib N]
                                  [--dir PATH] [--timeout S]

A quick check: ``--big-mib 20 --small-count 100``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import trio
from bench_sync import children, start_daemon, vm_hwm_kb
from bench_transport import transport_peer

from p2psocial.client import Client
from p2psocial.home import Home
from p2psocial.identity import Keypair
from p2psocial.msgtypes.blobs import MAX_ATTACHMENTS
from p2psocial.net.connection import Connection, RpcStream, connect, serve, stream_handler
from p2psocial.proto.blobs import CHUNK_SIZE
from p2psocial.proto.handshake import NETWORK_KEY

MB = 1024 * 1024
BIG_BLOB = 5 * MB
SMALL_BLOB = 50 * 1024
POLL = 0.02
SETTLE = 1.0
"""Seconds between the setup and the clock's start, so the disk writes of the setup (A
adding 200 MiB, each blob fsynced) are not in the measure."""
TARGET_RATIO = 0.5
TARGET_RSS_MB = 150.0


# ---------------------------------------------------------------------------- raw stream


async def _raw_stream(total: int) -> float:
    """MB/s of ``total`` bytes in CHUNK_SIZE items over one stream, end to end: from the
    first item sent until the receiving handler has counted them all and said so."""
    server_keys = Keypair.from_seed(os.urandom(32))
    client_keys = Keypair.from_seed(os.urandom(32))

    async def sink(conn: Connection, args: Any, stream: RpcStream) -> None:
        count = 0
        async for item in stream:
            count += len(item)
        await stream.send(count)

    async def hold(conn: Connection) -> None:
        await conn.wait_closed()

    async with trio.open_nursery() as nursery:
        listeners: list[trio.SocketListener] = await nursery.start(
            functools.partial(
                serve,
                "127.0.0.1",
                0,
                keys=server_keys,
                network_key=NETWORK_KEY,
                on_connection=hold,
                handlers={"bench.sink": stream_handler(sink)},
            )
        )
        port = listeners[0].socket.getsockname()[1]
        async with connect(
            "127.0.0.1", port, server_keys.public, keys=client_keys, network_key=NETWORK_KEY
        ) as conn:
            chunk = os.urandom(CHUNK_SIZE)
            start = time.perf_counter()
            async with conn.stream("bench.sink", {}) as stream:
                sent = 0
                while sent < total:
                    piece = chunk[: min(CHUNK_SIZE, total - sent)]
                    await stream.send(piece)
                    sent += len(piece)
                await stream.end()
                counted = await stream.receive()
            seconds = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    if counted != total:
        raise SystemExit(f"raw stream: the sink counted {counted} of {total} bytes")
    return total / MB / seconds


def raw_stream_mb_per_s(total: int) -> float:
    return trio.run(_raw_stream, total)


async def _from_peer(port: int, server: bytes, total: int) -> float:
    keys = Keypair.from_seed(os.urandom(32))
    async with connect("127.0.0.1", port, server, keys=keys, network_key=NETWORK_KEY) as conn:
        received = 0
        start = time.perf_counter()
        async with conn.stream("bench.source", {"bytes": total, "chunk": CHUNK_SIZE}) as s:
            async for item in s:
                received += len(item)
        seconds = time.perf_counter() - start
    if received != total:
        raise SystemExit(f"raw stream: received {received} of {total} bytes")
    return total / MB / seconds


def disk_write_mb_per_s(where: Path, total: int) -> float:
    """MB/s of writing ``total`` bytes as 5 MiB files, each fsynced, where the daemons keep
    their blobs: the disk's part of the machine's limit (a blob is written and synced once
    it arrives)."""
    block = os.urandom(BIG_BLOB)
    start = time.perf_counter()
    written = 0
    index = 0
    while written < total:
        path = where / f"disk-{index}.bin"
        with path.open("wb", buffering=0) as f:
            f.write(block[: min(BIG_BLOB, total - written)])
            os.fsync(f.fileno())
        written += min(BIG_BLOB, total - written)
        index += 1
    seconds = time.perf_counter() - start
    for item in where.glob("disk-*.bin"):
        item.unlink()
    return total / MB / seconds


def raw_stream_two_processes_mb_per_s(total: int) -> float:
    """MB/s of ``total`` bytes in CHUNK_SIZE items sent by another process
    (scripts/transport_peer.py, ``bench.source``) and received here: one core encrypting,
    another decrypting, as between two daemons."""
    with transport_peer() as (port, key):
        return trio.run(_from_peer, port, key, total)


# ---------------------------------------------------------------------------- one transfer


def vm_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def transfer(tmp: Path, sizes: list[int], timeout: float) -> dict[str, Any]:
    """Daemon A adds and posts blobs of these sizes; B follows A, connects, and fetches
    them all. Timings are from ``peers.connect``."""
    home_a, home_b = Home(tmp / "a"), Home(tmp / "b")
    keys_a = home_a.create_identity(os.urandom(32))
    home_b.create_identity(os.urandom(32))
    source = tmp / "files"
    source.mkdir()
    proc_a = start_daemon(home_a.path, tmp / "a.log")
    proc_b = start_daemon(home_b.path, tmp / "b.log")
    try:
        with Client.for_home(home_a.path, timeout=120) as a:
            ids: set[str] = set()
            attachments: list[dict[str, Any]] = []
            for index, size in enumerate(sizes):
                path = source / f"random-{index}.bin"
                path.write_bytes(os.urandom(size))
                added = a.call("blobs.add", path=str(path), pin=True)
                path.unlink()
                if added["size"] != size:
                    raise SystemExit(f"blobs.add stored {added['size']} of {size} bytes")
                ids.add(added["id"])
                attachments.append(added["attachment"])
            posts = 0
            for first in range(0, len(attachments), MAX_ATTACHMENTS):
                batch = attachments[first : first + MAX_ATTACHMENTS]
                a.call("post", text=f"files {first}", attachments=batch)
                posts += 1
        if len(ids) != len(sizes):
            raise SystemExit("two random files had the same bytes")
        listen_a = json.loads(home_a.daemon_info_path.read_text())["listen"]
        total = sum(sizes)
        with Client.for_home(home_b.path, timeout=60) as b:
            b.call("follow", feed_id=keys_a.feed_id)
            entries_target = b.call("status")["entries"] + posts
            time.sleep(SETTLE)  # A's writes of the setup (and B's follow) are done with
            entries_at: float | None = None
            first_blob_at: float | None = None
            rss_polled = 0
            start = time.perf_counter()
            b.call("peers.connect", address=listen_a, feed_id=keys_a.feed_id)
            while True:
                time.sleep(POLL)
                status = b.call("status")
                now = time.perf_counter() - start
                rss_polled = max(rss_polled, vm_rss_kb(proc_b.pid))
                if entries_at is None and status["entries"] >= entries_target:
                    entries_at = now
                held = status["blobs"]
                if first_blob_at is None and held["count"] > 0:
                    first_blob_at = now
                if held["count"] >= len(sizes) and held["bytes"] >= total:
                    break
                if now > timeout:
                    raise SystemExit(
                        f"transfer did not finish in {timeout:g} s: {held['count']} of "
                        f"{len(sizes)} blobs, {held['bytes']} of {total} bytes"
                    )
            seconds = time.perf_counter() - start
            peak = vm_hwm_kb(proc_b.pid)
            workers = sum(vm_hwm_kb(kid) for kid in children(proc_b.pid))
            got = {item["id"] for item in b.call("blobs.list", limit=len(sizes) + 10)["blobs"]}
        if got != ids:
            raise SystemExit(f"B holds other blobs than A added: {len(got ^ ids)} differ")
    finally:
        for proc in (proc_b, proc_a):
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "blobs": len(sizes),
        "posts": posts,
        "mb": round(total / MB, 2),
        "seconds": round(seconds, 3),
        "MBps": round(total / MB / seconds, 1),
        "blobs_per_s": round(len(sizes) / seconds, 1),
        "posts_replicated_s": None if entries_at is None else round(entries_at, 3),
        "first_blob_s": None if first_blob_at is None else round(first_blob_at, 3),
        "peak_rss_mb_receiver": round(peak / 1024, 1),
        "peak_rss_mb_receiver_polled": round(rss_polled / 1024, 1),
        "peak_rss_mb_receiver_with_workers": round((peak + workers) / 1024, 1),
    }


def big_sizes(mib: int) -> list[int]:
    total = mib * MB
    sizes = [BIG_BLOB] * (total // BIG_BLOB)
    if total % BIG_BLOB:
        sizes.append(total % BIG_BLOB)
    return sizes


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--big-mib", type=int, default=200, help="MiB sent in 5 MiB blobs")
    parser.add_argument("--small-count", type=int, default=2000, help="50 KiB blobs sent")
    parser.add_argument(
        "--raw-mib", type=int, default=None, help="MiB for the raw stream (default: --big-mib)"
    )
    parser.add_argument("--dir", type=Path, default=None, help="where the daemon homes go")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per phase")
    args = parser.parse_args()
    if args.big_mib < 1 or args.small_count < 1:
        parser.error("--big-mib and --small-count must be at least 1")
    raw_mib = args.raw_mib if args.raw_mib is not None else args.big_mib

    raw_one = raw_stream_mb_per_s(raw_mib * MB)
    raw = raw_stream_two_processes_mb_per_s(raw_mib * MB)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        (Path(tmp) / "big").mkdir()
        big = transfer(Path(tmp) / "big", big_sizes(args.big_mib), args.timeout)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        (Path(tmp) / "small").mkdir()
        small = transfer(Path(tmp) / "small", [SMALL_BLOB] * args.small_count, args.timeout)

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:  # last: it leaves the disk busy
        disk = disk_write_mb_per_s(Path(tmp), args.big_mib * MB)
    ratio = big["MBps"] / raw
    peak = max(big["peak_rss_mb_receiver"], small["peak_rss_mb_receiver"])
    print(
        json.dumps(
            {
                "big_MBps": big["MBps"],
                "small_blobs_per_s": small["blobs_per_s"],
                "small_MBps": small["MBps"],
                "raw_stream_MBps": round(raw, 1),
                "raw_stream_one_process_MBps": round(raw_one, 1),
                "disk_write_fsync_MBps": round(disk, 1),
                "ratio_big_to_min_raw_disk": round(big["MBps"] / min(raw, disk), 3),
                "ratio_big_to_raw": round(ratio, 3),
                "peak_rss_mb_receiver": peak,
                "targets": {
                    "ratio_big_to_raw_at_least": TARGET_RATIO,
                    "ratio_met": ratio >= TARGET_RATIO,
                    "peak_rss_mb_receiver_under": TARGET_RSS_MB,
                    "rss_met": peak < TARGET_RSS_MB,
                },
                "big": {"blob_kib": BIG_BLOB // 1024, **big},
                "small": {"blob_kib": SMALL_BLOB // 1024, **small},
                "raw_stream_mb": raw_mib,
                "raw_chunk_kib": CHUNK_SIZE // 1024,
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
