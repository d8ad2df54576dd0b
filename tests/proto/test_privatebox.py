"""Tests of private-box multi-recipient encryption (p2psocial.proto.privatebox)."""

from __future__ import annotations

import hashlib

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.bindings import (
    crypto_scalarmult,
    crypto_scalarmult_base,
    crypto_secretbox,
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
)

from p2psocial.errors import (
    BadRecipients,
    ConfigError,
    InvalidId,
    LocalContentTooLarge,
    LocalProtocolError,
    PrivateBoxError,
    RemoteProtocolError,
    UnpublishableContent,
)
from p2psocial.feed.content import MAX_CONTENT_SIZE, decode_content, encode_content
from p2psocial.identity import Keypair
from p2psocial.proto.privatebox import (
    HEADER_SIZE,
    MAX_PLAINTEXT,
    MAX_RECIPIENTS,
    MIN_SIZE,
    SLOT_SIZE,
    decrypt,
    encrypt,
    max_plaintext,
    open_content,
    open_entry_content,
    open_plaintext,
    overhead,
    seal_content,
)

KEYS = [Keypair.from_seed(bytes([i]) * 32) for i in range(1, 10)]
"""Nine keypairs from the seeds 01 x 32 .. 09 x 32; KEYS[8] is never a recipient below."""
OUTSIDER = KEYS[8]

# The fixed vector of docs/protocol.md section 6.7: recipients from the Ed25519 seeds
# 01 x 32 and 02 x 32, nonce 03 x 24, ephemeral secret 04 x 32, body key 05 x 32, and the
# 22-byte content {"type": "post", "text": "hello"} of section 2.4 as plaintext.
VECTOR_NONCE = b"\x03" * 24
VECTOR_EPHEMERAL = b"\x04" * 32
VECTOR_BODY_KEY = b"\x05" * 32
VECTOR_PLAINTEXT = bytes.fromhex("a264746578746568656c6c6f647479706564706f7374")
VECTOR_CIPHERTEXT = bytes.fromhex(
    "030303030303030303030303030303030303030303030303"  # nonce
    "ac01b2209e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10b"  # ephemeral public
    "f97a31e82ca2901ad00dcaba7017d238cb656dee7ae08f12246a93b000a15fcc"  # slot 1 (seed 01)
    "8d4d9b787c3171ebafdde1a0df60359e3eaf0665dd8a929389"
    "c24bf4f60e42bbd6497ca4850bd41ce2c63d13f8b72206f6b676676e8b265370"  # slot 2 (seed 02)
    "d94f64886f222aec6dd1e089b4c0fe22a3"
    "57753d76884800e0045adf7cb127255b290adb5f4097276bbe2672e65173"  # body: mac || ciphertext
)


class DeterministicRng:
    """``rng_bytes`` for tests: sha256 in counter mode over a seed (reproducible)."""

    def __init__(self, seed: bytes = b"test") -> None:
        self.seed = seed
        self.counter = 0
        self.calls: list[int] = []

    def __call__(self, size: int) -> bytes:
        self.calls.append(size)
        out = b""
        while len(out) < size:
            self.counter += 1
            out += hashlib.sha256(self.seed + self.counter.to_bytes(8, "big")).digest()
        return out[:size]


def randomness(seed: bytes) -> dict[str, bytes]:
    rng = DeterministicRng(seed)
    return {"nonce": rng(24), "ephemeral_secret": rng(32), "body_key": rng(32)}


def box_for(plaintext: bytes, count: int, seed: bytes = b"r") -> bytes:
    return encrypt(plaintext, [k.public for k in KEYS[:count]], **randomness(seed))


# ---------------------------------------------------------------------------- fixed vector


def test_fixed_vector() -> None:
    ciphertext = encrypt(
        VECTOR_PLAINTEXT,
        [KEYS[0].public, KEYS[1].public],
        nonce=VECTOR_NONCE,
        ephemeral_secret=VECTOR_EPHEMERAL,
        body_key=VECTOR_BODY_KEY,
    )
    assert ciphertext.hex() == VECTOR_CIPHERTEXT.hex()
    assert decrypt(VECTOR_CIPHERTEXT, KEYS[0].secret) == VECTOR_PLAINTEXT
    assert decrypt(VECTOR_CIPHERTEXT, KEYS[1].secret) == VECTOR_PLAINTEXT
    assert decrypt(VECTOR_CIPHERTEXT, KEYS[2].secret) is None
    assert open_content(VECTOR_CIPHERTEXT, KEYS[1].secret) == {"type": "post", "text": "hello"}
    # As entry content: a CBOR byte string with a 2-byte head (58 c0: 192 bytes).
    assert encode_content(VECTOR_CIPHERTEXT)[:2] == bytes.fromhex("58c0")


