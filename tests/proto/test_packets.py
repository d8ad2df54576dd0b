"""The packet-stream machine: two machines wired in memory, fed whole and byte by byte."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2psocial.errors import CodecError, FramingError, LocalProtocolError, RemoteProtocolError
from p2psocial.proto.codec import JsonCodec, MsgpackCodec
from p2psocial.proto.packets import (
    FLAG_END,
    FLAG_STREAM,
    GOODBYE_FRAME,
    MAX_BODY,
    NEED_DATA,
    TRANSITIONS,
    Action,
    CallState,
    CallType,
    ConnectionState,
    ErrorCode,
    ErrorInfo,
    ErrorResponse,
    Event,
    Goodbye,
    InvalidRequest,
    PacketStream,
    Request,
    Response,
    Role,
    StreamData,
    StreamEnded,
)

MSGPACK = MsgpackCodec()


def frame(flags: int, req: int, body: bytes) -> bytes:
    """A raw frame, for feeding hand-made (often invalid) bytes."""
    return struct.pack(">BIi", flags, len(body), req) + body


def drain(machine: PacketStream) -> list[Event]:
    events: list[Event] = []
    while True:
        event = machine.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if isinstance(event, Goodbye):
            return events


def drain_twice(machine: PacketStream) -> None:
    """Drain past a Goodbye too (a frame after it is an error)."""
    drain(machine)
    drain(machine)


def arg_i(event: Event) -> tuple[int, int]:
    """(req_id, args["i"]) of a Request."""
    assert isinstance(event, Request)
    assert isinstance(event.args, dict)
    i = event.args["i"]
    assert isinstance(i, int)
    return event.req_id, i


class Pair:
    """Two machines wired back to back; ``send`` delivers bytes and returns the events."""

    def __init__(self, bytewise: bool, codec: type[MsgpackCodec | JsonCodec] = MsgpackCodec):
        self.a = PacketStream(codec())
        self.b = PacketStream(codec())
        self.bytewise = bytewise

    def peer(self, machine: PacketStream) -> PacketStream:
        return self.b if machine is self.a else self.a

    def send(self, sender: PacketStream, data: bytes) -> list[Event]:
        receiver = self.peer(sender)
        if not self.bytewise:
            receiver.receive_data(data)
            return drain(receiver)
        events: list[Event] = []
        for i in range(len(data)):
            receiver.receive_data(data[i : i + 1])
            events.extend(drain(receiver))
        return events

    def one(self, sender: PacketStream, data: bytes) -> Event:
        events = self.send(sender, data)
        assert len(events) == 1, events
        return events[0]


@pytest.fixture(params=["whole", "bytewise"])
def pair(request: pytest.FixtureRequest) -> Pair:
    return Pair(bytewise=request.param == "bytewise")


@pytest.fixture(params=["a-calls", "b-calls"])
def sides(pair: Pair, request: pytest.FixtureRequest) -> tuple[Pair, PacketStream, PacketStream]:
    """(pair, caller, callee): every call test runs in both directions."""
    if request.param == "a-calls":
        return pair, pair.a, pair.b
    return pair, pair.b, pair.a


Sides = tuple[Pair, PacketStream, PacketStream]

# ---------------------------------------------------------------------------- wire format


def test_request_wire_bytes() -> None:
    m = PacketStream()
    req_id, data = m.request("replicate.clock", {"feeds": 2})
    assert req_id == 1
    assert data[:9] == bytes.fromhex("00 0000002e 00000001")
    assert MSGPACK.decode(0, data[9:]) == {
        "name": "replicate.clock",
        "args": {"feeds": 2},
        "type": "async",
    }
    assert m.request("a.b")[0] == 2
    assert m.open_stream("a.c", [], "source")[1][0] == FLAG_STREAM


def test_answer_wire_bytes() -> None:
    m = PacketStream()
    m.receive_data(frame(0, 7, MSGPACK.encode({"name": "x.y", "args": [], "type": "async"})))
    assert m.next_event() == Request(-7, "x.y", [], CallType.ASYNC)
    assert m.respond(-7, "ok") == bytes.fromhex("00 00000003 fffffff9 a26f6b")


def test_json_codec_sets_body_type() -> None:
    p = Pair(bytewise=False, codec=JsonCodec)
    req_id, data = p.a.request("whoami", [])
    assert data[0] == 2
    assert data[9:] == b'{"name":"whoami","args":[],"type":"async"}'
    assert p.one(p.a, data) == Request(-req_id, "whoami", [], CallType.ASYNC)
    answer = p.b.respond(-req_id, {"id": "@x"})
    assert answer[0] == 2
    assert p.one(p.b, answer) == Response(req_id, {"id": "@x"})
    # A string body (type 1) is accepted whatever the codec.
    rid, data = p.a.open_stream("s.t", [], "source")
    p.send(p.a, data)
    assert p.one(p.b, frame(FLAG_STREAM | 1, -rid, "hé".encode())) == StreamData(rid, "hé")


# ---------------------------------------------------------------------------- async calls


def test_async_request_response(sides: Sides) -> None:
    p, caller, callee = sides
    req_id, data = caller.request("replicate.clock", {"feeds": ["@a"]})
    assert req_id > 0
    event = p.one(caller, data)
    assert event == Request(-req_id, "replicate.clock", {"feeds": ["@a"]}, CallType.ASYNC)
    assert callee.call_state(-req_id) is CallState.PENDING
    assert p.one(callee, callee.respond(-req_id, [1, b"\x00", None])) == Response(
        req_id, [1, b"\x00", None]
    )
    assert caller.active_calls() == {} == callee.active_calls()


def test_both_sides_call_with_the_same_number(pair: Pair) -> None:
    ra, da = pair.a.request("x.a")
    rb, db = pair.b.request("x.b")
    assert ra == rb == 1
    assert pair.one(pair.a, da) == Request(-1, "x.a", {}, CallType.ASYNC)
    assert pair.one(pair.b, db) == Request(-1, "x.b", {}, CallType.ASYNC)
    assert pair.one(pair.a, pair.a.respond(-1, "to b")) == Response(1, "to b")
    assert pair.one(pair.b, pair.b.respond(-1, "to a")) == Response(1, "to a")


def test_error_response(sides: Sides) -> None:
    p, caller, callee = sides
    req_id, data = caller.request("no.such", [])
    p.send(caller, data)
    event = p.one(callee, callee.respond_error(-req_id, ErrorCode.UNKNOWN_METHOD, "no.such?"))
    assert event == ErrorResponse(req_id, "unknown_method", "no.such?", "Error")
    assert isinstance(event, ErrorResponse)
    assert event.error == ErrorInfo("unknown_method", "no.such?")
    assert caller.active_calls() == {}


def test_concurrent_interleaved_requests(pair: Pair) -> None:
    """1000 calls in flight at once, 500 each way, requests and answers mixed on each wire."""
    n = 500
    outbox = {
        id(pair.a): bytearray(b"".join(pair.a.request("echo.a", {"i": i})[1] for i in range(n))),
        id(pair.b): bytearray(b"".join(pair.b.request("echo.b", {"i": i})[1] for i in range(n))),
    }
    answers: dict[int, list[Event]] = {id(pair.a): [], id(pair.b): []}
    while outbox[id(pair.a)] or outbox[id(pair.b)]:
        for sender in (pair.a, pair.b):
            receiver = pair.peer(sender)
            chunk = bytes(outbox[id(sender)][:1000])
            del outbox[id(sender)][:1000]
            for ev in pair.send(sender, chunk):
                if isinstance(ev, Request):  # answer at once: odd i ok, even i refused
                    rid, i = arg_i(ev)
                    if i % 2:
                        outbox[id(receiver)] += receiver.respond(rid, i * 2)
                    else:
                        outbox[id(receiver)] += receiver.respond_error(rid, "refused", str(i))
                else:
                    answers[id(receiver)].append(ev)
    for m in (pair.a, pair.b):
        got = answers[id(m)]
        assert len(got) == n
        ok = {(e.req_id, e.value) for e in got if isinstance(e, Response)}
        assert ok == {(i + 1, i * 2) for i in range(1, n, 2)}
        refused = {(e.req_id, e.code, e.message) for e in got if isinstance(e, ErrorResponse)}
        assert refused == {(i + 1, "refused", str(i)) for i in range(0, n, 2)}
        assert m.active_calls() == {}


# ---------------------------------------------------------------------------- streams


def test_source_stream(sides: Sides) -> None:
    p, caller, callee = sides
    rid, data = caller.open_stream("feed.history", {"feed": "@x", "seq": 3}, CallType.SOURCE)
    assert p.one(caller, data) == Request(
        -rid, "feed.history", {"feed": "@x", "seq": 3}, CallType.SOURCE
    )
    items = b"".join(callee.stream_send(-rid, {"seq": s}) for s in range(3, 6))
    assert p.send(callee, items) == [StreamData(rid, {"seq": s}) for s in range(3, 6)]
    assert p.one(callee, callee.stream_end(-rid)) == StreamEnded(rid, None)
    assert callee.call_state(-rid) is CallState.LOCAL_ENDED
    assert caller.call_state(rid) is CallState.REMOTE_ENDED
    assert p.one(caller, caller.stream_end(rid)) == StreamEnded(-rid, None)
    assert caller.active_calls() == {} == callee.active_calls()


def test_sink_stream(sides: Sides) -> None:
    p, caller, callee = sides
    rid, data = caller.open_stream("blobs.add", [], "sink")
    event = p.one(caller, data)
    assert isinstance(event, Request)
    assert event.type is CallType.SINK
    chunks = [bytes([i]) * 1000 for i in range(4)]
    got = p.send(caller, b"".join(caller.stream_send(rid, c) for c in chunks))
    assert got == [StreamData(-rid, c) for c in chunks]
    assert p.one(caller, caller.stream_end(rid)) == StreamEnded(-rid, None)
    assert p.one(callee, callee.stream_end(-rid)) == StreamEnded(rid, None)
    assert caller.active_calls() == {} == callee.active_calls()


def test_duplex_stream(sides: Sides) -> None:
    p, caller, callee = sides
    rid, data = caller.open_stream("replicate.ebt", {"version": 1})
    assert p.one(caller, data) == Request(-rid, "replicate.ebt", {"version": 1}, CallType.DUPLEX)
    for i in range(5):
        assert p.one(caller, caller.stream_send(rid, {"up": i})) == StreamData(-rid, {"up": i})
        assert p.one(callee, callee.stream_send(-rid, {"dn": i})) == StreamData(rid, {"dn": i})
    # Half-close: the caller ends its side and still receives.
    assert p.one(caller, caller.stream_end(rid)) == StreamEnded(-rid, None)
    assert p.one(callee, callee.stream_send(-rid, "more")) == StreamData(rid, "more")
    assert p.one(callee, callee.stream_end(-rid)) == StreamEnded(rid, None)
    assert caller.active_calls() == {} == callee.active_calls()


def test_data_in_flight_after_our_end_is_accepted(sides: Sides) -> None:
    p, caller, callee = sides
    rid, data = caller.open_stream("feed.live", [], "source")
    p.send(caller, data)
    in_flight = callee.stream_send(-rid, 1) + callee.stream_send(-rid, 2)
    abort = caller.stream_end(rid)  # the caller aborts while items are on the way
    assert p.send(callee, in_flight) == [StreamData(rid, 1), StreamData(rid, 2)]
    assert p.one(caller, abort) == StreamEnded(-rid, None)
    # The callee may send what it had queued, then must end too.
    assert p.one(callee, callee.stream_send(-rid, 3)) == StreamData(rid, 3)
    assert p.one(callee, callee.stream_end(-rid)) == StreamEnded(rid, None)
    assert caller.active_calls() == {} == callee.active_calls()


def test_stream_error(sides: Sides) -> None:
    p, caller, callee = sides
    rid, data = caller.open_stream("feed.history", {}, "source")
    p.send(caller, data)
    err = ErrorInfo(ErrorCode.INTERNAL, "disk on fire")
    assert p.one(callee, callee.stream_end(-rid, err)) == StreamEnded(rid, err)
    assert p.one(caller, caller.stream_end(rid)) == StreamEnded(-rid, None)
    assert caller.active_calls() == {} == callee.active_calls()


def test_large_stream_is_fast() -> None:
    p = Pair(bytewise=False)
    rid, data = p.a.open_stream("blobs.get", {"id": "&x"}, "source")
    p.send(p.a, data)
    chunk = bytes(range(256)) * 256  # 64 KiB
    total = 0
    wire = bytearray()
    for _ in range(160):  # 10 MiB
        wire += p.b.stream_send(-rid, chunk)
        if len(wire) > 1_000_000:
            total += sum(
                len(e.value) for e in p.send(p.b, bytes(wire)) if isinstance(e, StreamData)
            )
            wire.clear()
    wire += p.b.stream_end(-rid)
    events = p.send(p.b, bytes(wire))
    total += sum(len(e.value) for e in events if isinstance(e, StreamData))
    assert total == 160 * len(chunk)
    assert events[-1] == StreamEnded(rid, None)
    assert p.a.bytes_buffered == 0


def test_large_stream_partial_reads_compact_buffer() -> None:
    p = Pair(bytewise=False)
    rid, data = p.a.open_stream("blobs.get", {}, "source")
    p.send(p.a, data)
    wire = b"".join(p.b.stream_send(-rid, bytes(5000)) for _ in range(200))
    got = 0
    for i in range(0, len(wire), 4096):  # box-stream sized reads
        p.a.receive_data(wire[i : i + 4096])
        got += len(drain(p.a))
        assert p.a.bytes_buffered < 5009
    assert got == 200


# ---------------------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    ("flags", "body"),
    [
        pytest.param(0, [1, 2], id="not-a-map"),
        pytest.param(0, {"args": [], "type": "async"}, id="no-name"),
        pytest.param(0, {"name": "", "args": [], "type": "async"}, id="empty-name"),
        pytest.param(0, {"name": "x.y", "args": 5, "type": "async"}, id="args-not-list-or-map"),
        pytest.param(0, {"name": "x.y", "args": [], "type": "rpc"}, id="unknown-type"),
        pytest.param(0, {"name": "x.y", "args": [], "type": ["async"]}, id="type-not-str"),
        pytest.param(0, {"name": "x.y", "args": []}, id="no-type"),
        pytest.param(0, {"name": "x.y", "args": [], "type": "source"}, id="source-no-stream-flag"),
        pytest.param(FLAG_STREAM, {"name": "x.y", "args": [], "type": "async"}, id="async-flag"),
    ],
)
def test_invalid_request_is_answered_bad_request(flags: int, body: Any) -> None:
    m = PacketStream()
    m.receive_data(frame(flags, 3, MSGPACK.encode(body)))
    event = m.next_event()
    assert isinstance(event, InvalidRequest)
    assert event.req_id == -3
    assert event.stream == bool(flags & FLAG_STREAM)
    if event.stream:
        answer = m.stream_end(-3, ErrorInfo(ErrorCode.BAD_REQUEST, event.reason))
        assert answer[0] == FLAG_STREAM | FLAG_END
        assert m.call_state(-3) is CallState.LOCAL_ENDED
    else:
        answer = m.respond_error(-3, ErrorCode.BAD_REQUEST, event.reason)
        assert answer[0] == FLAG_END
        assert MSGPACK.decode(0, answer[9:])["code"] == "bad_request"
        assert m.active_calls() == {}
    assert m.their_state is ConnectionState.OPEN


def test_extra_request_fields_are_ignored() -> None:
    m = PacketStream()
    body = {"name": "x.y", "args": {"k": 1}, "type": "async", "future": True}
    m.receive_data(frame(0, 1, MSGPACK.encode(body)))
    assert m.next_event() == Request(-1, "x.y", {"k": 1}, CallType.ASYNC)


# ---------------------------------------------------------------------------- remote errors


def _req(n: int, ctype: str = "async") -> bytes:
    flags = 0 if ctype == "async" else FLAG_STREAM
    return frame(flags, n, MSGPACK.encode({"name": "x.y", "args": [], "type": ctype}))


def _our_call(ctype: CallType) -> tuple[PacketStream, int]:
    m = PacketStream()
    if ctype is CallType.ASYNC:
        rid, _ = m.request("x.y")
    else:
        rid, _ = m.open_stream("x.y", [], ctype)
    return m, rid


OK = MSGPACK.encode("ok")
TRUE = MSGPACK.encode(True)
S, E = FLAG_STREAM, FLAG_END


@pytest.mark.parametrize(
    ("setup", "bad"),
    [
        # Frames for calls we never made, or that are over.
        pytest.param("async", frame(0, -7, OK), id="response-to-unknown-request"),
        pytest.param("async", frame(0, -1, OK) + frame(0, -1, OK), id="second-response"),
        pytest.param("async", frame(S, -1, OK), id="stream-flag-on-async-response"),
        pytest.param("async", frame(E, -1, OK), id="error-body-not-a-map"),
        pytest.param("async", frame(E, -1, MSGPACK.encode({"code": "x"})), id="error-no-message"),
        pytest.param("source", frame(0, -1, OK), id="stream-frame-without-stream-flag"),
        pytest.param("source", frame(S | E, -1, TRUE) + frame(S, -1, OK), id="data-after-end"),
        pytest.param("source", frame(S | E, -1, TRUE) * 2, id="second-end"),
        pytest.param("source", frame(S | E, -1, OK), id="end-body-not-true-or-error"),
        pytest.param("sink", frame(S, -1, OK), id="callee-sends-data-on-sink"),
        # Frames for the peer's own calls.
        pytest.param("none", _req(1) + _req(1), id="request-number-reused"),
        pytest.param("none", _req(5) + _req(4), id="request-number-decreasing"),
        pytest.param("none", _req(1, "source") + frame(S, 1, OK), id="caller-sends-on-source"),
        pytest.param("none", frame(S | E, 1, TRUE), id="end-flag-on-new-request"),
        # Headers.
        pytest.param("none", frame(0x10, 1, OK), id="reserved-flag-bit"),
        pytest.param("none", frame(3, 1, OK), id="reserved-body-type"),
        pytest.param("none", frame(0, 0, OK), id="number-zero-with-body"),
        pytest.param("none", frame(S, 0, b""), id="number-zero-with-flags"),
        pytest.param("none", GOODBYE_FRAME + b"\x00", id="data-after-goodbye"),
    ],
)
def test_remote_violation_is_framing_error(setup: str, bad: bytes) -> None:
    if setup == "none":
        m = PacketStream()
    else:
        m, _ = _our_call(CallType(setup))
    m.receive_data(bad)
    with pytest.raises(FramingError):
        drain_twice(m)
    assert m.their_state is ConnectionState.ERROR
    with pytest.raises(FramingError):
        m.next_event()
    with pytest.raises(LocalProtocolError):
        m.request("x.y")


def test_garbage_body_is_codec_error() -> None:
    m = PacketStream()
    m.receive_data(frame(0, 1, b"\xc1"))
    with pytest.raises(CodecError):
        m.next_event()
    assert m.their_state is ConnectionState.ERROR


@pytest.mark.parametrize("feed", ["whole", "bytewise"])
def test_oversize_header_rejected_before_body(feed: str) -> None:
    m = PacketStream()
    header = struct.pack(">BIi", 0, MAX_BODY + 1, 1)
    if feed == "whole":
        m.receive_data(header)
    else:
        for b in header[:-1]:
            m.receive_data(bytes([b]))
            assert m.next_event() is NEED_DATA
        m.receive_data(header[-1:])
    with pytest.raises(FramingError, match="exceeds"):
        m.next_event()


def test_body_of_exactly_max_body_is_accepted() -> None:
    a, b = PacketStream(max_body=100), PacketStream(max_body=100)
    rid, data = a.open_stream("x.y", [], "source")
    b.receive_data(data)
    b.next_event()
    ok = b.stream_send(-rid, bytes(100 - 2))  # bin8 header is 2 bytes
    assert len(ok) == 9 + 100
    a.receive_data(ok)
    assert a.next_event() == StreamData(rid, bytes(98))
    with pytest.raises(LocalProtocolError, match="exceeds"):
        b.stream_send(-rid, bytes(99))


def test_too_many_incoming_calls() -> None:
    m = PacketStream(max_incoming_calls=3)
    m.receive_data(_req(1) + _req(2) + _req(3))
    assert len(drain(m)) == 3
    m.respond(-2, None)  # answering frees a slot
    m.receive_data(_req(4) + _req(5))
    assert isinstance(m.next_event(), Request)
    with pytest.raises(FramingError, match="calls open"):
        m.next_event()


# ---------------------------------------------------------------------------- goodbye / EOF


def test_goodbye(pair: Pair) -> None:
    rid, data = pair.a.request("x.y")
    pair.send(pair.a, data)
    assert pair.one(pair.a, pair.a.goodbye()) == Goodbye()
    assert pair.a.our_state is ConnectionState.CLOSED
    assert pair.b.their_state is ConnectionState.CLOSED
    assert pair.b.next_event() == Goodbye()  # repeats, so read loops stop
    with pytest.raises(LocalProtocolError):
        pair.a.request("x.z")
    with pytest.raises(LocalProtocolError):
        pair.a.goodbye()
    # The peer may still answer before its own goodbye; we keep reading until it.
    assert pair.one(pair.b, pair.b.respond(-rid, 1)) == Response(rid, 1)
    assert pair.one(pair.b, pair.b.goodbye()) == Goodbye()
    pair.a.receive_data(b"")
    pair.b.receive_data(b"")
    assert pair.a.next_event() == Goodbye() == pair.b.next_event()


def test_after_our_goodbye_frames_are_still_read_and_checked() -> None:
    """Between our goodbye and the peer's, its frames (sent before it saw ours) are parsed
    and checked as ever, but can no longer be answered (docs/protocol.md 5.8)."""
    m = PacketStream()
    assert m.goodbye() == GOODBYE_FRAME
    m.receive_data(_req(1))
    assert m.next_event() == Request(-1, "x.y", [], CallType.ASYNC)
    with pytest.raises(LocalProtocolError):
        m.respond(-1, True)
    m.receive_data(GOODBYE_FRAME)
    m.receive_data(b"")  # the peer's box-stream goodbye (or EOF) right after its goodbye
    assert m.next_event() == Goodbye() == m.next_event()
    broken = PacketStream()
    broken.goodbye()
    broken.receive_data(frame(0, -5, b"\xc3"))  # an answer to a call we never made
    with pytest.raises(FramingError):
        broken.next_event()


def test_eof_without_goodbye_is_error() -> None:
    m = PacketStream()
    m.receive_data(_req(1))
    m.receive_data(b"")
    assert isinstance(m.next_event(), Request)  # complete frames still come out first
    with pytest.raises(FramingError, match="without"):
        m.next_event()


@pytest.mark.parametrize("cut", [1, 8, 9, 12])
def test_eof_inside_frame_is_error(cut: int) -> None:
    m = PacketStream()
    m.receive_data(_req(1)[:cut])
    assert m.next_event() is NEED_DATA
    m.receive_data(b"")
    with pytest.raises(FramingError, match="inside"):
        m.next_event()
    with pytest.raises(LocalProtocolError):
        m.receive_data(b"more")


def test_half_frame_changes_nothing() -> None:
    m, rid = _our_call(CallType.ASYNC)
    data = frame(0, -rid, OK)
    m.receive_data(data[:-1])
    assert m.next_event() is NEED_DATA
    assert m.call_state(rid) is CallState.PENDING
    assert m.bytes_buffered == len(data) - 1
    m.receive_data(data[-1:])
    assert m.next_event() == Response(rid, "ok")
    assert m.call_state(rid) is CallState.DONE


# ---------------------------------------------------------------------------- local misuse


def _with_peer_call(ctype: str) -> PacketStream:
    m = PacketStream()
    m.receive_data(_req(1, ctype))
    assert isinstance(m.next_event(), Request)
    return m


@pytest.mark.parametrize(
    "misuse",
    [
        pytest.param(lambda m: m.respond(-1, 1) + m.respond(-1, 2), id="respond-twice"),
        pytest.param(lambda m: m.respond(-1, 1) + m.respond_error(-1, "x", "y"), id="err-after"),
        pytest.param(lambda m: m.respond(1, 1), id="missing-minus-sign"),
        pytest.param(lambda m: m.respond(-9, 1), id="unknown-id"),
        pytest.param(lambda m: m.stream_send(-1, 1), id="stream-send-on-async"),
        pytest.param(lambda m: m.stream_end(-1), id="stream-end-on-async"),
        pytest.param(lambda m: m.respond(-1, object()), id="unencodable"),
        pytest.param(lambda m: m.respond(-1, bytes(MAX_BODY)), id="too-big"),
        pytest.param(lambda m: m.goodbye() + m.respond(-1, 1), id="after-goodbye"),
        pytest.param(lambda m: m.request(""), id="empty-name"),
        pytest.param(lambda m: m.request("x.y", 5), id="bad-args"),
        pytest.param(lambda m: m.request("x.y", {"v": object()}), id="unencodable-args"),
        pytest.param(lambda m: m.open_stream("x.y", [], "async"), id="open-stream-async"),
        pytest.param(lambda m: m.open_stream("x.y", [], "bogus"), id="open-stream-bogus"),
    ],
)
def test_misuse_on_async_raises_and_changes_nothing(misuse: Any) -> None:
    m = _with_peer_call("async")
    with pytest.raises(LocalProtocolError):
        misuse(m)
    if m.our_state is ConnectionState.OPEN:
        assert m.call_state(-1) in (CallState.PENDING, CallState.DONE)


@pytest.mark.parametrize(
    ("ctype", "misuse"),
    [
        pytest.param(
            "source", lambda m: m.stream_end(-1) + m.stream_send(-1, 1), id="send-after-end"
        ),
        pytest.param("source", lambda m: m.stream_end(-1) + m.stream_end(-1), id="end-twice"),
        pytest.param("source", lambda m: m.respond(-1, 1), id="respond-on-stream"),
        pytest.param("sink", lambda m: m.stream_send(-1, 1), id="callee-sends-on-sink"),
    ],
)
def test_misuse_on_stream_raises(ctype: str, misuse: Any) -> None:
    m = _with_peer_call(ctype)
    with pytest.raises(LocalProtocolError):
        misuse(m)


def test_caller_cannot_send_on_source_or_receive_answer_twice() -> None:
    m, rid = _our_call(CallType.SOURCE)
    with pytest.raises(LocalProtocolError, match="caller"):
        m.stream_send(rid, 1)
    assert m.call_state(rid) is CallState.OPEN
    m.stream_end(rid)  # the caller may abort a source
    m2, rid2 = _our_call(CallType.ASYNC)
    with pytest.raises(LocalProtocolError):
        m2.respond(rid2, 1)  # can't answer our own call


def test_failed_send_leaves_call_usable() -> None:
    m = _with_peer_call("async")
    with pytest.raises(LocalProtocolError):
        m.respond(-1, object())
    assert m.call_state(-1) is CallState.PENDING
    assert m.respond(-1, "fine")[9:] == MSGPACK.encode("fine")


def test_error_info_validates() -> None:
    with pytest.raises(LocalProtocolError):
        ErrorInfo(ErrorCode.INTERNAL, 5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- the table


def test_transition_table_directions() -> None:
    def ok(ct: CallType, role: Role, state: CallState, action: Action) -> bool:
        return (ct, role, state, action) in TRANSITIONS

    assert ok(CallType.SOURCE, Role.CALLEE, CallState.OPEN, Action.SEND_DATA)
    assert not ok(CallType.SOURCE, Role.CALLER, CallState.OPEN, Action.SEND_DATA)
    assert ok(CallType.SINK, Role.CALLER, CallState.OPEN, Action.SEND_DATA)
    assert not ok(CallType.SINK, Role.CALLER, CallState.OPEN, Action.RECV_DATA)
    assert not ok(CallType.DUPLEX, Role.CALLER, CallState.LOCAL_ENDED, Action.SEND_DATA)
    assert not ok(CallType.DUPLEX, Role.CALLER, CallState.REMOTE_ENDED, Action.RECV_DATA)
    assert not ok(CallType.ASYNC, Role.CALLER, CallState.PENDING, Action.SEND_ANSWER)
    for (ct, _role, state, action), new_state in TRANSITIONS.items():
        assert state is not CallState.DONE
        assert (ct is CallType.ASYNC) == (action in (Action.SEND_ANSWER, Action.RECV_ANSWER))
        assert (new_state is CallState.DONE) == (
            ct is CallType.ASYNC
            or (
                state in (CallState.LOCAL_ENDED, CallState.REMOTE_ENDED)
                and action in (Action.SEND_END, Action.RECV_END)
            )
        )


# ---------------------------------------------------------------------------- fuzzing


def _drain_fuzz(m: PacketStream) -> None:
    for _ in range(10_000):
        event = m.next_event()
        if event is NEED_DATA or isinstance(event, Goodbye):
            return


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_random_bytes_raise_only_remote_errors(data: bytes, eof: bool) -> None:
    m = PacketStream()
    m.request("x.y")
    m.open_stream("x.y", [], "duplex")
    try:
        m.receive_data(data)
        _drain_fuzz(m)
        if eof:
            m.receive_data(b"")
            _drain_fuzz(m)
    except RemoteProtocolError:
        assert m.their_state is ConnectionState.ERROR


_bodies = st.sampled_from(
    [
        TRUE,
        OK,
        b"\xc1",
        MSGPACK.encode({"name": "x", "message": "m", "code": "c"}),
        MSGPACK.encode({"name": "x.y", "args": [], "type": "async"}),
        MSGPACK.encode({"name": "x.y", "args": {}, "type": "duplex"}),
        MSGPACK.encode({"name": "x.y", "args": {}, "type": "source"}),
    ]
) | st.binary(max_size=12)
_frames = st.builds(frame, st.integers(0, 15), st.integers(-3, 4), _bodies)


@settings(max_examples=300, deadline=None)
@given(st.lists(_frames, max_size=12), st.booleans())
def test_random_frames_raise_only_remote_errors(frames: list[bytes], eof: bool) -> None:
    m = PacketStream()
    m.request("x.y")
    m.open_stream("x.y", [], "source")
    m.open_stream("x.y", [], "sink")
    try:
        for f in frames:
            m.receive_data(f)
            _drain_fuzz(m)
        if eof:
            m.receive_data(b"")
            _drain_fuzz(m)
    except RemoteProtocolError:
        assert m.their_state is ConnectionState.ERROR
