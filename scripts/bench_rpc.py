#!/usr/bin/env python3
"""Benchmark: the daemon's local JSON-RPC socket, against a real daemon process.

The store is pre-filled offline with N entries over M authors (plus one thread of ours: a
root post and R replies), then a daemon is started on it. Measured over the real socket:

- ``whoami`` and ``publish`` calls per second from one blocking client (each call waits for
  its answer), and from 8 clients at once (8 processes, each with its own connection).
  ``whoami`` does no store work, so it is the socket's own limit on this machine, measured
  in the same run; ``publish_to_whoami_1`` (target: >= 0.5) compares the two.
- p50/p99 latency of ``timeline(limit=50)`` and ``thread(root)`` (target: timeline p99 <
  20 ms), one client, calls one after another.

Rates are the median of ``--rounds`` rounds, whoami and publish alternating, so a noisy
neighbour affects both alike. Prints one JSON line:

    {"entries": ..., "whoami_per_s_1": ..., "publish_per_s_1": ..., "publish_to_whoami_1": ...,
     "whoami_per_s_8": ..., "publish_per_s_8": ..., "publish_to_whoami_8": ...,
     "timeline_p50_ms": ..., "timeline_p99_ms": ..., "thread_p50_ms": ..., ...}

    python scripts/bench_rpc.py [--entries N] [--authors M] [--seconds S] [--calls C]
                                [--daemon-command "python -m p2psocial"]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_ingest import build

from p2psocial.client import Client
from p2psocial.errors import DaemonNotRunning
from p2psocial.home import Home
from p2psocial.identity import message_id
from p2psocial.msgtypes.post import post_content
from p2psocial.store.store import Store

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

BIN = Path(sys.executable).parent
CLIENTS = 8
POST = {"type": "post", "text": "benchmark post, about as long as a short message"}


def call_args(method: str) -> dict[str, Any]:
    return {"content": POST} if method == "publish" else {}


def run_calls(client: Client, method: str, start_at: float, seconds: float) -> tuple[int, float]:
    """Call ``method`` back to back from ``start_at`` (wall clock) for ``seconds``."""
    params = call_args(method)
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        client.call(method, **params)
        count += 1
    return count, time.perf_counter() - start


def worker(socket_path: str, conn: Connection) -> None:
    """One of the 8 clients: runs the rounds its parent sends, answers with its count."""
    with Client(socket_path, timeout=60) as client:
        client.call("whoami")
        conn.send("ready")
        while (job := conn.recv()) is not None:
            method, start_at, seconds = job
            conn.send(run_calls(client, method, start_at, seconds))


class Clients:
    """``n`` client processes that run a method at the same moment."""

    def __init__(self, socket_path: Path, n: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.links: list[Connection] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(str(socket_path), child), daemon=True)
            proc.start()
            self.links.append(parent)
            self.procs.append(proc)
        for link in self.links:
            if link.recv() != "ready":
                raise SystemExit("a client process failed to start")

    def rate(self, method: str, seconds: float) -> float:
        start_at = time.time() + 0.2
        for link in self.links:
            link.send((method, start_at, seconds))
        results: list[tuple[int, float]] = [link.recv() for link in self.links]
        return sum(count / elapsed for count, elapsed in results)

    def close(self) -> None:
        for link in self.links:
            link.send(None)
        for proc in self.procs:
            proc.join(timeout=10)


def single_rate(client: Client, method: str, seconds: float) -> float:
    count, elapsed = run_calls(client, method, time.time(), seconds)
    return count / elapsed


def latencies_ms(client: Client, method: str, params: dict[str, Any], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        client.call(method, **params)
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return round(sorted_values[index], 3)


def prefill(home: Home, entries: int, authors: int, replies: int) -> str:
    """Fill the store offline; return the id of our thread's root."""
    keys = home.create_identity(os.urandom(32))
    data = build(entries, authors)
    now = time.time_ns() // 1_000_000
    with Store.open(home.store_path, owner=keys) as store:
        batches = (data[i : i + 5000] for i in range(0, len(data), 5000))
        for result in store.append_stream(batches, lambda: now):
            if result.errors:
                raise SystemExit(f"setup failed: {result.errors}")
        root = message_id(store.publish(keys, post_content("the root of a thread"), now).entry.id)
        for n in range(replies):
            store.publish(keys, post_content(f"reply {n}", root=root), now)
    return root


def start_daemon(home: Path, log: Path, command: list[str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *command,
                "--home",
                str(home),
                "daemon",
                "--listen",
                "127.0.0.1:0",
                "--no-lan",
                "--log-level",
                "warning",
            ],
            stdout=out,
            stderr=out,
        )
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the daemon in {home} did not start:\n{log.read_text()}")
        try:
            with Client.for_home(home, timeout=10) as client:
                client.call("whoami")
            return proc
        except DaemonNotRunning:
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--authors", type=int, default=100)
    parser.add_argument("--replies", type=int, default=50, help="replies in the thread")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000, help="calls per latency figure")
    parser.add_argument(
        "--daemon-command",
        default=str(BIN / "p2psocial"),
        help="how to run p2psocial for the daemon (e.g. under a profiler); split on spaces",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        root = prefill(home, args.entries, args.authors, args.replies)
        proc = start_daemon(home.path, Path(tmp) / "daemon.log", args.daemon_command.split())
        try:
            with Client.for_home(home.path, timeout=60) as client:
                stored = client.call("status")["entries"]
                for method in ("whoami", "publish", "timeline", "thread"):  # warm up
                    params = {"root": root} if method == "thread" else call_args(method)
                    for _ in range(50):
                        client.call(method, **params)
                rates: dict[str, list[float]] = {}
                clients = Clients(home.socket_path, CLIENTS)
                try:
                    for _ in range(args.rounds):
                        for method in ("whoami", "publish"):
                            rate = single_rate(client, method, args.seconds)
                            rates.setdefault(f"{method}_1", []).append(rate)
                            rate = clients.rate(method, args.seconds)
                            rates.setdefault(f"{method}_{CLIENTS}", []).append(rate)
                finally:
                    clients.close()
                timeline = latencies_ms(client, "timeline", {"limit": 50}, args.calls)
                thread = latencies_ms(client, "thread", {"root": root}, args.calls)
                thread_size = len(client.call("thread", root=root))
        finally:
            proc.terminate()
            proc.wait(timeout=60)

    median = {key: statistics.median(values) for key, values in rates.items()}
    result = {
        "entries": stored,
        "whoami_per_s_1": round(median["whoami_1"]),
        "publish_per_s_1": round(median["publish_1"]),
        "publish_to_whoami_1": round(median["publish_1"] / median["whoami_1"], 3),
        f"whoami_per_s_{CLIENTS}": round(median[f"whoami_{CLIENTS}"]),
        f"publish_per_s_{CLIENTS}": round(median[f"publish_{CLIENTS}"]),
        f"publish_to_whoami_{CLIENTS}": round(
            median[f"publish_{CLIENTS}"] / median[f"whoami_{CLIENTS}"], 3
        ),
        "timeline_p50_ms": percentile(timeline, 0.50),
        "timeline_p99_ms": percentile(timeline, 0.99),
        "thread_p50_ms": percentile(thread, 0.50),
        "thread_p99_ms": percentile(thread, 0.99),
        "thread_messages": thread_size,
        "cores": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
