"""Real daemons as separate processes, for end-to-end tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from p2psocial.client import Client
from p2psocial.errors import P2PSocialError

BIN = Path(sys.executable).parent
T = TypeVar("T")


def wait_for(condition: Callable[[], T], *, timeout: float = 20.0, what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = condition()
        except (P2PSocialError, OSError, ValueError, KeyError) as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        time.sleep(0.05)


def texts(d: DaemonProcess, feed: str) -> list[str]:
    """The texts of ``feed``'s public posts that daemon ``d`` holds, oldest first."""
    return [
        m["content"]["text"]
        for m in d.call("feed", feed_id=feed, limit=1000)
        if m["content"] and m["content"]["type"] == "post"
    ]


class DaemonProcess:
    """``p2psocial daemon`` in its own home, run as a user runs it."""

    def __init__(self, home: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.extra = extra
        self.env = dict(os.environ, **(env or {}))
        self.env.pop("P2PSOCIAL_HOME", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home.parent / f"{home.name}.log"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "p2psocial"), "--home", str(self.home), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"p2psocial {' '.join(args)} failed: {proc.stderr}")
        return proc

    def start(self) -> DaemonProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        info = self.home / "daemon.json"
        if info.exists():
            info.unlink()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                str(BIN / "p2psocial"),
                "--home",
                str(self.home),
                "daemon",
                "--listen",
                "127.0.0.1:0",
                "--log-level",
                "debug",
                # Test daemons stay off the host's real network: mDNS only in the
                # network namespaces the LAN tests make (tests/e2e/netns.py).
                *([] if "--no-lan" in self.extra else ["--no-lan"]),
                *self.extra,
            ],
            stdout=log,
            stderr=log,
            env=self.env,
        )
        log.close()
        wait_for(lambda: self._ready(), what=f"daemon in {self.home} to start", timeout=30)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
        if not (self.home / "daemon.json").exists():
            return False
        with self.client() as c:
            c.call("whoami")
        return True

    def client(self) -> Client:
        return Client.for_home(self.home, timeout=30)

    def call(self, method: str, **params: Any) -> Any:
        with self.client() as c:
            return c.call(method, **params)

    @property
    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.home / "daemon.json").read_text())
        return data

    @property
    def feed_id(self) -> str:
        return str(self.call("whoami")["feed_id"])

    @property
    def address(self) -> str:
        return f"{self.info['listen']}:{self.feed_id}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                tail = self.log()[-3000:]
                raise AssertionError(f"daemon did not stop on {sig}:\n{tail}") from None
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def count(self, feed: str | None = None) -> int:
        """How many entries of ``feed`` (or in all) the daemon holds."""
        if feed is None:
            return int(self.call("status")["entries"])
        return len(self.call("feed", feed_id=feed, limit=1000))


def mesh(*ds: DaemonProcess) -> None:
    """Every daemon follows every other; each pair is connected once."""
    for d in ds:
        for other in ds:
            if other is not d:
                d.call("follow", feed_id=other.feed_id)
    for i, d in enumerate(ds):
        for other in ds[i + 1 :]:
            d.cli("connect", other.address)
