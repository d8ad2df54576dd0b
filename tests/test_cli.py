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
from typing import Any

import pytest

from p2psocial.identity import feed_id
from tests.e2e.daemons import DaemonProcess
from tests.helpers import BIN, make_keys
from tests.hostile_text import (
    HOSTILE,
    SHOWN,
    SHOWN_JSON,
    assert_json_lines_safe,
    assert_terminal_safe,
)


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


@pytest.fixture
def offline(cli_env: dict[str, str]) -> Cli:
    """The console script on a home made with ``init``, without a daemon (for tests that
    put other people's feeds in the store between commands)."""
    c = Cli(cli_env, "offline")
    c("init")
    return c


def lines(out: str) -> list[Any]:
    """``--json`` output: one JSON value per line."""
    return [json.loads(x) for x in out.splitlines()]


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


def test_init_makes_no_identity_next_to_a_store(cli_env: dict[str, str]) -> None:
    """#11: a lost secret key next to a store is to be restored, never replaced."""
    run(cli_env, "init")
    run(cli_env, "post", "before the key was lost")
    secret, db = home(cli_env) / "secret", home(cli_env) / "store.sqlite"
    before = db.read_bytes()
    secret.unlink()
    proc = run(cli_env, "init", ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"no secret key at {secret}, but a store is at {db}" in proc.stderr
    assert "backup" in proc.stderr
    assert not secret.exists() and db.read_bytes() == before


def test_init_tightens_the_home_folder(cli_env: dict[str, str]) -> None:
    """#11: a home folder open to others is made 0700, and the user is told once."""
    folder = home(cli_env)
    folder.mkdir()
    os.chmod(folder, 0o755)
    proc = run(cli_env, "init")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert "was mode 0755, open to other users: tightened it to 0700" in proc.stderr
    assert "tightened" not in run(cli_env, "init").stderr


def test_check_command(cli_env: dict[str, str]) -> None:
    """#11: 'p2psocial check' runs the full check without a daemon; exit 1 on damage."""
    assert "check" in run(cli_env, "--help").stdout
    run(cli_env, "init")
    run(cli_env, "post", "checked")
    out = run(cli_env, "check").stdout
    assert ": ok (integrity_check of" in out and "1 entries in 1 feeds" in out
    db = home(cli_env) / "store.sqlite"
    db.write_bytes(b"")
    proc = run(cli_env, "check", ok=False)
    assert proc.returncode == 1 and f"store {db} is empty (0 bytes)" in proc.stderr
    assert db.read_bytes() == b""


def test_bad_option_is_usage_error(cli: Cli) -> None:
    cli("init")
    proc = cli("timeline", "--limit", "zero", ok=False)
    assert proc.returncode == 2 and "limit" in proc.stderr.lower()


def raw(cli: Cli, *args: str, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    """A command with its output as the bytes written (``run`` decodes them)."""
    proc = subprocess.run(
        [str(BIN / "p2psocial"), *args], env=cli.env, capture_output=True, timeout=60
    )
    if ok:
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc


def test_peer_text_is_shown_neutralised(cli: Cli) -> None:
    """#11: terminal controls and invisible characters in what is shown come out escaped,
    in text and in --json, for every reading command."""
    cli("init")
    other = make_keys(2).feed_id
    post = json.loads(
        cli("rpc", "publish", json.dumps({"content": {"type": "post", "text": HOSTILE}})).stdout
    )
    odd = {"type": "x\u202e\x1b[2J", "field\u009b": HOSTILE, "list": [HOSTILE, 1]}
    unknown = json.loads(cli("rpc", "publish", json.dumps({"content": odd})).stdout)
    reply = cli("post", "--reply-to", post["id"], HOSTILE).stdout.strip()
    dm = json.loads(cli("dm", "send", "--to", other, HOSTILE, "--json").stdout)["id"]
    for args in (
        ["timeline"],
        ["feed"],
        ["show", post["id"]],
        ["thread", reply],
        ["dm", "inbox"],
        ["dm", "thread", dm],
    ):
        shown = assert_terminal_safe(raw(cli, *args).stdout)
        for visible in SHOWN:
            assert visible in shown, (args, visible, shown)
    # Content of a type we cannot describe is shown as JSON (which escapes C0 itself).
    shown = assert_terminal_safe(raw(cli, "show", unknown["id"]).stdout)
    assert '"type":"x<U+202E>\\u001b[2J"' in shown.replace(" ", "")
    assert "field\\u009b" in shown and "rlo<U+202E>abc" in shown
    for args in (
        ["timeline", "--json"],
        ["feed", "--json"],
        ["show", unknown["id"], "--json"],
        ["thread", reply, "--json"],
        ["dm", "inbox", "--json"],
        ["dm", "thread", dm, "--json"],
        ["rpc", "timeline"],
    ):
        out = raw(cli, *args).stdout
        messages = assert_json_lines_safe(out)
        for escape in SHOWN_JSON:
            assert escape.encode() in out, (args, escape)
        assert messages  # and they decode to exactly what was published:
    [shown_odd] = assert_json_lines_safe(raw(cli, "show", unknown["id"], "--json").stdout)
    assert isinstance(shown_odd, dict) and shown_odd["content"] == odd
    [shown_dm] = assert_json_lines_safe(raw(cli, "dm", "thread", dm, "--json").stdout)
    assert isinstance(shown_dm, dict) and shown_dm["content"]["text"] == HOSTILE
    # An error echoing what it was given is one safe line too.
    proc = raw(cli, "rpc", "get", json.dumps({"id": "%\u202e\x1b[2J\u009b"}), ok=False)
    assert proc.returncode == 1 and proc.stderr.count(b"\n") == 1
    assert_terminal_safe(proc.stderr)


def test_dm_reply_stays_private(cli: Cli) -> None:
    """#11: 'dm reply' answers a private message privately, to its readers; 'post
    --reply-to' a private message is refused, naming 'dm reply'."""
    created = cli("init").stdout
    me = json.loads(cli("whoami", "--json").stdout)["feed_id"]
    assert me in created
    other = make_keys(2).feed_id
    sent = json.loads(cli("dm", "send", "--to", other, "a secret", "--json").stdout)
    reply = json.loads(cli("dm", "reply", sent["id"], "more secrets", "--json").stdout)
    assert reply["private"] is True
    assert reply["content"] == {
        "type": "post",
        "text": "more secrets",
        "recps": [me, other],
        "root": sent["id"],
        "branch": sent["id"],
    }
    plain = cli("dm", "reply", reply["id"], "and more").stdout.strip()
    thread = cli("dm", "thread", sent["id"]).stdout
    assert (
        "more secrets" in thread and "and more" in thread and f"(reply in {sent['id']})" in thread
    )
    ids = [
        json.loads(x)["id"] for x in cli("dm", "thread", sent["id"], "--json").stdout.splitlines()
    ]
    assert ids == [sent["id"], reply["id"], plain]
    before = json.loads(cli("status", "--json").stdout)["entries"]
    proc = cli("post", "--reply-to", sent["id"], "oops", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("p2psocial: error: parameter 'root': ")
    assert "is a private message" in proc.stderr and "p2psocial dm reply" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert json.loads(cli("status", "--json").stdout)["entries"] == before
    public = cli("post", "public").stdout.strip()
    proc = cli("dm", "reply", public, "x", ok=False)
    assert proc.returncode == 1 and "is a public message" in proc.stderr
    assert "Reply privately" in cli("dm", "reply", "--help").stdout


def test_profiles_and_petnames(cli: Cli) -> None:
    """#12: 'profile set' publishes your name, message head lines show it (and --json an
    'author_name'), 'name' sets and clears a petname, shown instead."""
    cli("init")
    me = json.loads(cli("whoami", "--json").stdout)["feed_id"]
    short = me[:9] + "…"
    cli("post", "before any name")
    assert f"  {me}  #1  " in cli("timeline").stdout  # no name known: the key alone
    [before] = [json.loads(x) for x in cli("timeline", "--json").stdout.splitlines()]
    assert before["author"] == me and before["author_name"] == short
    out = cli("profile", "set", "--name", "Alice", "--bio", "hi there").stdout
    assert out.startswith("published %") and "Alice" in out and "bio: hi there" in out
    shown = json.loads(cli("profile", "--json").stdout)
    assert shown == {
        "feed_id": me,
        "name": "Alice",
        "bio": "hi there",
        "avatar": None,
        "petname": None,
        "display_name": "Alice",
    }
    for args in (["timeline"], ["feed"], ["show", before["id"]], ["thread", before["id"]]):
        assert f"  Alice  {me}  #1  " in cli(*args).stdout, args
    messages = [json.loads(x) for x in cli("timeline", "--json").stdout.splitlines()]
    assert {m["author_name"] for m in messages} == {"Alice"}
    assert {m["author"] for m in messages} == {me}
    dm = json.loads(cli("dm", "send", "--to", make_keys(4).feed_id, "psst", "--json").stdout)
    assert f"  Alice  {me}  {dm['id']}" in cli("dm", "inbox").stdout
    [private] = [json.loads(x) for x in cli("dm", "thread", dm["id"], "--json").stdout.splitlines()]
    assert private["author_name"] == "Alice" and private["content"]["text"] == "psst"
    # A petname is shown instead of the name a feed gives itself; --clear forgets it.
    assert "petname: me myself" in cli("name", me, "me myself").stdout
    assert f"  me myself  {me}  #1  " in cli("timeline").stdout
    assert "unchanged" in cli("name", me, "me myself").stdout
    cli("name", me, "--clear")
    assert f"  Alice  {me}  #1  " in cli("timeline").stdout
    # Another feed shown by the same name: both are told apart by a short key.
    other = make_keys(3).feed_id
    cli("name", other, "alice")
    assert f"  Alice ({short})  {me}  #1  " in cli("timeline").stdout
    assert json.loads(cli("profile", other, "--json").stdout)["display_name"] == (
        f"alice ({other[:9]}…)"
    )
    # What breaks a rule is one line and exit 1; nothing is published.
    entries = json.loads(cli("status", "--json").stdout)["entries"]
    for args in (
        ["profile", "set", "--name", "a\x1b[2Jb"],
        ["profile", "set", "--name", "x" * 65],
        ["profile", "set"],
        ["profile", "--name", "x"],
        ["name", other],
        ["name", other, "x", "--clear"],
        ["name", "@nope", "x"],
    ):
        proc = cli(*args, ok=False)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, (args, proc.stderr)
        assert_terminal_safe(proc.stderr.encode())
    assert json.loads(cli("status", "--json").stdout)["entries"] == entries
