"""Feed formats: the one place that knows which signed-entry formats exist.

Theory of operation
-------------------
Everything outside ``feed/`` handles entries as opaque bytes plus the decoded
:class:`~p2psocial.feed.entry.Entry`; it never slices them. What it needs from the bytes
goes through this module:

- :func:`peek_feed`: the feed key an entry belongs to, without decoding it (replication
  uses it to drop entries of feeds it does not want before they cost anything);
- :func:`raw_signature_ok`: the signature check on raw bytes (verifier worker processes run
  it while the caller decodes);
- :func:`decode_entry`: the decoded, shape-checked entry.

Each format is a :class:`FeedFormat`, chosen by the entry's leading bytes
(:meth:`FeedFormat.claims`). Version 1 (``entry.py``) is the only one today. A second one
(the classic Scuttlebutt JSON feeds) adds a class here and its module beside ``entry.py``;
its feed keys must not collide with version 1 keys (the bare 32-byte Ed25519 key), so it
keys its feeds with a format tag. The chain rules, the store and replication stay as they
are: they see ``Entry`` objects and feed keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from p2psocial.feed import entry as v1

if TYPE_CHECKING:
    from p2psocial.feed.entry import Entry


class FeedFormat(Protocol):
    """What one signed-entry format provides."""

    name: str

    def claims(self, raw: bytes) -> bool:
        """Whether ``raw`` is (meant to be) an entry of this format: a cheap look at its
        leading bytes, not a validation."""
        ...

    def peek_feed(self, raw: bytes) -> bytes | None:
        """The feed key of an entry of this format, or None if the bytes are too short."""
        ...

    def peek_seq(self, raw: bytes) -> int | None:
        """The sequence number of an entry of this format, without decoding it (None if
        the bytes do not hold one where it belongs)."""
        ...

    def decode(self, raw: bytes) -> Entry:
        """Decode and check the shape; raises an InvalidEntry subclass."""
        ...

    def signature_ok(self, raw: bytes) -> bool:
        """Whether the signature of a well-formed entry verifies, from its bytes alone."""
        ...


class V1:
    """p2psocial's native format: deterministic CBOR, content signed by hash (entry.py)."""

    name = "p2psocial-v1"
    _HEAD = bytes([0x88, v1.FORMAT_VERSION, 0x58, 0x20])  # array(8), version, bytes(32)

    def claims(self, raw: bytes) -> bool:
        return raw[:2] == self._HEAD[:2]

    def peek_feed(self, raw: bytes) -> bytes | None:
        if len(raw) < 36 or raw[:4] != self._HEAD:
            return None
        return raw[4:36]

    def peek_seq(self, raw: bytes) -> int | None:
        if len(raw) < 37 or raw[:4] != self._HEAD:
            return None
        try:
            seq, _ = v1._fast_uint(raw, 36)
        except IndexError:
            return None
        return seq if seq >= 1 else None

    def decode(self, raw: bytes) -> Entry:
        return v1.decode_entry(raw)

    def signature_ok(self, raw: bytes) -> bool:
        return v1.raw_signature_ok(raw)


V1_FORMAT = V1()
FORMATS: tuple[FeedFormat, ...] = (V1_FORMAT,)
"""Every format this implementation reads, tried in order."""


def format_of(raw: bytes) -> FeedFormat:
    """The format that claims ``raw``; version 1 when none does (its decoder then says
    what is wrong, e.g. UnknownFormat)."""
    for fmt in FORMATS:
        if fmt.claims(raw):
            return fmt
    return V1_FORMAT


def peek_feed(raw: bytes) -> bytes | None:
    """The feed key of an entry without decoding it; None if no format recognises it."""
    return format_of(raw).peek_feed(raw)


_V1_PREFIX = V1._HEAD[:2]


def peek_seq(raw: bytes) -> int | None:
    """The sequence number of an entry without decoding it; None if none is found."""
    return format_of(raw).peek_seq(raw)


_V1_HEAD = V1._HEAD


def peek_feed_seq(raw: bytes) -> tuple[bytes | None, int | None]:
    """:func:`peek_feed` and :func:`peek_seq` in one look (the replication hot path)."""
    if raw[:4] == _V1_HEAD and len(raw) > 36:
        head = raw[36]
        if head < 0x18:  # most entries: a small seq in the head byte itself
            return raw[4:36], head or None
        return raw[4:36], V1_FORMAT.peek_seq(raw)
    fmt = format_of(raw)
    return fmt.peek_feed(raw), fmt.peek_seq(raw)


def decode_entry(raw: bytes) -> Entry:
    """Decode an entry of any known format. Raises an InvalidEntry subclass."""
    if raw[:2] == _V1_PREFIX:  # the hot path: no dispatch for the native format
        return v1.decode_entry(raw)
    return format_of(raw).decode(raw)


def raw_signature_ok(raw: bytes) -> bool:
    """Whether an entry's signature verifies, from its bytes (any known format)."""
    return format_of(raw).signature_ok(raw)
