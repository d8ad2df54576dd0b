"""The whole exception tree of p2psocial.

Every error the package raises on purpose derives from :class:`P2PSocialError`, so the CLI,
the daemon and apps can catch one type. Each class's docstring says when it is raised.

::

    P2PSocialError
    ├── ProtocolError                 (abstract)
    │   ├── LocalProtocolError        we misused an API or a state machine
    │   └── RemoteProtocolError       the other side sent bytes that break the protocol
    │       ├── HandshakeFailed       secret handshake failed (step says which)
    │       ├── BoxStreamError        box-stream decryption / framing failed
    │       │   └── StreamCut         the stream ended without a goodbye
    │       ├── FramingError          packet-stream frame malformed or too large
    │       ├── CodecError            an RPC body could not be decoded
    │       ├── PrivateBoxError       a private message addressed to us does not open
    │       ├── BadBlob               a peer's blob bytes or wants break the blob rules
    │       └── InvalidEntry          a feed entry breaks a validation rule
    │           ├── BadSignature, AuthorMismatch, SequenceError, PreviousMismatch,
    │           ├── ContentMismatch, EntryTooLarge, ContentTooLarge, UnknownFormat,
    │           ├── NonCanonical, MalformedEntry, InvalidContent
    │           └── FeedForked        a second entry at a held sequence: fork proof
    ├── InvalidId                     a feed, message or blob id is malformed
    ├── IdentityError                 the key file is missing, damaged or unsafe
    │   └── StoreOwnerMismatch        the store belongs to another identity
    ├── UnpublishableContent          content we were asked to publish breaks a rule
    │   ├── LocalContentTooLarge      ... by being over the size limit
    │   └── BlobRefused               a file we were asked to add as a blob is refused
    ├── ConfigError                   a setting or command-line value is unusable
    │   ├── BadRecipients             a private message needs 1 to 7 recipients
    │   ├── InvalidInvite             an invite code is malformed
    │   └── DaemonAlreadyRunning      another daemon holds this home
    ├── PeerDisconnected              the connection was closed or broken
    ├── InviteFailed                  redeeming an invite failed (unreachable, broken)
    ├── InviteRefused                 the pub said no (unknown, used up, expired)
    ├── StorageError                  the database cannot be used
    │   └── DatabaseCorrupt           the database file is damaged or not ours
    ├── NotFound                      a requested feed or message is not stored
    │   └── BlobMissing               a blob is not held (and could not be fetched)
    ├── MixedBlobSources              a resumed download does not hash right: start over
    ├── DaemonNotRunning              a command needs the daemon and it is not running
    └── RpcError(code, message, data) an error answer from a JSON-RPC or peer RPC call
        ├── InvalidParams             a call's parameter is missing or wrong (-32602)
        └── Overloaded                a server limit is reached (-32004, names the limit)

``RemoteProtocolError`` also has ``LineTooLong`` (a JSON-RPC line over the limit).
"""

from __future__ import annotations

from typing import Any


class P2PSocialError(Exception):
    """Root of every error p2psocial raises on purpose."""


# ---------------------------------------------------------------------------- protocol


class ProtocolError(P2PSocialError):
    """A protocol rule was broken. Abstract: raise a subclass."""


class LocalProtocolError(ProtocolError):
    """We misused an API or a state machine (a bug on our side, never the peer's)."""


class RemoteProtocolError(ProtocolError):
    """The other side sent bytes that break the protocol. The connection is unusable."""


class HandshakeFailed(RemoteProtocolError):
    """The secret handshake failed. ``step`` names the check that failed.

    Steps: ``"client hello"`` (msg1 hmac: wrong network key), ``"server hello"`` (msg2 hmac:
    wrong network key), ``"client auth"`` (msg3 does not open or its signature is bad),
    ``"server accept"`` (msg4 does not open or its signature is bad), ``"refused"`` (the
    server learnt the client's key and does not want it), ``"timeout"``, ``"eof"``.
    """

    def __init__(self, step: str, detail: str = "") -> None:
        self.step = step
        self.detail = detail
        super().__init__(f"handshake failed at {step}" + (f": {detail}" if detail else ""))


class BoxStreamError(RemoteProtocolError):
    """A box-stream packet did not authenticate, was too long, or came out of order.

    A flipped bit, a replayed or a reordered packet all fail the MAC check, because every
    packet is bound to its nonce; they are reported with this type.
    """


class StreamCut(BoxStreamError):
    """The box-stream ended without a goodbye: the connection was cut, not closed."""


class FramingError(RemoteProtocolError):
    """A packet-stream frame is malformed, too large, or breaks the stream rules."""


class CodecError(RemoteProtocolError):
    """An RPC body could not be decoded with the connection's body codec."""


class PrivateBoxError(RemoteProtocolError):
    """A private message has a recipient slot that opens with our key, but the rest is
    malformed: a bad recipient count, a body too short or failing its MAC (tampered), or a
    plaintext that is not valid content. A message not addressed to us is not an error."""


class BadBlob(RemoteProtocolError):
    """A peer broke the blob exchange: bytes that do not hash to the blob id asked for,
    more bytes than the blob's size or the cap, or more wants than a peer may hold open."""


# ---------------------------------------------------------------------------- feed entries


class InvalidEntry(RemoteProtocolError):
    """A feed entry breaks a validation rule. Subclasses name the rule."""


class MalformedEntry(InvalidEntry):
    """The entry bytes are not a well-formed entry (bad CBOR, wrong shape or field type)."""


class NonCanonical(InvalidEntry):
    """The entry or content bytes are not in deterministic CBOR (they would not round-trip)."""


