"""The trio shell: over real TCP on loopback with both ends in this process, and against a
hand-driven remote (the project's own box-stream and packet-stream machines) in memory."""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from p2psocial.errors import (
    FramingError,
    HandshakeFailed,
    PeerDisconnected,
    RpcError,
    StreamCut,
)
from p2psocial.net.connection import (
    GOODBYE_TIMEOUT,
    Connection,
    Handlers,
    RpcStream,
    connect,
    serve,
    stream_handler,
)
from p2psocial.proto import boxstream, packets
from p2psocial.proto.handshake import NETWORK_KEY, Session
from tests.helpers import make_keys

SERVER = make_keys(10)
CLIENT = make_keys(11)


async def echo(conn: Connection, args: Any) -> Any:
    return {"echo": args, "from": conn.remote_id}


async def boom(conn: Connection, args: Any) -> Any:
    raise ValueError("not for the peer's eyes")


async def upper(conn: Connection, args: Any, stream: RpcStream) -> None:
    async for item in stream:
        await stream.send(item.upper())


HANDLERS: Handlers = {"test.echo": echo, "test.boom": boom, "test.upper": stream_handler(upper)}


async def start_server(nursery: trio.Nursery, **kwargs: Any) -> int:
    async def hold(conn: Connection) -> None:
        await conn.wait_closed()

    listeners = await nursery.start(
        lambda task_status: serve(
            "127.0.0.1",
            0,
            keys=SERVER,
            network_key=kwargs.pop("network_key", NETWORK_KEY),
            on_connection=hold,
            handlers=HANDLERS,
            task_status=task_status,
            **kwargs,
        )
    )
    return int(listeners[0].socket.getsockname()[1])


@pytest.mark.trio
async def test_call_stream_and_errors() -> None:
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery)
        async with connect(
            "127.0.0.1", port, SERVER.public, keys=CLIENT, network_key=NETWORK_KEY
        ) as conn:
            assert conn.remote_key == SERVER.public
            answer = await conn.call("test.echo", {"x": [1, b"\x00"]})
            assert answer == {"echo": {"x": [1, b"\x00"]}, "from": CLIENT.feed_id}
            with pytest.raises(RpcError, match="unknown_method"):
                await conn.call("test.nope", {})
            with pytest.raises(RpcError, match="internal") as info:
                await conn.call("test.boom", {})
            assert "peer's eyes" not in str(info.value)
            async with conn.stream("test.upper", {}) as s:
                await s.send("abc")
                assert await s.receive() == "ABC"
                await s.send("x" * 100_000)
                assert await s.receive() == "X" * 100_000
            assert await conn.call("test.echo", [1]) == {"echo": [1], "from": CLIENT.feed_id}
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_many_concurrent_calls() -> None:
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery)
        async with connect(
            "127.0.0.1", port, SERVER.public, keys=CLIENT, network_key=NETWORK_KEY
        ) as conn:
            results: dict[int, Any] = {}

            async def one(i: int) -> None:
                results[i] = await conn.call("test.echo", {"i": i})

            async with trio.open_nursery() as calls:
                for i in range(300):
                    calls.start_soon(one, i)
            assert all(results[i]["echo"] == {"i": i} for i in range(300))
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_wrong_server_key_fails() -> None:
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery)
        with pytest.raises(HandshakeFailed) as info:
            async with connect(
                "127.0.0.1", port, CLIENT.public, keys=CLIENT, network_key=NETWORK_KEY
            ):
                pass
        assert info.value.step in ("server accept", "eof")
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_wrong_network_fails_at_first_message() -> None:
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery)
        with pytest.raises(HandshakeFailed) as info:
            async with connect(
                "127.0.0.1", port, SERVER.public, keys=CLIENT, network_key=b"\x01" * 32
            ):
                pass
        assert info.value.step in ("server hello", "eof")
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_server_refuses_unwanted_client() -> None:
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, accept=lambda key: key != CLIENT.public)
        with pytest.raises((HandshakeFailed, PeerDisconnected)):
            async with connect(
                "127.0.0.1", port, SERVER.public, keys=CLIENT, network_key=NETWORK_KEY
            ) as conn:
                await conn.call("test.echo", [1])
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_unreachable_is_peer_disconnected() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PeerDisconnected):
        async with connect("127.0.0.1", port, SERVER.public, keys=CLIENT, network_key=NETWORK_KEY):
            pass


