#!/usr/bin/env python3
"""Fuzz every decoder that takes outside bytes (issue #11).

Each *decoder* below drives one entry point the way the daemon does with a peer's (or a
local client's) bytes, and says which of our typed errors (``P2PSocialError`` subclasses,
matched exactly) those bytes may cause. Anything else it raises is a *finding*: an
exception of another type, an unexpected typed error, a documented invariant broken (an
``AssertionError`` from the harness, e.g. "fed whole or in pieces, the stream gives the same
events"), or the worker process dying (a native crash).

Inputs are random bytes, fresh structure-aware inputs built with the project's own
encoders and crypto (valid HMACs, boxes sealed with the right keys, canonical CBOR), and
mutations of valid seeds (bit flips, byte insert/delete/overwrite, dictionary tokens,
interesting integers, truncation, duplication, splicing). Inputs that reach a new outcome
(error type and message shape, or event sequence) join that decoder's corpus.

    python scripts/fuzz.py --seconds 60             # all decoders, time split evenly
    python scripts/fuzz.py --decoder boxstream --seconds 10 --seed 7
    python scripts/fuzz.py --inputs 1000000         # a number of inputs per decoder
    python scripts/fuzz.py --list                   # decoders and their expected errors
    python scripts/fuzz.py --reproduce .cache/fuzz-findings/<file>.json

It prints one JSON line at the end (per decoder: inputs, accepted, exceptions by type,
findings) and exits 1 if there was any finding. Each finding is saved, minimised, as a
JSON file holding the decoder, the input in hex and the traceback, under ``--findings``
(default ``.cache/fuzz-findings``); ``--reproduce FILE`` runs it again in-process.

Streaming decoders (handshake, box-stream, packet stream, JSON-RPC lines) read the first
input byte as *how* the rest arrives: bits 0-5 the read size (0: all at once), bit 6 a
local decision (the handshake server refuses the client), bit 7 end of input afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FINDINGS = ROOT / ".cache" / "fuzz-findings"
HIDDEN = ("self-test", "self-test-crash")
"""Decoders that exist to prove the harness reports findings; never run by default."""
_RECORD_SIZE = 4 << 20  # the worker writes each input here before running it
_MAX_FINDINGS_PER_DECODER = 20
_NO_INPUT = 0xFFFFFFFF


# ============================================================================ decoders


@dataclass
class Decoder:
    """One entry point under fuzzing.

    ``run`` takes the input bytes and returns a short outcome label (None for nothing
    special), or raises. ``expected`` are the exception types (matched exactly, not by
    subclass) outside bytes may cause. ``generate`` builds a fresh structure-aware input.
    """

    name: str
    doc: str
    run: Callable[[bytes], str | None]
    expected: tuple[type[BaseException], ...]
    seeds: list[bytes]
    tokens: list[bytes] = field(default_factory=list)
    generate: Callable[[random.Random], bytes] | None = None
    max_len: int = 4096
    random_len: int = 256
    stream: bool = False
    """The first byte says how the rest is delivered (see the module docstring)."""


def _split(data: bytes) -> tuple[list[bytes], bool, bool]:
    """(reads, local decision bit, eof) of a streaming decoder's input."""
    if not data:
        return [], False, False
    mode, body = data[0], data[1:]
    size = mode & 0x3F
    if size:
        size = max(size, len(body) // 512)  # at most 512 reads: bounded cost per input
    if size == 0 or not body:
        reads = [body] if body else []
    else:
        reads = [body[i : i + size] for i in range(0, len(body), size)]
    return reads, bool(mode & 0x40), bool(mode & 0x80)


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(f"invariant broken: {what}")


def _text(data: bytes) -> str:
    """Bytes as the text a caller could hand us (lone surrogates included)."""
    return data.decode("utf-8", "surrogateescape")


_LOW_ORDER = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    (2**255 - 19 - 1).to_bytes(32, "little"),
    (2**255 - 19).to_bytes(32, "little"),
    (2**255 - 19 + 1).to_bytes(32, "little"),
    bytes(31) + b"\x80",
    b"\xff" * 32,
]
"""Curve25519 points of small order (and their high-bit twins): X25519 with them is 0."""

_INTS = [0, 1, 2, 0x17, 0x18, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000]
_INTS += [4096, 4097, 8192, 8193, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63]
_INTS += [2**64 - 1, 2**64, -1, -2, -3, -(2**31), -(2**63), -(2**64)]


def _seeded(tag: str) -> bytes:
    return hashlib.sha256(b"p2psocial fuzz " + tag.encode()).digest()


# ---------------------------------------------------------------------------- handshake


