#!/usr/bin/env python3
"""Benchmark: validate + store N entries over M authors into a fresh store.

Prints one JSON line with the ingest rate beside the machine's raw Ed25519 verification
rate on one core and on all cores (one thread per core), both measured in the same run.

    python scripts/bench_ingest.py [--entries N] [--authors M] [--batch B]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nacl.bindings

from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.identity import Keypair
from p2psocial.store.store import Store


def build(entries: int, authors: int) -> list[tuple[bytes, bytes]]:
    """Entries round-robin over authors, each feed in order; content ~ a short post."""
    keys = [Keypair.from_seed(i.to_bytes(32, "big")) for i in range(authors)]
    latest: list[bytes | None] = [None] * authors
    seqs = [0] * authors
    out = []
    base = 1_700_000_000_000
    for n in range(entries):
        a = n % authors
        seqs[a] += 1
        content = encode_content({"type": "post", "text": f"post number {n} " + "x" * 60})
        entry = create_entry(keys[a], seqs[a], latest[a], base + n, content)
        latest[a] = entry.id
        out.append((entry.raw, content))
    return out


def raw_verify_rate(samples: list[tuple[bytes, bytes]], threads: int, seconds: float) -> float:
    """Ed25519 verifications per second with ``threads`` threads (libsodium, no GIL)."""
    keys = Keypair.from_seed(b"\x01" * 32)
    message = samples[0][0][:120]
    signed = nacl.bindings.crypto_sign(message, keys.secret)
    public = keys.public

    def work(deadline: float) -> int:
        count = 0
        while time.perf_counter() < deadline:
            for _ in range(200):
                nacl.bindings.crypto_sign_open(signed, public)
            count += 200
        return count

    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(work, [deadline] * threads))
    return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--authors", type=int, default=100)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()

    data = build(args.entries, args.authors)
    cores = os.cpu_count() or 1
    v1 = raw_verify_rate(data, 1, 2.0)
    vall = raw_verify_rate(data, cores, 2.0)

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "store.sqlite", verify_workers=None)
        store.verifier.warm_up()  # a daemon starts its workers once, at start-up
        start = time.perf_counter()
        stored = 0
        batches = (data[i : i + args.batch] for i in range(0, len(data), args.batch))
        for result in store.append_stream(batches, lambda: 1_800_000_000_000):
            if result.errors:
                raise SystemExit(f"unexpected rejection: {result.errors}")
            stored += len(result.stored)
        seconds = time.perf_counter() - start
        counted = store.counts()["entries"]
        store.close()
    if stored != args.entries or counted != args.entries:
        raise SystemExit(f"stored {stored}/{counted} of {args.entries}")
    rate = args.entries / seconds
    print(
        json.dumps(
            {
                "entries": args.entries,
                "authors": args.authors,
                "seconds": round(seconds, 3),
                "entries_per_s": round(rate),
                "verify_per_s_1core": round(v1),
                "verify_per_s_all_cores": round(vall),
                "ratio_to_all_cores": round(rate / vall, 3),
                "cores": cores,
            }
        )
    )


if __name__ == "__main__":
    main()
