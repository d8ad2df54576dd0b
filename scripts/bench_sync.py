#!/usr/bin/env python3
"""Benchmark: initial sync between two daemon processes on loopback.

A holds N entries over M authors; B follows the M authors. From the moment B is told to
connect until B holds all N, every one verified and stored. Prints one JSON line:

    {"entries": N, "seconds": s, "entries_per_s": x, "verify_per_s_all_cores": vall,
     "ratio_to_all_cores": x/vall, "peak_rss_mb_receiver": r, ...}

``vall`` is the raw Ed25519 verification rate on all cores measured in the same run.
``peak_rss_mb_receiver`` is the receiving daemon's own peak resident memory (VmHWM);
``peak_rss_mb_receiver_with_workers`` adds its signature-verifier worker processes.

    python scripts/bench_sync.py [--entries N] [--authors M]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_ingest import build, raw_verify_rate

from p2psocial.client import Client
from p2psocial.home import Home
from p2psocial.identity import feed_id
from p2psocial.msgtypes.contact import contact_content
from p2psocial.store.store import Store

BIN = Path(sys.executable).parent


def vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def start_daemon(home: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "p2psocial"),
                "--home",
                str(home),
                "daemon",
                "--listen",
                "127.0.0.1:0",
                "--log-level",
                "warning",
                "--no-lan",
            ],
            stdout=out,
            stderr=out,
        )
    deadline = time.monotonic() + 60
    while not (home / "daemon.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"daemon in {home} did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--authors", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    data = build(args.entries, args.authors)
    authors = sorted({raw[4:36] for raw, _ in data})
    vall = raw_verify_rate(data, os.cpu_count() or 1, 2.0)

    with tempfile.TemporaryDirectory() as tmp:
        home_a, home_b = Home(Path(tmp) / "a"), Home(Path(tmp) / "b")
        keys_a = home_a.create_identity(os.urandom(32))
        keys_b = home_b.create_identity(os.urandom(32))
        with Store.open(home_a.store_path, verify_workers=None, owner=keys_a) as store:
            batches = (data[i : i + 5000] for i in range(0, len(data), 5000))
            for result in store.append_stream(batches, lambda: 1_800_000_000_000):
                if result.errors:
                    raise SystemExit(f"setup failed: {result.errors}")
        with Store.open(home_b.store_path, owner=keys_b) as store:
            for author in authors:
                content = contact_content(author, following=True, blocking=False)
                store.publish(keys_b, content, 1_800_000_000_000)
        del data

        proc_a = start_daemon(home_a.path, Path(tmp) / "a.log")
        proc_b = start_daemon(home_b.path, Path(tmp) / "b.log")
        try:
            listen_a = json.loads(home_a.daemon_info_path.read_text())["listen"]
            with Client.for_home(home_b.path, timeout=60) as client:
                target = args.entries + len(authors)
                start = time.perf_counter()
                client.call("peers.connect", address=listen_a, feed_id=keys_a.feed_id)
                held = 0
                while held < target:
                    if time.perf_counter() - start > args.timeout:
                        raise SystemExit(f"sync did not finish: {held}/{target}")
                    time.sleep(0.02)
                    held = client.call("status")["entries"]
                seconds = time.perf_counter() - start
                peak = vm_hwm_kb(proc_b.pid)
                workers = sum(vm_hwm_kb(kid) for kid in children(proc_b.pid))
                check = client.call("feed", feed_id=feed_id(authors[0]), limit=1, reverse=True)
        finally:
            for proc in (proc_b, proc_a):
                proc.terminate()
                proc.wait(timeout=30)
    rate = args.entries / seconds
    print(
        json.dumps(
            {
                "entries": args.entries,
                "authors": args.authors,
                "seconds": round(seconds, 3),
                "entries_per_s": round(rate),
                "verify_per_s_all_cores": round(vall),
                "ratio_to_all_cores": round(rate / vall, 3),
                "peak_rss_mb_receiver": round(peak / 1024, 1),
                "peak_rss_mb_receiver_with_workers": round((peak + workers) / 1024, 1),
                "last_seq_checked": check[0]["seq"] if check else None,
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