def _handshake_decoders() -> list[Decoder]:
    from nacl.bindings import (
        crypto_scalarmult,
        crypto_scalarmult_base,
        crypto_secretbox,
        crypto_sign_ed25519_pk_to_curve25519,
    )

    from p2psocial.errors import HandshakeFailed
    from p2psocial.identity import Keypair
    from p2psocial.proto.handshake import (
        NEED_DATA,
        NETWORK_KEY,
        ClientAuthenticated,
        HandshakeComplete,
        Role,
        SecretHandshake,
    )

    k = NETWORK_KEY
    server, client, stranger = (Keypair.from_seed(_seeded(n)) for n in ("srv", "cli", "other"))
    server_eph, client_eph = _seeded("srv eph"), _seeded("cli eph")

    def machine(role: Role) -> SecretHandshake:
        if role is Role.SERVER:
            return SecretHandshake(
                role,
                network_key=k,
                public_key=server.public,
                secret_key=server.secret,
                ephemeral_secret_key=server_eph,
            )
        return SecretHandshake(
            role,
            network_key=k,
            public_key=client.public,
            secret_key=client.secret,
            ephemeral_secret_key=client_eph,
            server_public_key=server.public,
        )

    # The whole transcript, with the machines themselves (deterministic: fixed keys).
    cli, srv = machine(Role.CLIENT), machine(Role.SERVER)
    msg1 = cli.data_to_send()
    srv.receive_data(msg1)
    assert srv.next_event() is NEED_DATA
    msg2 = srv.data_to_send()
    cli.receive_data(msg2)
    assert cli.next_event() is NEED_DATA
    msg3 = cli.data_to_send()
    srv.receive_data(msg3)
    assert isinstance(srv.next_event(), ClientAuthenticated)
    srv.accept()
    msg4 = srv.data_to_send()
    assert isinstance(srv.next_event(), HandshakeComplete)
    cli.receive_data(msg4)
    assert isinstance(cli.next_event(), HandshakeComplete)

    def mac(data: bytes) -> bytes:
        import hmac

        return hmac.new(k, data, hashlib.sha512).digest()[:32]

    def sha(data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    a_pub, b_pub = crypto_scalarmult_base(client_eph), crypto_scalarmult_base(server_eph)
    ab = crypto_scalarmult(client_eph, b_pub)
    a_big_b = crypto_scalarmult(client_eph, crypto_sign_ed25519_pk_to_curve25519(server.public))
    big_a_b = crypto_scalarmult(server_eph, crypto_sign_ed25519_pk_to_curve25519(client.public))
    key3 = sha(k + ab + a_big_b)
    key4 = sha(k + ab + a_big_b + big_a_b)
    client_sig = client.sign(k + server.public + sha(ab))
    zero = bytes(24)

    def drive(role: Role, reads: list[bytes], refuse: bool, eof: bool) -> tuple[Any, ...]:
        """Feed ``reads``; the events, bytes sent, trailing data and error it came to."""
        hs = machine(role)
        events: list[object] = []
        sent = [hs.data_to_send()]
        done = False
        pending = [*reads, b""] if eof else list(reads)
        try:
            for data in pending:
                hs.receive_data(data)
                while not done:
                    event = hs.next_event()
                    sent.append(hs.data_to_send())
                    if event is NEED_DATA:
                        break
                    events.append(event)
                    if isinstance(event, ClientAuthenticated):
                        if refuse:
                            hs.refuse()
                            _check(hs.data_to_send() == b"", "refuse() sends nothing")
                            return tuple(events), b"".join(sent), None, "refused"
                        hs.accept()
                        sent.append(hs.data_to_send())
                    elif isinstance(event, HandshakeComplete):
                        done = True
        except HandshakeFailed:
            _check(hs.data_to_send() == b"", "nothing is sent after a handshake error")
            try:
                hs.next_event()
            except HandshakeFailed:
                pass
            else:
                raise AssertionError("invariant broken: a failed handshake fails again") from None
            raise
        return tuple(events), b"".join(sent), hs.trailing_data, "complete" if done else "need"

    def make_run(role: Role) -> Callable[[bytes], str | None]:
        def run(data: bytes) -> str | None:
            reads, refuse, eof = _split(data)
            if len(reads) <= 1:
                return str(drive(role, reads, refuse, eof)[-1])
            try:
                whole: tuple[Any, ...] | str = drive(role, [b"".join(reads)], refuse, eof)
            except HandshakeFailed as exc:
                whole = f"{type(exc).__name__}: {exc.step}"
            try:
                pieces: tuple[Any, ...] | str = drive(role, reads, refuse, eof)
            except HandshakeFailed as exc:
                pieces = f"{type(exc).__name__}: {exc.step}"
                _check(pieces == whole, "the same bytes in pieces fail as when whole")
                raise
            _check(pieces == whole, "the same bytes in pieces give what they give whole")
            return str(pieces[-1])

        return run

    def hello(eph_pub: bytes) -> bytes:
        return mac(eph_pub) + eph_pub

    def mode(rng: random.Random) -> bytes:
        size = rng.choice([0, 0, 1, 7, 32, 63, rng.randrange(64)])
        return bytes(
            [size | (0x80 if rng.random() < 0.5 else 0) | (0x40 if rng.random() < 0.1 else 0)]
        )

    def tail(rng: random.Random) -> bytes:
        return rng.randbytes(rng.choice([0, 0, 1, 34, rng.randrange(100)]))

    def odd_key(rng: random.Random) -> bytes:
        return rng.choice([*_LOW_ORDER, rng.randbytes(32), stranger.public, server.public])

    def gen_server(rng: random.Random) -> bytes:
        """What a client could send: msg1 with a valid HMAC over any key, msg3 sealed with
        the right key over a bent signature or key."""
        choice = rng.randrange(4)
        if choice == 0:
            return mode(rng) + hello(odd_key(rng)) + rng.choice([msg3, rng.randbytes(112)])
        signer = rng.choice([client, stranger])
        signed = k + rng.choice([server.public, stranger.public]) + sha(ab)
        plain = bytearray(signer.sign(signed) + rng.choice([signer.public, odd_key(rng)]))
        if choice == 1:
            plain[rng.randrange(len(plain))] ^= 1 << rng.randrange(8)
        box = crypto_secretbox(bytes(plain), zero, rng.choice([key3, key3, key4]))
        return mode(rng) + msg1 + box + tail(rng)

    def gen_client(rng: random.Random) -> bytes:
        """What a server could send: msg2 with a valid HMAC over any key, msg4 sealed with
        the right key over a bent signature."""
        choice = rng.randrange(4)
        if choice == 0:
            return mode(rng) + hello(odd_key(rng)) + rng.choice([msg4, rng.randbytes(80)])
        signer = rng.choice([server, stranger])
        signed = k + client_sig + rng.choice([client.public, stranger.public]) + sha(ab)
        signature = bytearray(signer.sign(signed))
        if choice == 1:
            signature[rng.randrange(64)] ^= 1 << rng.randrange(8)
        box = crypto_secretbox(bytes(signature), zero, rng.choice([key4, key4, key3]))
        return mode(rng) + msg2 + box + tail(rng)

    tokens = [*_LOW_ORDER, a_pub, b_pub, server.public, client.public, msg1[:32]]
    expected = (HandshakeFailed,)
    return [
        Decoder(
            "handshake.server",
            "SecretHandshake(SERVER): msg1 and msg3 from the client, then trailing bytes",
            make_run(Role.SERVER),
            expected,
            [
                b"\x80" + msg1 + msg3,
                b"\x00" + msg1 + msg3 + b"box-stream bytes",
                b"\x81" + msg1 + msg3,
                b"\xa0" + msg1 + msg3[:50],
                b"\xc0" + msg1 + msg3,
                b"\x80" + msg1,
            ],
            tokens,
            gen_server,
            max_len=512,
            random_len=200,
            stream=True,
        ),
        Decoder(
            "handshake.client",
            "SecretHandshake(CLIENT): msg2 and msg4 from the server, then trailing bytes",
            make_run(Role.CLIENT),
            expected,
            [
                b"\x80" + msg2 + msg4,
                b"\x00" + msg2 + msg4 + b"box-stream bytes",
                b"\x81" + msg2 + msg4,
                b"\x8d" + msg2 + msg4[:30],
                b"\x80" + msg2,
            ],
            tokens,
            gen_client,
            max_len=512,
            random_len=200,
            stream=True,
        ),
    ]


# ---------------------------------------------------------------------------- box-stream


def _boxstream_decoder() -> Decoder:
    from p2psocial.errors import BoxStreamError, StreamCut
    from p2psocial.proto.boxstream import NEED_DATA, Data, Encoder, Goodbye
    from p2psocial.proto.boxstream import Decoder as BoxDecoder
    from p2psocial.proto.secretbox import SecretBox

    key, nonce = _seeded("box key"), _seeded("box nonce")[:24]
    start = int.from_bytes(nonce, "big")
    box = SecretBox(key)

    def n(i: int) -> bytes:
        return ((start + i) % (1 << 192)).to_bytes(24, "big")

    def encoded(*chunks: bytes, goodbye: bool = True) -> bytes:
        enc = Encoder(key, nonce)
        out = b"".join(enc.encrypt(c) for c in chunks)
        return out + (enc.goodbye() if goodbye else b"")

    def drive(reads: list[bytes], eof: bool) -> tuple[tuple[bytes, bool, str], Exception | None]:
        dec = BoxDecoder(key, nonce)
        data: list[bytes] = []
        goodbye = False
        try:
            for chunk in [*reads, b""] if eof else reads:
                dec.receive_data(chunk)
                while True:
                    event = dec.next_event()
                    if event is NEED_DATA:
                        break
                    if isinstance(event, Goodbye):
                        goodbye = True
                        break
                    _check(isinstance(event, Data) and bool(event.data), "Data is never empty")
                    assert isinstance(event, Data)
                    data.append(event.data)
            if goodbye:
                _check(isinstance(dec.next_event(), Goodbye), "Goodbye is returned again")
        except BoxStreamError as exc:
            try:
                dec.next_event()
            except BoxStreamError as again:
                _check(type(again) is type(exc), "a failed decoder raises the same type again")
            else:
                raise AssertionError("invariant broken: a failed decoder fails again") from None
            return (b"".join(data), goodbye, type(exc).__name__), exc
        return (b"".join(data), goodbye, "goodbye" if goodbye else "open"), None

    def run(data: bytes) -> str | None:
        reads, _, eof = _split(data)
        pieces, exc = drive(reads, eof)
        if len(reads) > 1:
            whole, _ = drive([b"".join(reads)], eof)
            _check(pieces == whole, "a stream in pieces gives what it gives whole")
        if exc is not None:
            raise exc
        return pieces[2]

    def gen(rng: random.Random) -> bytes:
        """Packets sealed with the right key: lying lengths, reused nonces, goodbye in the
        middle, empty bodies."""
        out: list[bytes] = []
        i = 0
        for _ in range(rng.randrange(1, 6)):
            kind = rng.randrange(8)
            body = rng.randbytes(rng.choice([0, 1, 16, rng.randrange(300), 4096]))
            sealed = box.seal(body, n(i + 1))
            length = len(body)
            if kind == 0:
                length = rng.choice([4096, 4097, 0xFFFF, rng.randrange(1 << 16)])
            elif kind == 1:  # goodbye here
                out.append(box.seal(bytes(18), n(i)))
                i += 1
                continue
            elif kind == 2:  # replay the last nonce
                i = max(0, i - 2)
            elif kind == 3:  # header of another shape
                out.append(box.seal(rng.randbytes(rng.choice([17, 18, 19])), n(i)))
                out.append(sealed[16:])
                i += 2
                continue
            header = box.seal(length.to_bytes(2, "big") + sealed[:16], n(i))
            out.append(header + sealed[16:])
            i += 2
        mode = rng.choice([0, 1, 5, 34, 63, rng.randrange(64)]) | (0x80 * rng.randrange(2))
        return bytes([mode]) + b"".join(out) + rng.randbytes(rng.choice([0, 0, 3]))

    seeds = [
        b"\x80" + encoded(),
        b"\x80" + encoded(b"hello"),
        b"\x00" + encoded(b"a", b"bc", b""),
        b"\x85" + encoded(b"x" * 4096, b"y" * 5000),
        b"\x80" + encoded(b"no goodbye", goodbye=False),
        b"\x00" + encoded(b"more to come", goodbye=False),
        b"\x80" + encoded(b"after goodbye") + b"junk",
        b"\xa2" + encoded(b"p" * 100, b"q" * 100),
    ]
    return Decoder(
        "boxstream",
        "box-stream Decoder: packets from the peer, in pieces and whole",
        run,
        (BoxStreamError, StreamCut),
        seeds,
        [bytes(18), b"\x10\x00", b"\x10\x01", b"\xff\xff", b"\x00\x00"],
        gen,
        max_len=20_000,
        random_len=300,
        stream=True,
    )


# ---------------------------------------------------------------------------- packets


def _packet_decoders() -> list[Decoder]:
    from p2psocial.errors import CodecError, FramingError
    from p2psocial.proto.codec import BodyCodec, JsonCodec, MsgpackCodec
    from p2psocial.proto.packets import (
        NEED_DATA,
        CallState,
        CallType,
        ConnectionState,
        ErrorCode,
        ErrorInfo,
        Goodbye,
        InvalidRequest,
        PacketStream,
        Request,
        StreamEnded,
    )

    def ours(codec: BodyCodec) -> tuple[PacketStream, bytes]:
        """Our side, with calls of every kind open (ids 1..6), and what it sent."""
        ps = PacketStream(codec)
        sent = [
            ps.request("whoami")[1],
            ps.request("blobs.has", ["&x.sha256"])[1],
            ps.open_stream("createHistoryStream", {"id": "@x"}, CallType.SOURCE)[1],
            ps.open_stream("blobs.add", [], CallType.SINK)[1],
            ps.open_stream("replicate.ebt", {"version": 3}, CallType.DUPLEX)[1],
            ps.request("invite.use", {"feed": "@y"})[1],
        ]
        return ps, b"".join(sent)

    def peer_stream(codec: BodyCodec, variant: int) -> bytes:
        """What an honest peer sends back: answers, stream items, its own calls."""
        _, to_peer = ours(codec)
        peer = PacketStream(codec)
        peer.receive_data(to_peer)
        while peer.next_event() is not NEED_DATA:
            pass
        out = [
            peer.respond(-1, {"id": "@peer.ed25519"}),
            peer.respond_error(-2, ErrorCode.BAD_REQUEST, "no such blob"),
            peer.stream_send(-3, {"key": "%m.sha256", "value": [1, 2.5, None, True]}),
            peer.stream_send(-3, "text"),
            peer.stream_end(-3),
            peer.stream_end(-4, ErrorInfo("refused", "no sinks here")),
            peer.stream_send(-5, {"clock": {"@a": 10}}),
            peer.request("gossip.ping", [1])[1],
            peer.open_stream("createHistoryStream", {"id": "@me"}, CallType.SOURCE)[1],
            peer.open_stream("replicate.ebt", {"version": 3}, CallType.DUPLEX)[1],
            peer.open_stream("blobs.add", [], CallType.SINK)[1],
        ]
        if variant >= 1:
            out += [
                peer.stream_send(3, [1, [2, [3, {"deep": "x" * 200}]]]),
                peer.stream_send(4, b"blob bytes" if codec.body_type == 0 else "blob"),
                peer.stream_end(3, ErrorInfo("internal", "oops", "TypeError")),
                peer.stream_end(-5),
                peer.respond(-6, True),
            ]
        if variant >= 2:
            out += [peer.stream_send(4, "z" * 4000) for _ in range(40)]  # past compaction
        out.append(peer.goodbye())
        return b"".join(out)

    def drive(
        codec: BodyCodec, reads: list[bytes], eof: bool
    ) -> tuple[str, list[object], Exception | None]:
        """Feed ``reads``: (outcome, events and our answers, the error it came to)."""
        ps, _ = ours(codec)
        events: list[object] = []
        goodbye = False
        try:
            for chunk in [*reads, b""] if eof else reads:
                ps.receive_data(chunk)
                while True:
                    event = ps.next_event()
                    if event is NEED_DATA:
                        break
                    events.append(event)
                    if isinstance(event, Goodbye):
                        if ps.our_state is ConnectionState.OPEN:
                            events.append(ps.goodbye())
                        goodbye = True
                        break
                    answer(ps, event, events)
            if goodbye:
                _check(isinstance(ps.next_event(), Goodbye), "Goodbye is returned again")
        except (FramingError, CodecError) as exc:
            try:
                ps.next_event()
            except FramingError:
                pass
            else:
                raise AssertionError("invariant broken: a failed stream fails again") from None
            return type(exc).__name__, events, exc
        return "goodbye" if goodbye else "open", events, None

    def answer(ps: PacketStream, event: object, log: list[object]) -> None:
        """Answer like the shell does, so hostile input also meets our send paths."""
        if ps.our_state is not ConnectionState.OPEN:
            return
        if isinstance(event, Request):
            if event.type is CallType.ASYNC:
                log.append(ps.respond(event.req_id, {"ok": event.name}))
            elif event.type is CallType.SINK:
                log.append(ps.stream_end(event.req_id))
            else:
                log.append(ps.stream_send(event.req_id, "item"))
        elif isinstance(event, InvalidRequest):
            if event.stream:
                log.append(ps.stream_end(event.req_id, ErrorInfo("bad_request", event.reason)))
            else:
                log.append(ps.respond_error(event.req_id, "bad_request", event.reason))
        elif isinstance(event, StreamEnded):
            if ps.call_state(event.req_id) is CallState.REMOTE_ENDED:
                log.append(ps.stream_end(event.req_id))

    def make_run(codec: BodyCodec) -> Callable[[bytes], str | None]:
        def run(data: bytes) -> str | None:
            reads, _, eof = _split(data)
            outcome, events, exc = drive(codec, reads, eof)
            if len(reads) > 1:
                whole, whole_events, _ = drive(codec, [b"".join(reads)], eof)
                _check(  # repr: a NaN in a body is not == to itself
                    (outcome, repr(events)) == (whole, repr(whole_events)),
                    "frames in pieces give what they give whole",
                )
            if exc is not None:
                raise exc
            return "/".join(type(e).__name__ for e in events[:12]) + outcome

        return run

    def header(flags: int, length: int, req: int) -> bytes:
        return struct.pack(
            ">BIi", flags & 0xFF, length % (1 << 32), max(-(2**31), min(req, 2**31 - 1))
        )

    def make_gen(codec: BodyCodec) -> Callable[[random.Random], bytes]:
        bodies = [
            codec.encode({"name": "x", "args": [], "type": "async"}),
            codec.encode({"name": "s", "args": {}, "type": "source"}),
            codec.encode({"name": "d", "args": [], "type": "duplex"}),
            codec.encode({"message": "m", "name": "Error", "code": "c"}),
            codec.encode(True),
            codec.encode({"name": 1, "args": 2, "type": "sink"}),
            codec.encode("just text"),
            b"\xc1",
            b"",
        ]

        def gen(rng: random.Random) -> bytes:
            """Well-formed frames with any flags and request numbers, real bodies."""
            out = []
            for _ in range(rng.randrange(1, 8)):
                body = rng.choice(bodies)
                flags = rng.choice([0, 1, 2, 3, 4, 8, 12, 0x10, 0x80]) | rng.choice(
                    [0, codec.body_type]
                )
                req = rng.choice([1, 2, 3, 4, 5, 6, 7, -1, -2, -3, -4, -5, -6, -7, 0, 2**31 - 1])
                req = req if rng.random() < 0.9 else rng.choice(_INTS)
                length = len(body) if rng.random() < 0.9 else rng.choice(_INTS)
                out.append(header(flags, length, req) + body)
            if rng.random() < 0.5:
                out.append(bytes(9))
            mode = rng.choice([0, 1, 9, rng.randrange(64)]) | (0x80 * rng.randrange(2))
            return bytes([mode]) + b"".join(out)

        return gen

    tokens = [bytes(9), b"\x08", b"\x0c", b"\x04", b"\x00\x10\x10\x00", b"\xff\xff\xff\xff"]
    tokens += [b"\x00\x00\x00\x01", b"\xff\xff\xff\xfa", b"\x80\x00\x00\x00", b"\x7f\xff\xff\xff"]
    decoders = []
    for name, codec, extra in (
        ("packets.msgpack", MsgpackCodec(), [b"\xc0", b"\xc3", b"\x91", b"\x81", b"\xa4type"]),
        ("packets.json", JsonCodec(), [b"{", b"}", b'"name":', b'"type":"duplex"', b"true"]),
    ):
        decoders.append(
            Decoder(
                name,
                f"PacketStream({type(codec).__name__}) with calls of each kind open: "
                "frames from the peer, in pieces and whole; events answered like the shell",
                make_run(codec),
                (FramingError, CodecError),
                [b"\x80" + peer_stream(codec, v) for v in (0, 1)]
                + [b"\x00" + peer_stream(codec, 1), b"\x9b" + peer_stream(codec, 0)]
                + [b"\x80" + peer_stream(codec, 2)],
                tokens + extra,
                make_gen(codec),
                max_len=200_000,
                random_len=300,
                stream=True,
            )
        )
    return decoders


# ---------------------------------------------------------------------------- codecs

_MSGPACK_TYPES = (type(None), bool, int, float, str, bytes)


def _check_plain(value: object, keys: tuple[type, ...]) -> None:
    """Only the documented value types, map keys of ``keys`` types."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is list:
            stack.extend(item)
        elif type(item) is dict:
            for key, inner in item.items():
                _check(type(key) in keys, f"map key of type {type(key).__name__}")
                stack.append(inner)
        else:
            _check(type(item) in _MSGPACK_TYPES, f"decoded a {type(item).__name__}")


def _codec_decoders() -> list[Decoder]:
    import msgpack

    from p2psocial.errors import CodecError
    from p2psocial.proto.codec import JsonCodec, MsgpackCodec

    mp, js = MsgpackCodec(), JsonCodec()

    def run_msgpack(data: bytes) -> str | None:
        if not data:
            return None
        value = mp.decode(data[0] & 3, data[1:])
        _check_plain(value, (str, bytes))
        return type(value).__name__

    def run_json(data: bytes) -> str | None:
        if not data:
            return None
        value = js.decode(data[0] & 3, data[1:])
        _check_plain(value, (str,))
        return type(value).__name__

    values: list[object] = [
        None,
        True,
        0,
        -1,
        2**64 - 1,
        -(2**63),
        1.5,
        float("inf"),
        "text",
        "ünï©ødé",
        b"\x00bytes",
        [1, [2, [3]]],
        {"a": 1, "b": [None, {"c": b"d"}]},
        {b"k": "bytes key"},
        {"name": "replicate.ebt", "args": [{"version": 3}], "type": "duplex"},
        [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]],
    ]
    mp_seeds = [b"\x00" + msgpack.packb(v, use_bin_type=True) for v in values]
    mp_seeds += [
        b"\x00" + msgpack.packb(msgpack.ExtType(5, b"ext")),
        b"\x00" + msgpack.packb(msgpack.Timestamp(1, 2), datetime=False),
        b"\x00" + b"\x91" * 1100 + b"\xc0",
        b"\x00\xdf\xff\xff\xff\xff",
        b"\x00\xdd\x7f\xff\xff\xff",
        b"\x00\x81\x01\x02",
        b"\x01h\xc3\xa9llo",
        b"\x02{}",
    ]
    js_values = [v for v in values if "b'" not in repr(v) and "inf" not in repr(v)]
    js_seeds = [b"\x02" + json.dumps(v).encode() for v in js_values]
    js_seeds += [
        b'\x02"\\ud800\\udc00\\ud800"',
        b"\x02" + b"[" * 3000 + b"]" * 3000,
        b"\x02" + b"9" * 4400,
        b"\x02[1e400, -0, 0.1e-400]",
        b"\x02NaN",
        b'\x02{"a":1,"a":2}',
        b"\x02 1 2",
        b"\x00\xff\xfe",
        b"\x01\xc3\x28",
    ]
    mp_tokens = [bytes([b]) for b in (0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC7, 0xD4, 0xD6, 0xD7)]
    mp_tokens += [b"\xdc\xff\xff", b"\xde\xff\xff", b"\xdd\x00\x01\x00\x00", b"\xcf" + b"\xff" * 8]
    mp_tokens += [b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", b"\xd9\x05", b"\xa3abc", b"\xc4\x00"]
    js_tokens = [b"{", b"}", b"[", b"]", b'"', b"\\u", b"\\ud800", b",", b":", b"null", b"1e999"]
    js_tokens += [b"-0", b"NaN", b"Infinity", b"true", b"\xff", b"\xc0\x80", b"\xed\xa0\x80"]
    return [
        Decoder(
            "codec.msgpack",
            "MsgpackCodec.decode: first byte & 3 the frame's body type, the rest the body",
            run_msgpack,
            (CodecError,),
            mp_seeds,
            mp_tokens,
            None,
            max_len=8192,
        ),
        Decoder(
            "codec.json",
            "JsonCodec.decode: first byte & 3 the frame's body type, the rest the body",
            run_json,
            (CodecError,),
            js_seeds,
            js_tokens,
            None,
            max_len=12_000,
        ),
    ]


# ---------------------------------------------------------------------------- feed


def _cbor_head(major: int, value: int, width: int | None = None) -> bytes:
    """A CBOR head, canonical unless ``width`` (1, 2, 4 or 8 bytes) forces a longer one."""
    if width is None:
        width = 0 if value < 24 else 1 if value < 256 else 2 if value < 65536 else 4
        width = 8 if value >= 1 << 32 else width
    if width == 0:
        return bytes([major << 5 | value])
    code = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | code]) + (value % (1 << (8 * width))).to_bytes(width, "big")


def _entry_errors() -> tuple[type[BaseException], ...]:
    """What a peer's entry bytes may raise (BadSignature last: only verification)."""
    from p2psocial import errors

    return (
        errors.EntryTooLarge,
        errors.MalformedEntry,
        errors.UnknownFormat,
        errors.NonCanonical,
        errors.ContentTooLarge,
        errors.BadSignature,
    )


def _feed_decoders() -> list[Decoder]:
    import cbor2

    from p2psocial.errors import (
        ContentTooLarge,
        InvalidContent,
        NonCanonical,
    )
    from p2psocial.feed import entry as v1
    from p2psocial.feed.content import decode_content, encode_content
    from p2psocial.feed.formats import decode_entry, peek_feed, peek_seq, raw_signature_ok
    from p2psocial.identity import Keypair, feed_id

    author, other = Keypair.from_seed(_seeded("author")), Keypair.from_seed(_seeded("x"))

    def run_entry(data: bytes) -> str | None:
        feed, seq = peek_feed(data), peek_seq(data)
        ok = raw_signature_ok(data)
        _check(isinstance(ok, bool), "raw_signature_ok gives a bool")
        entry = decode_entry(data)
        _check(feed == entry.author, "peek_feed agrees with decode_entry")
        _check(seq == entry.seq, "peek_seq agrees with decode_entry")
        fast = v1._decode_fast(data)
        if fast is not None:
            _check(fast == v1._decode_slow(data), "the fast path decodes as the slow path")
        v1.verify_signature(entry)
        return "valid"

    def entry_raw(
        keys: Keypair, seq: int, previous: bytes | None, ts: int, content: bytes
    ) -> bytes:
        return v1.create_entry(keys, seq, previous, ts, content).raw

    post = encode_content({"type": "post", "text": "hello"})
    first = v1.create_entry(author, 1, None, 1_700_000_000_000, post)
    entry_seeds = [
        first.raw,
        entry_raw(author, 2, first.id, 1_700_000_000_001, post),
        entry_raw(author, 24, first.id, 0, b""),
        entry_raw(author, 256, first.id, 2**64 - 1, b"x" * 8192),
        entry_raw(author, 2**32, first.id, 2**32, post),
        entry_raw(author, 2**64 - 1, first.id, 65536, post),
        entry_raw(other, 1, None, 23, post),
    ]

    def field_bytes(rng: random.Random, good: object) -> bytes:
        """One entry field: canonical, or bent (wider heads, other types, tags)."""
        r = rng.random()
        if r < 0.75:
            return cbor2.dumps(good, canonical=True)
        if r < 0.85 and isinstance(good, int) and good >= 0:
            return _cbor_head(0, good, rng.choice([1, 2, 4, 8]))
        if r < 0.9 and isinstance(good, bytes):
            return b"\x5f" + cbor2.dumps(good[:10]) + cbor2.dumps(good[10:]) + b"\xff"
        return cbor2.dumps(
            rng.choice(
                [
                    *(None, -1, 0, 2**64, 1.0, "1", good, [good], b"", rng.randbytes(31)),
                    *(cbor2.CBORTag(2, b"\x01"), cbor2.CBORTag(24, b"\x01"), rng.randbytes(33)),
                ]
            ),
            canonical=True,
        )

    def gen_entry(rng: random.Random) -> bytes:
        """Entries from fields, some bent; signed when the author is ours."""
        keys = rng.choice([author, author, other])
        seq = rng.choice([1, 1, 2, 23, 24, 255, 256, 65535, 65536, 2**32, 2**64 - 1, 0])
        content = rng.choice([post, b"", b"x" * 8192, b"y" * 8193])
        size = rng.choice([len(content), len(content), 2**64 - 1, 8193, 0])
        previous = None if seq == 1 else first.id
        if rng.random() < 0.1:
            previous = first.id if previous is None else None
        version = 1 if rng.random() < 0.9 else rng.choice([0, 2, -1, 255])
        fields = [
            field_bytes(rng, version),
            field_bytes(rng, keys.public),
            field_bytes(rng, seq),
            field_bytes(rng, previous),
            field_bytes(rng, rng.choice(_INTS[:23])),
            field_bytes(rng, hashlib.sha256(content).digest()),
            field_bytes(rng, size),
        ]
        count = 8 if rng.random() < 0.9 else rng.choice([0, 7, 9, 31])
        body = b"".join(fields)
        sig = keys.sign(b"\x87" + body)
        if rng.random() < 0.2:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        if rng.random() < 0.05:
            return b"\x9f" + body + b"\x58\x40" + sig + b"\xff"
        return _cbor_head(4, count) + body + b"\x58\x40" + sig

    private = bytes(range(256)) * 3

    def nested(depth: int) -> list[Any]:
        value: list[Any] = []
        for _ in range(depth):
            value = [value]
        return value

    content_values: list[Any] = [
        {"type": "post", "text": "hello", "root": "%x.sha256", "mentions": ["@a.ed25519"]},
        {"type": "contact", "contact": feed_id(other.public), "following": True},
        {"type": "pub", "address": {"host": "example.org", "port": 8008}},
        {"type": "x", "n": [0, -1, 2**64 - 1, -(2**64), 1.5, -0.0, float("inf")]},
        {"type": "x", "nan": float("nan"), "b": b"\x00\xff", "none": None, "t": True},
        {"type": "t" * 64, "deep": [[[[[[[[[[{"a": [[[[[[1]]]]]]}]]]]]]]]]]},
        {"type": "x", "big": "y" * 8100},
        private,
    ]
    content_seeds = [encode_content(v) for v in content_values]
    content_seeds += [
        cbor2.dumps({"type": "x", "z": 1}),
        cbor2.dumps({"type": "x", "a": 1}, canonical=False)[:-1] + b"\x02",
        b"\xbf\x64type\x61x\xff",
        b"\xa1\x64type\x7f\x61x\xff",
        cbor2.dumps({"type": "x", "tag": cbor2.CBORTag(1, 0)}),
        cbor2.dumps({"type": "x", 1: 2}),
        bytes.fromhex("d81ca2647479706561786161d81d00"),  # a map that holds itself
        bytes.fromhex("a2647479706561786161d81c81d81d00"),  # ... a list that holds itself
        cbor2.dumps({"type": "x", "deep": nested(31)}, canonical=True),
        cbor2.dumps({"type": "x", "deep": nested(32)}, canonical=True),
        cbor2.dumps(private * 4),
        cbor2.dumps([1, 2]),
    ]

    def rand_value(rng: random.Random, depth: int) -> object:
        r = rng.random()
        if depth > 3 or r < 0.55:
            return rng.choice(
                [
                    *(None, True, False, rng.choice(_INTS), 1.5, -0.0, float("nan")),
                    *(float("inf"), 5e-324, 1e300, "", "ü" * rng.randrange(5)),
                    *(rng.randbytes(rng.randrange(9)), cbor2.undefined),
                    cbor2.CBORSimpleValue(rng.randrange(20)),
                ]
            )
        if r < 0.75:
            return {
                rng.choice(["type", "text", "a", "", "ü"]) if rng.random() < 0.9 else 1: (
                    rand_value(rng, depth + 1)
                )
                for _ in range(rng.randrange(4))
            }
        if r < 0.93:
            return [rand_value(rng, depth + 1) for _ in range(rng.randrange(4))]
        tag = rng.choice([0, 1, 2, 3, 4, 5, 24, 25, 28, 29, 30, 32, 35, 36, 37, 258, 55799])
        return cbor2.CBORTag(tag, rand_value(rng, depth + 1))

    def gen_content(rng: random.Random) -> bytes:
        """Random CBOR data-model values, mostly maps with a type, canonical or not."""
        value = rand_value(rng, 0)
        if rng.random() < 0.7:
            value = {"type": rng.choice(["post", "", "t" * 65, "x"]), "v": value}
        return cbor2.dumps(value, canonical=rng.random() < 0.8)

    cbor_tokens = [bytes([b]) for b in (0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1F, 0x38, 0x3B, 0x5F)]
    cbor_tokens += [bytes([b]) for b in (0x7F, 0x9F, 0xBF, 0xFF, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8)]
    cbor_tokens += [b"\xf9\x7e\x00", b"\xf9\x7e\x01", b"\xfa\x7f\xc0\x00\x00", b"\xc2\x41\x01"]
    cbor_tokens += [b"\xd8\x1c", b"\xd8\x1d\x00", b"\xd9\xd9\xf7", b"\x58\x20", b"\x58\x40"]
    cbor_tokens += [b"\x64type", b"\x88\x01\x58\x20", b"\x9b" + b"\xff" * 8]
    return [
        Decoder(
            "feed.entry",
            "feed.formats decode_entry (v1 fast and slow paths), peek_feed, peek_seq, "
            "raw_signature_ok, verify_signature",
            run_entry,
            _entry_errors(),
            entry_seeds,
            [*cbor_tokens, author.public],
            gen_entry,
            max_len=700,
            random_len=200,
        ),
        Decoder(
            "feed.content",
            "feed.content decode_content: CBOR content maps and private byte strings",
            lambda data: type(decode_content(data)).__name__,
            (ContentTooLarge, InvalidContent, NonCanonical),
            content_seeds,
            cbor_tokens,
            gen_content,
            max_len=9000,
            random_len=300,
        ),
    ]


# ---------------------------------------------------------------------------- private box


def _privatebox_decoder() -> Decoder:
    import cbor2
    from nacl.bindings import (
        crypto_scalarmult,
        crypto_scalarmult_base,
        crypto_secretbox,
        crypto_sign_ed25519_pk_to_curve25519,
    )

    from p2psocial.errors import PrivateBoxError
    from p2psocial.feed.content import encode_content
    from p2psocial.identity import Keypair, feed_id
    from p2psocial.proto.privatebox import decrypt, encrypt, open_checked

    me = Keypair.from_seed(_seeded("reader"))
    others = [Keypair.from_seed(_seeded(f"other {i}")) for i in range(7)]
    authors: list[bytes | None] = [None, me.public, others[0].public, others[6].public]

    def run(data: bytes) -> str | None:
        if not data:
            return None
        author = authors[data[0] & 3]
        body = data[1:]
        plain = decrypt(body, me.secret)
        opened = open_checked(body, me.secret, author)
        _check((plain is None) == (opened is None), "decrypt and open_checked agree")
        return "not ours" if opened is None else "opened"

    def content(recps: Sequence[bytes], text: str = "hi") -> bytes:
        return encode_content({"type": "post", "text": text, "recps": [feed_id(r) for r in recps]})

    def sealed(plaintext: bytes, recipients: Sequence[bytes], tag: str) -> bytes:
        return encrypt(
            plaintext,
            recipients,
            nonce=_seeded(tag + "n")[:24],
            ephemeral_secret=_seeded(tag + "e"),
            body_key=_seeded(tag + "b"),
        )

    everyone = [o.public for o in others[:6]] + [me.public]
    seeds = [
        b"\x01" + sealed(content([me.public]), [me.public], "1"),
        b"\x02"
        + sealed(content([others[0].public, me.public]), [others[0].public, me.public], "2"),
        b"\x00" + sealed(content(everyone), everyone, "7"),
        b"\x03" + sealed(content([me.public]), [others[1].public], "not ours"),
        b"\x01" + sealed(b"not cbor", [me.public], "junk"),
        b"\x01" + sealed(cbor2.dumps(b"bytes"), [me.public], "bytes"),
        b"\x00" + sealed(content([me.public], "x" * 7000), [me.public], "big"),
    ]

    valid_plain = content([me.public, others[0].public])
    too_big = cbor2.dumps({"type": "post", "text": "y" * 8200}, canonical=True)
    my_curve = crypto_sign_ed25519_pk_to_curve25519(me.public)
    other_curve = crypto_sign_ed25519_pk_to_curve25519(others[2].public)

    def gen(rng: random.Random) -> bytes:
        """Ciphertexts whose slot opens with our key: any count byte, any slot position,
        short or tampered bodies, plaintexts that are not content."""
        nonce, eph, body_key = rng.randbytes(24), rng.randbytes(32), rng.randbytes(32)
        eph_pub = crypto_scalarmult_base(eph)
        low_order = rng.random() < 0.05
        if low_order:
            eph_pub = rng.choice(_LOW_ORDER)
        slots = rng.choice([0, 1, 1, 2, 3, 7, 8])
        mine = rng.randrange(slots + 1)
        count = rng.choice([slots, slots, mine, mine + 1, 0, 7, 8, 255, rng.randrange(256)])
        parts = [nonce, eph_pub]
        for i in range(slots):
            if i == mine and not low_order:
                key_len = 32 if rng.random() < 0.9 else rng.choice([31, 33])
                slot_plain = bytes([count % 256]) + body_key[:key_len] + b"\x00" * (key_len - 32)
                slot_key = crypto_scalarmult(eph, my_curve)
                parts.append(crypto_secretbox(slot_plain, nonce, slot_key))
            elif rng.random() < 0.5 and not low_order:
                slot_key = crypto_scalarmult(eph, other_curve)
                parts.append(crypto_secretbox(bytes([slots]) + body_key, nonce, slot_key))
            else:
                parts.append(rng.randbytes(49))
        plain = rng.choice(
            [
                *(valid_plain, content([others[3].public]), b"", rng.randbytes(rng.randrange(40))),
                *(cbor2.dumps({"type": "x"}), cbor2.dumps([1]), too_big),
                cbor2.dumps({"type": "x", "recps": "not a list"}),
            ]
        )
        body = crypto_secretbox(plain, nonce, body_key)
        cut = rng.random()
        if cut < 0.1:
            body = body[: rng.randrange(17)]
        elif cut < 0.15:
            body = body[:-1] + bytes([body[-1] ^ 1])
        return bytes([rng.randrange(4)]) + b"".join(parts) + body

    return Decoder(
        "privatebox",
        "privatebox decrypt and open_checked with a real secret key; first byte & 3 picks "
        "the author (none, us, a listed recipient, someone else)",
        run,
        (PrivateBoxError,),
        seeds,
        [*_LOW_ORDER, bytes([1]), bytes([7]), bytes([8])],
        gen,
        max_len=9000,
        random_len=600,
    )


# ---------------------------------------------------------------------------- JSON-RPC


def _jsonrpc_decoders() -> list[Decoder]:
    from p2psocial.errors import CodecError, InvalidParams, LineTooLong
    from p2psocial.proto import jsonrpc as rpc

    max_line = 512

    def lines(reads: list[bytes]) -> Iterable[bytes]:
        reader = rpc.LineReader(max_line)
        for chunk in reads:
            reader.receive_data(chunk)
            while (line := reader.next_line()) is not None:
                _check(len(line) <= max_line, "a line within the limit")
                if line.strip():
                    yield line

    def run_request(data: bytes) -> str | None:
        """The server's path: parse, then encode every answer as the server would."""
        reads, _, _ = _split(data)
        kinds = []
        for line in lines(reads):
            items, is_batch = rpc.parse_line(line, max_batch=8)
            bodies = []
            for item in items:
                if isinstance(item, rpc.ErrorResponse):
                    bodies.append(rpc.encode_error(item.id, item.error))
                    kinds.append(str(item.error.code))
                    continue
                try:
                    item.named_params()
                    bodies.append(rpc.encode_response(item.id, {"method": item.method}))
                    kinds.append("request")
                except InvalidParams as exc:
                    bodies.append(rpc.encode_error(item.id, rpc.error_for_exception(exc)))
                    kinds.append("InvalidParams")
            if is_batch:
                rpc.encode_batch(bodies)
            else:
                _check(len(items) == 1, "a single request gives one item")
        return "/".join(kinds[:8])

    def run_server(data: bytes) -> str | None:
        reads, _, _ = _split(data)
        kinds = []
        for line in lines(reads):
            kinds += [type(m).__name__ for m in rpc.parse_server_line(line)]
        return "/".join(kinds[:8])

    req = [
        rpc.encode_request(1, "whoami"),
        rpc.encode_request("abc", "feed", {"id": "@x.ed25519", "limit": 5, "reverse": True}),
        rpc.encode_request(2.5, "publish", {"content": {"type": "post", "text": "ü\u2028"}}),
        rpc.encode_notification("ping"),
        b'[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b","params":[1]}]\n',
        b'{"jsonrpc":"2.0","id":null,"method":"m","params":[1,2]}\r\n\n\n',
        b'{"jsonrpc":"2.0","id":"\\ud800","method":"\\udfff","params":{"\\ud800":1}}\n',
        b"[]\n[1,2,3]\n[[]]\n{}\n",
        b'{"jsonrpc":"2.0","id":1e400,"method":"m"}\n{"jsonrpc":"1.0","id":true}\n',
        b'{"jsonrpc":"2.0","id":' + b"9" * 400 + b',"method":"m"}\n',
        b"[" * 200 + b"]" * 200 + b"\nNaN\n-Infinity\n\xff\xfe\n",
        b'{"jsonrpc":"2.0","id":1,"method":"m","params":"x"}\n' + b" " * 600 + b"\n",
        b"[" + b",".join([b'{"jsonrpc":"2.0","id":1,"method":"m"}'] * 9) + b"]\n",
    ]
    srv = [
        rpc.encode_response(1, {"id": "@x.ed25519", "seq": 5}),
        rpc.encode_error(2, rpc.ErrorObject(rpc.NOT_FOUND, "no such feed", {"type": "NotFound"})),
        rpc.encode_error(None, rpc.ErrorObject(rpc.REQUEST_TOO_LARGE, "too long")),
        rpc.encode_message_notification("s1", rpc.dumps({"key": "%m.sha256", "value": 1})),
        rpc.encode_overflow_notification("s1", 12),
        rpc.encode_batch([rpc.encode_response(1, None), rpc.encode_response("2", [1])]),
        b'{"jsonrpc":"2.0","id":1}\n{"jsonrpc":"2.0","method":1}\n{"jsonrpc":"2.0","id":[]}\n',
        b'{"jsonrpc":"2.0","id":3,"error":{"code":1.5,"message":"m"}}\n[]\n[1]\n',
    ]
    tokens = [b"{", b"}", b"[", b"]", b'"', b"\\u", b"\\ud800", b",", b":", b"null", b"\n"]
    tokens += [b"\r\n", b'"jsonrpc":"2.0"', b'"id":', b'"method":', b'"params":', b'"error":']
    tokens += [b'"result":', b"1e999", b"-0", b"NaN", b"true", b"\xff", b"\xc0\x80", b" " * 300]
    return [
        Decoder(
            "jsonrpc.request",
            "LineReader (512-byte lines) + parse_line (batches of at most 8) + the "
            "server's answer encoding (encode_error, named_params, encode_response, "
            "encode_batch)",
            run_request,
            (LineTooLong,),
            [bytes([m]) + line for line in req for m in (0, 0x80)] + [b"\x03" + b"".join(req)],
            tokens,
            None,
            max_len=4096,
            random_len=300,
            stream=True,
        ),
        Decoder(
            "jsonrpc.server",
            "LineReader (512-byte lines) + parse_server_line: what the client reads",
            run_server,
            (LineTooLong, CodecError),
            [bytes([m]) + line for line in srv for m in (0, 0x80)] + [b"\x05" + b"".join(srv)],
            tokens,
            None,
            max_len=4096,
            random_len=300,
            stream=True,
        ),
    ]


# ---------------------------------------------------------------------------- replication


def _replication_decoder() -> Decoder:
    import msgpack

    from p2psocial.errors import (
        CodecError,
        InvalidContent,
        RemoteProtocolError,
    )
    from p2psocial.feed.content import decode_content, encode_content
    from p2psocial.feed.entry import create_entry
    from p2psocial.feed.formats import decode_entry, peek_feed, peek_seq
    from p2psocial.identity import Keypair
    from p2psocial.proto.codec import MsgpackCodec
    from p2psocial.proto.replication import (
        DEFAULT_STALL_MS,
        FORKED,
        MAX_NOTE,
        NOT_REPLICATING,
        Replicator,
        make_note,
        parse_message,
    )

    codec = MsgpackCodec()
    ka, kb, kc = (Keypair.from_seed(_seeded(f"feed {n}")) for n in "abc")
    a, b, c = ka.public, kb.public, kc.public
    f, d = _seeded("forked"), _seeded("held only")
    feeds = [a, b, c, d, f]
    chain: list[tuple[bytes, bytes]] = []
    previous = None
    for seq in range(1, 8):
        content = encode_content({"type": "post", "text": f"entry {seq}"})
        entry = create_entry(ka, seq, previous, 1000 + seq, content)
        previous = entry.id
        chain.append((entry.raw, content))
    c1 = create_entry(kc, 1, None, 5, chain[0][1]).raw

    def run(data: bytes) -> str | None:
        """First byte: the session around the message (bit 0: another peer is connected
        first, bits 1-2: the peer's own feed, bit 3: the other peer leaves before the
        message, bit 4: the forked feed is wanted too); the rest: the message body."""
        setup, body = (data[0], data[1:]) if data else (0, b"")
        message = codec.decode(0, body)
        clock, entries = parse_message(message)
        rep = Replicator({a: 5, b: 3, d: 9}, {a, b, c} | ({f} if setup & 16 else set()), {f})
        if setup & 1:
            rep.peer_connected("other", 1000)
        rep.peer_connected("peer", 1000, key=(a, c, None, b)[setup >> 1 & 3])
        if setup & 1 and setup & 8:
            rep.peer_disconnected("other", 1500)
        if clock is not None:
            rep.notes_received("peer", clock, 2000)
        for raw, content in entries or ():
            feed, seq = peek_feed(raw), peek_seq(raw)
            if feed is not None and seq is not None:
                rep.below_floor("peer", feed, seq)
            entry = decode_entry(raw)
            if content is not None:
                decode_content(content)
            rep.entries_stored(entry.author, entry.seq, 2500)
        for now in (2000 + DEFAULT_STALL_MS, 3000 + 2 * DEFAULT_STALL_MS):
            rep.tick(now)
            rep.take_notes("peer")
            rep.to_send("peer")
        rep.progress()
        rep.peer_progress("peer")
        rep.peer_disconnected("peer", 20_000)
        rep.tick(20_000 + DEFAULT_STALL_MS)
        return f"{clock is not None}/{entries is not None}"

    def pack(value: object, setup: int = 1) -> bytes:
        packed: bytes = msgpack.packb(value, use_bin_type=True)
        return bytes([setup]) + packed

    seeds = [
        pack({"clock": {a: make_note(5, True), b: make_note(0, False), c: -1, f: -2}}),
        pack({"entries": [[raw, content] for raw, content in chain[5:]]}),
        pack({"clock": {c: make_note(1, True)}, "entries": [[c1, None], list(chain[0])]}),
        pack({"clock": {a: make_note(2**40, True), d: make_note(9, True)}}),
        pack({"clock": {}, "entries": []}),
        pack({}),
        pack({"clock": {a: make_note(7, True), c: make_note(3, False)}}, 8),
        pack({"clock": {b: make_note(9, False), f: make_note(1, True)}}, 0x1B),
        pack({"entries": [list(p) for p in chain]}, 2),
    ]
    notes = [NOT_REPLICATING, FORKED, -3, 0, 1, 10, 11, 12, MAX_NOTE, MAX_NOTE + 1, 2**64 - 1]
    odd_values: list[object] = [True, 1.5, None, "1", b"\x01", [1]]

    def gen(rng: random.Random) -> bytes:
        """Clocks over our feeds with edge-case notes; batches of real and bent pairs."""
        message: dict[object, object] = {}
        if rng.random() < 0.8:
            clock: dict[object, object] = {}
            for _ in range(rng.randrange(6)):
                key: object = rng.choice(feeds) if rng.random() < 0.9 else rng.randbytes(31)
                value: object = rng.choice(notes) if rng.random() < 0.95 else rng.choice(odd_values)
                if rng.random() < 0.5 and not isinstance(value, bool) and isinstance(value, int):
                    value = make_note(rng.choice([0, 4, 5, 6, 3, 1_000_005]), rng.random() < 0.5)
                clock[key] = value
            message["clock"] = clock if rng.random() < 0.95 else [1]
        if rng.random() < 0.5:
            pool: list[object] = [list(p) for p in chain] + [[c1, None], [c1, b""], [b"", None]]
            pool += [[chain[0][0] + b"x", None], [chain[0][0]], "pair", [b"x" * 513, None]]
            pool += [[c1, "text"], [c1, b"x" * 8193], [c1, 1], ["raw", None]]
            message["entries"] = [rng.choice(pool) for _ in range(rng.randrange(5))]
        if rng.random() < 0.05:
            message["other"] = {"deep": [[[]]]}
        return pack(message, rng.randrange(32))

    return Decoder(
        "replication",
        "one replicate.ebt message: MsgpackCodec.decode, parse_message (parse_batch), "
        "Replicator.notes_received (parse_note), tick/take_notes/to_send/progress, then "
        "peek_feed, peek_seq, below_floor, decode_entry and decode_content on the batch",
        run,
        (CodecError, RemoteProtocolError, *_entry_errors()[:-1], InvalidContent),
        seeds,
        [
            *feeds,
            *(b"\xcf" + b"\xff" * 8, b"\xd3\x80" + bytes(7), b"\xff", b"\xfe", b"\x00", b"\xc0"),
            *(b"\xa5clock", b"\xa7entries", b"\xc4\x20"),
        ],
        gen,
        max_len=8192,
        random_len=200,
    )


def _blobs_decoder() -> Decoder:
    import msgpack

    from p2psocial.errors import BadBlob, CodecError
    from p2psocial.identity import blob_id
    from p2psocial.proto.blobs import BlobWants, parse_wants_message
    from p2psocial.proto.codec import MsgpackCodec

    codec = MsgpackCodec()
    ids = [blob_id(_seeded(f"blob {n}")) for n in range(4)]

    def run(data: bytes) -> str | None:
        """First byte: the session (bit 0: we want the blobs ourselves, bit 1: another
        peer is connected, bit 2: we hold blob 0); the rest: one blobs.wants message."""
        setup, body = (data[0], data[1:]) if data else (0, b"")
        wants, haves = parse_wants_message(codec.decode(0, body))
        core = BlobWants(max_size=1000)
        if setup & 1:
            core.set_wanted({_seeded(f"blob {n}"): n % 2 for n in range(4)})
        if setup & 2:
            core.peer_connected("other")
        core.peer_connected("peer")
        held = {_seeded("blob 0"): 10} if setup & 4 else {}
        core.wants_received("peer", wants, {b: n for b, n in held.items() if b in wants})
        core.haves_received("peer", haves)
        for fetch in core.next_fetches():
            core.fetch_ended(fetch, ok=len(fetch.blob) % 2 == 0)
        while core.take_message("peer") is not None or core.take_message("other") is not None:
            pass
        core.peer_disconnected("peer")
        core.report()
        return f"{len(wants)}/{len(haves)}"

    def pack(value: object, setup: int = 1) -> bytes:
        packed: bytes = msgpack.packb(value, use_bin_type=True)
        return bytes([setup]) + packed

    seeds = [
        pack({ids[0]: -1, ids[1]: 500}),
        pack({ids[2]: -2, ids[3]: 0}, 7),
        pack({ids[1]: 5000}, 3),
        pack({}),
    ]

    def gen(rng: random.Random) -> bytes:
        message: dict[object, object] = {}
        for _ in range(rng.randrange(8)):
            key: object = rng.choice(ids) if rng.random() < 0.9 else rng.choice(["&x", 1, b"&"])
            value: object = (
                rng.choice([-1, -2, -3, 0, 10, 999, 1001, 2**63])
                if rng.random() < 0.9
                else rng.choice([None, 1.5, "1", True])
            )
            message[key] = value
        return pack(message if rng.random() < 0.95 else [message], rng.randrange(8))

    return Decoder(
        "blobs.wants",
        "one blobs.wants message: MsgpackCodec.decode, parse_wants_message, then BlobWants "
        "wants_received / haves_received / next_fetches / take_message",
        run,
        (CodecError, BadBlob),
        seeds,
        [*(i.encode() for i in ids), b"\xff", b"\x00", b"\xc0", b"\xd3\x80" + bytes(7)],
        gen,
        max_len=4096,
        random_len=200,
    )


# ---------------------------------------------------------------------------- LAN


def _lan_decoder() -> Decoder:
    import ipaddress

    from p2psocial.identity import Keypair, feed_id
    from p2psocial.proto.handshake import NETWORK_KEY
    from p2psocial.proto.lan import LanPeer, parse_service, txt_properties

    me, peer = Keypair.from_seed(_seeded("lan me")), Keypair.from_seed(_seeded("lan peer"))
    networks = [ipaddress.IPv4Network("10.0.0.0/8"), ipaddress.IPv4Network("192.168.1.0/24")]

    def parse_input(data: bytes) -> tuple[dict[bytes, bytes | None], list[str], int | None]:
        """``[port?(1) port(4, signed)][n][len addr]*n`` then TXT records as on the wire
        (``len key=value``), read the way zeroconf reads them."""
        port = (
            int.from_bytes(data[1:5], "big", signed=True) if data[:1] not in (b"", b"\0") else None
        )
        pos = 5
        count = data[pos] if pos < len(data) else 0
        pos += 1
        addresses = []
        for _ in range(count):
            size = data[pos] if pos < len(data) else 0
            addresses.append(data[pos + 1 : pos + 1 + size].decode("latin-1"))
            pos += 1 + size
        props: dict[bytes, bytes | None] = {}
        while pos < len(data):
            size = data[pos]
            record = data[pos + 1 : pos + 1 + size]
            pos += 1 + size
            key, sep, value = record.partition(b"=")
            props.setdefault(key, value if sep else None)
        return props, addresses, port

    def run(data: bytes) -> str | None:
        props, addresses, port = parse_input(data)
        found = parse_service(
            props, addresses, port, me=me.public, network_key=NETWORK_KEY, networks=networks
        )
        if isinstance(found, LanPeer):
            _check(len(found.key) == 32, "a LAN peer's key is 32 bytes")
            return "peer"
        return found.reason.name

    def build(
        props: dict[str, str | bytes | None], addresses: Sequence[str], port: int | None
    ) -> bytes:
        out = b"\x00" + bytes(4) if port is None else b"\x01" + port.to_bytes(4, "big", signed=True)
        out += bytes([len(addresses)]) + b"".join(bytes([len(a)]) + a.encode() for a in addresses)
        for key, value in props.items():
            record = key.encode() + (
                b""
                if value is None
                else b"=" + (value if isinstance(value, bytes) else value.encode())
            )
            out += bytes([len(record)]) + record
        return out

    good: dict[str, str | bytes | None] = dict(txt_properties(peer.public, NETWORK_KEY))
    seeds = [
        build(good, ["10.0.0.5", "192.168.7.1"], 8008),
        build(good, ["fe80::1", "127.0.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255"], 8008),
        build({**good, "id": feed_id(me.public)}, ["10.0.0.1"], 1),
        build({"V": "1", "ID": good["id"], "NET": "0" * 16}, ["192.168.1.9"], 65535),
        build({**good, "v": "2"}, ["10.1.1.1"], 8008),
        build({**good, "id": None, "x": b"\xff"}, [], None),
        build({**good, "id": "@" + "A" * 43 + "=.ed25519"}, ["10.0.0.2"], 0),
    ]
    return Decoder(
        "lan",
        "lan.parse_service: a resolved service's TXT records, addresses and port",
        run,
        (),
        seeds,
        [b"v=1", b"id=@", b"net=", b".ed25519", b"=", b"\x00", b"\xff", b"::", b"10.0.0."],
        None,
        max_len=1024,
        random_len=150,
    )


# ---------------------------------------------------------------------------- invite, ids


def _text_decoders() -> list[Decoder]:
    import base64

    from p2psocial.errors import InvalidId, InvalidInvite
    from p2psocial.identity import (
        Keypair,
        blob_id,
        feed_id,
        message_id,
        parse_blob_id,
        parse_feed_id,
        parse_message_id,
    )
    from p2psocial.invite import Invite, parse_invite

    pub = Keypair.from_seed(_seeded("pub")).public
    seed = _seeded("invite seed")

    def run_invite(data: bytes) -> str | None:
        invite = parse_invite(_text(data))
        _check(len(invite.seed) == 32 and len(invite.pub_key) == 32, "keys of 32 bytes")
        return "valid"

    parsers = {"@": parse_feed_id, "%": parse_message_id, "&": parse_blob_id}

    def run_id(data: bytes) -> str | None:
        text = _text(data)
        parse = parsers.get(text[:1]) or list(parsers.values())[len(text) % 3]
        raw = parse(text)
        _check(len(raw) == 32, "an id holds 32 bytes")
        return "valid"

    digest = hashlib.sha256(b"m").digest()
    invites = [
        str(Invite("example.org", 8008, pub, seed)),
        str(Invite("::1", 1, pub, seed)),
        str(Invite("10.0.0.1", 65535, pub, seed)),
        f"  host:8008:{feed_id(pub)}~{base64.b64encode(seed).decode()}\n",
        f"[::1]:0:{feed_id(pub)}~{base64.b64encode(seed).decode()}",
        f"h:+08_0:{feed_id(pub)}~{base64.b64encode(seed[:31]).decode()}",
    ]
    ids = [feed_id(pub), message_id(digest), blob_id(digest), "@" + "A" * 43 + "=.ed25519"]
    ids += ["%" + "/" * 43 + "=.sha256", "&" + "+" * 44 + ".sha256", "@", ""]
    id_tokens = [b"@", b"%", b"&", b".ed25519", b".sha256", b"=", b"==", b"+", b"/", b"-", b"_"]
    id_tokens += [b"\xc3\xa9", b"\xff", b"\xed\xa0\x80", b"\x00", b"A" * 44]
    return [
        Decoder(
            "invite",
            "invite.parse_invite on text (bytes read as UTF-8, lone surrogates kept)",
            run_invite,
            (InvalidInvite,),
            [s.encode("utf-8") for s in invites],
            [*id_tokens, b":", b":@", b"~", b"[", b"]", b":0", b":65536", b"\xd9\xa3", b" "],
            None,
            max_len=400,
            random_len=120,
        ),
        Decoder(
            "identity",
            "identity.parse_feed_id / parse_message_id / parse_blob_id (by sigil) on text",
            run_id,
            (InvalidId,),
            [s.encode("utf-8") for s in ids],
            id_tokens,
            None,
            max_len=200,
            random_len=80,
        ),
    ]


# ---------------------------------------------------------------------------- self-tests


def _self_test_decoders() -> list[Decoder]:
    from p2psocial.errors import InvalidId

    def run(data: bytes) -> str | None:
        if data[:1] == b"!" and len(data) > 3:
            raise KeyError("planted: not one of our typed errors")
        if len(data) % 2:
            raise InvalidId("planted: an expected typed error")
        return None

    def crash(data: bytes) -> str | None:
        if len(data) > 5:
            os.abort()
        return None

    return [
        Decoder(
            "self-test",
            "raises KeyError for inputs starting with '!'",
            run,
            (InvalidId,),
            [b"!abcd", b"abc"],
        ),
        Decoder(
            "self-test-crash", "aborts the process on inputs over 5 bytes", crash, (), [b"abcdefgh"]
        ),
    ]


BUILDERS: dict[str, Callable[[], list[Decoder]]] = {
    "handshake": _handshake_decoders,
    "boxstream": lambda: [_boxstream_decoder()],
    "packets": _packet_decoders,
    "codec": _codec_decoders,
    "feed": _feed_decoders,
    "privatebox": lambda: [_privatebox_decoder()],
    "jsonrpc": _jsonrpc_decoders,
    "replication": lambda: [_replication_decoder()],
    "blobs": lambda: [_blobs_decoder()],
    "lan": lambda: [_lan_decoder()],
    "text": _text_decoders,
    "self": _self_test_decoders,
}
NAMES: dict[str, str] = {
    "handshake.server": "handshake",
    "handshake.client": "handshake",
    "boxstream": "boxstream",
    "packets.msgpack": "packets",
    "packets.json": "packets",
    "codec.msgpack": "codec",
    "codec.json": "codec",
    "feed.entry": "feed",
    "feed.content": "feed",
    "privatebox": "privatebox",
    "jsonrpc.request": "jsonrpc",
    "jsonrpc.server": "jsonrpc",
    "replication": "replication",
    "blobs.wants": "blobs",
    "lan": "lan",
    "invite": "text",
    "identity": "text",
    "self-test": "self",
    "self-test-crash": "self",
}
"""Every decoder's name and the builder that makes it."""
DEFAULT = [name for name in NAMES if name not in HIDDEN]


def build(names: Sequence[str]) -> list[Decoder]:
    built: dict[str, Decoder] = {}
    for group in dict.fromkeys(NAMES[n] for n in names):
        for decoder in BUILDERS[group]():
            built[decoder.name] = decoder
    return [built[n] for n in names]


# ============================================================================ mutation

_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x40, 0x20, 0x0A]


