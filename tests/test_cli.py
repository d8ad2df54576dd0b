"""The real console script, run as a user runs it.

The command tests run twice: without a daemon (the CLI calls the methods in-process on the
store) and with a real daemon on the same home (the CLI calls them over its socket). Both
must give the same output, the same limits and the same errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from p2psocial.identity import feed_id
from tests.e2e.daemons import DaemonProcess
from tests.helpers import BIN


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN / "p2psocial"), *args], env=env, capture_output=True, text=True, timeout=60
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def home(env: dict[str, str]) -> Path:
    return Path(env["P2PSOCIAL_HOME"])


class Cli:
    """The console script on one home; in ``daemon`` mode a real daemon runs on that home
    from the first ``init`` on, so every later command goes through its socket."""

    def __init__(self, env: dict[str, str], mode: str) -> None:
        self.env = env
        self.mode = mode
        self.daemon: DaemonProcess | None = None

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = run(self.env, *args, ok=ok)
        if args[:1] == ("init",) and self.mode == "daemon" and self.daemon is None:
            self.daemon = DaemonProcess(home(self.env)).start()
        return proc

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()


@pytest.fixture(params=["offline", "daemon"])
def cli(request: pytest.FixtureRequest, cli_env: dict[str, str]):
    c = Cli(cli_env, request.param)
    yield c
    c.stop()


def test_help_lists_commands(cli_env: dict[str, str]) -> None:
    out = run(cli_env, "--help").stdout
    for command in ("init", "whoami", "post", "feed", "timeline", "show"):
        assert command in out
    assert "Publish a public post" in run(cli_env, "post", "--help").stdout


def test_init_post_read(cli: Cli) -> None:
    created = cli("init").stdout
    me = json.loads(cli("whoami", "--json").stdout)["feed_id"]
    assert me in created and me.startswith("@") and me.endswith(".ed25519")
    secret = home(cli.env) / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    first = cli("post", "hello world").stdout.strip()
    second = json.loads(cli("post", "second post", "--json").stdout)
    assert second["seq"] == 2 and second["previous"] == first
    lines = cli("feed", "--json").stdout.splitlines()
    assert [json.loads(x)["content"]["text"] for x in lines] == ["second post", "hello world"]
    assert "hello world" in cli("timeline").stdout
    shown = json.loads(cli("show", first, "--json").stdout)
    assert shown["author"] == me and shown["content"] == {"type": "post", "text": "hello world"}
    limited = cli("timeline", "--json", "--limit", "1").stdout.splitlines()
    assert len(limited) == 1
    reply = json.loads(cli("post", "--reply-to", first, "a reply", "--json").stdout)
    assert reply["content"]["root"] == first
    thread = [json.loads(x)["id"] for x in cli("thread", reply["id"], "--json").stdout.splitlines()]
    assert thread == [first, reply["id"]]


def test_limits_and_errors_are_the_same_with_and_without_a_daemon(cli: Cli) -> None:
    cli("init")
    cli("post", "one")
    assert len(cli("feed", "--json", "-n", "1000").stdout.splitlines()) == 1
    for command in ("feed", "timeline"):
        proc = cli(command, "-n", "5000", ok=False)
        assert proc.returncode == 1
        assert proc.stderr == "p2psocial: error: parameter 'limit' must be <= 1000, not 5000\n"
    proc = cli("thread", "%" + "A" * 43 + "=.sha256", ok=False)
    assert proc.returncode == 1 and "no such message" in proc.stderr


def test_graph_and_peers(cli: Cli) -> None:
    cli("init")
    other = feed_id(b"\x01" * 32)
    assert cli("follow", other).stdout.strip() == f"now following {other}"
    assert "already following" in cli("follow", other).stdout
    assert cli("block", other).stdout.strip() == f"now blocking {other}"
    proc = cli("connect", f"127.0.0.1:1:{other}")
    expected = "connecting to" if cli.mode == "daemon" else "the daemon is not running"
    assert expected in proc.stdout
    known = [json.loads(x) for x in cli("peers", "--json").stdout.splitlines()]
    assert {p["feed_id"] for p in known} == {other}
    status = json.loads(cli("status", "--json").stdout)
    assert status["running"] is (cli.mode == "daemon") and status["entries"] == 2


def test_second_init_keeps_identity(cli_env: dict[str, str]) -> None:
    run(cli_env, "init")
    before = (home(cli_env) / "secret").read_bytes()
    again = run(cli_env, "init")
    assert "already exists" in again.stdout
    assert (home(cli_env) / "secret").read_bytes() == before


def test_home_flag_overrides_env(cli_env: dict[str, str], tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    run(cli_env, "--home", str(other), "init")
    assert (other / "secret").exists() and not home(cli_env).exists()


def test_xdg_default(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in cli_env.items() if k != "P2PSOCIAL_HOME"}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    run(env, "init")
    assert (tmp_path / "xdg" / "p2psocial" / "secret").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["show", "%nope"], "message id must end with '.sha256'"),
        (["feed", "@bad"], "feed id must end with '.ed25519'"),
        (["show", "%" + "A" * 43 + "=.sha256"], "no such message"),
        (["post", "   "], "parameter 'text' must not be empty"),
        (["post", "x" * 9000], "more than the 8192 allowed"),
    ],
)
def test_user_errors_are_one_line(cli: Cli, args: list[str], needle: str) -> None:
    cli("init")
    proc = cli(*args, ok=False)
    assert proc.returncode == 1
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_identity(cli_env: dict[str, str]) -> None:
    proc = run(cli_env, "whoami", ok=False)
    assert proc.returncode == 1 and "p2psocial init" in proc.stderr


def test_unsafe_key_mode(cli_env: dict[str, str]) -> None:
    run(cli_env, "init")
    os.chmod(home(cli_env) / "secret", 0o644)
    proc = run(cli_env, "post", "hi", ok=False)
    assert proc.returncode == 1 and "chmod 600" in proc.stderr


def test_key_of_wrong_size(cli_env: dict[str, str]) -> None:
    run(cli_env, "init")
    secret = home(cli_env) / "secret"
    data = json.loads(secret.read_text())
    data["private"] = "AAAA.ed25519"
    secret.write_text(json.dumps(data))
    proc = run(cli_env, "whoami", ok=False)
    assert proc.returncode == 1 and "wrong size" in proc.stderr and "Traceback" not in proc.stderr


def test_corrupt_store_named(cli_env: dict[str, str]) -> None:
    run(cli_env, "init")
    db = home(cli_env) / "store.sqlite"
    db.write_bytes(b"garbage" * 1000)
    proc = run(cli_env, "timeline", ok=False)
    assert proc.returncode == 1 and str(db) in proc.stderr
    assert db.read_bytes() == b"garbage" * 1000


def test_bad_option_is_usage_error(cli: Cli) -> None:
    cli("init")
    proc = cli("timeline", "--limit", "zero", ok=False)
    assert proc.returncode == 2 and "limit" in proc.stderr.lower()
