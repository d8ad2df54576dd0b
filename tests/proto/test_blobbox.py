"""Private blobs (proto/blobbox.py): sealed with a key of their own, opened only by it,
refused when cut or altered."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2psocial.errors import PrivateBoxError
from p2psocial.proto.blobbox import KEY_SIZE, NONCE_SIZE, OVERHEAD, open_blob, seal_blob

KEY = bytes(range(32))
NONCE = bytes(range(100, 124))
PICTURE = b"\xff\xd8\xff\xe0" + b"not really a jpeg, " * 50


def test_overhead_is_nonce_and_mac() -> None:
    assert (KEY_SIZE, NONCE_SIZE, OVERHEAD) == (32, 24, 40)
    assert len(seal_blob(PICTURE, KEY, NONCE)) == len(PICTURE) + 40
    assert len(seal_blob(b"", KEY, NONCE)) == 40


@given(st.binary(max_size=2000), st.binary(min_size=32, max_size=32))
def test_round_trip(plaintext: bytes, key: bytes) -> None:
    sealed = seal_blob(plaintext, key, NONCE)
    assert open_blob(sealed, key) == plaintext


def test_the_ciphertext_hides_the_plaintext() -> None:
    sealed = seal_blob(PICTURE, KEY, NONCE)
    assert sealed[:NONCE_SIZE] == NONCE  # the nonce travels in front
    assert PICTURE not in sealed
    assert PICTURE[:16] not in sealed
    assert seal_blob(PICTURE, KEY, bytes(24)) != sealed  # another nonce, other bytes
    assert seal_blob(PICTURE, bytes(32), NONCE) != sealed  # another key, other bytes


def test_a_wrong_key_does_not_open_it() -> None:
    sealed = seal_blob(PICTURE, KEY, NONCE)
    with pytest.raises(PrivateBoxError, match="does not open"):
        open_blob(sealed, bytes(32))
    with pytest.raises(PrivateBoxError, match="32 bytes"):
        open_blob(sealed, KEY[:31])


@pytest.mark.parametrize("keep", [0, 1, 23, 24, 39, 40, len(PICTURE) + 39])
def test_a_truncated_blob_does_not_open(keep: int) -> None:
    sealed = seal_blob(PICTURE, KEY, NONCE)
    with pytest.raises(PrivateBoxError):
        open_blob(sealed[:keep], KEY)


@pytest.mark.parametrize(
    "where", [0, NONCE_SIZE - 1, NONCE_SIZE, OVERHEAD - 1, OVERHEAD, OVERHEAD + 100, -1]
)
def test_a_tampered_blob_does_not_open(where: int) -> None:
    sealed = bytearray(seal_blob(PICTURE, KEY, NONCE))
    sealed[where] ^= 0x01
    with pytest.raises(PrivateBoxError, match="does not open"):
        open_blob(bytes(sealed), KEY)


def test_appended_bytes_do_not_open() -> None:
    sealed = seal_blob(PICTURE, KEY, NONCE)
    with pytest.raises(PrivateBoxError):
        open_blob(sealed + b"\x00", KEY)


@pytest.mark.parametrize(
    ("key", "nonce"), [(KEY[:31], NONCE), (KEY, NONCE[:23]), (KEY + b"x", NONCE)]
)
def test_sealing_needs_a_full_key_and_nonce(key: bytes, nonce: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal_blob(PICTURE, key, nonce)