class Mutator:
    """Stacked byte-level mutations of a seed, from one seeded ``random.Random``."""

    def __init__(self, rng: random.Random, tokens: Sequence[bytes], max_len: int) -> None:
        self.rng = rng
        self.tokens = list(tokens) or [b"\x00"]
        self.max_len = max_len

    def mutate(self, data: bytes, corpus: Sequence[bytes]) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        for _ in range(1 + min(int(rng.expovariate(0.7)), 15)):
            op = rng.randrange(12)
            size = len(buf)
            at = rng.randrange(size + 1)
            if op == 0 and size:  # flip bits
                i = rng.randrange(size)
                buf[i] ^= 1 << rng.randrange(8)
            elif op == 1 and size:  # an interesting or random byte
                buf[rng.randrange(size)] = (
                    rng.choice(_BYTES) if rng.random() < 0.5 else rng.randrange(256)
                )
            elif op == 2:  # insert random bytes
                buf[at:at] = rng.randbytes(rng.choice([1, 1, 2, 4, 8, rng.randrange(64)]))
            elif op == 3 and size:  # delete a range
                del buf[at : at + rng.choice([1, 1, 2, 4, 16, rng.randrange(size + 1)])]
            elif op == 4 and size:  # truncate
                del buf[rng.randrange(size) :]
            elif op == 5:  # insert a dictionary token
                buf[at:at] = rng.choice(self.tokens)
            elif op == 6 and size:  # overwrite with a token
                token = rng.choice(self.tokens)
                buf[at : at + len(token)] = token
            elif op == 7 and size:  # an interesting integer, big-endian, at some width
                width = rng.choice([1, 2, 4, 8])
                value = rng.choice(_INTS) % (1 << (8 * width))
                buf[at : at + width] = value.to_bytes(width, "big")
            elif op == 8 and size:  # duplicate a range
                start = rng.randrange(size)
                piece = buf[start : start + rng.choice([1, 4, 16, 64, size])]
                buf[at:at] = piece * rng.choice([1, 1, 2, 8])
            elif op == 9 and corpus:  # splice with another input
                other = rng.choice(corpus)
                j = rng.randrange(len(other) + 1)
                buf = buf[:at] + other[j:] if rng.random() < 0.5 else buf[:at] + other[:j]
            elif op == 10 and size > 1:  # swap two ranges' bytes
                i, j = rng.randrange(size), rng.randrange(size)
                buf[i], buf[j] = buf[j], buf[i]
            elif op == 11 and size:  # add or subtract a little from a byte
                i = rng.randrange(size)
                buf[i] = (buf[i] + rng.choice([-2, -1, 1, 2, 16])) % 256
        if len(buf) > self.max_len:
            del buf[self.max_len :]
        return bytes(buf)


