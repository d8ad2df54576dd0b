"""Hostile local clients and the measurements around them, for the e2e tests and benchmarks
of the socket's limits (#11): a big batch of big reads, lines sent and never read,
subscriptions never read, and an honest sync between two daemons meanwhile."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from p2psocial.client import Client
from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.feed.formats import decode_entry
from p2psocial.identity import Keypair, feed_id
from p2psocial.msgtypes.contact import contact_content
from p2psocial.store.store import Store

TIMELINE_BATCH = (
    json.dumps(
        [
            {"jsonrpc": "2.0", "id": n, "method": "timeline", "params": {"limit": 1000}}
            for n in range(1000)
        ]
    ).encode()
    + b"\n"
)
"""One line (about 71 KB): a batch of 1000 ``timeline(limit 1000)`` calls."""


# ------------------------------------------------------------------------------- memory


def proc_status_kb(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` field in kB (``VmRSS``, ``VmHWM``); 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int) -> float:
    return proc_status_kb(pid, "VmRSS") / 1024


def hwm_mb(pid: int) -> float:
    return proc_status_kb(pid, "VmHWM") / 1024


class RssWatch:
    """Samples a process's VmRSS every ``interval`` s in a thread; ``peak_mb`` is the most
    seen. ``limit_mb``: past it, ``on_limit`` runs once (to stop an attack before the
    machine runs out of memory)."""

    def __init__(
        self,
        pid: int,
        *,
        interval: float = 0.05,
        limit_mb: float | None = None,
        on_limit: Callable[[], None] | None = None,
    ) -> None:
        self.pid = pid
        self.peak_mb = rss_mb(pid)
        self.tripped = False
        self._interval = interval
        self._limit = limit_mb
        self._on_limit = on_limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            now = rss_mb(self.pid)
            self.peak_mb = max(self.peak_mb, now)
            if self._limit is not None and now > self._limit and not self.tripped:
                self.tripped = True
                if self._on_limit is not None:
                    self._on_limit()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak_mb


# ------------------------------------------------------------------------------- stores


def make_feeds(entries: int, authors: int) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """``entries`` signed entries round-robin over ``authors`` feeds (short posts), and the
    authors' feed ids."""
    keys = [Keypair.from_seed((1000 + i).to_bytes(32, "big")) for i in range(authors)]
    latest: list[bytes | None] = [None] * authors
    seqs = [0] * authors
    out = []
    base = 1_700_000_000_000
    for n in range(entries):
        a = n % authors
        seqs[a] += 1
        content = encode_content({"type": "post", "text": f"post number {n} " + "x" * 200})
        entry = create_entry(keys[a], seqs[a], latest[a], base + n, content)
        latest[a] = entry.id
        out.append((entry.raw, content))
    return out, [feed_id(k.public) for k in keys]


def prefill(store_path: Path, data: list[tuple[bytes, bytes]], owner: Keypair) -> None:
    """Store ``data`` offline, in ``owner``'s store (no daemon runs on it), and follow
    its authors, so their posts are ``owner``'s timeline (what the big reads read)."""
    with Store.open(store_path, owner=owner) as store:
        batches = (data[i : i + 5000] for i in range(0, len(data), 5000))
        for result in store.append_stream(batches, lambda: 1_800_000_000_000):
            if result.errors:
                raise AssertionError(f"setup failed: {result.errors}")
        for author in sorted({decode_entry(raw).author for raw, _ in data}):
            follow = contact_content(author, following=True, blocking=False)
            store.publish(owner, follow, 1_800_000_000_000)


# ------------------------------------------------------------------------------- raw clients


