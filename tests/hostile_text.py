"""Hostile peer text for the terminal-safety tests (#11), and how to check what the real CLI
wrote: its raw stdout bytes, from a pipe or from a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import tty
import unicodedata
from pathlib import Path

from tests.helpers import BIN

HOSTILE = (
    "clear\x1b[2J clip\x1b]52;c;SGVsbG8=\x07 title\x1b]0;pwned\x07 bel\x07 up\x1b[1A"
    " cr\rfake bs\b c1\u009b2J osc8\u009d0;x\u009c rlo\u202eabc lri\u2066x\u2069 lrm\u200e"
    " del\x7f zw\u200b tag\U000e0041 ls\u2028 end"
)
"""Every kind of sequence the issue names: ESC[2J, OSC 52 (clipboard), OSC 0 (title), BEL,
cursor movement, CR, BS, the 8-bit CSI/OSC/ST, bidi overrides and isolates, LRM, DEL,
invisible characters."""

SHOWN = (
    "\\x1b[2J",
    "\\x1b]52;c;SGVsbG8=\\x07",
    "\\x1b]0;pwned\\x07",
    "\\x1b[1A",
    "cr\\rfake",
    "bs\\x08",
    "\\u009b2J",
    "\\u009d0;x\\u009c",
    "rlo<U+202E>abc",
    "<U+2066>x<U+2069>",
    "<U+200E>",
    "\\x7f",
    "<U+200B>",
    "<U+E0041>",
    "<U+2028>",
)
"""How HOSTILE reads in the CLI's text output."""

SHOWN_JSON = ("\\u001b[2J", "\\u0007", "\\r", "\\u009b", "\\u202e", "\\u2066", "\\u007f")
"""Some of HOSTILE's escapes in ``--json`` output."""

KEPT_FORMAT = {"\u200c", "\u200d"}


def unsafe(char: str) -> bool:
    """A control, surrogate, line/paragraph separator or format character (ZWNJ and ZWJ
    aside): the rule, from unicodedata."""
    category = unicodedata.category(char)
    if category in ("Cc", "Cs", "Zl", "Zp"):
        return True
    return category == "Cf" and char not in KEPT_FORMAT


def assert_terminal_safe(raw: bytes, *, allowed: str = "\n\t") -> str:
    """``raw`` is UTF-8 holding no unsafe character but ``allowed``; returns it decoded."""
    text = raw.decode("utf-8")  # strict
    bad = sorted({f"U+{ord(c):04X}" for c in text if unsafe(c) and c not in allowed})
    assert not bad, f"unsafe characters reach the terminal: {bad}\n{text!r}"
    return text


def assert_json_lines_safe(raw: bytes) -> list[object]:
    """JSON lines with no raw control or format character (not even tab); decoded."""
    text = assert_terminal_safe(raw, allowed="\n")
    return [json.loads(line) for line in text.splitlines()]


def run_bytes(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    """The console script on ``home``; stdout and stderr as the bytes it wrote."""
    proc = subprocess.run(
        [str(BIN / "p2psocial"), "--home", str(home), *args],
        capture_output=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "P2PSOCIAL_HOME"},
    )
    if ok:
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc


def run_in_terminal(home: Path, *args: str) -> bytes:
    """The console script with stdout and stderr on a pseudo-terminal in raw mode (no
    newline translation), as a person's terminal receives it: click strips nothing."""
    main, sub = pty.openpty()
    tty.setraw(sub)
    try:
        proc = subprocess.Popen(
            [str(BIN / "p2psocial"), "--home", str(home), *args],
            stdout=sub,
            stderr=sub,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if k != "P2PSOCIAL_HOME"},
        )
    finally:
        os.close(sub)
    out = bytearray()
    try:
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(main)
        proc.wait(timeout=60)
    assert proc.returncode == 0, bytes(out).decode(errors="replace")
    return bytes(out)