async def hang(stream: trio.SocketStream) -> None:
    await trio.sleep_forever()


@pytest.mark.trio
async def test_silent_server_times_out() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, hang, 0)
        port = listeners[0].socket.getsockname()[1]
        with pytest.raises(HandshakeFailed, match="timeout"):
            async with connect(
                "127.0.0.1",
                port,
                SERVER.public,
                keys=CLIENT,
                network_key=NETWORK_KEY,
                handshake_timeout=0.5,
            ):
                pass
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------- closing, real TCP


@pytest.mark.trio
@pytest.mark.parametrize("closer", ["client", "server"])
async def test_close_started_by_either_side_is_clean_for_both(closer: str) -> None:
    server_conns: list[Connection] = []

    async def on_connection(conn: Connection) -> None:
        server_conns.append(conn)
        if closer == "server":
            assert await conn.call("test.echo", [1]) == {"echo": [1], "from": SERVER.feed_id}
            await conn.aclose("server leaves")
        await conn.wait_closed()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                lambda task_status: serve(
                    "127.0.0.1",
                    0,
                    keys=SERVER,
                    network_key=NETWORK_KEY,
                    on_connection=on_connection,
                    handlers=HANDLERS,
                    task_status=task_status,
                )
            )
            port = listeners[0].socket.getsockname()[1]
            async with connect(
                "127.0.0.1",
                port,
                SERVER.public,
                keys=CLIENT,
                network_key=NETWORK_KEY,
                handlers=HANDLERS,
            ) as conn:
                if closer == "server":
                    await conn.wait_closed()
                else:
                    assert await conn.call("test.echo", [2]) == {
                        "echo": [2],
                        "from": CLIENT.feed_id,
                    }
            await server_conns[0].wait_closed()
            nursery.cancel_scope.cancel()
    client, server = conn, server_conns[0]
    assert client.closed_cleanly, client.close_reason
    assert server.closed_cleanly, server.close_reason
    if closer == "server":
        assert (client.close_reason, server.close_reason) == ("closed by peer", "server leaves")
    else:
        assert (client.close_reason, server.close_reason) == ("closed", "closed by peer")


# ---------------------------------------------------------------------------- closing, byte level

# One fixed session: "us" is the Connection under test, "them" the hand-driven remote.
KEY_US, NONCE_US = bytes(range(32)), bytes(range(100, 124))
KEY_THEM, NONCE_THEM = bytes(range(32, 64)), bytes(range(200, 224))
OUR_SESSION = Session(KEY_US, NONCE_US, KEY_THEM, NONCE_THEM)


