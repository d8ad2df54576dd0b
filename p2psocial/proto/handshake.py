"""Secret handshake, version 1 (shs1): mutual authentication before a box-stream.

One sans-IO machine, :class:`SecretHandshake`, plays either role. It holds no socket and
never reads the clock or the random generator: the long-term Ed25519 keypair, the
ephemeral X25519 secret, the network key and (for the client) the server's public key are
passed in. The wire format is specified byte by byte in ``docs/protocol.md`` section 3.

Usage, h11-style::

    hs = SecretHandshake(Role.CLIENT, network_key=NETWORK_KEY, public_key=pk,
                         secret_key=sk, ephemeral_secret_key=eph, server_public_key=srv)
    while True:
        send(hs.data_to_send())             # always flush before blocking on a read
        event = hs.next_event()
        if event is NEED_DATA:
            hs.receive_data(recv())         # b"" = EOF
        elif isinstance(event, ClientAuthenticated):
            hs.accept()                     # server only: or hs.refuse()
        elif isinstance(event, HandshakeComplete):
            send(hs.data_to_send())         # msg4, on the server
            break
    leftover, eof = hs.trailing_data        # first bytes of the peer's box-stream
"""

# Theory of operation
# -------------------
#
# The handshake is four fixed-size messages, strictly alternating:
#
#     client                                   server
#       | -- msg1 "client hello"   (64 bytes) -> |
#       | <- msg2 "server hello"   (64 bytes) -- |
#       | -- msg3 "client auth"   (112 bytes) -> |
#       |                                        |  ClientAuthenticated: accept() or refuse()
#       | <- msg4 "server accept"  (80 bytes) -- |
#     HandshakeComplete                        HandshakeComplete
#
# Because every message has a fixed size and each side only ever waits for one of them,
# the machine is a short chain of states. ``_RECEIVE`` says, per (role, state), which
# message is awaited and how long it is; ``_TRANSITIONS`` is the whole state graph, keyed
# by (role, state, input), where an input is a verified message or a local decision.
# Anything not in the table is API misuse and raises LocalProtocolError.
#
# ``receive_data`` only buffers. ``next_event`` takes a message out of the buffer only
# once all of its bytes are there (a half-received message changes nothing), checks it,
# queues our reply in the output buffer, and moves on until it either has an event for
# the caller or needs more bytes. Every check failure raises HandshakeFailed (whose
# ``step`` names the message) and moves the machine to ERROR, where pending output is
# dropped and every further call raises: after an error, nothing more is sent.
#
# The server stops after verifying msg3 and reports ClientAuthenticated, so the shell can
# look the client's key up (blocked feeds, allow lists) before anything is revealed; it
# must then call accept() (which queues msg4) or refuse() (which sends nothing).
#
# Bytes the peer sent after its last handshake message already belong to the box-stream;
# they stay in the buffer and are handed over with ``trailing_data``.

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from nacl.bindings import (
    crypto_scalarmult,
    crypto_scalarmult_base,
    crypto_secretbox,
    crypto_secretbox_open,
    crypto_sign,
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
    crypto_sign_open,
)
from nacl.exceptions import CryptoError

from p2psocial.errors import HandshakeFailed, LocalProtocolError

__all__ = [
    "MSG1_SIZE",
    "MSG2_SIZE",
    "MSG3_SIZE",
    "MSG4_SIZE",
    "NEED_DATA",
    "NETWORK_KEY",
    "ClientAuthenticated",
    "Event",
    "HandshakeComplete",
    "NeedData",
    "Role",
    "SecretHandshake",
    "Session",
    "State",
]

NETWORK_KEY: Final[bytes] = hashlib.sha256(b"p2psocial network key v1").digest()
"""p2psocial's default network key: ``sha256(b"p2psocial network key v1")``, that is
``fe33a42b0154711c2873d34d0202c65ba0b02257d6600f076f02ea7c8e3ce8ca``.

Scuttlebutt's main network uses another key, so its peers fail at the first message. The
key is a setting: a private group picks its own 32 random bytes and configures them on
every member."""

MSG1_SIZE: Final = 64
MSG2_SIZE: Final = 64
MSG3_SIZE: Final = 112
MSG4_SIZE: Final = 80

