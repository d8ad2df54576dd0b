"""The trio shell over real TCP on loopback, both ends in this process."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from p2psocial.errors import HandshakeFailed, PeerDisconnected, RpcError
from p2psocial.net.connection import (
    Connection,
    Handlers,
    RpcStream,
    connect,
    serve,
    stream_handler,
)
from p2psocial.proto.handshake import NETWORK_KEY
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