# ============================================================================ running

_PACKAGE = str(ROOT / "p2psocial") + os.sep
_NUMBERS = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8,}|\d+")


def _shape(exc: BaseException) -> str:
    """An error's type and message with numbers blanked: an outcome for corpus growth."""
    return type(exc).__name__ + ":" + _NUMBERS.sub("#", str(exc)[:60])


def _where(tb: BaseException) -> str:
    """The innermost frame of the project (else the innermost) that raised ``tb``."""
    frames = traceback.extract_tb(tb.__traceback__)
    ours = [f for f in frames if f.filename.startswith(_PACKAGE)] or frames
    frame = ours[-1] if ours else None
    if frame is None:
        return "?"
    return f"{Path(frame.filename).name}:{frame.lineno}"


@dataclass
class Stats:
    inputs: int = 0
    accepted: int = 0
    exceptions: Counter[str] = field(default_factory=Counter)
    findings: int = 0
    seconds: float = 0.0
    slowest_ms: float = 0.0
    corpus: int = 0
    interrupted: bool = False


@dataclass
class Finding:
    decoder: str
    exception: str
    message: str
    where: str
    data: bytes
    traceback: str
    count: int = 1
    file: str = ""


class Recorder:
    """The input being run, kept in a shared file so a crash of the worker can be
    reported by its parent: ``u32 decoder index, u32 length, bytes``."""

    def __init__(self, path: str | None) -> None:
        self._map: mmap.mmap | None = None
        if path:
            with open(path, "r+b") as fh:
                self._map = mmap.mmap(fh.fileno(), _RECORD_SIZE)
            self._map[:8] = struct.pack(">II", _NO_INPUT, 0)

    def record(self, index: int, data: bytes) -> None:
        if self._map is not None:
            n = min(len(data), _RECORD_SIZE - 8)
            self._map[:8] = struct.pack(">II", index, n)
            self._map[8 : 8 + n] = data[:n]