_ZERO_NONCE: Final = bytes(24)


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel (shared by every machine in ``proto/``)."""

    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA
"""Returned by ``next_event()`` when the machine needs more bytes from the peer."""


class Role(enum.Enum):
    """Which side of the handshake a machine plays: the dialer or the listener."""

    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    """States of :class:`SecretHandshake` (the full graph is ``_TRANSITIONS``)."""

    AWAIT_HELLO = "await hello"  # server: waits for msg1; client: sent msg1, waits for msg2
    AWAIT_AUTH = "await auth"  # server: sent msg2, waits for msg3
    AWAIT_DECISION = "await decision"  # server: msg3 verified, waits for accept()/refuse()
    AWAIT_ACCEPT = "await accept"  # client: sent msg3, waits for msg4
    DONE = "done"  # session keys known; the box-stream takes over
    ERROR = "error"  # a check failed or the server refused; nothing more is sent


class _Input(enum.Enum):
    RECV_HELLO = "receive hello"
    RECV_AUTH = "receive auth"
    RECV_ACCEPT = "receive accept"
    ACCEPT = "accept()"
    REFUSE = "refuse()"


_TRANSITIONS: Final[dict[tuple[Role, State, _Input], State]] = {
    (Role.SERVER, State.AWAIT_HELLO, _Input.RECV_HELLO): State.AWAIT_AUTH,
    (Role.SERVER, State.AWAIT_AUTH, _Input.RECV_AUTH): State.AWAIT_DECISION,
    (Role.SERVER, State.AWAIT_DECISION, _Input.ACCEPT): State.DONE,
    (Role.SERVER, State.AWAIT_DECISION, _Input.REFUSE): State.ERROR,
    (Role.CLIENT, State.AWAIT_HELLO, _Input.RECV_HELLO): State.AWAIT_ACCEPT,
    (Role.CLIENT, State.AWAIT_ACCEPT, _Input.RECV_ACCEPT): State.DONE,
}


class _Expected(NamedTuple):
    size: int
    step: str  # HandshakeFailed.step when this message is bad
    name: str
    input: _Input


_RECEIVE: Final[dict[tuple[Role, State], _Expected]] = {
    (Role.SERVER, State.AWAIT_HELLO): _Expected(
        MSG1_SIZE, "client hello", "msg1", _Input.RECV_HELLO
    ),
    (Role.CLIENT, State.AWAIT_HELLO): _Expected(
        MSG2_SIZE, "server hello", "msg2", _Input.RECV_HELLO
    ),
    (Role.SERVER, State.AWAIT_AUTH): _Expected(MSG3_SIZE, "client auth", "msg3", _Input.RECV_AUTH),
    (Role.CLIENT, State.AWAIT_ACCEPT): _Expected(
        MSG4_SIZE, "server accept", "msg4", _Input.RECV_ACCEPT
    ),
}


# ---------------------------------------------------------------------------- events


def _check_len(name: str, value: bytes, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise LocalProtocolError(f"{name} must be {size} bytes")


@dataclass(frozen=True)
class Event:
    """Base class of the handshake's events."""


@dataclass(frozen=True)
class Session:
    """The keys and starting nonces of the two box-streams that follow the handshake.

    ``encrypt_*`` seal what we send, ``decrypt_*`` open what the peer sends; the peer's
    session has them swapped. Keys are 32 bytes, nonces 24. Left out of ``repr``.
    """

    encrypt_key: bytes = field(repr=False)
    encrypt_nonce: bytes = field(repr=False)
    decrypt_key: bytes = field(repr=False)
    decrypt_nonce: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_len("encrypt_key", self.encrypt_key, 32)
        _check_len("encrypt_nonce", self.encrypt_nonce, 24)
        _check_len("decrypt_key", self.decrypt_key, 32)
        _check_len("decrypt_nonce", self.decrypt_nonce, 24)


@dataclass(frozen=True)
class ClientAuthenticated(Event):
    """Server only: msg3 verified; the client proved it holds ``remote_public_key``.

    The caller must now call :meth:`SecretHandshake.accept` or
    :meth:`SecretHandshake.refuse`.
    """

    remote_public_key: bytes

    def __post_init__(self) -> None:
        _check_len("remote_public_key", self.remote_public_key, 32)


