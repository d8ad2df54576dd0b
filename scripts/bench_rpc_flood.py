#!/usr/bin/env python3
"""Benchmark: an honest sync between two daemons while local apps flood the socket (#11).

Daemon A holds N entries over M authors (pre-filled offline). A fresh receiver B1 syncs
them from A with nobody else about (the *quiet* time); then a second fresh receiver B2
syncs them while hostile local clients run (the *attack* time), in the same run:

- ``flood``: ``--flooders`` connections to A, each sending a batch of 1000
  ``timeline(limit 1000)`` calls and reading the answer, over and over;
- ``unread``: one connection to A sends 64 such batches and never reads;
- ``subs``: 20 connections to B2 open 64 ``subscribe`` (every message) each, never read.

Then the hostile clients leave, and the daemons' memory is read again. Prints one JSON line:

    {"entries": N, "quiet_s": q, "attack_s": a, "attack_to_quiet": a/q,
     "peak_rss_mb_a": ..., "peak_rss_mb_b2": ..., "rss_mb_a_after_leave": ...,
     "rss_mb_b2_after_leave": ..., "probe_max_ms": ..., ...}

``peak_rss_mb_*`` is the most VmRSS sampled (every 50 ms) during the attack;
``probe_max_ms`` the slowest ``timeline(limit 10)`` an honest client saw on A meanwhile.

    python scripts/bench_rpc_flood.py [--entries N] [--authors M] [--attack all|flood|unread|subs]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_sync import start_daemon

from p2psocial.client import Client
from p2psocial.home import Home
from p2psocial.identity import parse_feed_id
from p2psocial.msgtypes.contact import contact_content
from p2psocial.store.store import Store
from tests.e2e.floods import (
    TIMELINE_BATCH,
    Flood,
    RssWatch,
    Unread,
    make_feeds,
    prefill,
    rss_mb,
    subscribe_lines,
    sync_seconds,
)


def receiver(home: Home, authors: list[str]) -> None:
    """A fresh home that follows ``authors`` (set up offline)."""
    keys = home.create_identity(os.urandom(32))
    with Store.open(home.store_path, owner=keys) as store:
        for author in authors:
            content = contact_content(parse_feed_id(author), following=True, blocking=False)
            store.publish(keys, content, 1_800_000_000_000)


class Probe:
    """An honest app on A: ``timeline(limit 10)`` every 0.1 s; the slowest answer."""

    def __init__(self, home: Path) -> None:
        self.max_ms = 0.0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(home,), daemon=True)
        self._thread.start()

    def _run(self, home: Path) -> None:
        with Client.for_home(home, timeout=300) as client:
            while not self._stop.wait(0.1):
                began = time.monotonic()
                try:
                    client.call("timeline", limit=10)
                except Exception:
                    self.failures += 1
                self.max_ms = max(self.max_ms, (time.monotonic() - began) * 1000)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=300)
        return round(self.max_ms, 1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--authors", type=int, default=20)
    parser.add_argument("--attack", choices=("all", "flood", "unread", "subs"), default="all")
    parser.add_argument("--flooders", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=300, help="seconds per sync, at most")
    parser.add_argument(
        "--rss-limit-mb", type=float, default=6000, help="stop the attack past this RSS"
    )
    args = parser.parse_args()
    attacks = {"flood", "unread", "subs"} if args.attack == "all" else {args.attack}

    data, authors = make_feeds(args.entries, args.authors)
    with tempfile.TemporaryDirectory() as tmp:
        home_a, home_b1, home_b2 = (Home(Path(tmp) / n) for n in ("a", "b1", "b2"))
        keys_a = home_a.create_identity(os.urandom(32))
        prefill(home_a.store_path, data, keys_a)
        del data
        receiver(home_b1, authors)
        receiver(home_b2, authors)
        target = args.entries + len(authors)

        proc_a = start_daemon(home_a.path, Path(tmp) / "a.log")
        procs = [proc_a]
        try:
            listen_a = json.loads(home_a.daemon_info_path.read_text())["listen"]
            proc_b1 = start_daemon(home_b1.path, Path(tmp) / "b1.log")
            procs.append(proc_b1)
            quiet = sync_seconds(
                home_b1.path, listen_a, keys_a.feed_id, target, timeout=args.timeout
            )
            stop(proc_b1)
            procs.remove(proc_b1)

            proc_b2 = start_daemon(home_b2.path, Path(tmp) / "b2.log")
            procs.append(proc_b2)
            time.sleep(1.0)
            base_a, base_b2 = rss_mb(proc_a.pid), rss_mb(proc_b2.pid)
            hostile: list[Flood | Unread] = []

            def call_off() -> None:
                for h in hostile:
                    h.close()

            watch_a = RssWatch(proc_a.pid, limit_mb=args.rss_limit_mb, on_limit=call_off)
            watch_b2 = RssWatch(proc_b2.pid, limit_mb=args.rss_limit_mb, on_limit=call_off)
            if "unread" in attacks:
                hostile.append(Unread(home_a.socket_path, 1, [TIMELINE_BATCH] * 64))
            if "subs" in attacks:
                hostile.append(Unread(home_b2.socket_path, 20, subscribe_lines(64)))
            if "flood" in attacks:
                hostile.append(Flood(home_a.socket_path, args.flooders))
            probe = Probe(home_a.path)
            time.sleep(1.0)
            try:
                attacked: float | None = sync_seconds(
                    home_b2.path, listen_a, keys_a.feed_id, target, timeout=args.timeout
                )
            except AssertionError:
                attacked = None
            probe_max = probe.stop()
            flood = next((h for h in hostile if isinstance(h, Flood)), None)
            call_off()  # the hostile clients leave
            peak_a, peak_b2 = watch_a.stop(), watch_b2.stop()
            time.sleep(5.0)
            after_a, after_b2 = rss_mb(proc_a.pid), rss_mb(proc_b2.pid)
        finally:
            for proc in procs:
                stop(proc)

    result = {
        "entries": args.entries,
        "attack": sorted(attacks),
        "quiet_s": round(quiet, 2),
        "attack_s": None if attacked is None else round(attacked, 2),
        "attack_to_quiet": None if attacked is None else round(attacked / quiet, 2),
        "rss_mb_a_before": round(base_a, 1),
        "rss_mb_b2_before": round(base_b2, 1),
        "peak_rss_mb_a": round(peak_a, 1),
        "peak_rss_mb_b2": round(peak_b2, 1),
        "rss_mb_a_after_leave": round(after_a, 1),
        "rss_mb_b2_after_leave": round(after_b2, 1),
        "rss_limit_hit": watch_a.tripped or watch_b2.tripped,
        "probe_max_ms": probe_max,
        "flood_answers": flood.answers if flood else 0,
        "flood_answer_mb": round(flood.answer_bytes / 2**20, 1) if flood else 0,
        "cores": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