def _classify(decoder: Decoder, data: bytes) -> tuple[str, BaseException | None]:
    """Run one input: ("ok" | "expected" | "finding", exception)."""
    try:
        decoder.run(data)
    except Exception as exc:
        return ("expected" if type(exc) in decoder.expected else "finding"), exc
    return "ok", None


def _signature(decoder: str, exc: BaseException) -> str:
    """What tells findings apart: decoder, type, where (and which invariant)."""
    what = str(exc) if isinstance(exc, AssertionError) else ""
    return f"{decoder}|{type(exc).__name__}|{_where(exc)}|{what}"


def minimise(decoder: Decoder, data: bytes, signature: str, budget: int = 400) -> bytes:
    """A shorter input giving the same finding (same type, same place), if one is found."""
    best = data
    chunk = max(1, len(best) // 2)
    tries = 0
    while chunk >= 1 and tries < budget:
        i = 0
        shrunk = False
        while i < len(best) and tries < budget:
            candidate = best[:i] + best[i + chunk :]
            tries += 1
            kind, exc = _classify(decoder, candidate)
            if kind == "finding" and exc is not None and _signature(decoder.name, exc) == signature:
                best = candidate
                shrunk = True
            else:
                i += chunk
        if not shrunk:
            chunk //= 2
    return best


def fuzz_one(
    decoder: Decoder,
    index: int,
    seed: int,
    seconds: float | None,
    max_inputs: int | None,
    recorder: Recorder,
    findings: dict[str, Finding],
) -> Stats:
    rng = random.Random(f"{seed}:{decoder.name}")
    mutator = Mutator(rng, decoder.tokens, decoder.max_len)
    seeds = list(decoder.seeds)
    grown: list[bytes] = []
    seen: set[str] = set()
    stats = Stats()
    expected = frozenset(decoder.expected)
    start = time.perf_counter()
    deadline = None if seconds is None else start + seconds
    slowest = 0.0
    count = 0
    now = start
    try:
        while True:
            if max_inputs is not None and count >= max_inputs:
                break
            if deadline is not None and now >= deadline:
                break
            count += 1
            r = rng.random()
            if count <= len(seeds):
                data = seeds[count - 1]
            elif r < 0.08:
                size = min(decoder.max_len, int(rng.expovariate(1 / decoder.random_len)))
                data = rng.randbytes(size)
                if decoder.stream and data and rng.random() < 0.5:
                    data = bytes([data[0] & 0xC0]) + data[1:]
            elif r < 0.28 and decoder.generate is not None:
                data = decoder.generate(rng)
                if rng.random() < 0.5:
                    data = mutator.mutate(data, seeds)
            else:
                pool = grown if grown and rng.random() < 0.4 else seeds
                data = mutator.mutate(rng.choice(pool), seeds)
            recorder.record(index, data)
            t0 = time.perf_counter()
            try:
                key = f"ok:{decoder.run(data)}"
                stats.accepted += 1
            except Exception as exc:
                stats.exceptions[type(exc).__name__] += 1
                if type(exc) in expected:
                    key = _shape(exc)
                else:
                    _found(decoder, data, exc, stats, findings)
                    key = "finding"
            now = time.perf_counter()
            elapsed = now - t0
            if elapsed > slowest:
                slowest = elapsed
            if key not in seen:
                seen.add(key)
                if len(grown) < 500 and count > len(seeds):
                    grown.append(data)
    except KeyboardInterrupt:
        count -= 1
        stats.interrupted = True
    stats.inputs = count
    stats.seconds = time.perf_counter() - start
    stats.slowest_ms = round(slowest * 1000, 2)
    stats.corpus = len(seeds) + len(grown)
    return stats


def _found(
    decoder: Decoder,
    data: bytes,
    exc: BaseException,
    stats: Stats,
    findings: dict[str, Finding],
) -> None:
    """Count a finding; keep one input per signature (the shortest seen)."""
    stats.findings += 1
    signature = _signature(decoder.name, exc)
    known = findings.get(signature)
    if known is not None:
        known.count += 1
        if len(data) < len(known.data):
            known.data = data
        return
    if sum(1 for f in findings.values() if f.decoder == decoder.name) >= _MAX_FINDINGS_PER_DECODER:
        return
    findings[signature] = Finding(
        decoder.name,
        type(exc).__name__,
        str(exc)[:500],
        _where(exc),
        data,
        "".join(traceback.format_exception(exc)),
    )


def save_findings(findings: dict[str, Finding], decoders: dict[str, Decoder], folder: Path) -> None:
    if not findings:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for signature, finding in findings.items():
        decoder = decoders.get(finding.decoder)
        if decoder is not None:
            finding.data = minimise(decoder, finding.data, signature)
            _, exc = _classify(decoder, finding.data)
            if exc is not None:
                finding.traceback = "".join(traceback.format_exception(exc))
                finding.message = str(exc)[:500]
        digest = hashlib.sha256(signature.encode()).hexdigest()[:12]
        path = folder / f"{finding.decoder}-{finding.exception}-{digest}.json"
        finding.file = str(path)
        record = {
            "decoder": finding.decoder,
            "exception": finding.exception,
            "message": finding.message,
            "where": finding.where,
            "count": finding.count,
            "input_hex": finding.data.hex(),
            "traceback": finding.traceback,
            "reproduce": f"python scripts/fuzz.py --reproduce {path}",
        }
        path.write_text(json.dumps(record, indent=2) + "\n")


def worker(args: argparse.Namespace) -> int:
    names: list[str] = args.decoder or DEFAULT
    decoders = build(names)
    recorder = Recorder(args.record)
    findings: dict[str, Finding] = {}
    results: dict[str, Stats] = {}
    total = args.seconds
    started = time.perf_counter()
    for i, decoder in enumerate(decoders):
        share = None
        if total is not None:
            left = total - (time.perf_counter() - started)
            share = max(0.05, left / (len(decoders) - i))
        stats = fuzz_one(decoder, i, args.seed, share, args.inputs, recorder, findings)
        results[decoder.name] = stats
        print(
            f"{decoder.name}: {stats.inputs} inputs in {stats.seconds:.1f} s, "
            f"{stats.findings} findings",
            file=sys.stderr,
            flush=True,
        )
        if stats.interrupted:
            break
    save_findings(findings, {d.name: d for d in decoders}, Path(args.findings))
    summary = {
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
        "total_inputs": sum(s.inputs for s in results.values()),
        "findings": sum(s.findings for s in results.values()),
        "decoders": {
            name: {
                "inputs": s.inputs,
                "accepted": s.accepted,
                "exceptions": dict(sorted(s.exceptions.items())),
                "findings": s.findings,
                "inputs_per_s": round(s.inputs / s.seconds) if s.seconds else 0,
                "slowest_ms": s.slowest_ms,
            }
            for name, s in results.items()
        },
        "finding_files": [f.file for f in findings.values()],
        "interrupted": any(s.interrupted for s in results.values()),
    }
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 1 if summary["findings"] else 0


def reproduce(path: str | None, decoder_name: str | None, hex_input: str | None) -> int:
    if path:
        record = json.loads(Path(path).read_text())
        decoder_name, hex_input = record["decoder"], record["input_hex"]
    if decoder_name is None or hex_input is None:
        raise SystemExit("--reproduce needs a findings file, or --decoder NAME --hex HEX")
    (decoder,) = build([decoder_name])
    data = bytes.fromhex(hex_input)
    kind, exc = _classify(decoder, data)
    print(f"{decoder.name}: {len(data)} bytes: {kind}")
    if exc is not None:
        traceback.print_exception(exc)
    return 1 if kind == "finding" else 0


def supervise(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run the fuzzing in a worker process, so that a native crash is still reported."""
    with tempfile.NamedTemporaryFile(prefix="p2psocial-fuzz-", delete=False) as fh:
        fh.truncate(_RECORD_SIZE)
        record = fh.name
    try:
        proc = subprocess.Popen([sys.executable, __file__, *argv, "--record", record])
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # the worker got it too: it stops and reports
                continue
        if code >= 0:
            return code
        with open(record, "rb") as fh:
            index, size = struct.unpack(">II", fh.read(8))
            data = fh.read(size)
    finally:
        os.unlink(record)
    names = args.decoder or DEFAULT
    name = names[index] if index < len(names) else "startup"
    folder = Path(args.findings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-crash-signal{-code}-{hashlib.sha256(data).hexdigest()[:12]}.json"
    path.write_text(
        json.dumps(
            {
                "decoder": name,
                "exception": f"crash (signal {-code})",
                "input_hex": data.hex(),
                "reproduce": f"python scripts/fuzz.py --reproduce {path}",
            },
            indent=2,
        )
        + "\n"
    )
    summary = {
        "seed": args.seed,
        "findings": 1,
        "crash": {"decoder": name, "signal": -code, "input_hex": data.hex()[:200]},
        "finding_files": [str(path)],
    }
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 1


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fuzz every decoder of outside bytes; exits 1 on any finding.",
        epilog="decoders: " + ", ".join(DEFAULT),
    )
    parser.add_argument("--seconds", type=float, help="total time, split across decoders")
    parser.add_argument("--inputs", type=int, help="stop each decoder after this many inputs")
    parser.add_argument(
        "--decoder",
        action="append",
        choices=list(NAMES),
        metavar="NAME",
        help="fuzz only this decoder (repeatable; default: all)",
    )
    parser.add_argument("--seed", type=int, help="random seed (default: a fresh one, printed)")
    parser.add_argument("--findings", default=str(DEFAULT_FINDINGS), help="folder for findings")
    parser.add_argument("--list", action="store_true", help="list decoders and expected errors")
    parser.add_argument(
        "--reproduce",
        metavar="FILE",
        nargs="?",
        const="",
        help="run one saved finding (or --decoder NAME --hex HEX) again",
    )
    parser.add_argument("--hex", help=argparse.SUPPRESS)
    parser.add_argument("--record", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 32)
    if args.seconds is None and args.inputs is None:
        args.seconds = 60.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.list:
        for decoder in build(DEFAULT):
            expected = ", ".join(t.__name__ for t in decoder.expected) or "none"
            print(f"{decoder.name}: {decoder.doc}\n    expected: {expected}")
        return 0
    if args.reproduce is not None:
        names = args.decoder or [None]
        return reproduce(args.reproduce or None, names[0], args.hex)
    if args.record:
        return worker(args)
    if "--seed" not in argv:
        argv += ["--seed", str(args.seed)]
    return supervise(args, argv)


if __name__ == "__main__":
    sys.exit(main())