@dataclass(frozen=True)
class HandshakeComplete(Event):
    """Both sides proved their keys; ``session`` holds the box-stream keys and nonces."""

    remote_public_key: bytes
    session: Session

    def __post_init__(self) -> None:
        _check_len("remote_public_key", self.remote_public_key, 32)


# ---------------------------------------------------------------------------- primitives


def _hmac(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA-512 truncated to 32 bytes (libsodium's ``crypto_auth``)."""
    return hmac.new(key, message, hashlib.sha512).digest()[:32]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _sign_detached(message: bytes, secret_key: bytes) -> bytes:
    return crypto_sign(message, secret_key)[:64]


def _verify_detached(signature: bytes, message: bytes, public_key: bytes) -> bool:
    try:
        crypto_sign_open(signature + message, public_key)
    except CryptoError:
        return False
    return True


# ---------------------------------------------------------------------------- the machine


class SecretHandshake:
    """The shs1 handshake for one side of one connection (see the module docstring).

    Arguments (all bytes): ``network_key`` (32), our long-term Ed25519 ``public_key``
    (32) and ``secret_key`` (64, libsodium layout ``seed || public_key``), our ephemeral
    X25519 ``ephemeral_secret_key`` (32 random bytes, fresh for every connection), and
    for the client only the ``server_public_key`` (32) it means to reach.

    Raises LocalProtocolError if an argument has the wrong size, the keypair does not
    match, the server key is not a usable Ed25519 key, or ``server_public_key`` is given
    to a server or missing on a client. A client queues msg1 at once: call
    :meth:`data_to_send` right after constructing it.
    """

    def __init__(
        self,
        role: Role,
        *,
        network_key: bytes,
        public_key: bytes,
        secret_key: bytes,
        ephemeral_secret_key: bytes,
        server_public_key: bytes | None = None,
    ) -> None:
        _check_len("network_key", network_key, 32)
        _check_len("public_key", public_key, 32)
        _check_len("secret_key", secret_key, 64)
        _check_len("ephemeral_secret_key", ephemeral_secret_key, 32)
        if secret_key[32:] != public_key:
            raise LocalProtocolError("secret_key does not belong to public_key")
        self.role: Final = role
        self._state = State.AWAIT_HELLO
        self._network_key = network_key
        self._public_key = public_key
        self._secret_key = secret_key
        self._eph_secret = ephemeral_secret_key
        self._eph_public = crypto_scalarmult_base(ephemeral_secret_key)
        self._remote_public = b""
        self._remote_curve = b""  # the server's key as X25519 (client only)
        self._remote_eph = b""
        self._secret_ab = b""  # ephemeral-ephemeral secret
        self._secret_aB = b""  # client ephemeral x server long-term ("aB")
        self._secret_Ab = b""  # client long-term x server ephemeral ("Ab")
        self._client_sig = b""  # the client's signature from msg3, signed again in msg4
        self._in = bytearray()
        self._eof = False
        self._out = bytearray()
        self._events: list[Event] = []
        self._failure: HandshakeFailed | None = None
        if role is Role.CLIENT:
            if server_public_key is None:
                raise LocalProtocolError("a client needs server_public_key")
            _check_len("server_public_key", server_public_key, 32)
            try:
                self._remote_curve = crypto_sign_ed25519_pk_to_curve25519(server_public_key)
            except CryptoError:
                raise LocalProtocolError("server_public_key is not a valid Ed25519 key") from None
            self._remote_public = server_public_key
            self._out += self._hello()
        elif server_public_key is not None:
            raise LocalProtocolError("a server does not take server_public_key")

    # -- public API ---------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current :class:`State`."""
        return self._state

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """``(bytes, eof)``: what the peer sent beyond the handshake, and whether it closed.

        After :class:`HandshakeComplete`, feed these bytes (and the EOF, if set) to the
        box-stream decoder. Does not consume them.
        """
        return bytes(self._in), self._eof

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; ``b""`` means the peer closed its side (EOF).

        Checks nothing: problems surface in :meth:`next_event`. Raises HandshakeFailed if
        the machine is in ERROR, LocalProtocolError for data after EOF.
        """
        if self._failure is not None:
            raise self._already_failed()
        if data:
            if self._eof:
                raise LocalProtocolError("received data after EOF")
            self._in += data
        else:
            self._eof = True

    def next_event(self) -> Event | NeedData:
        """Process buffered bytes; return the next event or :data:`NEED_DATA`.

        Queues our replies in the output buffer as it goes (flush with
        :meth:`data_to_send` before waiting for more bytes). Raises HandshakeFailed when
        the peer's bytes fail a check or it closes mid-handshake, and every time after
        that; this moves the machine to ERROR. Raises LocalProtocolError if called while
        an accept()/refuse() decision is pending or after HandshakeComplete was returned.
        """
        while True:
            if self._events:
                return self._events.pop(0)
            if self._failure is not None:
                raise self._already_failed()
            expected = _RECEIVE.get((self.role, self._state))
            if expected is None:
                if self._state is State.AWAIT_DECISION:
                    raise LocalProtocolError("call accept() or refuse() first")
                raise LocalProtocolError("the handshake is complete; use trailing_data")
            have = len(self._in)
            if have < expected.size:
                if self._eof:
                    failure = HandshakeFailed(
                        "eof",
                        f"connection closed after {have} of {expected.size} bytes"
                        f" of {expected.name} ({expected.step})",
                    )
                    self._fail(failure)
                    raise failure
                return NEED_DATA
            message = bytes(self._in[: expected.size])
            del self._in[: expected.size]
            self._run(expected.step, expected.input, message)

    def data_to_send(self) -> bytes:
        """Return (and forget) the bytes queued for the peer; ``b""`` if none."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def accept(self) -> None:
        """Server: admit the client reported by ClientAuthenticated.

        Queues msg4 and makes the next :meth:`next_event` return HandshakeComplete.
        Raises LocalProtocolError unless the machine is a server awaiting this decision.
        """
        self._run("server accept", _Input.ACCEPT, b"")

    def refuse(self) -> None:
        """Server: turn the client away after ClientAuthenticated. Sends nothing.

        The machine moves to ERROR; later calls raise HandshakeFailed(step="refused").
        Raises LocalProtocolError unless the machine is a server awaiting this decision.
        """
        self._state = self._check_transition(_Input.REFUSE)  # to ERROR
        self._fail(HandshakeFailed("refused", "we do not accept this client's key"))

    # -- internals ----------------------------------------------------------------------

    def _check_transition(self, input_: _Input) -> State:
        try:
            return _TRANSITIONS[(self.role, self._state, input_)]
        except KeyError:
            raise LocalProtocolError(
                f"can't handle {input_.value} when role={self.role.value}"
                f" and state={self._state.value}"
            ) from None

    def _run(self, step: str, input_: _Input, message: bytes) -> None:
        """Apply one input; any exception moves the machine to ERROR."""
        new_state = self._check_transition(input_)
        try:
            if input_ is _Input.RECV_HELLO:
                self._on_hello(step, message)
            elif input_ is _Input.RECV_AUTH:
                self._on_client_auth(step, message)
            elif input_ is _Input.RECV_ACCEPT:
                self._on_server_accept(step, message)
            else:
                self._send_server_accept()
        except HandshakeFailed as exc:
            self._fail(exc)
            raise
        except CryptoError as exc:
            failure = HandshakeFailed(step, f"crypto error: {exc}")
            self._fail(failure)
            raise failure from exc
        except BaseException as exc:  # a bug of ours: still never send anything more
            self._fail(HandshakeFailed(step, f"internal error: {exc!r}"))
            raise
        self._state = new_state

    def _fail(self, exc: HandshakeFailed) -> None:
        """Move to ERROR and drop everything not yet handed out. Does not raise."""
        self._state = State.ERROR
        self._failure = exc
        self._out.clear()
        self._events.clear()

    def _already_failed(self) -> HandshakeFailed:
        assert self._failure is not None
        return HandshakeFailed(self._failure.step, f"already failed: {self._failure.detail}")

    def _hello(self) -> bytes:
        """msg1 / msg2: ``hmac(K, eph_pub) || eph_pub``."""
        return _hmac(self._network_key, self._eph_public) + self._eph_public

    def _on_hello(self, step: str, message: bytes) -> None:
        """Server receives msg1 and queues msg2; client receives msg2 and queues msg3."""
        mac, remote_eph = message[:32], message[32:]
        if not hmac.compare_digest(mac, _hmac(self._network_key, remote_eph)):
            raise HandshakeFailed(
                step, "hmac mismatch: the peer uses another network key, or sent garbage"
            )
        try:
            self._secret_ab = crypto_scalarmult(self._eph_secret, remote_eph)
        except CryptoError:
            raise HandshakeFailed(step, "unusable ephemeral key (low-order point)") from None
        self._remote_eph = remote_eph
        if self.role is Role.SERVER:
            # aB = curve(B_sk) * a_pub; Ab waits for the client's key in msg3.
            self._secret_aB = crypto_scalarmult(
                crypto_sign_ed25519_sk_to_curve25519(self._secret_key), remote_eph
            )
            self._out += self._hello()
            return
        # Client: aB = a * curve(B_pub), Ab = curve(A_sk) * b_pub; then msg3.
        self._secret_aB = crypto_scalarmult(self._eph_secret, self._remote_curve)
        self._secret_Ab = crypto_scalarmult(
            crypto_sign_ed25519_sk_to_curve25519(self._secret_key), remote_eph
        )
        k = self._network_key
        self._client_sig = _sign_detached(
            k + self._remote_public + _sha256(self._secret_ab), self._secret_key
        )
        box_key = _sha256(k + self._secret_ab + self._secret_aB)
        self._out += crypto_secretbox(self._client_sig + self._public_key, _ZERO_NONCE, box_key)

    def _on_client_auth(self, step: str, message: bytes) -> None:
        """Server receives msg3: open it, check the client's signature, learn its key."""
        k = self._network_key
        box_key = _sha256(k + self._secret_ab + self._secret_aB)
        try:
            plain = crypto_secretbox_open(message, _ZERO_NONCE, box_key)
        except CryptoError:
            raise HandshakeFailed(
                step, "msg3 does not open: the client dialed another server key, or sent garbage"
            ) from None
        signature, client_key = plain[:64], plain[64:]
        signed = k + self._public_key + _sha256(self._secret_ab)
        if not _verify_detached(signature, signed, client_key):
            raise HandshakeFailed(step, "the client's signature in msg3 does not verify")
        try:
            client_curve = crypto_sign_ed25519_pk_to_curve25519(client_key)
            self._secret_Ab = crypto_scalarmult(self._eph_secret, client_curve)
        except CryptoError:
            raise HandshakeFailed(step, "the client's public key is unusable") from None
        self._client_sig = signature
        self._remote_public = client_key
        self._events.append(ClientAuthenticated(client_key))

    def _send_server_accept(self) -> None:
        """Server, on accept(): queue msg4 and report HandshakeComplete."""
        k = self._network_key
        signed = k + self._client_sig + self._remote_public + _sha256(self._secret_ab)
        box_key = _sha256(k + self._secret_ab + self._secret_aB + self._secret_Ab)
        signature = _sign_detached(signed, self._secret_key)
        self._out += crypto_secretbox(signature, _ZERO_NONCE, box_key)
        self._events.append(HandshakeComplete(self._remote_public, self._session(box_key)))

    def _on_server_accept(self, step: str, message: bytes) -> None:
        """Client receives msg4: open it and check the server's signature."""
        k = self._network_key
        box_key = _sha256(k + self._secret_ab + self._secret_aB + self._secret_Ab)
        try:
            signature = crypto_secretbox_open(message, _ZERO_NONCE, box_key)
        except CryptoError:
            raise HandshakeFailed(step, "msg4 does not open") from None
        signed = k + self._client_sig + self._public_key + _sha256(self._secret_ab)
        if not _verify_detached(signature, signed, self._remote_public):
            raise HandshakeFailed(step, "the server's signature in msg4 does not verify")
        self._events.append(HandshakeComplete(self._remote_public, self._session(box_key)))

    def _session(self, msg4_key: bytes) -> Session:
        """Box-stream keys: ``sha256(sha256(msg4_key) || receiver's long-term key)``."""
        shared = _sha256(msg4_key)
        k = self._network_key
        return Session(
            encrypt_key=_sha256(shared + self._remote_public),
            encrypt_nonce=_hmac(k, self._remote_eph)[:24],
            decrypt_key=_sha256(shared + self._public_key),
            decrypt_nonce=_hmac(k, self._eph_public)[:24],
        )