class Remote:
    """The peer, byte by byte: it seals and opens with the project's own box-stream
    machines and reads frames with its own packet-stream machine."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.encoder = boxstream.Encoder(KEY_THEM, NONCE_THEM)
        self.decoder = boxstream.Decoder(KEY_US, NONCE_US)
        self.packets = packets.PacketStream()
        self.wire = bytearray()  # every byte we sent, as read here

    async def send_frames(self, frames: bytes) -> None:
        await self.stream.send_all(self.encoder.encrypt(frames))

    async def send_goodbyes(self, packet_stream: bool = True) -> None:
        wire = self.encoder.encrypt(self.packets.goodbye()) if packet_stream else b""
        await self.stream.send_all(wire + self.encoder.goodbye())

    async def box_event(self) -> boxstream.Data | boxstream.Goodbye:
        """Our next box-stream event; raises StreamCut if we closed TCP without goodbye."""
        while True:
            event = self.decoder.next_event()
            if not isinstance(event, boxstream.NeedData):
                return event
            data = await self.stream.receive_some(65536)
            self.wire += data
            self.decoder.receive_data(bytes(data))

    async def frames(self) -> list[packets.Event]:
        """The frames of our next box-stream data."""
        event = await self.box_event()
        assert isinstance(event, boxstream.Data)
        self.packets.receive_data(event.data)
        out: list[packets.Event] = []
        while (frame := self.packets.next_event()) is not packets.NEED_DATA:
            assert isinstance(frame, packets.Event)
            out.append(frame)
            if isinstance(frame, packets.Goodbye):
                break
        return out

    async def expect_goodbyes_then_eof(self) -> None:
        """We must send the packet-stream goodbye, then the box-stream goodbye, then close."""
        assert await self.frames() == [packets.Goodbye()]
        assert isinstance(await self.box_event(), boxstream.Goodbye)
        assert await self.stream.receive_some(65536) == b""  # TCP closed, nothing after
        self.decoder.receive_data(b"")
        assert isinstance(self.decoder.next_event(), boxstream.Goodbye)  # a clean end here
        self.packets.receive_data(b"")
        assert self.packets.next_event() == packets.Goodbye()


def our_wire(*frames: bytes, goodbye: bool = True) -> bytes:
    """The exact bytes we must send: ``frames`` box-streamed, then both goodbyes."""
    mirror = boxstream.Encoder(KEY_US, NONCE_US)
    wire = b"".join(mirror.encrypt(f) for f in frames)
    if goodbye:
        wire += mirror.encrypt(packets.GOODBYE_FRAME) + mirror.goodbye()
    return wire


@asynccontextmanager
async def wired(handlers: Handlers | None = None) -> AsyncIterator[tuple[Connection, Remote]]:
    ours, theirs = trio.testing.memory_stream_pair()
    conn = Connection(ours, OUR_SESSION, CLIENT.public, handlers or {}, initiator=True)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(conn._run)
            yield conn, Remote(theirs)
            await conn.wait_closed()


async def failing_call(conn: Connection, failures: list[BaseException]) -> None:
    try:
        await conn.call("x.y", {})
    except PeerDisconnected as exc:
        failures.append(exc)


@pytest.mark.trio
async def test_peer_goodbye_is_answered_with_both_goodbyes_then_close() -> None:
    failures: list[BaseException] = []
    async with wired() as (conn, remote), trio.open_nursery() as calls:
        calls.start_soon(failing_call, conn, failures)
        [request] = await remote.frames()
        assert request == packets.Request(-1, "x.y", {}, packets.CallType.ASYNC)
        await remote.send_goodbyes()
        await remote.expect_goodbyes_then_eof()
    assert conn.closed_cleanly
    assert (conn.close_reason, conn.close_error) == ("closed by peer", None)
    assert len(failures) == 1  # the open call was abandoned: PeerDisconnected
    _, request_frame = packets.PacketStream().request("x.y", {})
    assert bytes(remote.wire) == our_wire(request_frame)


@pytest.mark.trio
async def test_our_close_waits_for_the_peer_goodbyes() -> None:
    async with wired(HANDLERS) as (conn, remote), trio.open_nursery() as nursery:
        nursery.start_soon(conn.aclose)
        assert await remote.frames() == [packets.Goodbye()]
        assert isinstance(await remote.box_event(), boxstream.Goodbye)
        await trio.testing.wait_all_tasks_blocked()
        assert conn.closed and not conn.closed_cleanly  # still waiting: TCP stays open
        # A request that crossed our goodbye is read and checked, but not answered.
        _, request = remote.packets.request("test.echo", [1])
        await remote.send_frames(request)
        await remote.send_goodbyes()
        await conn.wait_closed()
        assert await remote.stream.receive_some(65536) == b""  # nothing after our goodbye
    assert conn.closed_cleanly
    assert (conn.close_reason, conn.close_error) == ("closed", None)
    assert bytes(remote.wire) == our_wire()


@pytest.mark.trio
async def test_box_stream_goodbye_alone_is_a_connection_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures: list[BaseException] = []
    caplog.set_level(logging.WARNING, "p2psocial.net")
    async with wired() as (conn, remote), trio.open_nursery() as calls:
        calls.start_soon(failing_call, conn, failures)
        assert len(await remote.frames()) == 1
        await remote.send_goodbyes(packet_stream=False)
        with pytest.raises(StreamCut):  # we answer nothing: no goodbye of either kind
            await remote.box_event()
    assert not conn.closed_cleanly
    assert isinstance(conn.close_error, FramingError)
    assert conn.close_reason is not None
    assert conn.close_reason.startswith(
        "cut off: box-stream goodbye before the packet-stream goodbye"
    )
    assert "broke the protocol" in caplog.text
    assert len(failures) == 1
    _, request_frame = packets.PacketStream().request("x.y", {})
    assert bytes(remote.wire) == our_wire(request_frame, goodbye=False)


@pytest.mark.trio
async def test_peer_goodbye_then_cut_is_not_clean() -> None:
    async with wired() as (conn, remote):
        await remote.stream.send_all(remote.encoder.encrypt(remote.packets.goodbye()))
        assert await remote.frames() == [packets.Goodbye()]  # we answer...
        await remote.stream.aclose()  # ...but the peer never ends its box-stream
    assert not conn.closed_cleanly
    assert isinstance(conn.close_error, StreamCut)
    assert conn.close_reason is not None
    assert conn.close_reason.startswith("closed by peer (goodbye failed: ")


@pytest.mark.trio
async def test_our_close_gives_up_at_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    async with wired() as (conn, remote):
        start = trio.current_time()
        await conn.aclose("bye")
        assert trio.current_time() - start == pytest.approx(GOODBYE_TIMEOUT)
        await remote.expect_goodbyes_then_eof()  # we did say goodbye, then closed at the deadline
    assert isinstance(conn.close_error, PeerDisconnected)
    assert conn.close_reason == f"bye (goodbye failed: no goodbye from {CLIENT.feed_id} within 2 s)"


# ---------------------------------------------------------------------------- bounds


@pytest.mark.trio
async def test_a_frame_left_unfinished_is_cut_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from p2psocial.errors import FramingError
    from p2psocial.net.connection import FRAME_DEADLINE

    ours, theirs = trio.testing.memory_stream_pair()
    conn = Connection(ours, OUR_SESSION, CLIENT.public, {}, initiator=True)
    remote = Remote(theirs)
    with trio.fail_after(FRAME_DEADLINE * 2):
        async with trio.open_nursery() as nursery:
            await nursery.start(conn._run)
            start = trio.current_time()
            await remote.send_frames(struct.pack(">BIi", 0b1010, 100_000, 1) + b"x" * 50_000)
            await conn.wait_closed()
            assert trio.current_time() - start == pytest.approx(FRAME_DEADLINE)
    assert isinstance(conn.close_error, FramingError)
    assert "unfinished for 30 s" in str(conn.close_error)


@pytest.mark.trio
async def test_too_many_streams_at_once_cut_the_peer_off() -> None:
    from p2psocial.errors import FramingError
    from p2psocial.net.connection import MAX_REMOTE_STREAMS

    async def hold(conn: Connection, args: Any, stream: RpcStream) -> None:
        await trio.sleep_forever()

    async with wired({"s": stream_handler(hold)}) as (conn, remote):
        frames = b"".join(
            remote.packets.open_stream("s", {})[1] for _ in range(MAX_REMOTE_STREAMS + 1)
        )
        await remote.send_frames(frames)
        await conn.wait_closed()
    assert isinstance(conn.close_error, FramingError)
    assert f"more than {MAX_REMOTE_STREAMS} streams" in str(conn.close_error)


def test_the_frame_budget_is_shared_and_released() -> None:
    from p2psocial.errors import FramingError
    from p2psocial.net.connection import FrameBudget

    budget = FrameBudget(limit=100)
    a, b = object(), object()
    budget.hold(a, 60)
    budget.hold(a, 70)  # the same owner's frame grew: counted once
    assert budget.total == 70
    with pytest.raises(FramingError):
        budget.hold(b, 40)
    assert budget.total == 70  # the one refused holds nothing
    budget.release(a)
    budget.hold(b, 40)
    assert budget.total == 40
    budget.hold(b, 0)
    assert budget.total == 0


def test_the_throttled_log_says_how_many_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    from p2psocial.net.connection import ThrottledLog

    throttled = ThrottledLog("failures", burst=3, window=10.0)
    with caplog.at_level(logging.INFO, logger="p2psocial.net"):
        for n in range(100):
            throttled.info("failure %d", n, now=1.0 + n * 0.01)
        throttled.info("failure late", now=20.0)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "failure 0",
        "failure 1",
        "failure 2",
        "97 more failures in 10 s (not logged one by one)",
        "failure late",
    ]
