from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import Entry, create_entry
from p2psocial.identity import Keypair

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def make_keys(n: int) -> Keypair:
    return Keypair.from_seed(n.to_bytes(32, "big"))


def make_feed(
    keys: Keypair, count: int, start_seq: int = 1, previous: bytes | None = None, ts: int = 1_000
) -> list[tuple[Entry, bytes]]:
    """``count`` valid entries of one feed, each with its content."""
    out = []
    for seq in range(start_seq, start_seq + count):
        content = encode_content({"type": "post", "text": f"entry {seq}"})
        entry = create_entry(keys, seq, previous, ts + seq, content)
        previous = entry.id
        out.append((entry, content))
    return out


def pairs(feed: list[tuple[Entry, bytes]]) -> list[tuple[bytes, bytes | None]]:
    return [(e.raw, c) for e, c in feed]


def signed_feed(keys: Keypair, contents: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """A feed of ``keys`` whose entries carry ``contents`` in order: (entry, content) pairs."""
    out, previous = [], None
    for seq, value in enumerate(contents, 1):
        data = encode_content(value)
        entry = create_entry(keys, seq, previous, 1000 + seq, data)
        previous = entry.id
        out.append((entry.raw, data))
    return out
