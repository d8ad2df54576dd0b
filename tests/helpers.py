from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import Entry, create_entry
from p2psocial.identity import Keypair, message_id

if TYPE_CHECKING:
    from p2psocial.store.store import Store

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


class Feeds:
    """Real signed feeds, handed to a store as a peer's batches. Entry ``n`` of all
    added claims time ``1000 * n``, so posts sort in the order they were added; each batch
    is received at ``now_ms``."""

    def __init__(self, store: Store, now_ms: int = 10_000_000) -> None:
        self.store = store
        self.now_ms = now_ms
        self.heads: dict[bytes, tuple[int, bytes | None]] = {}
        self.count = 0

    def entries(self, keys: Keypair, *contents: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        items = []
        for content in contents:
            seq, previous = self.heads.get(keys.public, (0, None))
            self.count += 1
            data = encode_content(content)
            entry = create_entry(keys, seq + 1, previous, 1000 * self.count, data)
            self.heads[keys.public] = (seq + 1, entry.id)
            items.append((entry.raw, data))
        return items

    def add(self, keys: Keypair, *contents: dict[str, Any]) -> list[str]:
        """Store ``contents`` as ``keys``'s next entries; their message ids."""
        result = self.store.append_batch(self.entries(keys, *contents), now_ms=self.now_ms)
        assert not result.errors, result.errors
        return [message_id(a.entry.id) for a in result.stored]


def post(text: str, **fields: Any) -> dict[str, Any]:
    """Post content."""
    return {"type": "post", "text": text, **fields}
