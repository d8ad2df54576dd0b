"""Tests of the sans-IO secret handshake (p2psocial.proto.handshake)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import (
    crypto_scalarmult,
    crypto_scalarmult_base,
    crypto_secretbox,
    crypto_sign,
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
    crypto_sign_seed_keypair,
)

from p2psocial.errors import HandshakeFailed, LocalProtocolError, RemoteProtocolError
from p2psocial.proto.boxstream import Data, Decoder, Encoder
from p2psocial.proto.handshake import (
    MSG1_SIZE,
    MSG2_SIZE,
    MSG3_SIZE,
    MSG4_SIZE,
    NEED_DATA,
    NETWORK_KEY,
    ClientAuthenticated,
    Event,
    HandshakeComplete,
    Role,
    SecretHandshake,
    State,
)

Tamper = Callable[[bytes], bytes]

CLIENT_PK, CLIENT_SK = crypto_sign_seed_keypair(bytes([1]) * 32)
SERVER_PK, SERVER_SK = crypto_sign_seed_keypair(bytes([2]) * 32)
OTHER_PK, OTHER_SK = crypto_sign_seed_keypair(bytes([3]) * 32)
CLIENT_EPH = bytes([4]) * 32
SERVER_EPH = bytes([5]) * 32
OTHER_NETWORK_KEY = bytes(range(32))
SSB_NETWORK_KEY = bytes.fromhex("d4a1cb88a66f02f8db635ce26441cc5dac1b08420ceaac230839b755845a9ffb")


def make_client(
    network_key: bytes = NETWORK_KEY, server_public_key: bytes = SERVER_PK
) -> SecretHandshake:
    return SecretHandshake(
        Role.CLIENT,
        network_key=network_key,
        public_key=CLIENT_PK,
        secret_key=CLIENT_SK,
        ephemeral_secret_key=CLIENT_EPH,
        server_public_key=server_public_key,
    )


def make_server(network_key: bytes = NETWORK_KEY) -> SecretHandshake:
    return SecretHandshake(
        Role.SERVER,
        network_key=network_key,
        public_key=SERVER_PK,
        secret_key=SERVER_SK,
        ephemeral_secret_key=SERVER_EPH,
    )


def state_of(machine: SecretHandshake) -> State:
    """The state, through a call (so mypy does not keep an earlier narrowing)."""
    return machine.state


def drain(machine: SecretHandshake) -> list[Event]:
    """Events until NEED_DATA, or until one that needs the caller (decision, completion)."""
    events: list[Event] = []
    while True:
        event = machine.next_event()
        if event is NEED_DATA:
            return events
        assert isinstance(event, Event)
        events.append(event)
        if isinstance(event, ClientAuthenticated | HandshakeComplete):
            return events


Chunker = Callable[[bytes], list[bytes]]


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


class Pair:
    """A client and a server machine wired together in memory (h11's ConnectionPair).

    ``chunker`` splits each message into the reads the receiver sees; the receiver's
    events are drained after each read.
    """

    def __init__(
        self,
        *,
        chunker: Chunker = whole,
        client: SecretHandshake | None = None,
        server: SecretHandshake | None = None,
    ) -> None:
        self.chunker = chunker
        self.client = client if client is not None else make_client()
        self.server = server if server is not None else make_server()
        self.wire: list[bytes] = []  # every message, as sent

    def send(
        self, sender: SecretHandshake, receiver: SecretHandshake, tamper: Tamper | None = None
    ) -> list[Event]:
        """Move what ``sender`` queued to ``receiver``; return the receiver's events."""
        data = sender.data_to_send()
        self.wire.append(data)
        if tamper is not None:
            data = tamper(data)
        if not data:
            return drain(receiver)
        events: list[Event] = []
        for piece in self.chunker(data):
            receiver.receive_data(piece)
            events += drain(receiver)
        return events

    def run(
        self, tamper: dict[int, Tamper] | None = None
    ) -> tuple[HandshakeComplete, HandshakeComplete]:
        """Run all four messages (``tamper`` maps a message number to a corruption)."""
        tamper = tamper or {}
        assert self.send(self.client, self.server, tamper.get(1)) == []
        assert self.send(self.server, self.client, tamper.get(2)) == []
        assert self.send(self.client, self.server, tamper.get(3)) == [
            ClientAuthenticated(CLIENT_PK)
        ]
        self.server.accept()
        (server_done,) = drain(self.server)
        (client_done,) = self.send(self.server, self.client, tamper.get(4))
        assert isinstance(server_done, HandshakeComplete)
        assert isinstance(client_done, HandshakeComplete)
        return client_done, server_done


def flip(bit: int) -> Tamper:
    def tamper(data: bytes) -> bytes:
        out = bytearray(data)
        out[bit // 8] ^= 1 << (bit % 8)
        return bytes(out)

    return tamper


def advance(pair: Pair, message: int) -> tuple[SecretHandshake, SecretHandshake]:
    """Exchange the messages before ``message`` (1-4); return its (sender, receiver)."""
    order = [
        (pair.client, pair.server),
        (pair.server, pair.client),
        (pair.client, pair.server),
        (pair.server, pair.client),
    ]
    for number in range(1, message):
        pair.send(*order[number - 1])
        if number == 3:
            pair.server.accept()
            drain(pair.server)
    return order[message - 1]


def assert_dead(machine: SecretHandshake, step: str) -> None:
    """ERROR state, nothing to send, and every call raises the same step again."""
    assert machine.state is State.ERROR
    assert machine.data_to_send() == b""
    with pytest.raises(HandshakeFailed) as info:
        machine.next_event()
    assert info.value.step == step
    with pytest.raises(HandshakeFailed):
        machine.receive_data(b"more")
    assert machine.data_to_send() == b""


# ---------------------------------------------------------------------------- success


@pytest.mark.parametrize("chunker", [whole, bytewise])
def test_handshake_derives_matching_keys(chunker: Chunker) -> None:
    pair = Pair(chunker=chunker)
    client_done, server_done = pair.run()
    assert [len(m) for m in pair.wire] == [MSG1_SIZE, MSG2_SIZE, MSG3_SIZE, MSG4_SIZE]
    assert client_done.remote_public_key == SERVER_PK
    assert server_done.remote_public_key == CLIENT_PK
    c, s = client_done.session, server_done.session
    assert c.encrypt_key == s.decrypt_key
    assert c.encrypt_nonce == s.decrypt_nonce
    assert c.decrypt_key == s.encrypt_key
    assert c.decrypt_nonce == s.encrypt_nonce
    assert c.encrypt_key != c.decrypt_key
    assert c.encrypt_nonce != c.decrypt_nonce
    assert pair.client.state is State.DONE
    assert pair.server.state is State.DONE
    assert pair.client.trailing_data == (b"", False)
    assert "key" not in repr(c)  # the secrets stay out of logs


def test_whole_and_bytewise_give_same_bytes() -> None:
    by_message, by_byte = Pair(), Pair(chunker=bytewise)
    assert by_message.run() == by_byte.run()
    assert by_message.wire == by_byte.wire


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha512).digest()[:32]


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_wire_bytes_follow_the_spec_formulas() -> None:
    """Recompute every message and key straight from docs/protocol.md section 3."""
    pair = Pair()
    client_done, server_done = pair.run()
    k = NETWORK_KEY
    a_pub, b_pub = crypto_scalarmult_base(CLIENT_EPH), crypto_scalarmult_base(SERVER_EPH)
    ab = crypto_scalarmult(CLIENT_EPH, b_pub)
    a_b = crypto_scalarmult(CLIENT_EPH, crypto_sign_ed25519_pk_to_curve25519(SERVER_PK))
    ab_long = crypto_scalarmult(crypto_sign_ed25519_sk_to_curve25519(CLIENT_SK), b_pub)
    sig_a = crypto_sign(k + SERVER_PK + _sha(ab), CLIENT_SK)[:64]
    sig_b = crypto_sign(k + sig_a + CLIENT_PK + _sha(ab), SERVER_SK)[:64]
    zero = bytes(24)
    assert pair.wire[0] == _hmac(k, a_pub) + a_pub
    assert pair.wire[1] == _hmac(k, b_pub) + b_pub
    assert pair.wire[2] == crypto_secretbox(sig_a + CLIENT_PK, zero, _sha(k + ab + a_b))
    msg4_key = _sha(k + ab + a_b + ab_long)
    assert pair.wire[3] == crypto_secretbox(sig_b, zero, msg4_key)
    shared = _sha(msg4_key)
    session = client_done.session
    assert session.encrypt_key == _sha(shared + SERVER_PK)
    assert session.encrypt_nonce == _hmac(k, b_pub)[:24]
    assert session.decrypt_key == _sha(shared + CLIENT_PK)
    assert session.decrypt_nonce == _hmac(k, a_pub)[:24]
    assert server_done.session.encrypt_key == session.decrypt_key


WORKED_EXAMPLE = {  # docs/protocol.md section 3.7
    "msg1": "ac50f95199baddfc46ca16f7f5997385bd3f003cb0ee7033cd49bc5ee4dd9795"
    "ac01b2209e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10b",
    "msg2": "17ed1163cfe1a99f3a8b0bfa9e37f073c948df0accc5e8ac8b976cf88f6182c9"
    "50a61409b1ddd0325e9b16b700e719e9772c07000b1bd7786e907c653d20495d",
    "msg3": "065d437c1c45eb7e5ca7d59e627cb64b63e2ee603dc6b63b24d08bf901586a2a"
    "918f076703044add4c998bec9f9876d902596f4834027229f555ff02e61408eb"
    "785ad5e8d1655540d00d5368dfff725b971f51f3c71e9f6fa563ed1784268ded"
    "963d41cd3b81343df8030c458b0cbb77",
    "msg4": "fc4610f56e519ef3961c9839fa14651b0291970a2067a150b67ee32f4798960c"
    "7ced60d7119150ef206c190ca1c2770f653e35f23cbb91d3989c1fd578e36650"
    "6c2e379006e864737b494bec125454a6",
    "encrypt_key": "84480802c28b4b5e4505c8d01119b2763aa56823607af97befb7be64dd7dc499",
    "encrypt_nonce": "17ed1163cfe1a99f3a8b0bfa9e37f073c948df0accc5e8ac",
    "decrypt_key": "e8aab32b7cac239f4886337aadc82cb225cc5b2c18540e76f40981f808068f5b",
    "decrypt_nonce": "ac50f95199baddfc46ca16f7f5997385bd3f003cb0ee7033",
}


def test_worked_example() -> None:
    assert CLIENT_PK.hex() == "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    assert SERVER_PK.hex() == "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
    pair = Pair()
    client_done, _ = pair.run()
    session = client_done.session
    assert [m.hex() for m in pair.wire] == [WORKED_EXAMPLE[f"msg{i}"] for i in range(1, 5)]
    assert session.encrypt_key.hex() == WORKED_EXAMPLE["encrypt_key"]
    assert session.encrypt_nonce.hex() == WORKED_EXAMPLE["encrypt_nonce"]
    assert session.decrypt_key.hex() == WORKED_EXAMPLE["decrypt_key"]
    assert session.decrypt_nonce.hex() == WORKED_EXAMPLE["decrypt_nonce"]


def test_network_key_constant() -> None:
    assert hashlib.sha256(b"p2psocial network key v1").digest() == NETWORK_KEY
    assert NETWORK_KEY.hex() == "fe33a42b0154711c2873d34d0202c65ba0b02257d6600f076f02ea7c8e3ce8ca"
    assert NETWORK_KEY != SSB_NETWORK_KEY


def test_private_network_key_works() -> None:
    pair = Pair(
        client=make_client(network_key=OTHER_NETWORK_KEY),
        server=make_server(network_key=OTHER_NETWORK_KEY),
    )
    client_done, server_done = pair.run()
    assert client_done.session.encrypt_key == server_done.session.decrypt_key


def test_trailing_data_goes_to_the_box_stream() -> None:
    """msg4 and the server's first box-stream packet arrive in one read."""
    pair = Pair()
    advance(pair, 3)
    assert pair.send(pair.client, pair.server) == [ClientAuthenticated(CLIENT_PK)]
    pair.server.accept()
    (server_done,) = drain(pair.server)
    assert isinstance(server_done, HandshakeComplete)
    session = server_done.session
    packet = Encoder(session.encrypt_key, session.encrypt_nonce).encrypt(b"hello")
    pair.client.receive_data(pair.server.data_to_send() + packet)
    (client_done,) = drain(pair.client)
    assert isinstance(client_done, HandshakeComplete)
    leftover, eof = pair.client.trailing_data
    assert (leftover, eof) == (packet, False)
    decoder = Decoder(client_done.session.decrypt_key, client_done.session.decrypt_nonce)
    decoder.receive_data(leftover)
    assert decoder.next_event() == Data(b"hello")


# ---------------------------------------------------------------------------- failures


@pytest.mark.parametrize("chunker", [whole, bytewise])
def test_wrong_network_key_fails_at_client_hello(chunker: Chunker) -> None:
    pair = Pair(chunker=chunker, server=make_server(network_key=OTHER_NETWORK_KEY))
    with pytest.raises(HandshakeFailed) as info:
        pair.send(pair.client, pair.server)
    assert info.value.step == "client hello"
    assert_dead(pair.server, "client hello")


def test_wrong_network_key_fails_at_server_hello() -> None:
    # A server on another network answers a client of its own network; our client then
    # sees that server's hello.
    other_client = make_client(network_key=OTHER_NETWORK_KEY)
    server = make_server(network_key=OTHER_NETWORK_KEY)
    server.receive_data(other_client.data_to_send())
    assert drain(server) == []
    client = make_client()
    client.data_to_send()
    client.receive_data(server.data_to_send())
    with pytest.raises(HandshakeFailed) as info:
        client.next_event()
    assert info.value.step == "server hello"
    assert_dead(client, "server hello")


def test_client_dialing_the_wrong_server_key_fails_at_client_auth() -> None:
    pair = Pair(client=make_client(server_public_key=OTHER_PK))
    advance(pair, 3)
    with pytest.raises(HandshakeFailed) as info:
        pair.send(pair.client, pair.server)
    assert info.value.step == "client auth"
    assert_dead(pair.server, "client auth")


BITS = {
    1: [0, 7, 255, 256, 511],
    2: [0, 100, 256, 511],
    3: [0, 127, 128, 300, 640, 895],
    4: [0, 127, 128, 400, 639],
}
STEPS = {1: "client hello", 2: "server hello", 3: "client auth", 4: "server accept"}


@pytest.mark.parametrize(("message", "bit"), [(m, b) for m, bits in BITS.items() for b in bits])
def test_flipped_bit_fails_at_the_right_step(message: int, bit: int) -> None:
    pair = Pair()
    receiver = pair.server if message in (1, 3) else pair.client
    with pytest.raises(HandshakeFailed) as info:
        pair.run(tamper={message: flip(bit)})
    assert info.value.step == STEPS[message]
    assert_dead(receiver, STEPS[message])


def test_random_msg3_plaintext_fails_at_client_auth() -> None:
    """The shs1-test case: a well-boxed msg3 whose signature and key are garbage."""
    b_pub = crypto_scalarmult_base(SERVER_EPH)
    ab = crypto_scalarmult(CLIENT_EPH, b_pub)
    a_b = crypto_scalarmult(CLIENT_EPH, crypto_sign_ed25519_pk_to_curve25519(SERVER_PK))
    for garbage in (bytes(96), bytes(range(96)), b"\xff" * 96):
        pair = Pair()
        advance(pair, 3)
        pair.client.data_to_send()  # the real msg3 is dropped
        pair.server.receive_data(crypto_secretbox(garbage, bytes(24), _sha(NETWORK_KEY + ab + a_b)))
        with pytest.raises(HandshakeFailed) as info:
            pair.server.next_event()
        assert info.value.step == "client auth"
        assert_dead(pair.server, "client auth")


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_low_order_ephemeral_key_is_rejected(role: Role) -> None:
    zero_key = bytes(32)
    machine = make_server() if role is Role.SERVER else make_client()
    machine.data_to_send()
    machine.receive_data(_hmac(NETWORK_KEY, zero_key) + zero_key)
    step = "client hello" if role is Role.SERVER else "server hello"
    with pytest.raises(HandshakeFailed) as info:
        machine.next_event()
    assert info.value.step == step
    assert "ephemeral" in info.value.detail
    assert_dead(machine, step)


def test_server_refuses_client() -> None:
    pair = Pair()
    advance(pair, 3)
    assert pair.send(pair.client, pair.server) == [ClientAuthenticated(CLIENT_PK)]
    pair.server.refuse()
    assert_dead(pair.server, "refused")
    # The client only ever sees the connection close.
    pair.client.receive_data(b"")
    with pytest.raises(HandshakeFailed) as info:
        pair.client.next_event()
    assert info.value.step == "eof"
    assert "msg4" in info.value.detail
    assert_dead(pair.client, "eof")


@pytest.mark.parametrize(
    ("message", "cut"),
    [(1, 0), (1, 63), (2, 0), (2, 32), (3, 0), (3, 111), (4, 0), (4, 79)],
)
def test_eof_mid_handshake(message: int, cut: int) -> None:
    pair = Pair()
    sender, receiver = advance(pair, message)
    receiver.receive_data(sender.data_to_send()[:cut])
    receiver.receive_data(b"")
    with pytest.raises(HandshakeFailed) as info:
        drain(receiver)
    assert info.value.step == "eof"
    assert f"after {cut} of" in info.value.detail
    assert_dead(receiver, "eof")


def test_eof_after_complete_is_trailing() -> None:
    pair = Pair()
    pair.run()
    pair.client.receive_data(b"")
    assert pair.client.trailing_data == (b"", True)


def test_half_message_changes_nothing() -> None:
    server = make_server()
    msg1 = make_client().data_to_send()
    server.receive_data(msg1[:63])
    assert server.next_event() is NEED_DATA
    assert server.state is State.AWAIT_HELLO
    assert server.data_to_send() == b""
    server.receive_data(msg1[63:])
    assert server.next_event() is NEED_DATA
    assert state_of(server) is State.AWAIT_AUTH
    assert len(server.data_to_send()) == MSG2_SIZE


# ---------------------------------------------------------------------------- API misuse


def test_accept_and_refuse_only_when_deciding() -> None:
    client, server = make_client(), make_server()
    for machine in (client, server):
        with pytest.raises(LocalProtocolError, match="can't handle accept"):
            machine.accept()
        with pytest.raises(LocalProtocolError, match="can't handle refuse"):
            machine.refuse()


def test_next_event_while_deciding_or_after_completion() -> None:
    pair = Pair()
    advance(pair, 3)
    pair.send(pair.client, pair.server)
    with pytest.raises(LocalProtocolError, match="accept"):
        pair.server.next_event()
    pair.server.accept()
    drain(pair.server)
    with pytest.raises(LocalProtocolError, match="complete"):
        pair.server.next_event()
    with pytest.raises(LocalProtocolError):
        pair.server.accept()


def test_data_after_eof_is_local_error() -> None:
    server = make_server()
    server.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"x")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"network_key": bytes(31)},
        {"public_key": bytes(32)},  # does not match the secret key
        {"secret_key": bytes(63)},
        {"ephemeral_secret_key": bytes(33)},
    ],
)
def test_bad_arguments(kwargs: dict[str, bytes]) -> None:
    args: dict[str, bytes] = {
        "network_key": NETWORK_KEY,
        "public_key": SERVER_PK,
        "secret_key": SERVER_SK,
        "ephemeral_secret_key": SERVER_EPH,
    }
    args.update(kwargs)
    with pytest.raises(LocalProtocolError):
        SecretHandshake(Role.SERVER, **args)


