"""#12: ``p2psocial notifications`` and the unread count in ``status``, the real console
script without a daemon, on a store holding others' real signed feeds (a daemon run is in
tests/e2e/test_notifications_e2e.py)."""

from __future__ import annotations

import json
from typing import Any

from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.home import Home
from p2psocial.identity import Keypair
from p2psocial.store.store import Store
from tests.helpers import make_keys
from tests.hostile_text import HOSTILE, SHOWN, assert_json_lines_safe, assert_terminal_safe
from tests.test_cli import Cli, home, raw

BOB, CAROL = make_keys(91), make_keys(92)


def store_theirs(cli: Cli, entries: list[tuple[Keypair, list[dict[str, Any]]]]) -> None:
    """Store others' feeds in the home's store, as replication would have."""
    where = Home(home(cli.env))
    n = 0
    with Store.open(where.store_path, owner=where.load_identity()) as store:
        for keys, contents in entries:
            items, previous = [], None
            for seq, content in enumerate(contents, 1):
                n += 1  # each entry claims a minute after the one before
                data = encode_content(content)
                entry = create_entry(keys, seq, previous, 1_700_000_000_000 + n * 60_000, data)
                previous = entry.id
                items.append((entry.raw, data))
            assert not store.append_batch(items, now_ms=1_800_000_000_000).errors


def test_notifications_offline(cli_env: dict[str, str]) -> None:
    cli = Cli(cli_env, "offline")
    cli("init")
    me = json.loads(cli("whoami", "--json").stdout)["feed_id"]
    mine = cli("post", "my post").stdout.strip()
    assert cli("notifications").stdout == "no notifications\n"
    assert "notifications: 0 unread" in cli("status").stdout
    store_theirs(
        cli,
        [
            (
                BOB,
                [
                    {"type": "about", "about": BOB.feed_id, "name": "Bob"},
                    {"type": "post", "text": f"an answer\n{HOSTILE}", "root": mine},
                    {"type": "vote", "vote": {"link": mine, "value": 1, "expression": "🎉"}},
                    {"type": "contact", "contact": me, "following": True},
                ],
            ),
            (
                CAROL,
                [
                    {"type": "post", "text": "hey you", "mentions": [me]},
                    {"type": "vote", "vote": {"link": mine, "value": 1}},
                    {"type": "repost", "repost": mine, "comment": "look at this"},
                ],
            ),
        ],
    )
    assert "notifications: 6 unread" in cli("status").stdout
    out = assert_terminal_safe(raw(cli, "notifications").stdout)
    lines = out.splitlines()
    short = mine[:10] + "…"
    carol = CAROL.feed_id[:9] + "…"
    heads = [line.split("  ", 1)[1] for line in lines if line.startswith("* ")]
    assert heads == [
        f"{carol}  reposted your post {short}",
        f"{carol}  liked your post {short}",
        f"{carol}  mentioned you",
        "Bob  started following you",
        f"Bob  reacted 🎉 to your post {short}",
        f"Bob  replied to your post {short}",
    ]
    assert "\n    look at this\n" in out and "\n    hey you\n" in out
    assert "\n    an answer\n    " in out
    for visible in SHOWN:
        assert visible in out, visible
    found = assert_json_lines_safe(raw(cli, "notifications", "--json", "--unread").stdout)
    assert [n["kind"] for n in found] == [  # type: ignore[index]
        "repost",
        "reaction",
        "mention",
        "follow",
        "reaction",
        "reply",
    ]
    reply = found[-1]
    assert isinstance(reply, dict)
    assert reply["target"] == mine and reply["read"] is False and reply["in_thread"] is False
    assert reply["message"]["author"] == BOB.feed_id and reply["message"]["author_name"] == "Bob"
    # Marking read after showing only the newest two: everything received up to them.
    marked = cli("notifications", "--limit", "2", "--mark-read").stdout
    assert marked.endswith("marked 6 read; 0 unread\n")
    assert cli("notifications", "--unread").stdout == "no unread notifications\n"
    assert "notifications: 0 unread" in cli("status").stdout
    assert all(line.startswith("  ") for line in cli("notifications").stdout.splitlines())
    again = cli("notifications", "--json", "--mark-read").stdout
    [*shown, last] = [json.loads(x) for x in again.splitlines()]
    assert len(shown) == 6 and all(n["read"] for n in shown)
    assert last == {"marked": 0, "unread": 0}
    older = cli("notifications", "--json", "--before", str(shown[3]["message"]["timestamp"]))
    assert [json.loads(x)["kind"] for x in older.stdout.splitlines()] == ["reaction", "reply"]
    assert json.loads(cli("status", "--json").stdout)["notifications_unread"] == 0


def test_bad_options_are_one_line(cli_env: dict[str, str]) -> None:
    cli = Cli(cli_env, "offline")
    cli("init")
    for args, needle in (
        (["--limit", "0"], "parameter 'limit' must be >= 1"),
        (["--limit", "5000"], "parameter 'limit' must be <= 1000"),
        (["--before", "-5"], "parameter 'before' must be >= 0"),
    ):
        proc = cli("notifications", *args, ok=False)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, (args, proc.stderr)
        assert needle in proc.stderr, (args, proc.stderr)
