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
    ContentTooLarge,
    EntryTooLarge,
    MalformedEntry,
    NonCanonical,
    UnknownFormat,
)
from p2psocial.feed.content import MAX_CONTENT_SIZE
from p2psocial.identity import HASH_SIZE, KEY_SIZE, SIGNATURE_SIZE, Keypair

FORMAT_VERSION = 1
MAX_ENTRY_SIZE = 512
"""Largest valid entry in bytes. A real one is 148 to 194 bytes; the rest is headroom."""

_ARRAY8 = 0x88
_SIG_TAIL = 2 + SIGNATURE_SIZE  # 0x58 0x40 + 64 signature bytes
_U64_MAX = 2**64 - 1


@dataclass(slots=True)  # not frozen: frozen __init__ costs ~2us on the ingest path
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
        return b"\x87" + self.raw[1:-_SIG_TAIL]


def _is_uint(value: object) -> bool:
    return type(value) is int and 0 <= value <= _U64_MAX


def _is_hash(value: object) -> bool:
    return type(value) is bytes and len(value) == HASH_SIZE


_HASH_HEAD = b"\x58\x20"
_SIG_HEAD = b"\x58\x40"


def _fast_uint(raw: bytes, pos: int) -> tuple[int, int]:
    """A canonically encoded CBOR unsigned integer at ``pos``: (value, next pos).

    Returns (-1, pos) for anything else; the caller then takes the slow path."""
    head = raw[pos]
    if head < 0x18:
        return head, pos + 1
    if head == 0x18:
        value = raw[pos + 1]
        return (value, pos + 2) if value >= 0x18 else (-1, pos)
    if head == 0x19:
        value = int.from_bytes(raw[pos + 1 : pos + 3], "big")
        return (value, pos + 3) if value > 0xFF else (-1, pos)
    if head == 0x1A:
        value = int.from_bytes(raw[pos + 1 : pos + 5], "big")
        return (value, pos + 5) if value > 0xFFFF else (-1, pos)
    if head == 0x1B:
        value = int.from_bytes(raw[pos + 1 : pos + 9], "big")
        return (value, pos + 9) if value > 0xFFFFFFFF else (-1, pos)
    return -1, pos


def _decode_fast(raw: bytes) -> Entry | None:
    """Parse a well-formed canonical version 1 entry without the CBOR library.

    Returns None for anything unusual: :func:`decode_entry`'s slow path then decides, and
    words the error. Accepts exactly the byte strings the slow path accepts."""
    try:
        if raw[0] != _ARRAY8 or raw[1] != FORMAT_VERSION or raw[2:4] != _HASH_HEAD:
            return None
        author = raw[4:36]
        seq, pos = _fast_uint(raw, 36)
        if seq < 1:
            return None
        if raw[pos] == 0xF6:
            previous = None
            pos += 1
        elif raw[pos : pos + 2] == _HASH_HEAD:
            previous = raw[pos + 2 : pos + 34]
            pos += 34
        else:
            return None
        if (seq == 1) != (previous is None):
            return None
        timestamp, pos = _fast_uint(raw, pos)
        if timestamp < 0 or raw[pos : pos + 2] != _HASH_HEAD:
            return None
        content_hash = raw[pos + 2 : pos + 34]
        content_size, pos = _fast_uint(raw, pos + 34)
        if content_size < 0 or raw[pos : pos + 2] != _SIG_HEAD or pos + 66 != len(raw):
            return None
    except IndexError:
        return None
    return Entry(
        raw=raw,
        id=hashlib.sha256(raw).digest(),
        author=author,
        seq=seq,
        previous=previous,
        timestamp=timestamp,
        content_hash=content_hash,
        content_size=content_size,
        signature=raw[pos + 2 :],
    )


def decode_entry(raw: bytes) -> Entry:
    """Decode and check the shape of an entry. Does not verify the signature.

    Raises EntryTooLarge, MalformedEntry, UnknownFormat, NonCanonical or ContentTooLarge
    (the entry announces content over the limit).
    """
    if type(raw) is not bytes:
        raw = bytes(raw)
    if len(raw) > MAX_ENTRY_SIZE:
        raise EntryTooLarge(f"entry is {len(raw)} bytes, more than the {MAX_ENTRY_SIZE} allowed")
    entry = _decode_fast(raw) or _decode_slow(raw)
    if entry.content_size > MAX_CONTENT_SIZE:
        raise ContentTooLarge(
            f"entry {entry.seq} announces {entry.content_size} bytes of content, "
            f"more than the {MAX_CONTENT_SIZE} allowed"
        )
    return entry


def _decode_slow(raw: bytes) -> Entry:
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


def raw_signature_ok(raw: bytes) -> bool:
    """Whether the signature of a well-formed entry verifies, from its bytes alone.

    Only meaningful for bytes :func:`decode_entry` accepts (there the author is at bytes
    4..36 and the signature is the last 64 bytes); for anything else it returns False or a
    meaningless True, so callers must also decode. Needs no decoding, so worker processes
    can run it on raw bytes while the caller decodes.
    """
    try:
        nacl.bindings.crypto_sign_open(raw[-64:] + b"\x87" + raw[1:-_SIG_TAIL], raw[4:36])
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, TypeError):
        return False
    return True


def signature_ok(entry: Entry) -> bool:
    """Whether the entry's signature verifies against its author."""
    return raw_signature_ok(entry.raw)


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
