"""Private blobs: a blob's bytes sealed with a key of its own before they are hashed.

An attachment of a private message is stored and exchanged as ciphertext: ``nonce (24
bytes) || secretbox(plaintext, nonce, key)`` (XSalsa20-Poly1305, libsodium's
``crypto_secretbox_easy``), with a fresh random 32-byte key and nonce for each blob. The
blob id hashes that ciphertext, so the peers and pubs that carry it (and check it by its
hash like any blob) hold only ciphertext; the key travels inside the private message's
attachment entry (``"key"``), encrypted to its readers. docs/protocol.md section 10.5.

Sans-IO: the key and nonce are passed in.
"""

from __future__ import annotations

from nacl.bindings import crypto_secretbox as _seal
from nacl.bindings import (
    crypto_secretbox_KEYBYTES,
    crypto_secretbox_MACBYTES,
    crypto_secretbox_NONCEBYTES,
    crypto_secretbox_open,
)
from nacl.exceptions import CryptoError

from p2psocial.errors import PrivateBoxError

KEY_SIZE = crypto_secretbox_KEYBYTES
NONCE_SIZE = crypto_secretbox_NONCEBYTES
OVERHEAD = NONCE_SIZE + crypto_secretbox_MACBYTES
"""Bytes a sealed blob has beyond its plaintext (40)."""


def seal_blob(plaintext: bytes, key: bytes, nonce: bytes) -> bytes:
    """The ciphertext stored as the private blob."""
    if len(key) != KEY_SIZE or len(nonce) != NONCE_SIZE:
        raise ValueError("a blob key is 32 bytes and its nonce 24")
    return nonce + _seal(plaintext, nonce, key)


def open_blob(ciphertext: bytes, key: bytes) -> bytes:
    """The plaintext of a private blob. Raises PrivateBoxError when the key does not open
    it (a wrong key, or bytes that are not a sealed blob)."""
    if len(key) != KEY_SIZE:
        raise PrivateBoxError("a blob key must be 32 bytes")
    if len(ciphertext) < OVERHEAD:
        raise PrivateBoxError(f"a sealed blob has at least {OVERHEAD} bytes")
    try:
        return crypto_secretbox_open(ciphertext[NONCE_SIZE:], ciphertext[:NONCE_SIZE], key)
    except CryptoError:
        raise PrivateBoxError("the blob does not open with this key") from None