def test_fixed_vector_layout_from_primitives() -> None:
    """Rebuild the vector piece by piece from libsodium calls, as docs/protocol.md says."""
    ephemeral_public = crypto_scalarmult_base(VECTOR_EPHEMERAL)
    parts = [VECTOR_NONCE, ephemeral_public]
    for keys in KEYS[:2]:
        slot_key = crypto_scalarmult(
            VECTOR_EPHEMERAL, crypto_sign_ed25519_pk_to_curve25519(keys.public)
        )
        # The reader's side computes the same key from its secret and the ephemeral key.
        reader_key = crypto_scalarmult(
            crypto_sign_ed25519_sk_to_curve25519(keys.secret), ephemeral_public
        )
        assert slot_key == reader_key
        parts.append(crypto_secretbox(b"\x02" + VECTOR_BODY_KEY, VECTOR_NONCE, slot_key))
    parts.append(crypto_secretbox(VECTOR_PLAINTEXT, VECTOR_NONCE, VECTOR_BODY_KEY))
    assert [len(p) for p in parts] == [24, 32, 49, 49, 16 + 22]
    assert b"".join(parts) == VECTOR_CIPHERTEXT
    assert ephemeral_public.hex() == (
        "ac01b2209e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10b"
    )


def test_limits() -> None:
    assert overhead(1) == 24 + 32 + 49 + 16
    assert overhead(7) == 72 + 49 * 7
    assert max_plaintext(1) == 8068
    assert max_plaintext(7) == MAX_PLAINTEXT == 7774
    assert MIN_SIZE == 121
    assert SLOT_SIZE == 49
    assert MAX_RECIPIENTS == 7


# ---------------------------------------------------------------------------- round trips


@settings(max_examples=60, deadline=None)
@given(
    plaintext=st.binary(max_size=2000),
    count=st.integers(min_value=1, max_value=MAX_RECIPIENTS),
    seed=st.binary(min_size=1, max_size=8),
)
def test_round_trip_every_recipient_opens(plaintext: bytes, count: int, seed: bytes) -> None:
    ciphertext = box_for(plaintext, count, seed)
    assert len(ciphertext) == overhead(count) + len(plaintext)
    for keys in KEYS[:count]:
        assert decrypt(ciphertext, keys.secret) == plaintext
    for keys in KEYS[count:]:
        assert decrypt(ciphertext, keys.secret) is None


def test_author_opens_own_message_when_listed() -> None:
    author, friend = KEYS[0], KEYS[1]
    content = {"type": "post", "text": "note to self and friend", "recps": []}
    content["recps"] = [author.feed_id, friend.feed_id]
    sealed = seal_content(content, [friend.public, author.public], rng_bytes=DeterministicRng())
    assert open_content(sealed, author.secret) == content
    assert open_content(sealed, friend.secret) == content
    assert open_content(sealed, OUTSIDER.secret) is None
    # The author is a reader only when listed.
    unlisted = seal_content(content, [friend.public], rng_bytes=DeterministicRng(b"2"))
    assert open_content(unlisted, author.secret) is None


def test_seal_content_draws_fresh_randomness_in_order() -> None:
    rng = DeterministicRng()
    seal_content({"type": "post", "text": "x"}, [KEYS[0].public], rng_bytes=rng)
    assert rng.calls == [24, 32, 32]
    a = seal_content({"type": "post"}, [KEYS[0].public], rng_bytes=DeterministicRng(b"a"))
    b = seal_content({"type": "post"}, [KEYS[0].public], rng_bytes=DeterministicRng(b"b"))
    assert a != b


