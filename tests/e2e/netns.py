"""Real network namespaces for LAN tests: an isolated Ethernet segment on this machine.

Layout (all names unique per run, nothing touches the root namespace's interfaces)::

    p2ps-<pid>-<token>-sw      the switch: bridge br0, ports p0, p1, ...
    p2ps-<pid>-<token>-h<i>    host i: lo, and lan0 (a veth whose peer is p<i> on br0)
                               with 10.<a>.<b>.<i+1>/24
    p2ps-<pid>-<token>-i<n>    an island: the far end of an extra link of a host
                               (:meth:`Lan.add_island`), on no segment with anyone else

Nothing routes out of the segment, so the private addresses never leave the machine.
:func:`isolated_lan` deletes every namespace it made, also when the test fails; namespaces
left by a run that was killed (its pid gone) are swept at the next start.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.daemons import BIN, DaemonProcess, wait_for

PREFIX = "p2ps-"
_OURS = re.compile(rf"^{PREFIX}(\d+)-[0-9a-f]+-(sw|h\d+|i\d+)$")


class NetnsError(Exception):
    """An ``ip`` command failed."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS`` (iproute2)."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def netns_unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None if they can (tries one)."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` command is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (.ci/run runs as root)"
    probe = f"{PREFIX}{os.getpid()}-0-sw"
    try:
        ip("netns", "add", probe)
    except NetnsError as exc:
        return f"cannot create a network namespace: {exc}"
    except OSError as exc:
        return f"cannot run ip: {exc}"
    ip("netns", "del", probe, check=False)
    return None


def list_namespaces() -> list[str]:
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def sweep_stale() -> None:
    """Delete namespaces of ours whose creating test process is gone."""
    for name in list_namespaces():
        match = _OURS.match(name)
        if match and not _alive(int(match.group(1))):
            _delete_namespace(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _delete_namespace(name: str) -> None:
    """Kill what still runs inside (only our daemons ever do), then delete it."""
    pids = ip("netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    ip("netns", "del", name, check=False)


@dataclass
class Host:
    """One host namespace on the segment."""

    netns: str
    address: str
    """Its lan0 address, without the prefix length."""

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``ip -n NETNS ARGS``."""
        return ip("-n", self.netns, *args)


@dataclass
class Lan:
    base: str
    switch: str
    subnet: str
    hosts: list[Host] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    """Every namespace made, in order (deleted in reverse)."""

    def add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.namespaces.append(name)

    def add_island(self, host: Host, interface: str, address: str) -> None:
        """Give ``host`` another interface, ``interface`` with ``address`` (with prefix
        length), linked to a namespace of its own: a segment none of the hosts is on."""
        island = f"{self.base}-i{len(self.namespaces)}"
        self.add_namespace(island)
        ip(
            "link", "add", interface, "netns", host.netns, "type", "veth",
            "peer", "name", "lan0", "netns", island,
        )  # fmt: skip
        ip("-n", island, "link", "set", "dev", "lan0", "up")
        host.run("addr", "add", address, "dev", interface)
        host.run("link", "set", "dev", interface, "multicast", "on", "up")


@contextlib.contextmanager
def isolated_lan(hosts: int) -> Iterator[Lan]:
    """A bridge in a switch namespace and ``hosts`` namespaces plugged into it."""
    sweep_stale()
    token = secrets.token_hex(3)
    base = f"{PREFIX}{os.getpid()}-{token}"
    octets = secrets.token_bytes(2)
    subnet = f"10.{octets[0]}.{octets[1]}"
    lan = Lan(base, f"{base}-sw", f"{subnet}.0/24")
    try:
        lan.add_namespace(lan.switch)
        ip("-n", lan.switch, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        ip("-n", lan.switch, "link", "set", "dev", "br0", "up")
        for i in range(hosts):
            host = Host(f"{base}-h{i}", f"{subnet}.{i + 1}")
            lan.add_namespace(host.netns)
            ip(
                "link", "add", "lan0", "netns", host.netns, "type", "veth",
                "peer", "name", f"p{i}", "netns", lan.switch,
            )  # fmt: skip
            ip("-n", lan.switch, "link", "set", "dev", f"p{i}", "master", "br0", "up")
            host.run("link", "set", "dev", "lo", "up")
            host.run("addr", "add", f"{host.address}/24", "dev", "lan0")
            host.run("link", "set", "dev", "lan0", "multicast", "on", "up")
            lan.hosts.append(host)
        yield lan
    finally:
        for name in reversed(lan.namespaces):
            _delete_namespace(name)


class NetnsDaemon(DaemonProcess):
    """``p2psocial daemon`` run inside a network namespace, listening on every address."""

    def __init__(self, home: Path, host: Host, *extra: str) -> None:
        super().__init__(home, *extra)
        self.host = host

    def start(self) -> NetnsDaemon:
        self.home.mkdir(parents=True, exist_ok=True)
        info = self.home / "daemon.json"
        if info.exists():
            info.unlink()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *("ip", "netns", "exec", self.host.netns),
                    str(BIN / "p2psocial"),
                    *("--home", str(self.home), "daemon"),
                    *("--listen", "0.0.0.0:0", "--log-level", "info"),
                    *self.extra,
                ],
                stdout=log,
                stderr=log,
                env=self.env,
            )
        wait_for(self._ready, what=f"daemon in {self.host.netns} to start", timeout=30)
        return self

    @property
    def lan_address(self) -> str:
        """Where peers on the segment reach it: its lan0 address and listening port."""
        return f"{self.host.address}:{self.info['listen'].rpartition(':')[2]}"
