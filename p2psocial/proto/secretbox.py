"""XSalsa20-Poly1305 (libsodium's secretbox) with little per-call overhead.

Box-stream makes two secretbox calls per 4 KiB packet, so the cost of the call itself
matters. PyNaCl's public ``crypto_secretbox``/``crypto_secretbox_open`` use libsodium's
zero-padded API: each call builds a padded copy of its input, allocates, checks, and slices
the padding off again. Here we call the ``_easy`` functions (output ``mac || ciphertext``,
the layout box-stream uses) through the cffi handle PyNaCl itself is built on, with buffers
reused per instance. If that handle lacks them (another PyNaCl build), the public bindings
are used: same bytes, only slower.

Not thread-safe: one :class:`SecretBox` per encoder or decoder.
"""

from __future__ import annotations

from typing import Any

from nacl.bindings import crypto_secretbox, crypto_secretbox_open
from nacl.exceptions import CryptoError

MAC_SIZE = 16

try:  # PyNaCl's own cffi module; fall back to the public API if it changes.
    from nacl._sodium import ffi as _ffi
    from nacl._sodium import lib as _lib

    FAST = hasattr(_lib, "crypto_secretbox_easy") and hasattr(_lib, "crypto_secretbox_open_easy")
except ImportError:  # pragma: no cover - depends on the PyNaCl build
    FAST = False


class SecretBox:
    """Seal and open with one key. ``seal`` returns ``mac || ciphertext``; ``open`` takes
    the same layout and returns the plaintext, or None if the MAC does not check."""

    def __init__(self, key: bytes, capacity: int = 4096 + MAC_SIZE, fast: bool = FAST) -> None:
        self.key = key
        self._fast = fast
        self._capacity = capacity
        self._buf: Any = _ffi.new("unsigned char[]", capacity) if fast else None

    def _buffer(self, size: int) -> Any:
        if size > self._capacity:
            self._capacity = size
            self._buf = _ffi.new("unsigned char[]", size)
        return self._buf

    def seal(self, plaintext: bytes, nonce: bytes) -> bytes:
        if not self._fast:
            return bytes(crypto_secretbox(plaintext, nonce, self.key))
        size = len(plaintext) + MAC_SIZE
        out = self._buf if size <= self._capacity else self._buffer(size)
        _lib.crypto_secretbox_easy(out, plaintext, size - MAC_SIZE, nonce, self.key)
        return bytes(_ffi.buffer(out, size)[:])

    def open(self, boxed: bytes, nonce: bytes) -> bytes | None:
        if not self._fast:
            try:
                return bytes(crypto_secretbox_open(boxed, nonce, self.key))
            except CryptoError:
                return None
        size = len(boxed) - MAC_SIZE
        if size < 0:
            return None
        out = self._buf if size <= self._capacity else self._buffer(size)
        if _lib.crypto_secretbox_open_easy(out, boxed, size + MAC_SIZE, nonce, self.key) != 0:
            return None
        return bytes(_ffi.buffer(out, size)[:])
