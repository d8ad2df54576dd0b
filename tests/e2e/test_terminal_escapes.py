"""#11, failure 7: a peer's text must not drive the reader's terminal.

A real daemon replicates a hostile peer's feed (posts, a reply whose ``root`` is hostile,
content of an unknown type, a private message with hostile recipients and root) and holds
a hostile post of its own published through ``p2psocial rpc publish``. The real console
script then shows all of it, and the raw bytes it writes, to a pipe and to a terminal,
hold none of the controls while their escaped forms are visible."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.home import Home
from p2psocial.identity import Keypair, message_id, parse_feed_id
from p2psocial.proto.privatebox import seal_content
from p2psocial.store.store import Store
from tests.e2e.daemons import DaemonProcess, wait_for
from tests.hostile_text import (
    HOSTILE,
    SHOWN,
    SHOWN_JSON,
    assert_json_lines_safe,
    assert_terminal_safe,
    run_bytes,
    run_in_terminal,
)

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]

HOSTILE_ROOT = "%\x1b]52;c;SGVsbG8=\x07\u202e\u009b.sha256"
HOSTILE_RECIPIENT = "@\x1b[2J\u202eevil.ed25519"
ODD_TYPE = "evil\u202e\x1b]0;title\x07"


def write_feed(d: DaemonProcess, contents: list[Any]) -> list[str]:
    """``contents`` as d's feed, written into its store before it starts (a peer may sign
    content our own publish would refuse). Returns the message ids."""
    keys = Home(d.home).load_identity()
    items, ids, previous = [], [], None
    for seq, content in enumerate(contents, start=1):
        encoded = encode_content(content)
        entry = create_entry(keys, seq, previous, 1_700_000_000_000 + seq, encoded)
        previous = entry.id
        items.append((entry.raw, encoded))
        ids.append(message_id(entry.id))
    with Store.open(d.home / "store.sqlite", owner=keys) as store:
        assert not store.append_batch(items, 1_700_000_000_000).errors
    return ids


def sealed(inner: dict[str, Any], author: Keypair, to: str) -> bytes:
    return seal_content(inner, [author.public, parse_feed_id(to)], rng_bytes=os.urandom)


def test_hostile_text_reaches_no_terminal(daemons: Daemons) -> None:
    victim = daemons("victim")
    evil = daemons("evil", start=False)
    evil.cli("init")
    keys = Home(evil.home).load_identity()
    private = {
        "type": "post",
        "text": HOSTILE,
        "recps": [keys.feed_id, victim.feed_id, HOSTILE_RECIPIENT],
        "root": HOSTILE_ROOT,
    }
    odd = {"type": ODD_TYPE, "data": HOSTILE, HOSTILE: [HOSTILE, 1]}
    post, reply, unknown, dm = write_feed(
        evil,
        [
            {"type": "post", "text": HOSTILE},
            {"type": "post", "text": HOSTILE, "root": HOSTILE_ROOT, "branch": HOSTILE_ROOT},
            odd,
            sealed(private, keys, victim.feed_id),
        ],
    )
    evil.start()
    victim.call("follow", feed_id=evil.feed_id)
    victim.cli("connect", evil.address)
    wait_for(lambda: victim.count(evil.feed_id) == 4, what="the hostile feed at the victim")
    wait_for(lambda: victim.call("private.inbox"), what="the hostile private message")
    # A hostile post of the victim's own, through the real console script and the daemon.
    own = json.loads(
        victim.cli(
            "rpc", "publish", json.dumps({"content": {"type": "post", "text": HOSTILE}})
        ).stdout
    )
    home = victim.home

    for args in (
        ["timeline"],
        ["feed", evil.feed_id],
        ["show", post],
        ["show", reply],
        ["show", own["id"]],
        ["thread", reply],
        ["dm", "inbox"],
        ["dm", "thread", dm],
    ):
        shown = assert_terminal_safe(run_bytes(home, *args).stdout)
        for visible in SHOWN:
            assert visible in shown, (args, visible)
    # The hostile root, the recipients and the unknown content, escaped on their line.
    shown = run_bytes(home, "show", reply).stdout.decode()
    assert "(reply in %\\x1b]52;c;SGVsbG8=\\x07<U+202E>\\u009b.sha256)" in shown
    shown = run_bytes(home, "dm", "inbox").stdout.decode()
    assert "@\\x1b[2J<U+202E>evil.ed25519" in shown
    assert "(reply in %\\x1b]52;c;SGVsbG8=\\x07<U+202E>\\u009b.sha256)" in shown
    shown = assert_terminal_safe(run_bytes(home, "show", unknown).stdout)
    assert "evil<U+202E>\\u001b]0;title\\u0007" in shown and "rlo<U+202E>abc" in shown

    # --json (and rpc): valid JSON lines, escaped, decoding to exactly what the peer wrote.
    for args in (
        ["timeline", "--json"],
        ["feed", evil.feed_id, "--json"],
        ["thread", reply, "--json"],
        ["dm", "inbox", "--json"],
        ["dm", "thread", dm, "--json"],
        ["rpc", "timeline"],
    ):
        out = run_bytes(home, *args).stdout
        assert assert_json_lines_safe(out)
        for escape in SHOWN_JSON:
            assert escape.encode() in out, (args, escape)
    [shown_odd] = assert_json_lines_safe(run_bytes(home, "show", unknown, "--json").stdout)
    assert isinstance(shown_odd, dict) and shown_odd["content"] == odd
    [shown_dm] = assert_json_lines_safe(run_bytes(home, "dm", "thread", dm, "--json").stdout)
    assert isinstance(shown_dm, dict) and shown_dm["content"] == private

    # An error that echoes the peer's recipient is one safe line on stderr.
    proc = run_bytes(home, "dm", "reply", dm, "hi", ok=False)
    assert proc.returncode == 1 and proc.stderr.count(b"\n") == 1
    assert "not a feed id" in assert_terminal_safe(proc.stderr, allowed="\n")

    # On a real terminal (where click strips nothing): not one ESC, C1 or bidi control.
    for args in (["timeline"], ["dm", "inbox"], ["show", unknown]):
        out = run_in_terminal(home, *args)
        shown = assert_terminal_safe(out)
        assert b"\x1b" not in out and "\\x1b]52;c;SGVsbG8=\\x07" in shown.replace(
            "\\u001b", "\\x1b"
        ).replace("\\u0007", "\\x07")