class RawConn:
    """A raw AF_UNIX connection: bytes out, whole lines in."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self._buf = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self, timeout: float = 60.0) -> bytes:
        """The next line without its newline; b"" at EOF."""
        deadline = time.monotonic() + timeout
        while (end := self._buf.find(b"\n")) < 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line within {timeout} s")
            self.sock.settimeout(remaining)
            data = self.sock.recv(1 << 20)
            if not data:
                return b""
            self._buf += data
        line = bytes(self._buf[:end])
        del self._buf[: end + 1]
        return line

    def read(self, timeout: float = 60.0) -> Any:
        line = self.read_line(timeout)
        assert line, "the daemon closed the connection"
        return json.loads(line)

    def close(self) -> None:
        """Leave: shut the socket first, which also ends a ``send`` blocked in another
        thread (closing alone would wait for it)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Flood:
    """``clients`` threads, each on its own connection, sending ``line`` and reading its
    answer, over and over: an app (or many) reading as fast as the daemon answers."""

    def __init__(self, socket_path: Path, clients: int, line: bytes = TIMELINE_BATCH) -> None:
        self.answers = 0
        self.answer_bytes = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(socket_path, line), daemon=True)
            for _ in range(clients)
        ]
        for t in self._threads:
            t.start()

    def _run(self, socket_path: Path, line: bytes) -> None:
        try:
            conn = RawConn(socket_path)
            try:
                while not self._stop.is_set():
                    conn.send(line)
                    answer = conn.read_line(timeout=300)
                    if not answer:
                        return
                    self.answers += 1
                    self.answer_bytes += len(answer)
            finally:
                conn.close()
        except BaseException as exc:  # reported to the test, not lost in the thread
            if not self._stop.is_set():
                self.errors.append(exc)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=300)


class Unread:
    """Connections that send ``lines`` (each connection: every line, at once) and never
    read what comes back. ``close()`` is the client leaving."""

    def __init__(self, socket_path: Path, connections: int, lines: list[bytes]) -> None:
        self.conns = [RawConn(socket_path) for _ in range(connections)]
        self._threads = [
            threading.Thread(target=self._send, args=(c, lines), daemon=True) for c in self.conns
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _send(conn: RawConn, lines: list[bytes]) -> None:
        try:
            for line in lines:
                conn.send(line)
        except OSError:
            pass  # the daemon may drop a client that reads nothing

    def close(self) -> None:
        for c in self.conns:
            c.close()
        for t in self._threads:
            t.join(timeout=60)


def subscribe_lines(count: int) -> list[bytes]:
    """``count`` ``subscribe`` requests (every new message), one per line."""
    return [
        json.dumps({"jsonrpc": "2.0", "id": n, "method": "subscribe"}).encode() + b"\n"
        for n in range(count)
    ]


# ------------------------------------------------------------------------------- syncing


def follow_all(client: Client, authors: list[str]) -> None:
    for author in authors:
        client.call("follow", feed_id=author)


def sync_seconds(
    receiver_home: Path,
    source_listen: str,
    source_feed: str,
    target: int,
    *,
    timeout: float,
) -> float:
    """From telling the receiver to connect to the source until it holds ``target``
    entries: the seconds taken. Raises AssertionError after ``timeout`` s."""
    with Client.for_home(receiver_home, timeout=120) as client:
        start = time.monotonic()
        client.call("peers.connect", address=source_listen, feed_id=source_feed)
        held = 0
        while held < target:
            if time.monotonic() - start > timeout:
                raise AssertionError(f"sync did not finish in {timeout} s: {held}/{target}")
            time.sleep(0.05)
            held = client.call("status")["entries"]
        return time.monotonic() - start


def pid_of(home: Path) -> int:
    info: dict[str, Any] = json.loads((home / "daemon.json").read_text())
    return int(info["pid"])


def settle_rss_mb(pid: int, below: float, timeout: float = 20.0) -> float:
    """Wait (up to ``timeout`` s) for the process's VmRSS to drop below ``below`` MB; the
    last value read."""
    deadline = time.monotonic() + timeout
    now = rss_mb(pid)
    while now >= below and time.monotonic() < deadline:
        time.sleep(0.2)
        now = rss_mb(pid)
    return now
