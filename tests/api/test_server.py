"""The JSON-RPC server on a real Unix socket, with the real clients (trio and blocking)."""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from p2psocial.api.hub import Subscription
from p2psocial.api.params import Params
from p2psocial.api.registry import CallContext, MethodRegistry
from p2psocial.api.server import Limits, RpcServer, serve_unix
from p2psocial.client import AsyncClient, Client, Overflow
from p2psocial.errors import (
    CodecError,
    ConfigError,
    ContentTooLarge,
    DaemonAlreadyRunning,
    DaemonNotRunning,
    InvalidContent,
    InvalidId,
    LocalProtocolError,
    NotFound,
    PeerDisconnected,
    RpcError,
    StorageError,
)
from p2psocial.proto.jsonrpc import (
    CONFIG_ERROR,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_CONTENT,
    INVALID_ID,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_FOUND,
    OVERLOADED,
    PARSE_ERROR,
    REQUEST_TOO_LARGE,
    STORAGE_ERROR,
    LineReader,
)

FAILURES: dict[str, Exception] = {
    "not_found": NotFound("no feed @abc"),
    "invalid_id": InvalidId("not a feed id"),
    "too_large": ContentTooLarge("content is 9000 bytes; the limit is 8192"),
    "invalid_content": InvalidContent("no type"),
    "config": ConfigError("bad setting"),
    "storage": StorageError("disk full"),
    "forbidden": RpcError(FORBIDDEN, "not yours"),
    "bug": ValueError("secret internal detail"),
    "group": ExceptionGroup("from a nursery", [NotFound("in a group")]),
}


class Gates:
    """Named events the test opens, so handlers block exactly as long as a test wants."""

    def __init__(self) -> None:
        self.events: dict[str, trio.Event] = {}
        self.calls = 0  # of "big"
        self.running = 0  # "big" calls running now
        self.most_running = 0

    def __getitem__(self, name: str) -> trio.Event:
        return self.events.setdefault(name, trio.Event())


def make_registry(gates: Gates) -> MethodRegistry:
    registry = MethodRegistry()

    @registry.method("echo")
    async def echo(params: Params, ctx: CallContext) -> Any:
        return params.to_dict()

    @registry.method("add")
    async def add(params: Params, ctx: CallContext) -> int:
        a, b = params.require_int("a"), params.require_int("b")
        params.reject_unknown()
        return a + b

    @registry.method("slow")
    async def slow(params: Params, ctx: CallContext) -> float:
        seconds = params.require_float("seconds", min_value=0, max_value=10)
        await trio.sleep(seconds)
        return seconds

    @registry.method("wait")
    async def wait(params: Params, ctx: CallContext) -> str:
        name = params.require_str("gate")
        await gates[name].wait()
        return name

    @registry.method("big")
    async def big(params: Params, ctx: CallContext) -> str:
        """A result of ``size`` bytes, after ``gate`` opens (if given)."""
        size = params.require_int("size", min_value=0)
        gate = params.optional_str("gate")
        params.optional_str("pad")
        params.reject_unknown()
        gates.calls += 1
        gates.running += 1
        gates.most_running = max(gates.most_running, gates.running)
        try:
            if gate is not None:
                await gates[gate].wait()
            else:
                await trio.lowlevel.checkpoint()
        finally:
            gates.running -= 1
        return "x" * size

    @registry.method("open")
    async def open_gate(params: Params, ctx: CallContext) -> None:
        gates[params.require_str("gate")].set()

    @registry.method("fail")
    async def fail(params: Params, ctx: CallContext) -> None:
        raise FAILURES[params.require_str("kind")]

    @registry.method("bad_result")
    async def bad_result(params: Params, ctx: CallContext) -> Any:
        return {"x": object()}

    @registry.method("ticks")
    async def ticks(params: Params, ctx: CallContext) -> str:
        every = params.optional_int("every", 1, min_value=1)
        params.reject_unknown()
        return ctx.subscribe("ticks", params, filter=every).id

    @registry.method("ticks_then_fail")
    async def ticks_then_fail(params: Params, ctx: CallContext) -> str:
        ctx.subscribe("ticks")
        raise NotFound("changed my mind")

    return registry


def every_nth(n: int) -> Callable[[Subscription], bool]:
    """The daemon-side predicate: does subscription ``s`` (``filter`` = every) want tick n?"""
    return lambda s: n % s.filter == 0


def publish_ticks(server: RpcServer, numbers: range, size: int = 0) -> int:
    pad = "x" * size
    kept = 0
    for n in numbers:
        item = {"n": n, "pad": pad} if size else {"n": n}
        kept += server.hub.publish("ticks", item, match=every_nth(n))
    return kept


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    """A socket path short enough for AF_UNIX (108 bytes, with room for the temp name)."""
    if len(str(tmp_path)) < 80:
        yield tmp_path / "rpc.sock"
        return
    short = Path(tempfile.mkdtemp(prefix="p2r", dir="/tmp"))
    try:
        yield short / "rpc.sock"
    finally:
        for child in short.iterdir():
            child.unlink()
        short.rmdir()


