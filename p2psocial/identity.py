"""Keypairs and the text ids people copy around.

Ids:

- feed id    ``@<base64 of the 32-byte Ed25519 public key>.ed25519``
- message id ``%<base64 of the 32-byte sha256 of the signed entry bytes>.sha256``
- blob id    ``&<base64 of the 32-byte sha256 of the blob>.sha256``

Base64 is the standard alphabet with padding (44 characters for 32 bytes), as in
Scuttlebutt. The parse functions accept nothing else and say what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import nacl.bindings

from p2psocial.errors import InvalidId

KEY_SIZE = 32
SECRET_KEY_SIZE = 64  # libsodium's Ed25519 secret key: seed || public key
SIGNATURE_SIZE = 64
HASH_SIZE = 32

_KINDS = {
    "@": ("feed id", ".ed25519"),
    "%": ("message id", ".sha256"),
    "&": ("blob id", ".sha256"),
}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def feed_id(public_key: bytes) -> str:
    """The feed id text of a 32-byte Ed25519 public key."""
    return "@" + _b64(public_key) + ".ed25519"


def message_id(digest: bytes) -> str:
    """The message id text of a 32-byte entry hash."""
    return "%" + _b64(digest) + ".sha256"


def blob_id(digest: bytes) -> str:
    """The blob id text of a 32-byte sha256 digest."""
    return "&" + _b64(digest) + ".sha256"


def _parse(text: object, sigil: str) -> bytes:
    kind, suffix = _KINDS[sigil]
    if not isinstance(text, str):
        raise InvalidId(f"{kind} must be text, got {type(text).__name__}")
    shown = text if len(text) <= 80 else text[:77] + "..."
    if not text:
        raise InvalidId(f"{kind} is empty")
    if text[0] != sigil:
        raise InvalidId(f"{kind} must start with {sigil!r}: {shown!r}")
    if not text.endswith(suffix):
        raise InvalidId(f"{kind} must end with {suffix!r}: {shown!r}")
    body = text[1 : -len(suffix)]
    if len(body) != 44:
        raise InvalidId(
            f"{kind} must hold 44 base64 characters between {sigil!r} and {suffix!r}, "
            f"got {len(body)}: {shown!r}"
        )
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidId(f"{kind} is not valid base64: {shown!r}") from None
    if len(raw) != KEY_SIZE:  # 44 characters without padding are 33 bytes
        raise InvalidId(f"{kind} must hold 32 bytes, got {len(raw)}: {shown!r}")
    if _b64(raw) != body:  # non-zero padding bits: not the canonical spelling
        raise InvalidId(f"{kind} is not canonical base64: {shown!r}")
    return raw


def parse_feed_id(text: object) -> bytes:
    """The 32-byte public key in a feed id. Raises InvalidId saying what is wrong."""
    return _parse(text, "@")


def parse_message_id(text: object) -> bytes:
    """The 32-byte hash in a message id. Raises InvalidId saying what is wrong."""
    return _parse(text, "%")


def parse_blob_id(text: object) -> bytes:
    """The 32-byte sha256 in a blob id. Raises InvalidId saying what is wrong."""
    return _parse(text, "&")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class Keypair:
    """An Ed25519 keypair in libsodium's layout (64-byte secret = seed || public)."""

    public: bytes
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.public) != KEY_SIZE or len(self.secret) != SECRET_KEY_SIZE:
            raise ValueError("an Ed25519 keypair needs a 32-byte public and 64-byte secret key")

    @classmethod
    def from_seed(cls, seed: bytes) -> Keypair:
        """The keypair derived from a 32-byte seed."""
        public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        return cls(public=public, secret=secret)

    @property
    def feed_id(self) -> str:
        return feed_id(self.public)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached Ed25519 signature of ``message``."""
        signed: bytes = nacl.bindings.crypto_sign(message, self.secret)
        return signed[:SIGNATURE_SIZE]

    def __repr__(self) -> str:  # never print the secret key
        return f"Keypair({self.feed_id})"