class UnknownFormat(InvalidEntry):
    """The entry names a format version this implementation does not know."""


class EntryTooLarge(InvalidEntry):
    """The signed entry is larger than the format allows."""


class ContentTooLarge(InvalidEntry):
    """The content is larger than the format allows (8 KiB encoded)."""


class InvalidContent(InvalidEntry):
    """The content is neither a CBOR map with a text ``type`` nor an encrypted byte string."""


class BadSignature(InvalidEntry):
    """The entry's Ed25519 signature does not verify against its author."""


class AuthorMismatch(InvalidEntry):
    """The entry's author is not the feed it was offered for."""


class SequenceError(InvalidEntry):
    """The entry's sequence is not the previous one plus one (a gap, or seq < 1)."""


class PreviousMismatch(InvalidEntry):
    """The entry's previous id is not the id of the entry before it."""


class ContentMismatch(InvalidEntry):
    """The content's hash or size is not what the signed entry says."""


class FeedForked(InvalidEntry):
    """The author signed two different entries at one sequence: proof of a fork.

    ``first`` and ``second`` hold the raw bytes of the two entries.
    """

    def __init__(self, message: str, first: bytes = b"", second: bytes = b"") -> None:
        super().__init__(message)
        self.first = first
        self.second = second


# ---------------------------------------------------------------------------- local


class InvalidId(P2PSocialError, ValueError):
    """A feed, message or blob id is malformed. The message says what is wrong."""


class IdentityError(P2PSocialError):
    """The identity (secret key file) is missing, damaged, or readable by others."""


class StoreOwnerMismatch(IdentityError):
    """The store records another owner than the identity opening it (or, recording none,
    holds other feeds' entries but not one of the opener's): the secret key and the store
    do not belong together. Nothing was written; the message names both feeds and what to
    do (restore the matching secret key, or move the store aside)."""


class ConfigError(P2PSocialError):
    """A setting, address or command-line value is unusable."""


class BadRecipients(ConfigError):
    """A private message was given no recipients, or more than the 7 it can hold."""


class InvalidInvite(ConfigError):
    """An invite code is malformed; the message says which part."""


class DaemonAlreadyRunning(ConfigError):
    """Another daemon holds this home (its lock file), so this one must not start."""


class UnpublishableContent(P2PSocialError):
    """Content we were asked to publish breaks a content rule (no ``type``, a value CBOR
    content cannot hold, a type's own rule). A local error: nothing was published. The same
    rule broken by a peer's entry is :class:`InvalidContent`."""


class LocalContentTooLarge(UnpublishableContent):
    """Content we were asked to publish is over the size limit once encoded."""


class BlobRefused(UnpublishableContent):
    """A file we were asked to add as a blob is refused: over the size cap, over the
    storage quota even after purging, or an image that cannot be read. Nothing is stored."""


class InviteFailed(P2PSocialError):
    """Redeeming an invite failed: the pub could not be reached or the exchange broke."""


class InviteRefused(P2PSocialError):
    """The pub refused the invite (unknown, used up or expired); the message says why."""


class LineTooLong(RemoteProtocolError):
    """A JSON-RPC line is longer than the reader's limit (the line is not buffered)."""


class PeerDisconnected(P2PSocialError):
    """The connection to a peer is closed (by us) or broken (by anything else)."""


class StorageError(P2PSocialError):
    """The database cannot be opened, read or written."""


class DatabaseCorrupt(StorageError):
    """The database file is damaged or is not a p2psocial store. Nothing was written."""


class NotFound(P2PSocialError):
    """A requested feed, message or other record is not stored here."""


class MixedBlobSources(P2PSocialError):
    """A resumed download did not hash to its blob's id: its bytes came from more than one
    try (maybe more than one peer), so who sent the wrong ones is unknown. The partial is
    dropped and the blob fetched again from the start; nobody is cut off."""


class BlobMissing(NotFound):
    """A blob is not held here (and, where fetching was asked for, no peer gave it in
    time)."""


class DaemonNotRunning(P2PSocialError):
    """A command needs the running daemon, and none answers on this home."""


class RpcError(P2PSocialError):
    """An error answer to a call: JSON-RPC on the local socket, or peer RPC.

    ``code`` is an integer (JSON-RPC codes for the local socket), ``data`` an optional
    JSON-compatible object with details.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


INVALID_PARAMS_CODE = -32602


class InvalidParams(RpcError):
    """A call's parameter is missing, of the wrong type or out of range (JSON-RPC -32602).
    ``data`` is ``{"type": "InvalidParams", "param": name}`` when one parameter is to blame."""

    def __init__(self, message: str, param: str | None = None) -> None:
        data: dict[str, Any] = {"type": "InvalidParams"}
        if param is not None:
            data["param"] = param
        super().__init__(INVALID_PARAMS_CODE, message, data)
        self.param = param


OVERLOADED_CODE = -32004


class Overloaded(RpcError):
    """A server limit is reached (JSON-RPC -32004, ``OVERLOADED``): too many connections or
    subscriptions, or more answer bytes than a batch, a connection or the daemon may hold
    (#11). ``data`` is ``{"type": "Overloaded", "limit": value, "limit_name": name}``; the
    names and values are listed in docs/rpc.md, "Limits"."""

    def __init__(self, message: str, limit_name: str, limit: int) -> None:
        data: dict[str, Any] = {"type": "Overloaded", "limit": limit, "limit_name": limit_name}
        super().__init__(OVERLOADED_CODE, message, data)
        self.limit_name = limit_name
        self.limit = limit
