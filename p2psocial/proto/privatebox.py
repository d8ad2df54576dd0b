"""Private messages: Scuttlebutt's private-box, multi-recipient encryption (sans-IO).

Theory of operation
-------------------

A private message is encrypted once, for up to :data:`MAX_RECIPIENTS` (7) readers, and
published as the content of an ordinary signed feed entry. Everybody replicates the
ciphertext; only the recipients can open it. The byte layout is Scuttlebutt's private-box,
as its JavaScript code writes it::

    nonce (24) || ephemeral_pub (32) || slot_1 (49) || ... || slot_n (49) || body (16 + L)

    slot_i = secretbox(u8(n) || body_key (32), nonce, slot_key_i)     # 16 + 33 = 49 bytes
    body   = secretbox(plaintext (L), nonce, body_key)                # 16 + L bytes

    slot_key_i = X25519(ephemeral_secret, ed25519_pk_to_curve25519(recipient_i))

``secretbox`` is libsodium's ``crypto_secretbox_easy`` (XSalsa20-Poly1305), output
``mac (16) || ciphertext``. ``X25519`` is ``crypto_scalarmult``, whose raw 32-byte output
is the secretbox key (no hashing, as in private-box). ``ephemeral_pub`` is
``crypto_scalarmult_base(ephemeral_secret)``. The one nonce serves every slot and the body:
each is sealed under a different key. ``n`` is the number of slots, 1 to 7.

A reader converts its Ed25519 secret key (``crypto_sign_ed25519_sk_to_curve25519``) and
computes ``X25519(my_curve_secret, ephemeral_pub)`` once: that is the slot key of its slot,
if it has one. It then tries to open slot 1, 2, ... (at most 7, and only slots that leave
room for a 16-byte body MAC after them), and stops at the first that opens. The count byte
``n`` in that slot says where the body starts (``56 + 49 n``); ``body_key`` opens it. If no
slot opens, the message is not for this reader (:func:`decrypt` returns None): a
non-recipient pays one scalar multiplication and at most 7 secretbox opens of 49 bytes.

Failures are split on purpose. Bytes that do not open with our key are simply "not ours"
(None), because no reader can tell a message for someone else from random bytes. Once a slot
has opened, the sender has addressed us, so anything wrong after that (count byte 0 or above
7, our slot lying past the count, a body too short or failing its MAC, a plaintext that is
not valid content) raises :class:`~p2psocial.errors.PrivateBoxError`. :func:`decrypt` and
the ``open_*`` helpers raise nothing else on any input bytes.

What it does not do
-------------------

Private-box encrypts; it does not authenticate the sender. Authorship comes from the signed
feed entry that carries the ciphertext, and anyone who sees a ciphertext can republish the
same bytes in their own feed. Pass ``author=`` to the ``open_*`` helpers to require that the
carrying entry's author is listed in the content's ``recps`` (the convention: ``recps``
names every reader, the author included). The ciphertext is also malleable without changing
what it opens to: X25519 ignores the top bit of ``ephemeral_pub``, so flipping it gives a
second ciphertext with the same plaintext. Never deduplicate by ciphertext bytes.

Limits
------

Private content is the ciphertext as a CBOR byte string, at most ``MAX_CONTENT_SIZE`` (8192)
bytes encoded. A ciphertext of 256 to 65535 bytes has a 3-byte CBOR head (``59 hh ll``), so
the ciphertext may be at most 8189 bytes, and with ``n`` recipients the plaintext at most
``8189 - 72 - 49 n = 8117 - 49 n`` bytes (:func:`max_plaintext`): 8068 for one recipient,
7774 (:data:`MAX_PLAINTEXT`) for seven.

Recipients are 32-byte Ed25519 public keys (feed ids' bytes). A key listed twice is kept once
(first occurrence order): it would only repeat an identical slot. The count is checked after
that, so 8 keys with a duplicate are fine, 8 distinct keys are :class:`BadRecipients`.

Randomness is passed in (``nonce``, ``ephemeral_secret``, ``body_key``, or an ``rng_bytes``
callable for :func:`seal_content`); nothing here reads a random generator or a clock. A nonce
reused with the same body key or ephemeral secret breaks confidentiality, and a reused
ephemeral key links messages: draw all three fresh from a CSPRNG for every message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nacl.bindings import (
    crypto_scalarmult,
    crypto_scalarmult_base,
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
)
from nacl.exceptions import CryptoError

from p2psocial.errors import (
    BadRecipients,
    InvalidEntry,
    InvalidId,
    LocalContentTooLarge,
    LocalProtocolError,
    PrivateBoxError,
)
from p2psocial.feed.content import MAX_CONTENT_SIZE, decode_content, encode_content
from p2psocial.identity import feed_id
from p2psocial.proto.secretbox import MAC_SIZE, SecretBox

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

NONCE_SIZE = 24
KEY_SIZE = 32
"""Ed25519 public keys, X25519 keys and secretbox keys are all 32 bytes."""
ED25519_SECRET_SIZE = 64
HEADER_SIZE = NONCE_SIZE + KEY_SIZE  # 56
SLOT_SIZE = MAC_SIZE + 1 + KEY_SIZE  # 49
MAX_RECIPIENTS = 7
MIN_SIZE = HEADER_SIZE + SLOT_SIZE + MAC_SIZE  # 121: one slot and an empty body
_CBOR_HEAD = 3  # CBOR byte string head for lengths 256..65535: 59 hh ll
MAX_PLAINTEXT = MAX_CONTENT_SIZE - _CBOR_HEAD - HEADER_SIZE - MAC_SIZE - SLOT_SIZE * MAX_RECIPIENTS
"""The largest plaintext that fits in content for any recipient count (7774 bytes)."""


def overhead(recipients: int) -> int:
    """Ciphertext bytes beyond the plaintext for ``recipients`` slots: ``72 + 49 n``."""
    return HEADER_SIZE + SLOT_SIZE * recipients + MAC_SIZE


def max_plaintext(recipients: int) -> int:
    """The largest plaintext for ``recipients`` slots whose ciphertext, CBOR-encoded as
    content, stays within ``MAX_CONTENT_SIZE``: ``8117 - 49 n`` bytes."""
    return MAX_CONTENT_SIZE - _CBOR_HEAD - overhead(recipients)


def _check_size(name: str, value: object, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        shown = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise LocalProtocolError(f"{name} must be {size} bytes, got {shown}")


def _unique(recipients: Sequence[bytes]) -> list[bytes]:
    """Recipients with duplicates dropped (first occurrence kept), sizes and count checked."""
    if isinstance(recipients, bytes | str):
        raise LocalProtocolError("recipients must be a sequence of 32-byte public keys")
    unique: list[bytes] = []
    for key in recipients:
        _check_size("a recipient public key", key, KEY_SIZE)
        if key not in unique:
            unique.append(key)
    if not 1 <= len(unique) <= MAX_RECIPIENTS:
        raise BadRecipients(
            f"a private message needs 1 to {MAX_RECIPIENTS} distinct recipients, got {len(unique)}"
        )
    return unique


def _curve_public(ed25519_public: bytes) -> bytes:
    try:
        curve: bytes = crypto_sign_ed25519_pk_to_curve25519(ed25519_public)
    except CryptoError:  # not a point on the curve, or of small order
        raise InvalidId(
            f"recipient key {ed25519_public.hex()} is not a valid Ed25519 public key"
        ) from None
    return curve


def encrypt(
    plaintext: bytes,
    recipients: Sequence[bytes],
    *,
    nonce: bytes,
    ephemeral_secret: bytes,
    body_key: bytes,
) -> bytes:
    """Encrypt ``plaintext`` for 1 to 7 ``recipients`` (32-byte Ed25519 public keys).

    ``nonce`` (24 bytes), ``ephemeral_secret`` and ``body_key`` (32 bytes each) must be fresh
    random bytes for every message. Duplicate recipients are kept once. The plaintext length
    is not limited here; :func:`seal_content` keeps it within content's size.

    Raises BadRecipients for no recipients or more than 7 distinct ones, LocalProtocolError
    for a value of the wrong type or size, InvalidId for a recipient key that is not a valid
    Ed25519 point.
    """
    if not isinstance(plaintext, bytes):
        raise LocalProtocolError(f"plaintext must be bytes, got {type(plaintext).__name__}")
    _check_size("nonce", nonce, NONCE_SIZE)
    _check_size("ephemeral secret", ephemeral_secret, KEY_SIZE)
    _check_size("body key", body_key, KEY_SIZE)
    unique = _unique(recipients)
    curves = [_curve_public(key) for key in unique]
    ephemeral_public: bytes = crypto_scalarmult_base(ephemeral_secret)
    slot_plain = bytes([len(unique)]) + body_key
    parts = [nonce, ephemeral_public]
    for key, curve in zip(unique, curves, strict=True):
        try:
            slot_key: bytes = crypto_scalarmult(ephemeral_secret, curve)
        except CryptoError:  # all-zero shared secret: cannot happen after the check above
            raise InvalidId(f"recipient key {key.hex()} is not a usable public key") from None
        parts.append(SecretBox(slot_key, capacity=SLOT_SIZE).seal(slot_plain, nonce))
    parts.append(SecretBox(body_key, capacity=len(plaintext) + MAC_SIZE).seal(plaintext, nonce))
    return b"".join(parts)


def _open_key(ciphertext: bytes, curve_secret: bytes) -> tuple[int, bytes] | None:
    """(slot count, body key) from the first slot that opens, or None if none does.

    Raises PrivateBoxError if a slot opens but its count is impossible."""
    if len(ciphertext) < MIN_SIZE:
        return None
    nonce = ciphertext[:NONCE_SIZE]
    try:
        slot_key: bytes = crypto_scalarmult(curve_secret, ciphertext[NONCE_SIZE:HEADER_SIZE])
    except CryptoError:  # a small-order ephemeral key gives an all-zero secret: not ours
        return None
    box = SecretBox(slot_key, capacity=SLOT_SIZE)
    slots = min(MAX_RECIPIENTS, (len(ciphertext) - HEADER_SIZE - MAC_SIZE) // SLOT_SIZE)
    for index in range(slots):
        start = HEADER_SIZE + SLOT_SIZE * index
        opened = box.open(ciphertext[start : start + SLOT_SIZE], nonce)
        if opened is None:
            continue
        count = opened[0]
        if not index < count <= MAX_RECIPIENTS:
            raise PrivateBoxError(
                f"private message: our slot {index + 1} says {count} slots "
                f"(must be 1 to {MAX_RECIPIENTS} and include ours)"
            )
        return count, opened[1:]
    return None


def _decrypt_curve(ciphertext: bytes, curve_secret: bytes) -> bytes | None:
    """:func:`decrypt` with an X25519 secret key (what the Ed25519 key converts to)."""
    found = _open_key(ciphertext, curve_secret)
    if found is None:
        return None
    count, body_key = found
    start = HEADER_SIZE + SLOT_SIZE * count
    body = ciphertext[start:]
    if len(body) < MAC_SIZE:
        raise PrivateBoxError(
            f"private message: {count} slots leave no room for the body "
            f"({len(ciphertext)} bytes in all)"
        )
    plaintext = SecretBox(body_key, capacity=len(body)).open(body, ciphertext[:NONCE_SIZE])
    if plaintext is None:
        raise PrivateBoxError("private message: our slot opens but the body fails its MAC")
    return plaintext


def decrypt(ciphertext: bytes, ed25519_secret_key: bytes) -> bytes | None:
    """The plaintext of ``ciphertext`` if it is addressed to ``ed25519_secret_key`` (the
    64-byte libsodium secret key, seed || public), None if it is not for us.

    Any bytes may be passed: those that do not open with our key (too short, someone
    else's, random) give None. Raises PrivateBoxError if a slot opens with our key but the
    rest is malformed or tampered, LocalProtocolError for a secret key of the wrong size or
    a ciphertext that is not bytes.
    """
    if not isinstance(ciphertext, bytes):
        raise LocalProtocolError(f"ciphertext must be bytes, got {type(ciphertext).__name__}")
    _check_size("secret key", ed25519_secret_key, ED25519_SECRET_SIZE)
    curve_secret: bytes = crypto_sign_ed25519_sk_to_curve25519(ed25519_secret_key)
    return _decrypt_curve(ciphertext, curve_secret)


# ---------------------------------------------------------------------------- content


def seal_content(
    content: dict[str, Any],
    recipients: Sequence[bytes],
    *,
    rng_bytes: Callable[[int], bytes],
) -> bytes:
    """Encrypt a content map for ``recipients``: the result is the private content to
    publish (pass it to ``encode_content``, which makes it a CBOR byte string).

    The map is encoded as canonical content first, so it must be valid public-shaped
    content (a map with a text ``type``); by convention it lists its readers' feed ids in
    ``recps``. ``rng_bytes(n)`` must return ``n`` fresh random bytes (e.g. ``os.urandom``);
    it is called for the nonce (24), the ephemeral secret (32) and the body key (32).

    Raises UnpublishableContent for a map that is not valid content, LocalContentTooLarge if the
    encrypted content would exceed ``MAX_CONTENT_SIZE``, and what :func:`encrypt` raises.
    """
    if not isinstance(content, dict):
        raise LocalProtocolError(
            f"private content must be a content map, got {type(content).__name__}"
        )
    plaintext = encode_content(content)
    unique = _unique(recipients)
    limit = max_plaintext(len(unique))
    if len(plaintext) > limit:
        raise LocalContentTooLarge(
            f"private content is {len(plaintext)} bytes encoded; with {len(unique)} "
            f"recipient(s) at most {limit} fit"
        )
    return encrypt(
        plaintext,
        unique,
        nonce=rng_bytes(NONCE_SIZE),
        ephemeral_secret=rng_bytes(KEY_SIZE),
        body_key=rng_bytes(KEY_SIZE),
    )


def open_checked(
    ciphertext: bytes, ed25519_secret_key: bytes, author: bytes | None
) -> tuple[bytes, dict[str, Any]] | None:
    """(plaintext bytes, decoded content map), None if not for us; errors as
    :func:`open_plaintext`."""
    plaintext = decrypt(ciphertext, ed25519_secret_key)
    if plaintext is None:
        return None
    try:
        value = decode_content(plaintext)
    except InvalidEntry as exc:  # InvalidContent, NonCanonical, ContentTooLarge
        raise PrivateBoxError(
            f"private message: the plaintext is not valid content: {exc}"
        ) from None
    if not isinstance(value, dict):
        raise PrivateBoxError("private message: the plaintext is not a content map")
    if author is not None:
        recps = value.get("recps")
        if not isinstance(recps, list) or feed_id(author) not in recps:
            raise PrivateBoxError(
                f"private message: its author {feed_id(author)} is not listed in 'recps' "
                "(a copy of someone else's ciphertext?)"
            )
    return plaintext, value


def open_plaintext(
    ciphertext: bytes, ed25519_secret_key: bytes, *, author: bytes | None = None
) -> bytes | None:
    """The decrypted content bytes (canonical CBOR of a content map), None if not for us.

    If ``author`` (the 32-byte public key of the entry that carries the ciphertext) is
    given, the content's ``recps`` must list that author's feed id. Private-box does not
    authenticate the sender: anyone can republish a ciphertext in their own feed, and this
    check stops recipients from taking such a copy as the copier's message.

    Raises PrivateBoxError if a slot opens with our key but the message is malformed,
    tampered, holds anything but valid canonical content map bytes, or fails the ``author``
    check; LocalProtocolError as :func:`decrypt`.
    """
    opened = open_checked(ciphertext, ed25519_secret_key, author)
    return None if opened is None else opened[0]


def open_content(
    ciphertext: bytes, ed25519_secret_key: bytes, *, author: bytes | None = None
) -> dict[str, Any] | None:
    """The decrypted content map, None if the message is not for us.

    ``author`` and errors as :func:`open_plaintext`.
    """
    opened = open_checked(ciphertext, ed25519_secret_key, author)
    return None if opened is None else opened[1]


def open_entry_content(
    content: bytes, ed25519_secret_key: bytes, *, author: bytes | None = None
) -> bytes | None:
    """:func:`open_plaintext` for an entry's encoded content bytes (the CBOR byte string as
    stored and replicated), for callers that hold only the bytes.

    Returns None for public content and for private content not addressed to us. Raises
    PrivateBoxError for content bytes that are not valid content, or as
    :func:`open_plaintext`.
    """
    try:
        value = decode_content(content)
    except InvalidEntry as exc:
        raise PrivateBoxError(f"entry content is not valid content: {exc}") from None
    if not isinstance(value, bytes):
        return None
    return open_plaintext(value, ed25519_secret_key, author=author)
