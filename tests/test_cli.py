"""The real console script, run as a user runs it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

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


def test_help_lists_commands(cli_env: dict[str, str]) -> None:
    out = run(cli_env, "--help").stdout
    for command in ("init", "whoami", "post", "feed", "timeline", "show"):
        assert command in out
    assert "Publish a public post" in run(cli_env, "post", "--help").stdout


def test_init_post_read(cli_env: dict[str, str]) -> None:
    created = run(cli_env, "init").stdout
    me = json.loads(run(cli_env, "whoami", "--json").stdout)["feed_id"]
    assert me in created and me.startswith("@") and me.endswith(".ed25519")
    secret = home(cli_env) / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    first = run(cli_env, "post", "hello world").stdout.strip()
    second = json.loads(run(cli_env, "post", "second post", "--json").stdout)
    assert second["seq"] == 2 and second["previous"] == first
    lines = run(cli_env, "feed", "--json").stdout.splitlines()
    assert [json.loads(x)["content"]["text"] for x in lines] == ["second post", "hello world"]
    assert "hello world" in run(cli_env, "timeline").stdout
    shown = json.loads(run(cli_env, "show", first, "--json").stdout)
    assert shown["author"] == me and shown["content"] == {"type": "post", "text": "hello world"}
    limited = run(cli_env, "timeline", "--json", "--limit", "1").stdout.splitlines()
    assert len(limited) == 1


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
        (["post", "   "], "needs some text"),
        (["post", "x" * 9000], "more than the 8192 allowed"),
    ],
)
def test_user_errors_are_one_line(cli_env: dict[str, str], args: list[str], needle: str) -> None:
    run(cli_env, "init")
    proc = run(cli_env, *args, ok=False)
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


def test_bad_option_is_usage_error(cli_env: dict[str, str]) -> None:
    proc = run(cli_env, "timeline", "--limit", "zero", ok=False)
    assert proc.returncode == 2 and "limit" in proc.stderr.lower()