def test_duplicate_recipients_are_kept_once() -> None:
    keys = [KEYS[0].public, KEYS[1].public, KEYS[0].public]
    ciphertext = encrypt(b"hi", keys, **randomness(b"d"))
    assert len(ciphertext) == overhead(2) + 2
    assert decrypt(ciphertext, KEYS[0].secret) == b"hi"
    assert decrypt(ciphertext, KEYS[1].secret) == b"hi"
    # Eight keys with one duplicate are seven recipients: allowed.
    eight = [k.public for k in KEYS[:7]] + [KEYS[3].public]
    assert len(encrypt(b"", eight, **randomness(b"e"))) == overhead(7)


# ---------------------------------------------------------------------------- misuse


@pytest.mark.parametrize("count", [0, 8])
def test_recipient_count_rejected(count: int) -> None:
    with pytest.raises(BadRecipients) as info:
        encrypt(b"hi", [k.public for k in KEYS[:count]], **randomness(b"c"))
    assert isinstance(info.value, ConfigError)
    with pytest.raises(BadRecipients):
        seal_content(
            {"type": "post"}, [k.public for k in KEYS[:count]], rng_bytes=DeterministicRng()
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nonce", b"\x00" * 23),
        ("ephemeral_secret", b"\x00" * 31),
        ("body_key", b"\x00" * 33),
        ("body_key", "not bytes"),
    ],
)
def test_bad_sizes_are_local_errors(field: str, value: object) -> None:
    args: dict[str, object] = dict(randomness(b"s"))
    args[field] = value
    with pytest.raises(LocalProtocolError):
        encrypt(b"hi", [KEYS[0].public], **args)  # type: ignore[arg-type]


def test_bad_recipient_and_secret_sizes_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        encrypt(b"hi", [KEYS[0].public[:31]], **randomness(b"s"))
    with pytest.raises(LocalProtocolError):
        encrypt(b"hi", KEYS[0].public, **randomness(b"s"))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        decrypt(VECTOR_CIPHERTEXT, KEYS[0].secret[:32])
    with pytest.raises(LocalProtocolError):
        seal_content({"type": "post"}, [KEYS[0].public], rng_bytes=lambda n: b"\x00" * (n - 1))


@pytest.mark.parametrize("key", [bytes(32), b"\x01" + bytes(31), b"\x02" * 32, b"\xff" * 32])
def test_recipient_not_on_the_curve_is_invalid_id(key: bytes) -> None:
    with pytest.raises(InvalidId):
        encrypt(b"hi", [KEYS[0].public, key], **randomness(b"p"))


def test_seal_content_rejects_invalid_content() -> None:
    with pytest.raises(UnpublishableContent):
        seal_content({"text": "no type"}, [KEYS[0].public], rng_bytes=DeterministicRng())
    with pytest.raises(LocalProtocolError):
        seal_content(b"bytes", [KEYS[0].public], rng_bytes=DeterministicRng())  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [1, 7])
def test_max_plaintext_fits_content_exactly(count: int) -> None:
    limit = max_plaintext(count)
    base = len(encode_content({"type": "post", "text": ""}))
    # "text" of length >= 256 has a 3-byte head instead of 1: two bytes more.
    text = "x" * (limit - base - 2)
    content = {"type": "post", "text": text}
    assert len(encode_content(content)) == limit
    recipients = [k.public for k in KEYS[:count]]
    sealed = seal_content(content, recipients, rng_bytes=DeterministicRng())
    encoded = encode_content(sealed)
    assert len(encoded) == MAX_CONTENT_SIZE
    assert decode_content(encoded) == sealed
    assert open_entry_content(encoded, KEYS[count - 1].secret) == encode_content(content)
    with pytest.raises(LocalContentTooLarge):
        seal_content({"type": "post", "text": text + "x"}, recipients, rng_bytes=DeterministicRng())


# ---------------------------------------------------------------------------- wrong keys


@settings(max_examples=50, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), count=st.integers(1, MAX_RECIPIENTS))
def test_random_keypair_is_not_a_recipient(seed: bytes, count: int) -> None:
    ciphertext = box_for(b"secret words", count)
    assert decrypt(ciphertext, Keypair.from_seed(seed).secret) is None
    assert open_content(VECTOR_CIPHERTEXT, Keypair.from_seed(seed).secret) is None