@pytest.fixture
def gates() -> Gates:
    return Gates()


async def start(
    nursery: trio.Nursery, path: Path, gates: Gates, limits: Limits | None = None
) -> RpcServer:
    server: RpcServer = await nursery.start(
        functools.partial(serve_unix, path, make_registry(gates), limits=limits)
    )
    return server


@pytest.fixture
async def server(sock_path: Path, gates: Gates) -> AsyncIterator[RpcServer]:
    async with trio.open_nursery() as nursery:
        yield await start(nursery, sock_path, gates)
        nursery.cancel_scope.cancel()


class Raw:
    """A bare socket connection speaking lines, for what the clients never send."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.lines = LineReader(64 << 20)

    @classmethod
    async def open(cls, path: Path) -> Raw:
        return cls(await trio.open_unix_socket(str(path)))

    async def send(self, obj: Any) -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode() + b"\n"
        await self.stream.send_all(data)

    async def recv_line(self) -> bytes | None:
        """The next line, or None at EOF."""
        with trio.fail_after(5):
            while (line := self.lines.next_line()) is None:
                data = await self.stream.receive_some(65536)
                if not data:
                    return None
                self.lines.receive_data(data)
        return line

    async def recv(self) -> Any:
        line = await self.recv_line()
        assert line is not None, "the server closed the connection"
        return json.loads(line)

    async def call(self, method: str, request_id: int = 1, **params: Any) -> Any:
        await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        return await self.recv()

    async def aclose(self) -> None:
        await self.stream.aclose()


async def wait_until(condition: Any, what: str, limit: float = 5) -> None:
    """Poll ``condition()`` until true; fail naming ``what`` after ``limit`` seconds."""
    try:
        with trio.fail_after(limit):
            while not condition():  # noqa: ASYNC110 - polling server state with a deadline
                await trio.sleep(0.005)
    except trio.TooSlowError:
        pytest.fail(f"timed out waiting for {what}")


# ------------------------------------------------------------------------------ calls


@pytest.mark.trio
async def test_calls_and_results(server: RpcServer, sock_path: Path) -> None:
    async with AsyncClient(sock_path) as client:
        assert await client.call("add", a=2, b=3) == 5
        assert await client.call("echo", text="héllo", n=[1, None]) == {
            "text": "héllo",
            "n": [1, None],
        }
        assert await client.call("echo") == {}


@pytest.mark.trio
@pytest.mark.parametrize(
    ("method", "params", "code", "needle", "data"),
    [
        (
            "nope",
            {},
            METHOD_NOT_FOUND,
            "not found: 'nope'",
            {"type": "MethodNotFound", "method": "nope"},
        ),
        ("add", {"a": 1}, INVALID_PARAMS, "'b'", {"type": "InvalidParams", "param": "b"}),
        ("add", {"a": 1, "b": "2"}, INVALID_PARAMS, "'b' must be an integer", None),
        ("add", {"a": 1, "b": 2, "c": 3}, INVALID_PARAMS, "unknown parameter 'c'", None),
        ("slow", {"seconds": -1}, INVALID_PARAMS, "'seconds' must be >= 0", None),
        ("fail", {"kind": "not_found"}, NOT_FOUND, "no feed @abc", {"type": "NotFound"}),
        ("fail", {"kind": "invalid_id"}, INVALID_ID, "not a feed id", {"type": "InvalidId"}),
        ("fail", {"kind": "too_large"}, INVALID_CONTENT, "limit is 8192", None),
        ("fail", {"kind": "invalid_content"}, INVALID_CONTENT, "no type", None),
        ("fail", {"kind": "config"}, CONFIG_ERROR, "bad setting", {"type": "ConfigError"}),
        ("fail", {"kind": "storage"}, STORAGE_ERROR, "disk full", None),
        ("fail", {"kind": "forbidden"}, FORBIDDEN, "not yours", None),
        ("fail", {"kind": "group"}, NOT_FOUND, "in a group", None),
        ("fail", {"kind": "bug"}, INTERNAL_ERROR, "internal error", {"type": "ValueError"}),
        ("bad_result", {}, INTERNAL_ERROR, "internal error", {"type": "TypeError"}),
    ],
)
async def test_error_codes(
    server: RpcServer,
    sock_path: Path,
    method: str,
    params: dict[str, Any],
    code: int,
    needle: str,
    data: dict[str, Any] | None,
) -> None:
    async with AsyncClient(sock_path) as client:
        with pytest.raises(RpcError) as info:
            await client.call(method, **params)
        assert info.value.code == code
        assert needle in info.value.message
        assert info.value.data["type"]
        if data is not None:
            assert info.value.data == data
        assert await client.call("add", a=1, b=1) == 2  # the connection still works


@pytest.mark.trio
async def test_internal_errors_are_logged_not_sent(
    server: RpcServer, sock_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="p2psocial.api"):
        async with AsyncClient(sock_path) as client:
            with pytest.raises(RpcError) as info:
                await client.call("fail", kind="bug")
    assert "secret internal detail" not in str(info.value)
    assert "secret internal detail" in caplog.text
    assert "'fail' failed" in caplog.text


@pytest.mark.trio
async def test_parse_error_keeps_the_connection_open(server: RpcServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    await raw.send(b'{"jsonrpc": "2.0", "id": 1, "method": \n')
    answer = await raw.recv()
    assert answer["id"] is None
    assert answer["error"]["code"] == PARSE_ERROR
    await raw.send(b"\xff\xfe\n")
    assert (await raw.recv())["error"]["code"] == PARSE_ERROR
    await raw.send(b"\n   \n")  # blank lines are ignored
    assert await raw.call("add", 2, a=1, b=2) == {"jsonrpc": "2.0", "id": 2, "result": 3}
    await raw.aclose()


@pytest.mark.trio
async def test_invalid_requests(server: RpcServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    await raw.send({"id": 4, "method": "echo"})
    answer = await raw.recv()
    assert (answer["id"], answer["error"]["code"]) == (4, INVALID_REQUEST)
    await raw.send({"jsonrpc": "2.0", "method": 5})  # invalid even without an id: answered
    answer = await raw.recv()
    assert (answer["id"], answer["error"]["code"]) == (None, INVALID_REQUEST)
    await raw.aclose()


@pytest.mark.trio
async def test_params_by_position_are_refused(server: RpcServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    await raw.send({"jsonrpc": "2.0", "id": 9, "method": "add", "params": [1, 2]})
    answer = await raw.recv()
    assert answer["id"] == 9
    assert answer["error"]["code"] == INVALID_PARAMS
    assert "named parameters" in answer["error"]["message"]
    await raw.aclose()


@pytest.mark.trio
async def test_notifications_get_no_answer(server: RpcServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    await raw.send({"jsonrpc": "2.0", "method": "echo", "params": {"a": 1}})
    await raw.send({"jsonrpc": "2.0", "method": "nope"})  # even errors are not answered
    await raw.send({"jsonrpc": "2.0", "method": "add", "params": [1]})
    await raw.send({"jsonrpc": "2.0", "method": "open", "params": {"gate": "g"}})
    assert await raw.call("wait", 5, gate="g") == {"jsonrpc": "2.0", "id": 5, "result": "g"}
    await raw.aclose()


@pytest.mark.trio
async def test_batch(server: RpcServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    await raw.send(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "add", "params": {"a": 1, "b": 1}},
            {"jsonrpc": "2.0", "method": "echo"},
            {"jsonrpc": "2.0", "id": 2, "method": "fail", "params": {"kind": "not_found"}},
            "junk",
            {"jsonrpc": "2.0", "id": 3, "method": "add", "params": [1, 2]},
        ]
    )
    answers = await raw.recv()
    assert isinstance(answers, list)
    by_id = {a["id"]: a for a in answers if a["id"] is not None}
    assert by_id[1]["result"] == 2
    assert by_id[2]["error"]["code"] == NOT_FOUND
    assert by_id[3]["error"]["code"] == INVALID_PARAMS
    assert [a["error"]["code"] for a in answers if a["id"] is None] == [INVALID_REQUEST]
    assert len(answers) == 4

    await raw.send([{"jsonrpc": "2.0", "method": "echo"}])  # only notifications: no answer
    await raw.send(b"[]\n")
    answer = await raw.recv()
    assert isinstance(answer, dict)
    assert answer["error"]["code"] == INVALID_REQUEST
    await raw.aclose()


@pytest.mark.trio
async def test_batch_runs_concurrently(server: RpcServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    await raw.send(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "wait", "params": {"gate": "b"}},
            {"jsonrpc": "2.0", "id": 2, "method": "open", "params": {"gate": "b"}},
        ]
    )
    answers = await raw.recv()
    assert sorted(a["id"] for a in answers) == [1, 2]
    await raw.aclose()


@pytest.mark.trio
async def test_answers_come_out_of_order_matched_by_id(server: RpcServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    await raw.send({"jsonrpc": "2.0", "id": "first", "method": "wait", "params": {"gate": "o"}})
    await raw.send({"jsonrpc": "2.0", "id": "second", "method": "echo", "params": {"x": 1}})
    assert (await raw.recv())["id"] == "second"
    await raw.send({"jsonrpc": "2.0", "id": "third", "method": "open", "params": {"gate": "o"}})
    ids = {(await raw.recv())["id"] for _ in range(2)}
    assert ids == {"first", "third"}
    await raw.aclose()


@pytest.mark.trio
async def test_eof_after_requests_still_gets_the_answers(
    server: RpcServer, sock_path: Path
) -> None:
    """What ``echo ... | socat - UNIX-CONNECT:...`` does: send, shut the write side, read."""
    raw = await Raw.open(sock_path)
    await raw.send({"jsonrpc": "2.0", "id": 1, "method": "slow", "params": {"seconds": 0.05}})
    await raw.send({"jsonrpc": "2.0", "id": 2, "method": "add", "params": {"a": 1, "b": 2}})
    await raw.stream.send_eof()
    answers = {(await raw.recv())["id"] for _ in range(2)}
    assert answers == {1, 2}
    assert await raw.recv_line() is None
    await raw.aclose()


@pytest.mark.trio
async def test_line_too_long_is_answered_then_closed(server: RpcServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    assert (await raw.call("add", a=1, b=1))["result"] == 2

    async def send_huge() -> None:
        # 3 MiB without a newline; the server discards what follows its error
        await raw.stream.send_all(b"[" + b"1," * (3 << 19))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_huge)
        answer = await raw.recv()
        assert answer["id"] is None
        assert answer["error"]["code"] == REQUEST_TOO_LARGE
        assert await raw.recv_line() is None  # polite close: EOF after the answer
    await raw.aclose()
    await wait_until(lambda: server.connection_count == 0, "the connection to close")


# ------------------------------------------------------------------------------ many clients


@pytest.mark.trio
async def test_fifty_concurrent_clients(server: RpcServer, sock_path: Path) -> None:
    results: dict[int, list[int]] = {}

    async def one_client(k: int) -> None:
        async with AsyncClient(sock_path) as client:
            out: list[int] = []

            async def call(i: int) -> None:
                out.append(await client.call("add", a=k, b=i))

            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(call, i)
            results[k] = sorted(out)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for k in range(50):
                nursery.start_soon(one_client, k)
    assert results == {k: [k + i for i in range(10)] for k in range(50)}


@pytest.mark.trio
async def test_a_stuck_call_does_not_delay_other_clients(
    server: RpcServer, sock_path: Path, gates: Gates
) -> None:
    async with AsyncClient(sock_path) as stuck, AsyncClient(sock_path) as other:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(stuck.call, "wait", gate="stuck"))
            await wait_until(lambda: "stuck" in gates.events, "the stuck call to start")
            with trio.fail_after(2):
                assert await other.call("add", a=1, b=2) == 3
                assert await stuck.call("add", a=2, b=2) == 4  # same connection, too
            gates["stuck"].set()


# ------------------------------------------------------------------------------ subscriptions


@pytest.mark.trio
async def test_subscription_messages_and_unsubscribe(server: RpcServer, sock_path: Path) -> None:
    async with AsyncClient(sock_path) as client:
        async with client.subscribe("ticks", every=2) as sub:
            (hub_sub,) = server.hub.subscriptions("ticks")
            assert hub_sub.id == sub.id
            assert hub_sub.params == {"every": 2}
            assert publish_ticks(server, range(10)) == 5
            got = []
            with trio.fail_after(5):
                async for message in sub:
                    got.append(message["n"])
                    if len(got) == 5:
                        break
            assert got == [0, 2, 4, 6, 8]
        assert server.hub.subscriptions() == []
        assert await client.call("unsubscribe", subscription=sub.id) is False


@pytest.mark.trio
async def test_failed_subscription_call_leaves_no_subscription(
    server: RpcServer, sock_path: Path
) -> None:
    async with AsyncClient(sock_path) as client:
        with pytest.raises(RpcError) as info:
            await client.call("ticks_then_fail")
        assert info.value.code == NOT_FOUND
    assert server.hub.subscriptions() == []


@pytest.mark.trio
async def test_notification_follows_the_answer_with_the_id(
    server: RpcServer, sock_path: Path
) -> None:
    """An item published while the subscribe call runs arrives after the answer."""
    raw = await Raw.open(sock_path)
    await raw.send({"jsonrpc": "2.0", "id": 1, "method": "ticks"})
    await wait_until(lambda: server.hub.subscriptions("ticks"), "the subscription")
    publish_ticks(server, range(1))
    answer = await raw.recv()
    assert answer["id"] == 1
    note = await raw.recv()
    assert note == {
        "jsonrpc": "2.0",
        "method": "message",
        "params": {"subscription": answer["result"], "message": {"n": 0}},
    }
    await raw.aclose()


@pytest.mark.trio
async def test_overflow_notice(sock_path: Path, gates: Gates) -> None:
    async with trio.open_nursery() as nursery:
        server = await start(nursery, sock_path, gates, Limits(subscription_queue=5))
        async with AsyncClient(sock_path) as client, client.subscribe("ticks") as sub:
            publish_ticks(server, range(20))  # no checkpoint: the writer cannot drain
            got = []
            with trio.fail_after(5):
                async for message in sub:
                    got.append(message)
                    if len(got) == 6:
                        publish_ticks(server, range(20, 21))
                    if len(got) == 7:
                        break
            assert [m["n"] for m in got[:5]] == [0, 1, 2, 3, 4]
            assert isinstance(got[5], Overflow)
            assert got[5] == {"overflow": True, "dropped": 15}
            assert got[6] == {"n": 20}
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_subscriptions_end_with_the_connection(server: RpcServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    for i in range(3):
        assert "result" in await raw.call("ticks", i)
    assert len(server.hub.subscriptions("ticks")) == 3
    await raw.aclose()
    await wait_until(lambda: not server.hub.subscriptions(), "the subscriptions to end")


@pytest.mark.trio
async def test_too_many_subscriptions(sock_path: Path, gates: Gates) -> None:
    async with trio.open_nursery() as nursery:
        await start(nursery, sock_path, gates, Limits(max_subscriptions=2))
        async with AsyncClient(sock_path) as client:
            await client.call("ticks")
            await client.call("ticks")
            with pytest.raises(RpcError) as info:
                await client.call("ticks")
            assert info.value.code == OVERLOADED
            assert info.value.data == {
                "type": "Overloaded",
                "limit": 2,
                "limit_name": "subscriptions_per_connection",
            }
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_too_many_connections(sock_path: Path, gates: Gates) -> None:
    async with trio.open_nursery() as nursery:
        server = await start(nursery, sock_path, gates, Limits(max_connections=2))
        async with AsyncClient(sock_path) as a, AsyncClient(sock_path) as b:
            await a.call("echo")
            await b.call("echo")
            raw = await Raw.open(sock_path)
            answer = await raw.recv()
            assert answer["error"]["code"] == OVERLOADED
            assert await raw.recv_line() is None
            await raw.aclose()
        await wait_until(lambda: server.connection_count == 0, "connections to close")
        async with AsyncClient(sock_path) as c:
            assert await c.call("add", a=1, b=1) == 2
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_subscriber_that_never_reads_is_bounded_then_dropped(
    sock_path: Path, gates: Gates, caplog: pytest.LogCaptureFixture
) -> None:
    limits = Limits(subscription_queue=8, send_timeout=0.5)
    caplog.set_level(logging.WARNING, logger="p2psocial.api")
    async with trio.open_nursery() as nursery:
        server = await start(nursery, sock_path, gates, limits)
        deaf = await Raw.open(sock_path)
        assert "result" in await deaf.call("ticks")  # then never reads again
        (sub,) = server.hub.subscriptions("ticks")
        most_queued = dropped = 0
        latencies: list[float] = []

        async def other_client() -> None:
            async with AsyncClient(sock_path) as client:
                while server.hub.subscriptions("ticks"):
                    start_time = trio.current_time()
                    with trio.fail_after(1):
                        assert await client.call("add", a=1, b=2) == 3
                    latencies.append(trio.current_time() - start_time)

        async with trio.open_nursery() as clients:
            clients.start_soon(other_client)
            with trio.fail_after(5):
                while server.hub.subscriptions("ticks"):
                    publish_ticks(server, range(50), size=1000)
                    most_queued = max(most_queued, sub.queued)
                    dropped = sub.dropped_total
                    await trio.sleep(0.001)

        assert most_queued <= limits.subscription_queue + 1
        assert dropped > 0
        assert sub.closed
        assert latencies
        assert max(latencies) < 1
        await wait_until(lambda: server.connection_count == 0, "the deaf client to be dropped")
        assert "read nothing for 0.5 s; dropped" in caplog.text
        await deaf.aclose()
        nursery.cancel_scope.cancel()


# ------------------------------------------------------------------------------ socket file


@pytest.mark.trio
async def test_socket_file_is_private_and_removed_on_exit(sock_path: Path, gates: Gates) -> None:
    async with trio.open_nursery() as nursery:
        await start(nursery, sock_path, gates)
        st = os.stat(sock_path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert sorted(p.name for p in sock_path.parent.iterdir()) == ["rpc.sock"]
        nursery.cancel_scope.cancel()
    assert not await trio.Path(sock_path).exists()


@pytest.mark.trio
async def test_stale_socket_is_replaced(sock_path: Path, gates: Gates) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))
    dead.close()  # the file stays, nobody listens: a crashed daemon's socket
    assert await trio.Path(sock_path).exists()
    with pytest.raises(DaemonNotRunning, match="nothing listens"):
        Client(sock_path)
    async with trio.open_nursery() as nursery:
        await start(nursery, sock_path, gates)
        async with AsyncClient(sock_path) as client:
            assert await client.call("add", a=1, b=2) == 3
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_second_server_on_the_same_socket_is_refused(
    server: RpcServer, sock_path: Path, gates: Gates
) -> None:
    async with trio.open_nursery() as nursery:
        with pytest.raises(DaemonAlreadyRunning, match="another daemon is already running"):
            await start(nursery, sock_path, gates)
    assert issubclass(DaemonAlreadyRunning, ConfigError)
    async with AsyncClient(sock_path) as client:  # the first one is untouched
        assert await client.call("add", a=1, b=2) == 3


@pytest.mark.trio
async def test_a_file_that_is_not_a_socket_is_not_replaced(sock_path: Path, gates: Gates) -> None:
    await trio.Path(sock_path).write_text("mine")
    async with trio.open_nursery() as nursery:
        with pytest.raises(ConfigError, match="not a socket"):
            await start(nursery, sock_path, gates)
    assert await trio.Path(sock_path).read_text() == "mine"


@pytest.mark.trio
async def test_missing_directory_is_a_config_error(tmp_path: Path, gates: Gates) -> None:
    async with trio.open_nursery() as nursery:
        with pytest.raises(ConfigError, match="cannot create the socket"):
            await start(nursery, tmp_path / "missing" / "rpc.sock", gates)


def test_registry_refuses_duplicates_and_reserved_names() -> None:
    registry = MethodRegistry()
    assert "unsubscribe" in registry
    with pytest.raises(LocalProtocolError, match="already registered"):
        registry.add("unsubscribe", make_registry(Gates()).get("echo"))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="invalid method name"):
        registry.add("rpc.discover", make_registry(Gates()).get("echo"))  # type: ignore[arg-type]
    assert registry.names() == ["unsubscribe"]


# ------------------------------------------------------------------------------ clients


@pytest.mark.trio
async def test_clients_say_the_daemon_is_not_running(tmp_path: Path) -> None:
    path = tmp_path / "rpc.sock"
    with pytest.raises(DaemonNotRunning, match=str(path)):
        Client(path)
    with pytest.raises(DaemonNotRunning, match=str(path)):
        Client.for_home(tmp_path)
    with pytest.raises(DaemonNotRunning, match="no socket"):
        async with AsyncClient.for_home(tmp_path):
            pass


async def start_stoppable(
    nursery: trio.Nursery, path: Path, gates: Gates
) -> tuple[RpcServer, trio.CancelScope]:
    """A server with its own cancel scope, so a test can stop it while its clients live on."""
    scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[RpcServer]) -> None:
        with scope:
            await serve_unix(path, make_registry(gates), task_status=task_status)

    server: RpcServer = await nursery.start(run)
    return server, scope


@pytest.mark.trio
async def test_async_client_sees_the_server_going_away(sock_path: Path, gates: Gates) -> None:
    async with trio.open_nursery() as nursery:
        _, stop = await start_stoppable(nursery, sock_path, gates)
        async with AsyncClient(sock_path) as client:
            pending: list[BaseException] = []

            async def waiting_call() -> None:
                try:
                    await client.call("wait", gate="never")
                except PeerDisconnected as exc:
                    pending.append(exc)

            async with trio.open_nursery() as calls:
                calls.start_soon(waiting_call)
                await wait_until(lambda: "never" in gates.events, "the call to start")
                stop.cancel()  # the daemon stops
            assert len(pending) == 1
            with pytest.raises(PeerDisconnected):
                await client.call("echo")
        assert not await trio.Path(sock_path).exists()


@pytest.mark.trio
async def test_blocking_client(server: RpcServer, sock_path: Path) -> None:
    def session() -> list[Any]:
        out: list[Any] = []
        with Client.for_home(sock_path.parent, timeout=5) as client:
            out.append(client.call("add", a=20, b=22))
            try:
                client.call("fail", kind="not_found")
            except RpcError as exc:
                out.append((exc.code, exc.message, exc.data))
            client.notify("echo", x=1)
            with client.subscribe("ticks", every=3) as sub:
                out.append(sub.get(timeout=0.01))  # nothing yet
                trio.from_thread.run_sync(publish_ticks, server, range(10))
                out.extend(message["n"] for _, message in zip(range(4), sub, strict=False))
            assert sub.get() is None
            out.append(client.call("echo", after="unsubscribe"))
        return out

    with trio.fail_after(10):
        out = await trio.to_thread.run_sync(session, abandon_on_cancel=True)
    assert out == [
        42,
        (NOT_FOUND, "no feed @abc", {"type": "NotFound"}),
        None,
        0,
        3,
        6,
        9,
        {"after": "unsubscribe"},
    ]
    assert server.hub.subscriptions() == []


@pytest.mark.trio
async def test_blocking_client_timeout_closes_the_connection(
    server: RpcServer, sock_path: Path, gates: Gates
) -> None:
    def session() -> None:
        client = Client(sock_path, timeout=0.2)
        with pytest.raises(PeerDisconnected, match="no answer to 'wait'"):
            client.call("wait", gate="late")
        with pytest.raises(PeerDisconnected):
            client.call("echo")
        client.close()

    with trio.fail_after(5):
        await trio.to_thread.run_sync(session, abandon_on_cancel=True)
    gates["late"].set()
    await wait_until(lambda: server.connection_count == 0, "the connection to close")


@pytest.mark.trio
async def test_blocking_client_sees_the_server_going_away(sock_path: Path, gates: Gates) -> None:
    async with trio.open_nursery() as nursery:
        server, stop = await start_stoppable(nursery, sock_path, gates)
        client = Client(sock_path, timeout=5)
        assert await trio.to_thread.run_sync(functools.partial(client.call, "echo")) == {}
        stop.cancel()
    assert server.connection_count == 0
    with pytest.raises(PeerDisconnected):
        await trio.to_thread.run_sync(functools.partial(client.call, "echo"))
    client.close()


@pytest.mark.trio
async def test_subscription_with_a_dict_result(sock_path: Path) -> None:
    registry = MethodRegistry()

    @registry.method("subscribe")
    async def subscribe(params: Params, ctx: CallContext) -> dict[str, Any]:
        return {"subscription": ctx.subscribe("posts", params).id, "since": 0}

    async with trio.open_nursery() as nursery:
        server: RpcServer = await nursery.start(serve_unix, sock_path, registry)
        async with AsyncClient(sock_path) as client, client.subscribe(type="post") as sub:
            (hub_sub,) = server.hub.subscriptions("posts")
            assert isinstance(hub_sub, Subscription)
            server.hub.publish("posts", {"text": "hi"}, lambda s: s.params["type"] == "post")
            with trio.fail_after(5):
                assert await sub.__anext__() == {"text": "hi"}
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    "bad", [{"max_in_flight": 0}, {"subscription_queue": 0}, {"send_timeout": 0}]
)
def test_unusable_limits_are_config_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"limit|timeouts"):
        Limits(**bad)


@pytest.mark.trio
async def test_null_id_and_odd_strings_are_answered(server: RpcServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    await raw.send(b'{"jsonrpc":"2.0","id":null,"method":"echo","params":{"s":"\\ud800\\n"}}\n')
    answer = await raw.recv()
    assert answer == {"jsonrpc": "2.0", "id": None, "result": {"s": "\ud800\n"}}
    await raw.aclose()


async def garbage_server(path: Path, task_status: trio.TaskStatus[None]) -> None:
    """Not a JSON-RPC server: answers every connection with one line of nonsense."""
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    with sock:
        await sock.bind(str(path))
        sock.listen()
        task_status.started()
        while True:
            conn, _ = await sock.accept()
            with conn:
                await conn.send(b"hello, I am not JSON-RPC\n")
                await conn.recv(65536)


@pytest.mark.trio
async def test_clients_refuse_a_server_that_is_not_json_rpc(sock_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(garbage_server, sock_path)
        async with AsyncClient(sock_path) as client:
            with pytest.raises(CodecError):
                await client.call("whoami")

        def blocking() -> None:
            with Client(sock_path, timeout=5) as client, pytest.raises(CodecError):
                client.call("whoami")

        await trio.to_thread.run_sync(blocking, abandon_on_cancel=True)
        nursery.cancel_scope.cancel()


# ------------------------------------------------------------------------------ bytes held (#11)


def big(request_id: Any, size: int, gate: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"size": size}
    if gate is not None:
        params["gate"] = gate
    return {"jsonrpc": "2.0", "id": request_id, "method": "big", "params": params}


def overloaded(answer: dict[str, Any], limit_name: str, limit: int) -> bool:
    error = answer.get("error")
    if error is None:
        return False
    assert error["code"] == OVERLOADED, answer
    assert error["data"] == {"type": "Overloaded", "limit": limit, "limit_name": limit_name}
    return True


@pytest.mark.trio
async def test_a_batch_stops_at_its_answer_budget(sock_path: Path, gates: Gates) -> None:
    limits = Limits(max_batch_answer_bytes=10_000)
    async with trio.open_nursery() as nursery:
        server = await start(nursery, sock_path, gates, limits)
        raw = await Raw.open(sock_path)
        await raw.send([big(n, 1000) for n in range(200)])
        line = await raw.recv_line()
        assert line is not None
        answers = json.loads(line)
        assert [a["id"] for a in answers] == list(range(200))  # every request answered
        refused = [a for a in answers if overloaded(a, "batch_answer_bytes", 10_000)]
        results = [a for a in answers if "result" in a]
        assert 8 <= len(results) <= 11 and len(results) + len(refused) == 200
        assert len(line) < 10_000 + 1100 + len(refused) * 300
        assert gates.calls <= len(results) + limits.max_calls_in_flight  # the rest never ran
        assert "the rest of the batch was not run" in refused[0]["error"]["message"]

        # A batch of notifications (no answer at all) is bounded the same way.
        gates.calls = 0
        await raw.send([{k: v for k, v in big(n, 1000).items() if k != "id"} for n in range(200)])
        assert (await raw.call("add", a=1, b=1))["result"] == 2
        assert gates.calls <= 11 + limits.max_calls_in_flight
        assert server.usage.answers == 0
        await raw.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_the_first_answer_of_a_batch_is_never_refused(sock_path: Path, gates: Gates) -> None:
    async with trio.open_nursery() as nursery:
        await start(nursery, sock_path, gates, Limits(max_batch_answer_bytes=100))
        raw = await Raw.open(sock_path)
        await raw.send([big(1, 5000)])
        (answer,) = await raw.recv()
        assert len(answer["result"]) == 5000
        await raw.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_answers_held_for_a_client_that_does_not_read_are_bounded(
    sock_path: Path, gates: Gates
) -> None:
    limits = Limits(max_connection_answer_bytes=500_000)
    async with trio.open_nursery() as nursery:
        server = await start(nursery, sock_path, gates, limits)
        deaf = await Raw.open(sock_path)
        for n in range(8):
            await deaf.send(big(n, 300_000, gate="g"))
        await wait_until(lambda: gates.running == 8, "the calls to start")
        async with AsyncClient(sock_path) as other:
            await other.call("open", gate="g")  # all 8 answers are ready at once
            await wait_until(lambda: gates.running == 0, "the calls to end")
            assert server.usage.answers <= 500_000
            assert await other.call("add", a=1, b=2) == 3  # the others are served
        answers = [await deaf.recv() for _ in range(8)]
        refused = [a for a in answers if overloaded(a, "connection_answer_bytes", 500_000)]
        assert 1 <= len(answers) - len(refused) <= 2
        assert "read them before sending more requests" in refused[0]["error"]["message"]
        assert len((await deaf.call("big", 9, size=300_000))["result"]) == 300_000
        await deaf.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_the_total_held_for_all_clients_is_bounded(sock_path: Path, gates: Gates) -> None:
    size = 2_000_000  # far more than the socket buffers take in
    limits = Limits(max_total_answer_bytes=3_000_000)
    async with trio.open_nursery() as nursery:
        server = await start(nursery, sock_path, gates, limits)
        first, second = await Raw.open(sock_path), await Raw.open(sock_path)
        await first.send(big(1, size, gate="a"))
        await second.send(big(1, size, gate="b"))
        await second.send(big(2, size, gate="b"))
        await wait_until(lambda: gates.running == 3, "the calls to start")
        async with AsyncClient(sock_path) as reader:
            await reader.call("open", gate="a")
            await wait_until(lambda: server.usage.answers > size // 2, "the first answer")
            await reader.call("open", gate="b")
            await wait_until(lambda: gates.running == 0, "the calls to end")
            # past the total, a connection holding nothing still gets its answer
            assert len(await reader.call("big", size=size)) == size
        assert len((await first.recv())["result"]) == size
        got = sorted([await second.recv(), await second.recv()], key=lambda a: "error" in a)
        assert len(got[0]["result"]) == size  # its first answer: it held nothing
        assert overloaded(got[1], "total_answer_bytes", 3_000_000)
        for raw in (first, second):
            await raw.aclose()
        await wait_until(lambda: server.usage.answers == 0, "the answers to be freed")
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_calls_of_one_connection_take_turns(sock_path: Path, gates: Gates) -> None:
    async with trio.open_nursery() as nursery:
        await start(nursery, sock_path, gates, Limits(max_calls_in_flight=2))
        raw = await Raw.open(sock_path)
        for n in range(5):
            await raw.send(big(n, 1, gate=f"g{n}"))
        await raw.send({"jsonrpc": "2.0", "id": "add", "method": "add", "params": {"a": 1, "b": 1}})
        await wait_until(lambda: gates.running == 2, "two calls to run")
        await trio.sleep(0.05)
        assert gates.running == 2  # the others wait their turn
        async with AsyncClient(sock_path) as other:  # another connection has its own
            assert len(await other.call("big", size=3)) == 3
            for n in range(5):
                await other.call("open", gate=f"g{n}")
        ids = {(await raw.recv())["id"] for _ in range(6)}
        assert ids == {0, 1, 2, 3, 4, "add"}
        assert gates.most_running == 3  # two here, one on the other connection
        await raw.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_the_reader_waits_while_too_many_bytes_of_lines_are_handled(
    sock_path: Path, gates: Gates
) -> None:
    async with trio.open_nursery() as nursery:
        await start(nursery, sock_path, gates, Limits(max_input_in_flight=1000))
        raw = await Raw.open(sock_path)
        line = {**big(0, 1, gate="g"), "params": {"size": 1, "gate": "g", "pad": "p" * 400}}
        for n in range(6):
            await raw.send({**line, "id": n})
        await wait_until(lambda: gates.running == 2, "two lines to be handled")
        await trio.sleep(0.05)
        assert gates.running == 2  # about 900 bytes of lines: a third would pass 1000
        async with AsyncClient(sock_path) as other:
            await other.call("open", gate="g")
        assert sorted([(await raw.recv())["id"] for _ in range(6)]) == list(range(6))
        await raw.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_everything_held_for_a_client_is_freed_when_it_leaves(
    sock_path: Path, gates: Gates
) -> None:
    async with trio.open_nursery() as nursery:
        server = await start(nursery, sock_path, gates)
        deaf = await Raw.open(sock_path)
        for n in range(3):
            assert "result" in await deaf.call("ticks", n)
        for n in range(3, 40):
            await deaf.send(big(n, 500_000))
        await wait_until(lambda: server.usage.answers > 1_000_000, "answers to pile up")
        publish_ticks(server, range(3000), size=200)
        assert server.usage.notifications > 0
        await deaf.aclose()
        await wait_until(lambda: server.connection_count == 0, "the connection to end")
        assert (server.usage.answers, server.usage.notifications) == (0, 0)
        assert server.hub.subscriptions() == []
        nursery.cancel_scope.cancel()
