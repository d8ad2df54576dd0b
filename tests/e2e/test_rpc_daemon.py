"""The local JSON-RPC socket of a real daemon process, driven the way apps drive it.

One daemon serves the whole module (its store accumulates what the tests publish, so
tests look at their own messages, never at totals); the start/stop/crash tests run their
own daemons. Malformed input goes through raw AF_UNIX sockets.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from p2psocial.client import Client, Overflow
from p2psocial.errors import RpcError
from p2psocial.identity import Keypair, blob_id, feed_id, message_id
from tests.e2e.daemons import BIN, DaemonProcess

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]

ISSUE_METHODS = {
    "whoami",
    "publish",
    "get",
    "feed",
    "timeline",
    "thread",
    "follow",
    "unfollow",
    "block",
    "unblock",
    "peers.list",
    "peers.connect",
    "status",
    "subscribe",
    "unsubscribe",
}


def other_feed(n: int) -> str:
    return feed_id(Keypair.from_seed(n.to_bytes(32, "big")).public)


UNKNOWN_MESSAGE = message_id(b"\x07" * 32)
UNKNOWN_BLOB = blob_id(b"\x07" * 32)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("rpc") / "home", "--no-lan")
    try:
        d.cli("init")
        d.start()
        yield d
    finally:
        d.stop()


@pytest.fixture
def client(daemon: DaemonProcess) -> Iterator[Client]:
    with daemon.client() as c:
        yield c


class Raw:
    """A raw connection to the socket: bytes out, JSON lines in."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def call(self, request: dict[str, Any]) -> Any:
        self.send(json.dumps(request).encode() + b"\n")
        return self.read()

    def read_line(self, timeout: float = 20.0) -> bytes:
        """The next line; b"" at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line within {timeout} s; have {self.buf[:200]!r}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(1 << 20)
            if not data:
                return b""
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def read(self, timeout: float = 20.0) -> Any:
        line = self.read_line(timeout)
        assert line, "the daemon closed the connection"
        return json.loads(line)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(daemon: DaemonProcess) -> Iterator[Raw]:
    conn = Raw(daemon.home / "rpc.sock")
    yield conn
    conn.close()


def request(method: str, request_id: Any = 1, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def error_of(answer: dict[str, Any]) -> dict[str, Any]:
    assert "error" in answer, answer
    error: dict[str, Any] = answer["error"]
    return error


def stored(message: dict[str, Any] | None) -> dict[str, Any]:
    """A message without its receive time, which live notifications of our own messages
    do not report exactly (see the report on daemon.py's on_stored)."""
    assert message is not None
    return {k: v for k, v in message.items() if k != "received"}


def rpc_error(call: Callable[[], Any]) -> RpcError:
    with pytest.raises(RpcError) as info:
        call()
    return info.value


# ------------------------------------------------------------------------------- methods


def test_whoami_and_the_method_list(daemon: DaemonProcess, client: Client) -> None:
    me = client.call("whoami")
    assert me == {"feed_id": daemon.cli("whoami").stdout.strip()}
    assert ISSUE_METHODS <= set(client.call("methods"))


def test_publish_get_and_feed(client: Client) -> None:
    me = client.call("whoami")["feed_id"]
    first = client.call("publish", content={"type": "note", "text": "one", "n": [1, 2.5]})
    assert first["author"] == me
    assert first["content"] == {"type": "note", "text": "one", "n": [1, 2.5]}
    assert first["private"] is False
    assert client.call("get", id=first["id"]) == first
    more = [client.call("publish", content={"type": "note", "i": i}) for i in range(4)]
    seqs = [first["seq"]] + [m["seq"] for m in more]
    assert seqs == list(range(first["seq"], first["seq"] + 5))

    page = client.call("feed", feed_id=me, from_seq=first["seq"] + 1, limit=2)
    assert [m["id"] for m in page] == [m["id"] for m in more[:2]]
    newest = client.call("feed", limit=1, reverse=True)  # feed_id defaults to mine
    assert newest[0]["seq"] >= more[-1]["seq"]
    assert client.call("feed", feed_id=other_feed(1)) == []  # nothing stored: empty

    info = client.call("feed.info")
    assert info["feed_id"] == me and info["latest_seq"] >= more[-1]["seq"]
    assert info["forked"] is False
    assert me in [f["feed_id"] for f in client.call("feeds")]


def test_post_reply_and_thread(client: Client) -> None:
    root = client.call("post", text="a thread starts")
    reply = client.call("post", text="a reply", root=root["id"], mentions=[other_feed(2)])
    assert reply["content"] == {
        "type": "post",
        "text": "a reply",
        "root": root["id"],
        "branch": root["id"],
        "mentions": [other_feed(2)],
    }
    thread = client.call("thread", root=root["id"])
    assert [m["id"] for m in thread] == [root["id"], reply["id"]]
    assert client.call("thread", root=root["id"], limit=1) == thread[:1]

    error = rpc_error(lambda: client.call("thread", root=UNKNOWN_MESSAGE))
    assert error.code == -32001
    assert error.data == {"type": "NotFound", "root": UNKNOWN_MESSAGE}
    error = rpc_error(lambda: client.call("post", text="x", branch=root["id"]))
    assert (error.code, error.data["param"]) == (-32602, "branch")
    error = rpc_error(lambda: client.call("post", text="  "))
    assert (error.code, error.data["param"]) == (-32602, "text")


def test_timeline_newest_first_with_limit_and_before(client: Client) -> None:
    posted = [client.call("post", text=f"timeline {i}")["id"] for i in range(3)]
    latest = client.call("timeline", limit=3)
    assert [m["id"] for m in latest] == posted[::-1]
    oldest = latest[-1]
    sort_time = min(oldest["timestamp"], oldest["received"])
    earlier = client.call("timeline", limit=5, before=sort_time)
    assert all(min(m["timestamp"], m["received"]) < sort_time for m in earlier)
    assert not {m["id"] for m in earlier} & set(posted)


def test_follow_unfollow_block_unblock(client: Client) -> None:
    friend, pest = other_feed(10), other_feed(11)
    followed = client.call("follow", feed_id=friend)
    assert followed["changed"] is True
    assert followed["message"]["content"]["type"] == "contact"
    assert client.call("follow", feed_id=friend) == {"changed": False, "message": None}
    assert friend in client.call("contacts")["following"]
    assert client.call("unfollow", feed_id=friend)["changed"] is True
    assert friend not in client.call("contacts")["following"]

    assert client.call("block", feed_id=pest)["changed"] is True
    contacts = client.call("contacts")
    assert pest in contacts["blocking"] and pest not in contacts["following"]
    assert client.call("unblock", feed_id=pest)["changed"] is True
    assert pest not in client.call("contacts")["blocking"]

    me = client.call("whoami")["feed_id"]
    for method in ("follow", "unfollow", "block", "unblock"):
        error = rpc_error(partial(client.call, method, feed_id=me))
        assert (error.code, error.data["param"]) == (-32602, "feed_id")


def test_peers_connect_and_list(client: Client) -> None:
    peer = other_feed(20)
    answer = client.call("peers.connect", address="127.0.0.1:9", feed_id=peer)
    assert answer == {
        "address": "127.0.0.1:9",
        "feed_id": peer,
        "remembered": True,
        "dialling": True,
    }
    known = client.call("peers.list")["known"]
    assert {"address": "127.0.0.1:9", "feed_id": peer} in [
        {"address": p["address"], "feed_id": p["feed_id"]} for p in known
    ]
    assert client.call("peers.list")["connected"] == []

    error = rpc_error(lambda: client.call("peers.connect", address="nowhere", feed_id=peer))
    assert (error.code, error.data["param"]) == (-32602, "address")
    me = client.call("whoami")["feed_id"]
    error = rpc_error(lambda: client.call("peers.connect", address="127.0.0.1:9", feed_id=me))
    assert (error.code, error.data["param"]) == (-32602, "feed_id")


def test_status(daemon: DaemonProcess, client: Client) -> None:
    status = client.call("status")
    assert status["running"] is True
    assert status["feed_id"] == client.call("whoami")["feed_id"]
    assert status["pid"] == daemon.info["pid"]
    assert status["entries"] >= 1
    assert status["rpc"]["connections"] >= 1
    assert set(status["rpc"]) == {
        "connections",
        "subscriptions",
        "queued_notifications",
        "dropped_notifications",
    }


def test_subscribe_filters_and_unsubscribe(client: Client, daemon: DaemonProcess) -> None:
    me = client.call("whoami")["feed_id"]
    everything = client.subscribe("subscribe")
    mine = client.subscribe("subscribe", filter="feed", feed_id=me)
    votes = client.subscribe("subscribe", type="vote")  # filter inferred from the params
    with daemon.client() as other:
        note = other.call("publish", content={"type": "note", "text": "live"})
        vote = other.call(  # a real vote now that votes have rules (#12)
            "publish", content={"type": "vote", "vote": {"link": note["id"], "value": 1}}
        )
    expected = [stored(note), stored(vote)]
    assert [stored(everything.get(timeout=20)), stored(everything.get(timeout=20))] == expected
    assert [stored(mine.get(timeout=20)), stored(mine.get(timeout=20))] == expected
    assert stored(votes.get(timeout=20)) == stored(vote)
    assert client.call("unsubscribe", subscription=votes.id) is True
    assert client.call("unsubscribe", subscription=votes.id) is False
    everything.close()
    mine.close()

    error = rpc_error(lambda: client.call("subscribe", filter="gossip"))
    assert (error.code, error.data["param"]) == (-32602, "filter")
    error = rpc_error(lambda: client.call("subscribe", filter="feed", feed_id="@nope"))
    assert (error.code, error.data) == (-32002, {"type": "InvalidId", "param": "feed_id"})
    error = rpc_error(lambda: client.call("subscribe", filter="all", type="post"))
    assert (error.code, error.data["param"]) == (-32602, "type")


def test_every_method_rejects_unknown_params(client: Client) -> None:
    msg = client.call("post", text="for the params test")["id"]
    me = client.call("whoami")["feed_id"]
    sub = client.call("subscribe")["subscription"]
    valid: dict[str, dict[str, Any]] = {
        "whoami": {},
        "methods": {},
        "publish": {"content": {"type": "x"}},
        "post": {"text": "x"},
        "get": {"id": msg},
        "feed": {},
        "feed.info": {},
        "feeds": {},
        "timeline": {},
        "thread": {"root": msg},
        "contacts": {},
        "follow": {"feed_id": other_feed(30)},
        "unfollow": {"feed_id": other_feed(30)},
        "block": {"feed_id": other_feed(30)},
        "unblock": {"feed_id": other_feed(30)},
        "peers.list": {},
        "peers.connect": {"address": "127.0.0.1:9", "feed_id": other_feed(31)},
        "status": {},
        "subscribe": {},
        "unsubscribe": {"subscription": sub},
        "invite.create": {},
        "invite.accept": {"code": "x"},
        "profile": {},
        "profile.set": {"name": "x"},
        "name.set": {"feed_id": other_feed(33), "petname": "x"},
        "names": {"feed_ids": [me]},
        "private.publish": {"to": [other_feed(32)], "text": "x"},
        "private.inbox": {},
        "private.thread": {"root": msg},
        "private.reply": {"id": msg, "text": "x"},
        "like": {"id": msg},
        "unlike": {"id": msg},
        "likes": {"id": msg},
        "delete": {"id": msg},
        "edit": {"id": msg, "text": "x"},
        "repost": {"id": msg},
        "cards": {"ids": [msg]},
        "history": {"id": msg},
        "notifications": {},
        "notifications.mark_read": {},
        "channel": {"name": "x"},
        "channels": {},
        "mute": {"feed_id": other_feed(34)},
        "unmute": {"feed_id": other_feed(34)},
        "mutes": {},
        "suggest": {},
        "search": {"query": "x"},
        "blobs.add": {"data": "aGk="},
        "blobs.has": {"id": UNKNOWN_BLOB},
        "blobs.want": {"id": UNKNOWN_BLOB},
        "blobs.get": {"id": UNKNOWN_BLOB, "wait": 0},
        "blobs.list": {},
        "blobs.remove": {"id": UNKNOWN_BLOB},
        "blobs.subscribe": {},
    }
    assert set(valid) == set(client.call("methods"))
    for method, params in valid.items():
        error = rpc_error(partial(client.call, method, **params, xyz=1))
        assert error.code == -32602, method
        assert error.data == {"type": "InvalidParams", "param": "xyz"}, method
        assert "'xyz'" in error.message
    assert client.call("feed", feed_id=me, limit=1, reverse=True)[0]["id"] == msg  # no writes


# ------------------------------------------------------------------------------- errors


def test_parse_error_then_a_good_request_on_the_same_connection(raw: Raw) -> None:
    raw.send(b'{"jsonrpc": "2.0", "id": 1, "method": "whoami"\n')  # unterminated
    answer = raw.read()
    assert answer["id"] is None
    assert error_of(answer)["code"] == -32700
    assert error_of(answer)["data"] == {"type": "ParseError"}
    raw.send(b"\xff\xfe not utf-8\n")
    assert error_of(raw.read())["code"] == -32700
    assert "feed_id" in raw.call(request("whoami", 2))["result"]


def test_standard_errors(raw: Raw) -> None:
    for bad in (
        {"jsonrpc": "2.0", "id": 3},  # no method
        {"jsonrpc": "1.0", "id": 3, "method": "whoami"},
        {"jsonrpc": "2.0", "id": 3, "method": "whoami", "params": "x"},
    ):
        error = error_of(raw.call(bad))
        assert (error["code"], error["data"]["type"]) == (-32600, "InvalidRequest")
    for line in (b"[]\n", b'"whoami"\n'):
        raw.send(line)
        assert error_of(raw.read())["code"] == -32600

    error = error_of(raw.call(request("no.such.method")))
    assert error["code"] == -32601
    assert error["data"] == {"type": "MethodNotFound", "method": "no.such.method"}

    error = error_of(raw.call({"jsonrpc": "2.0", "id": 4, "method": "get", "params": ["%x"]}))
    assert error["code"] == -32602 and "by-position" in error["message"]
    error = error_of(raw.call(request("get")))
    assert error["code"] == -32602 and error["data"]["param"] == "id"
    assert "'id'" in error["message"]
    error = error_of(raw.call(request("timeline", limit="ten")))
    assert (error["code"], error["data"]["param"]) == (-32602, "limit")
    error = error_of(raw.call(request("timeline", limit=0)))
    assert (error["code"], error["data"]["param"]) == (-32602, "limit")
    # JSON text 1e400 parses as an infinite float, which no JSON answer could carry.
    raw.send(b'{"jsonrpc":"2.0","id":6,"method":"publish",')
    raw.send(b'"params":{"content":{"type":"x","n":1e400}}}\n')
    error = error_of(raw.read())
    assert (error["code"], error["data"]["param"]) == (-32602, "content")

    # A notification is executed, never answered: the next line answers the next request.
    raw.send(b'{"jsonrpc": "2.0", "method": "no.such.method"}\n')
    assert raw.call(request("whoami", 5))["id"] == 5


def test_garbage_is_answered_and_the_connection_lives_on(raw: Raw) -> None:
    rng = random.Random(2026)
    lines = [
        b"[" * 200_000,  # nesting deeper than any parser's recursion limit
        b"\x00\x01\x02\x03",
        b'{"jsonrpc": "2.0", "id": {"an": "object"}, "method": "whoami"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "get", "params": {"id": "\\ud800"}}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "timeline", "params": {"limit": 1e999}}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "timeline", "params": {"limit": 1'
        + b"0" * 40
        + b"}}",
        *(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(200)),
    ]
    lines = [line.replace(b"\n", b"") for line in lines]
    lines = [line for line in lines if line.strip()]
    raw.send(b"".join(line + b"\n" for line in lines))
    for _ in lines:  # exactly one answer per line, every one an error
        answer = raw.read()
        assert error_of(answer)["code"] in (-32700, -32600, -32602, -32002), answer
    assert "feed_id" in raw.call(request("whoami", "still here"))["result"]


def test_application_errors_carry_data(raw: Raw) -> None:
    error = error_of(raw.call(request("get", id="%not-an-id")))
    assert error["code"] == -32002
    assert error["data"] == {"type": "InvalidId", "param": "id"}
    error = error_of(raw.call(request("feed", feed_id="@short.ed25519")))
    assert error["code"] == -32002 and error["data"]["param"] == "feed_id"

    error = error_of(raw.call(request("get", id=UNKNOWN_MESSAGE)))
    assert (error["code"], error["data"]) == (-32001, {"type": "NotFound"})
    error = error_of(raw.call(request("feed.info", feed_id=other_feed(40))))
    assert error["code"] == -32001
    assert error["data"] == {"type": "NotFound", "feed_id": other_feed(40)}

    error = error_of(raw.call(request("publish", content={"type": "x", "text": "y" * 9000})))
    assert error["code"] == -32003
    assert error["data"] == {"type": "ContentTooLarge", "param": "content", "limit": 8192}
    error = error_of(raw.call(request("publish", content={"no": "type"})))
    assert (error["code"], error["data"]["type"]) == (-32003, "InvalidContent")

    error = error_of(raw.call(request("invite.create")))  # this daemon is not a pub
    assert (error["code"], error["data"]["type"]) == (-32006, "ConfigError")
    seed = base64.b64encode(bytes(32)).decode()
    code = f"127.0.0.1:9:{other_feed(41)}~{seed}"  # a pub that is not there
    error = error_of(raw.call(request("invite.accept", code=code)))
    assert (error["code"], error["data"]["type"]) == (-32000, "InviteFailed")


def test_too_many_subscriptions_is_overloaded(raw: Raw) -> None:
    for n in range(64):
        assert "subscription" in raw.call(request("subscribe", n, type=f"t{n}"))["result"]
    error = error_of(raw.call(request("subscribe", 99)))
    assert error["code"] == -32004
    assert error["data"] == {
        "type": "Overloaded",
        "limit": 64,
        "limit_name": "subscriptions_per_connection",
    }


def test_request_too_large_is_answered_then_closed(daemon: DaemonProcess) -> None:
    conn = Raw(daemon.home / "rpc.sock")
    try:
        text = "x" * (1 << 20)
        try:
            conn.send(json.dumps(request("post", text=text)).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon may close before it has read everything
        error = error_of(conn.read())
        assert (error["code"], error["data"]["type"]) == (-32010, "LineTooLong")
        assert conn.read_line() == b""  # then EOF
    finally:
        conn.close()
    assert daemon.call("whoami")  # the daemon is fine


def test_batch(raw: Raw, client: Client) -> None:
    before = client.call("feed", limit=1, reverse=True)[0]["seq"]
    batch = [
        request("whoami", "a"),
        request("no.such.method", "b"),
        7,
        {"jsonrpc": "2.0", "method": "post", "params": {"text": "from a batch notification"}},
        request("post", "c", text="from a batch"),
    ]
    raw.send(json.dumps(batch).encode() + b"\n")
    answers = raw.read()
    assert isinstance(answers, list)
    assert [a["id"] for a in answers] == ["a", "b", None, "c"]
    assert "feed_id" in answers[0]["result"]
    assert error_of(answers[1])["code"] == -32601
    assert error_of(answers[2])["code"] == -32600
    assert answers[3]["result"]["content"]["text"] == "from a batch"
    newest = client.call("feed", from_seq=before + 1)
    assert sorted(m["content"]["text"] for m in newest) == [
        "from a batch",
        "from a batch notification",
    ]
    raw.send(b'[{"jsonrpc": "2.0", "method": "whoami"}]\n')  # only notifications: no answer
    assert raw.call(request("whoami", "d"))["id"] == "d"


# ------------------------------------------------------------------------------- load


def test_fifty_concurrent_clients(daemon: DaemonProcess) -> None:
    clients, rounds = 50, 4
    start = threading.Barrier(clients)
    published: list[list[dict[str, Any]]] = [[] for _ in range(clients)]
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with daemon.client() as c:
                start.wait(timeout=30)
                for r in range(rounds):
                    assert "feed_id" in c.call("whoami")
                    message = c.call("post", text=f"client {n} round {r}")
                    published[n].append(message)
                    assert c.call("get", id=message["id"]) == message
                    assert len(c.call("timeline", limit=5)) == 5
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures[:3]
    assert all(len(p) == rounds for p in published)
    seqs = sorted(m["seq"] for p in published for m in p)
    assert seqs == list(range(seqs[0], seqs[0] + clients * rounds))  # no gap, no fork


def test_a_subscriber_that_never_reads_does_not_hold_up_others(daemon: DaemonProcess) -> None:
    stuck = Raw(daemon.home / "rpc.sock")
    try:
        sub = stuck.call(request("subscribe", filter="type", type="bulk"))["result"]
        total, text = 1200, "z" * 7000  # about 8.5 MB of notifications: far beyond buffers
        slowest = 0.0
        with daemon.client() as writer, daemon.client() as reader:
            for i in range(total):
                writer.call("publish", content={"type": "bulk", "i": i, "text": text})
                if i % 50 == 0:
                    began = time.monotonic()
                    reader.call("timeline", limit=10)
                    slowest = max(slowest, time.monotonic() - began)
            rpc = reader.call("status")["rpc"]
        assert slowest < 2.0, f"a call took {slowest:.2f} s while a subscriber was stuck"
        # Bounded: at most 1000 queued (+1 overflow notice); the rest dropped and counted.
        assert rpc["queued_notifications"] <= 1001
        assert rpc["dropped_notifications"] > 0

        # Reading at last: every item is either delivered or reported in an overflow notice.
        seen: list[int] = []
        dropped = 0
        while len(seen) + dropped < total:
            note = stuck.read()
            assert note["params"]["subscription"] == sub["subscription"]
            if note["method"] == "overflow":
                dropped += note["params"]["dropped"]
            else:
                seen.append(note["params"]["message"]["content"]["i"])
        assert seen == sorted(seen) and len(seen) + dropped == total
        assert dropped == rpc["dropped_notifications"]
    finally:
        stuck.close()


def test_slow_blocking_client_sees_the_overflow(daemon: DaemonProcess) -> None:
    with daemon.client() as slow, daemon.client() as writer:
        sub = slow.subscribe("subscribe", type="flood")
        for i in range(1100):
            writer.call("publish", content={"type": "flood", "i": i, "text": "f" * 7000})
        received: list[int] = []
        dropped = 0
        while len(received) + dropped < 1100:
            item = sub.get(timeout=20)
            assert item is not None, f"got {len(received)} and {dropped} dropped"
            if isinstance(item, Overflow):
                dropped += item.dropped
            else:
                received.append(item["content"]["i"])
        assert dropped > 0 and received == sorted(received)


# ------------------------------------------------------------------------------- the socket file


def test_socket_is_private(daemon: DaemonProcess) -> None:
    st = os.lstat(daemon.home / "rpc.sock")
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(daemon.home).st_mode) == 0o700


# ------------------------------------------------------------------------------- start, stop, crash


def cli_views(d: DaemonProcess, msg: str | None = None) -> list[str]:
    """What the read commands print (run side by side: each is a fresh process)."""
    views = [["timeline", "--json"], ["timeline"], ["feed", "--json"]]
    if msg is not None:
        views += [["thread", msg, "--json"], ["show", msg]]
    procs = [
        subprocess.Popen(
            [str(BIN / "p2psocial"), "--home", str(d.home), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=d.env,
        )
        for args in views
    ]
    outputs = []
    for args, proc in zip(views, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{args}: {err}"
        outputs.append(out)
    return outputs


def worker_pids(pid: int) -> list[int]:
    """The daemon's child processes (its signature-verifier workers)."""
    kids = []
    for proc_stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = proc_stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(proc_stat.parent.name))
    return kids


def make_stale_socket(path: Path) -> None:
    """A socket file nobody listens on, as a crashed daemon leaves it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()


def test_cli_same_output_before_during_and_after_the_daemon(daemons: Daemons) -> None:
    d = daemons("life", "--no-lan", start=False)
    d.cli("init")
    root = d.cli("post", "offline root").stdout.strip()
    d.cli("post", "offline reply", "--reply-to", root)
    d.cli("follow", other_feed(50))
    before = cli_views(d, root)
    assert "offline reply" in before[1]

    d.start()
    assert cli_views(d, root) == before
    newest = json.loads(d.cli("rpc", "feed", '{"limit": 1, "reverse": true}').stdout)
    assert [m["seq"] for m in newest] == [3]  # root, reply, follow

    # A second daemon on the same home refuses, and leaves the first one alone.
    socket_inode = os.lstat(d.home / "rpc.sock").st_ino
    command = ["daemon", "--listen", "127.0.0.1:0", "--no-lan"]
    second = subprocess.run(
        [str(BIN / "p2psocial"), "--home", str(d.home), *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert os.lstat(d.home / "rpc.sock").st_ino == socket_inode
    assert d.call("whoami")

    # Writing through the daemon, then reading without it, gives the same answers.
    during = d.cli("post", "while running").stdout.strip()
    views = cli_views(d, root)
    assert d.stop() == 0
    assert not (d.home / "rpc.sock").exists()
    assert cli_views(d, root) == views
    assert d.cli("show", during, "--json").returncode == 0

    # 'rpc' runs the same methods on the store when no daemon runs...
    raw = d.cli("rpc", "feed", json.dumps({"limit": 2, "reverse": True}))
    newest = json.loads(raw.stdout)
    assert len(newest) == 2 and newest[0]["id"] == during
    # ...except what needs a daemon to stay connected to.
    live = d.cli("rpc", "subscribe", check=False)
    assert live.returncode == 1 and "need the running daemon" in live.stderr


def test_stale_socket_from_a_crash_is_replaced(daemons: Daemons) -> None:
    d = daemons("crash", "--no-lan")
    d.cli("post", "before the crash")
    views = cli_views(d)
    assert d.proc is not None
    workers = worker_pids(d.proc.pid)
    d.kill()
    for pid in workers:  # SIGKILL leaves them behind; they are ours to end
        os.kill(pid, signal.SIGKILL)
    assert stat.S_ISSOCK(os.lstat(d.home / "rpc.sock").st_mode)  # left behind
    assert cli_views(d) == views  # the CLI falls back to the store

    d.start()
    assert stat.S_IMODE(os.lstat(d.home / "rpc.sock").st_mode) == 0o600
    assert cli_views(d) == views
    assert d.stop() == 0

    make_stale_socket(d.home / "rpc.sock")
    d.start()
    assert d.call("whoami")["feed_id"] == d.cli("whoami").stdout.strip()
    assert d.log().count("removing the stale socket") == 2