@settings(max_examples=50, deadline=None)
@given(secret=st.binary(min_size=64, max_size=64))
def test_random_64_byte_secret_is_not_a_recipient(secret: bytes) -> None:
    assert decrypt(box_for(b"secret words", 7), secret) is None


# ---------------------------------------------------------------------------- tampering

TAMPER_CIPHERTEXT = box_for(b"tamper with me", 3, b"t")
"""Recipients KEYS[0..2]; the reader below is KEYS[1], in slot 2."""
READER = KEYS[1]
REGIONS = {
    "nonce": (0, 24),
    "ephemeral": (24, 56),
    "slot 1": (56, 105),
    "slot 2 (ours)": (105, 154),
    "slot 3": (154, 203),
    "body": (203, len(TAMPER_CIPHERTEXT)),
}


def flipped(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.mark.parametrize("region", list(REGIONS))
def test_every_bit_flip_in_each_region(region: str) -> None:
    start, end = REGIONS[region]
    for bit in range(start * 8, end * 8):
        tampered = flipped(TAMPER_CIPHERTEXT, bit)
        result: bytes | str | None
        try:
            result = decrypt(tampered, READER.secret)
        except PrivateBoxError:
            result = "error"
        if region in ("slot 1", "slot 3"):
            expected: object = b"tamper with me"  # another reader's slot: ours still opens
        elif region == "body":
            expected = "error"  # our slot opens, the body fails its MAC
        elif region == "ephemeral" and bit == (24 + 31) * 8 + 7:
            # X25519 ignores the top bit of a public key: same shared secret, same message.
            expected = b"tamper with me"
        else:
            expected = None  # nonce, ephemeral key or our slot: nothing opens for us
        assert result == expected, (region, bit)


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, len(TAMPER_CIPHERTEXT)), extra=st.binary(max_size=64))
def test_truncated_or_extended(cut: int, extra: bytes) -> None:
    tampered = TAMPER_CIPHERTEXT[:cut] + extra
    try:
        result = decrypt(tampered, READER.secret)
    except PrivateBoxError:
        return
    assert result is None or tampered == TAMPER_CIPHERTEXT


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=1200))
def test_any_bytes_give_none_or_private_box_error(data: bytes) -> None:
    for keys in (READER, OUTSIDER):
        try:
            result = decrypt(data, keys.secret)
        except PrivateBoxError:
            continue
        assert result is None


@settings(max_examples=200, deadline=None)
@given(
    count_byte=st.integers(0, 255),
    index=st.integers(0, MAX_RECIPIENTS - 1),
    body=st.binary(max_size=300),
)
def test_forged_slot_that_opens_for_us(count_byte: int, index: int, body: bytes) -> None:
    """A sender who addresses us can put anything after our slot: we raise our error or
    return a plaintext, nothing else."""
    nonce, ephemeral = b"\x07" * 24, b"\x08" * 32
    slot_key = crypto_scalarmult(ephemeral, crypto_sign_ed25519_pk_to_curve25519(READER.public))
    filler = bytes(SLOT_SIZE) * index  # slots that open for nobody
    ours = crypto_secretbox(bytes([count_byte]) + b"\x09" * 32, nonce, slot_key)
    data = nonce + crypto_scalarmult_base(ephemeral) + filler + ours + body
    if len(data) < HEADER_SIZE + SLOT_SIZE * (index + 1) + 16:
        assert decrypt(data, READER.secret) is None  # our slot has no room for a body MAC
        return
    with pytest.raises(PrivateBoxError) as info:
        decrypt(data, READER.secret)  # the body never opens with key 09 x 32
    assert isinstance(info.value, RemoteProtocolError)


def test_forged_slot_with_a_valid_body_opens() -> None:
    nonce, ephemeral, body_key = b"\x07" * 24, b"\x08" * 32, b"\x09" * 32
    slot_key = crypto_scalarmult(ephemeral, crypto_sign_ed25519_pk_to_curve25519(READER.public))
    head = nonce + crypto_scalarmult_base(ephemeral)
    body = crypto_secretbox(b"ok", nonce, body_key)
    for count in (0, 1, 2, 8, 255):
        ours = crypto_secretbox(bytes([count]) + body_key, nonce, slot_key)
        data = head + bytes(SLOT_SIZE) + ours + bytes(SLOT_SIZE) * max(0, count - 2) + body
        if count == 2:
            assert decrypt(data, READER.secret) == b"ok"
        else:
            with pytest.raises(PrivateBoxError):  # 0, over 7, or our slot past the count
                decrypt(data, READER.secret)


