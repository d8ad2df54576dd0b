#!/usr/bin/env python3
"""Benchmark: opening private messages (p2psocial.proto.privatebox) on one core.

Prints one JSON line: messages opened per second when we are a recipient (in the first
and in the last of 7 slots) and when we are not (all 7 slots tried), beside the machine's
raw X25519 scalar multiplications per second measured in the same run. Opening costs one
scalar multiplication whatever the slot (the shared secret with the ephemeral key is the
same for every slot), plus up to 7 secretbox opens of 49 bytes and, for a recipient, the
body; so each ``open_*`` rate should stay close to ``x25519_per_s``.

    python scripts/bench_private.py [--seconds S] [--size BYTES]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nacl.bindings

from p2psocial.identity import Keypair
from p2psocial.proto.privatebox import MAX_RECIPIENTS, decrypt, encrypt

if TYPE_CHECKING:
    from collections.abc import Callable


def rate(work: Callable[[], object], seconds: float, batch: int = 100) -> float:
    """Calls of ``work`` per second over about ``seconds``."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            work()
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    parser.add_argument("--size", type=int, default=300, help="plaintext bytes")
    args = parser.parse_args()

    keys = [Keypair.from_seed(bytes([i]) * 32) for i in range(1, MAX_RECIPIENTS + 2)]
    recipients, outsider = keys[:MAX_RECIPIENTS], keys[MAX_RECIPIENTS]
    digest = hashlib.sha256(b"bench").digest()
    plaintext = (digest * (args.size // 32 + 1))[: args.size]
    ciphertext = encrypt(
        plaintext,
        [k.public for k in recipients],
        nonce=digest[:24],
        ephemeral_secret=hashlib.sha256(b"ephemeral").digest(),
        body_key=hashlib.sha256(b"body").digest(),
    )
    first, last = recipients[0].secret, recipients[-1].secret
    if decrypt(ciphertext, first) != plaintext or decrypt(ciphertext, last) != plaintext:
        raise SystemExit("a recipient could not open the message")
    if decrypt(ciphertext, outsider.secret) is not None:
        raise SystemExit("a non-recipient opened the message")

    scalar = hashlib.sha256(b"scalar").digest()
    point = nacl.bindings.crypto_scalarmult_base(hashlib.sha256(b"point").digest())
    x25519 = rate(lambda: nacl.bindings.crypto_scalarmult(scalar, point), args.seconds)
    first_rate = rate(lambda: decrypt(ciphertext, first), args.seconds)
    last_rate = rate(lambda: decrypt(ciphertext, last), args.seconds)
    outsider_rate = rate(lambda: decrypt(ciphertext, outsider.secret), args.seconds)
    print(
        json.dumps(
            {
                "recipients": MAX_RECIPIENTS,
                "plaintext_bytes": args.size,
                "open_recipient_per_s": round(first_rate),
                "open_recipient_last_slot_per_s": round(last_rate),
                "open_nonrecipient_per_s": round(outsider_rate),
                "x25519_per_s": round(x25519),
                "ratio_nonrecipient_to_x25519": round(outsider_rate / x25519, 3),
                "ratio_last_slot_to_x25519": round(last_rate / x25519, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
