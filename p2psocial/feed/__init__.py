"""The signed append-only feed format: encode, sign, verify, chain rules, forks.

The format is reached through :class:`FeedFormat` so that a later bridge can add the classic
Scuttlebutt format beside the native one without touching the store or replication.
"""

from __future__ import annotations

from typing import Protocol

from p2psocial.feed.entry import FORMAT_VERSION, Entry, decode_entry, signature_ok


class FeedFormat(Protocol):
    """What the store and replication need of a feed format."""

    version: int

    def decode(self, raw: bytes) -> Entry:
        """Decode and check shape; raises an InvalidEntry subclass."""
        ...

    def signature_ok(self, entry: Entry) -> bool:
        """Whether the entry's signature verifies (thread-safe)."""
        ...


class NativeFormat:
    """Feed format version 1 (docs/protocol.md section 2)."""

    version = FORMAT_VERSION

    def decode(self, raw: bytes) -> Entry:
        return decode_entry(raw)

    def signature_ok(self, entry: Entry) -> bool:
        return signature_ok(entry)


NATIVE = NativeFormat()