# ---------------------------------------------------------------------------- content


@pytest.mark.parametrize(
    "plaintext",
    [
        b"not cbor \xff",
        cbor2.dumps(b"a byte string, not a map"),
        cbor2.dumps({"text": "no type"}),
        bytes.fromhex("a2647479706564706f737464746578746568656c6c6f"),  # keys out of order
        b"",
    ],
)
def test_plaintext_that_is_not_content_map_is_an_error(plaintext: bytes) -> None:
    ciphertext = box_for(plaintext, 2)
    with pytest.raises(PrivateBoxError):
        open_content(ciphertext, READER.secret)
    with pytest.raises(PrivateBoxError):
        open_plaintext(ciphertext, READER.secret)
    assert decrypt(ciphertext, READER.secret) == plaintext
    assert open_content(ciphertext, OUTSIDER.secret) is None


@settings(max_examples=150, deadline=None)
@given(plaintext=st.binary(max_size=300))
def test_open_plaintext_on_any_plaintext(plaintext: bytes) -> None:
    ciphertext = box_for(plaintext, 2)
    try:
        opened = open_plaintext(ciphertext, READER.secret)
    except PrivateBoxError:
        return
    assert opened == plaintext
    assert isinstance(decode_content(plaintext), dict)


def test_open_entry_content() -> None:
    sealed = seal_content(
        {"type": "post", "text": "psst", "recps": [READER.feed_id]},
        [READER.public],
        rng_bytes=DeterministicRng(),
    )
    encoded = encode_content(sealed)
    plaintext = open_entry_content(encoded, READER.secret)
    assert plaintext is not None
    assert decode_content(plaintext) == {"type": "post", "text": "psst", "recps": [READER.feed_id]}
    assert open_entry_content(encoded, OUTSIDER.secret) is None
    assert open_entry_content(encode_content({"type": "post"}), READER.secret) is None
    with pytest.raises(PrivateBoxError):
        open_entry_content(b"\xff garbage", READER.secret)


@pytest.mark.parametrize("ephemeral", [bytes(32), b"\x01" + bytes(31)])
def test_small_order_ephemeral_key_is_not_ours(ephemeral: bytes) -> None:
    """A zero or small-order ephemeral key gives an all-zero shared secret, which libsodium
    refuses: nobody is a recipient of such a message."""
    data = VECTOR_CIPHERTEXT[:24] + ephemeral + VECTOR_CIPHERTEXT[56:]
    assert decrypt(data, KEYS[0].secret) is None


def test_ciphertext_must_be_bytes() -> None:
    with pytest.raises(LocalProtocolError):
        decrypt(bytearray(VECTOR_CIPHERTEXT), KEYS[0].secret)  # type: ignore[arg-type]


def test_author_must_be_in_recps_when_checked() -> None:
    author, reader, copier = KEYS[0], KEYS[1], KEYS[2]
    content = {"type": "post", "text": "hi", "recps": [author.feed_id, reader.feed_id]}
    sealed = seal_content(content, [author.public, reader.public], rng_bytes=DeterministicRng())
    assert open_content(sealed, reader.secret, author=author.public) == content
    assert open_plaintext(sealed, reader.secret, author=author.public) == encode_content(content)
    assert open_entry_content(encode_content(sealed), reader.secret, author=author.public)
    # The same ciphertext republished in another feed: the reader can tell.
    with pytest.raises(PrivateBoxError):
        open_content(sealed, reader.secret, author=copier.public)
    with pytest.raises(PrivateBoxError):
        open_entry_content(encode_content(sealed), reader.secret, author=copier.public)
    # Without recps there is nothing to check against.
    bare = seal_content({"type": "post"}, [reader.public], rng_bytes=DeterministicRng())
    with pytest.raises(PrivateBoxError):
        open_content(bare, reader.secret, author=author.public)
    assert open_content(bare, reader.secret) == {"type": "post"}
    # Not for us: None, whatever the author.
    assert open_content(sealed, OUTSIDER.secret, author=copier.public) is None
