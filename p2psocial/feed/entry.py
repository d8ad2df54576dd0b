"""Feed format version 1: the signed entry.

Theory of operation
-------------------
An entry is the deterministic CBOR encoding (RFC 8949 section 4.2.1) of an array of eight
items::

    [version, author, seq, previous, timestamp, content_hash, content_size, signature]

``version`` is 1; ``author`` the 32-byte Ed25519 public key; ``seq`` 1, 2, ...;
``previous`` the 32-byte id of the entry before (CBOR null at seq 1); ``timestamp``
milliseconds since the Unix epoch as the author's clock said; ``content_hash`` the sha256 of
the content bytes and ``content_size`` their length; ``signature`` 64 bytes.

The signature covers the same array without its last item: that is, the entry bytes with
the leading array header ``0x88`` replaced by ``0x87`` and the final 66 bytes (``58 40``
and the signature) cut off. Since the encoding is deterministic this is a byte slice, not
a re-encoding. The message id is the sha256 of the whole entry bytes.

The content travels beside the entry and is not signed directly, only through its hash:
content can be dropped (deleted) while the chain still verifies.

Decoding checks the shape and canonical form; :func:`verify_signature` checks the
signature separately, so callers can verify many entries on worker threads (libsodium
releases the GIL). Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cbor2
import nacl.bindings
import nacl.exceptions

from p2psocial.errors import (
    BadSignature,
    ContentMismatch,
    EntryTooLarge,
    MalformedEntry,
    NonCanonical,
    UnknownFormat,
)
from p2psocial.identity import HASH_SIZE, KEY_SIZE, SIGNATURE_SIZE, Keypair

FORMAT_VERSION = 1
MAX_ENTRY_SIZE = 512
"""Largest valid entry in bytes. A real one is 186 to 196 bytes; the rest is headroom."""

_ARRAY8 = 0x88
_ARRAY7 = 0x87
_SIG_TAIL = 2 + SIGNATURE_SIZE  # 0x58 0x40 + 64 signature bytes
_U64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Entry:
    """A decoded entry. ``raw`` is kept exactly as received: it is what we store and forward."""

    raw: bytes
    id: bytes
    author: bytes
    seq: int
    previous: bytes | None
    timestamp: int
    content_hash: bytes
    content_size: int
    signature: bytes

    @property
    def signed_bytes(self) -> bytes:
        """The bytes the signature covers."""
        return bytes([_ARRAY7]) + self.raw[1:-_SIG_TAIL]


def _is_uint(value: object) -> bool:
    return type(value) is int and 0 <= value <= _U64_MAX


def _is_hash(value: object) -> bool:
    return type(value) is bytes and len(value) == HASH_SIZE


def decode_entry(raw: bytes) -> Entry:
    """Decode and check the shape of an entry. Does not verify the signature.

    Raises EntryTooLarge, MalformedEntry, UnknownFormat or NonCanonical.
    """
    if type(raw) is not bytes:
        raw = bytes(raw)
    if len(raw) > MAX_ENTRY_SIZE:
        raise EntryTooLarge(f"entry is {len(raw)} bytes, more than the {MAX_ENTRY_SIZE} allowed")
    try:
        item = cbor2.loads(raw)
    except Exception as exc:  # cbor2 raises several types on hostile bytes
        raise MalformedEntry(f"entry is not valid CBOR: {exc}") from None
    if type(item) is not list or not item:
        raise MalformedEntry("entry must be a CBOR array")
    version = item[0]
    if version != FORMAT_VERSION or type(version) is not int:
        raise UnknownFormat(f"unknown entry format version {version!r}")
    if len(item) != 8:
        raise MalformedEntry(f"a version 1 entry has 8 items, this one has {len(item)}")
    _, author, seq, previous, timestamp, content_hash, content_size, signature = item
    if type(author) is not bytes or len(author) != KEY_SIZE:
        raise MalformedEntry("entry author must be a 32-byte key")
    if not _is_uint(seq) or seq < 1:
        raise MalformedEntry(f"entry sequence must be an integer >= 1, got {seq!r}")
    if seq == 1:
        if previous is not None:
            raise MalformedEntry("the first entry of a feed must have no previous id")
    elif not _is_hash(previous):
        raise MalformedEntry("entry previous id must be a 32-byte hash")
    if not _is_uint(timestamp):
        raise MalformedEntry("entry timestamp must be a non-negative integer")
    if not _is_hash(content_hash):
        raise MalformedEntry("entry content hash must be 32 bytes")
    if not _is_uint(content_size):
        raise MalformedEntry("entry content size must be a non-negative integer")
    if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
        raise MalformedEntry("entry signature must be 64 bytes")
    if cbor2.dumps(item, canonical=True) != raw:
        raise NonCanonical("entry is not in deterministic CBOR encoding")
    return Entry(
        raw=raw,
        id=hashlib.sha256(raw).digest(),
        author=author,
        seq=seq,
        previous=previous,
        timestamp=timestamp,
        content_hash=content_hash,
        content_size=content_size,
        signature=signature,
    )


def signature_ok(entry: Entry) -> bool:
    """Whether the signature verifies. Safe to call from worker threads."""
    try:
        nacl.bindings.crypto_sign_open(entry.signature + entry.signed_bytes, entry.author)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


def verify_signature(entry: Entry) -> None:
    """Raise BadSignature unless the entry's signature verifies against its author."""
    if not signature_ok(entry):
        raise BadSignature(f"bad signature on entry {entry.seq} of its feed")


def check_content(entry: Entry, content: bytes) -> None:
    """Raise ContentMismatch unless ``content`` is the content the entry signs."""
    if len(content) != entry.content_size:
        raise ContentMismatch(
            f"content is {len(content)} bytes, the entry says {entry.content_size}"
        )
    if hashlib.sha256(content).digest() != entry.content_hash:
        raise ContentMismatch("content hash does not match the entry")


def create_entry(
    keys: Keypair, seq: int, previous: bytes | None, timestamp: int, content: bytes
) -> Entry:
    """Sign a new entry over ``content`` (already encoded). The caller picks seq/previous."""
    unsigned = [
        FORMAT_VERSION,
        keys.public,
        seq,
        previous,
        timestamp,
        hashlib.sha256(content).digest(),
        len(content),
    ]
    signed = cbor2.dumps(unsigned, canonical=True)
    raw = cbor2.dumps([*unsigned, keys.sign(signed)], canonical=True)
    return decode_entry(raw)
