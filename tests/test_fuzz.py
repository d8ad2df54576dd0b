"""scripts/fuzz.py (issue #11), run through its real entry point as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import REPO

SCRIPT = REPO / "scripts" / "fuzz.py"
DECODERS = {
    "handshake.server",
    "handshake.client",
    "boxstream",
    "packets.msgpack",
    "packets.json",
    "codec.msgpack",
    "codec.json",
    "feed.entry",
    "feed.content",
    "privatebox",
    "jsonrpc.request",
    "jsonrpc.server",
    "replication",
    "blobs.wants",
    "lan",
    "invite",
    "identity",
}
"""Every decoder of outside bytes the issue names; the script must fuzz each of them."""


def fuzz(*args: str, timeout: float = 120) -> tuple[int, dict[str, Any], str]:
    """(exit code, the final JSON line, everything printed) of one run of the script."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    return done.returncode, json.loads(lines[-1]), done.stdout + done.stderr


def test_short_run_covers_every_decoder_and_finds_nothing(tmp_path: Path) -> None:
    code, summary, output = fuzz("--seconds", "4", "--seed", "11", "--findings", str(tmp_path))
    assert summary["findings"] == 0, output
    assert code == 0, output
    assert set(summary["decoders"]) == DECODERS
    for name, stats in summary["decoders"].items():
        assert stats["inputs"] >= 100, name
        assert stats["findings"] == 0, name
        assert stats["accepted"] + sum(stats["exceptions"].values()) == stats["inputs"], name
    assert summary["finding_files"] == []
    assert list(tmp_path.iterdir()) == []


def test_planted_exception_is_reported_with_a_reproducer(tmp_path: Path) -> None:
    code, summary, output = fuzz(
        "--decoder", "self-test", "--seconds", "1", "--seed", "3", "--findings", str(tmp_path)
    )
    assert code == 1, output
    stats = summary["decoders"]["self-test"]
    assert stats["findings"] == stats["exceptions"]["KeyError"] > 0
    assert stats["exceptions"]["InvalidId"] > 0  # expected for this decoder: not findings
    (path,) = tmp_path.iterdir()
    assert summary["finding_files"] == [str(path)]
    record = json.loads(path.read_text())
    assert record["exception"] == "KeyError"
    data = bytes.fromhex(record["input_hex"])
    assert data.startswith(b"!") and len(data) == 4  # minimised
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--reproduce", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 1
    assert "KeyError: 'planted" in done.stderr


def test_native_crash_is_reported_with_the_input(tmp_path: Path) -> None:
    code, summary, output = fuzz(
        "--decoder", "self-test-crash", "--seconds", "1", "--findings", str(tmp_path)
    )
    assert code == 1, output
    assert summary["crash"]["decoder"] == "self-test-crash"
    (path,) = tmp_path.iterdir()
    record = json.loads(path.read_text())
    assert len(bytes.fromhex(record["input_hex"])) > 5  # the input that aborted it


def test_a_seed_and_an_input_count_give_the_same_run(tmp_path: Path) -> None:
    args = ("--decoder", "identity", "--decoder", "lan", "--inputs", "3000", "--seed", "5")
    _, first, _ = fuzz(*args, "--findings", str(tmp_path))
    _, second, _ = fuzz(*args, "--findings", str(tmp_path))
    for name in ("identity", "lan"):
        assert first["decoders"][name]["inputs"] == 3000
        for key in ("accepted", "exceptions", "findings"):
            assert first["decoders"][name][key] == second["decoders"][name][key]