def test_server_public_key_only_for_clients() -> None:
    with pytest.raises(LocalProtocolError):
        make_client(server_public_key=bytes(31))
    with pytest.raises(LocalProtocolError, match="not a valid Ed25519 key"):
        make_client(server_public_key=bytes(32))  # a low-order point
    with pytest.raises(LocalProtocolError):
        SecretHandshake(
            Role.CLIENT,
            network_key=NETWORK_KEY,
            public_key=CLIENT_PK,
            secret_key=CLIENT_SK,
            ephemeral_secret_key=CLIENT_EPH,
        )
    with pytest.raises(LocalProtocolError):
        SecretHandshake(
            Role.SERVER,
            network_key=NETWORK_KEY,
            public_key=SERVER_PK,
            secret_key=SERVER_SK,
            ephemeral_secret_key=SERVER_EPH,
            server_public_key=CLIENT_PK,
        )


# ---------------------------------------------------------------------------- fuzzing


def feed_garbage(machine: SecretHandshake, chunks: list[bytes]) -> None:
    """Feed chunks then EOF, draining events; decisions are accepted."""
    for chunk in [*chunks, b""]:
        machine.receive_data(chunk)
        while True:
            event = machine.next_event()
            if event is NEED_DATA:
                break
            if isinstance(event, ClientAuthenticated):
                machine.accept()
            elif isinstance(event, HandshakeComplete):
                return


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
@settings(max_examples=150, deadline=None)
@given(chunks=st.lists(st.binary(max_size=200), max_size=4))
def test_garbage_raises_only_remote_protocol_errors(role: Role, chunks: list[bytes]) -> None:
    machine = make_server() if role is Role.SERVER else make_client()
    machine.data_to_send()
    with pytest.raises(RemoteProtocolError):
        feed_garbage(machine, chunks)
    assert machine.state is State.ERROR
    assert machine.data_to_send() == b""


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_chunking_gives_the_same_result(data: st.DataObject) -> None:
    reference = Pair()
    expected = reference.run()

    def chunker(message: bytes) -> list[bytes]:
        cuts = data.draw(st.lists(st.integers(0, len(message)), max_size=3), label="cuts")
        bounds = [0, *sorted(cuts), len(message)]
        return [message[lo:hi] for lo, hi in itertools.pairwise(bounds) if hi > lo]

    pair = Pair(chunker=chunker)
    assert pair.run() == expected
    assert pair.wire == reference.wire


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
@settings(max_examples=100, deadline=None)
@given(chunks=st.lists(st.binary(max_size=200), max_size=4))
def test_garbage_after_a_valid_hello(role: Role, chunks: list[bytes]) -> None:
    """Reach msg3 (server) or msg4 (client) handling, then feed garbage."""
    pair = Pair()
    pair.send(pair.client, pair.server)
    machine = pair.server
    if role is Role.CLIENT:
        pair.send(pair.server, pair.client)
        machine = pair.client
    machine.data_to_send()
    with pytest.raises(RemoteProtocolError):
        feed_garbage(machine, chunks)
    assert machine.state is State.ERROR
    assert machine.data_to_send() == b""
