"""#12: the real console script for edit, repost, timeline cards, threads and content
warnings, without a daemon and with a real daemon on the same home (``tests/test_cli.py``)."""

from __future__ import annotations

import json

from tests.hostile_text import HOSTILE, SHOWN, assert_terminal_safe, run_bytes
from tests.test_cli import Cli, cli, home

__all__ = ["cli"]


def _post(cli: Cli, *args: str) -> str:
    return str(json.loads(cli("post", *args, "--json").stdout)["id"])


def test_edit_repost_timeline_thread_and_history(cli: Cli) -> None:
    cli("init")
    first = _post(cli, "teh first post")
    out = cli("edit", first, "the first post").stdout
    assert out.startswith(f"edited {first} (%")
    reply = _post(cli, "a reply", "--reply-to", first)
    _post(cli, "a reply to the reply", "--reply-to", reply)
    cli("like", first)
    shared = json.loads(cli("repost", first, "--comment", "worth it", "--json").stdout)
    assert shared["repost"]["message"]["text"] == "the first post"
    timeline = cli("timeline").stdout
    assert "reposted" in timeline and "  worth it\n" in timeline
    assert "  the first post\n" in timeline and "teh first" not in timeline
    assert "(2 replies · 1 like · 1 repost · edited)" in timeline
    assert '"type"' not in timeline  # no bookkeeping shown as data
    cards = [json.loads(line) for line in cli("timeline", "--json").stdout.splitlines()]
    assert [c["id"] for c in cards][-1] == first and cards[-1]["edited"] is True
    older = cli("timeline", "--limit", "2").stdout
    assert f"--before {cards[1]['sort_ts']}" in older
    paged = cli("timeline", "--before", str(cards[1]["sort_ts"]), "--json").stdout
    assert [json.loads(x)["id"] for x in paged.splitlines()] == [c["id"] for c in cards[2:]]
    thread = cli("thread", reply).stdout.splitlines()
    depths = {line.strip(): len(line) - len(line.lstrip()) for line in thread}
    assert depths["a reply"] == 6 and depths["a reply to the reply"] == 10
    assert depths["the first post"] == 2
    history = cli("show", first, "--history").stdout
    assert "history:" in history
    assert history.index("teh first post") < history.rindex("the first post")


def test_content_warnings_fold_until_asked(cli: Cli) -> None:
    cli("init")
    cli("post", "the ending", "--cw", "spoilers")
    folded = cli("timeline").stdout
    assert "[CW: spoilers] (folded; --show-cw unfolds it)" in folded
    assert "the ending" not in folded
    shown = cli("timeline", "--show-cw").stdout
    assert "[CW: spoilers]\n  the ending" in shown


def test_hostile_edit_and_warning_text_is_neutralised(cli: Cli) -> None:
    cli("init")
    post = _post(cli, "plain")
    cli("edit", post, f"edited {HOSTILE}")
    cli("post", "x", "--cw", HOSTILE[:190])
    for args in (["timeline"], ["timeline", "--show-cw"], ["show", post, "--history"]):
        shown = assert_terminal_safe(run_bytes(home(cli.env), *args).stdout)
        for escaped in SHOWN[:6]:
            assert escaped in shown, (args, escaped)


def test_edit_and_repost_errors_name_the_problem(cli: Cli) -> None:
    cli("init")
    bad = cli("edit", "%nope", "x", ok=False)
    assert bad.returncode != 0 and "id" in bad.stderr
    post = _post(cli, "mine")
    empty = cli("edit", post, " ", ok=False)
    assert empty.returncode != 0 and "'text' must not be empty" in empty.stderr
    cli("delete", post, "--yes")
    gone = cli("repost", post, ok=False)
    assert gone.returncode != 0 and "deleted by its author" in gone.stderr
