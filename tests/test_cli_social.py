"""#12: the real console script for channels, mutes, suggestions and mentions by name.

The first test runs twice, as the other command tests do (``tests/test_cli.py``): without
a daemon and with a real daemon on the same home. The others put other people's feeds in
the store first, so they run without a daemon (the store is opened directly between
commands)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2psocial.home import Home
from p2psocial.identity import Keypair, feed_id
from p2psocial.msgtypes.contact import contact_content
from p2psocial.store.store import Store
from tests.helpers import Feeds, make_keys
from tests.hostile_text import HOSTILE, SHOWN, assert_json_lines_safe, assert_terminal_safe
from tests.test_cli import Cli, home, lines, offline, raw

__all__ = ["offline"]  # a fixture

ALICE, ALICE2, BOB, CAROL = (make_keys(n) for n in range(91, 95))


@pytest.fixture(params=["offline", "daemon"])
def social_cli(request: pytest.FixtureRequest, cli_env: dict[str, str]):
    c = Cli(cli_env, request.param)
    yield c
    c.stop()


def add_feeds(cli: Cli, *feeds: tuple[Keypair, list[dict[str, Any]]]) -> None:
    """Store other people's feeds in the (offline) home's store, as if replicated."""
    h = Home(home(cli.env))
    with Store.open(h.store_path, owner=h.load_identity()) as store:
        added = Feeds(store)
        for keys, contents in feeds:
            added.add(keys, *contents)


def about(who: Keypair, name: str) -> dict[str, Any]:
    return {"type": "about", "about": who.feed_id, "name": name}


def test_post_with_channel_warning_and_mentions(social_cli: Cli) -> None:
    cli = social_cli
    cli("init")
    me = json.loads(cli("whoami", "--json").stdout)["feed_id"]
    other = make_keys(96).feed_id
    cli("profile", "set", "--name", "Zoë")
    cli("name", other, "Friend")
    first = cli("post", "first #Food").stdout.strip()
    posted = json.loads(
        cli(
            "post",
            "lunch with @friend and @ZOË",
            "--channel",
            "#Food",
            "--cw",
            "food pics",
            "--mention",
            first,
            "--json",
        ).stdout
    )
    assert posted["content"] == {
        "type": "post",
        "text": "lunch with @friend and @ZOË",
        "channel": "Food",
        "cw": "food pics",
        "mentions": [first, other, me],
    }
    shown = cli("channel", "#food", "--show-cw").stdout
    assert shown.index("lunch with") < shown.index("first #Food")
    assert "lunch with" not in cli("channel", "#food").stdout  # folded behind its warning
    assert [m["id"] for m in lines(cli("channel", "FOOD", "--json").stdout)] == [
        posted["id"],
        first,
    ]
    assert [m["id"] for m in lines(cli("channel", "food", "-n", "1", "--json").stdout)] == [
        posted["id"]
    ]
    assert "no posts in #drinks" in cli("channel", "drinks").stdout
    assert cli("channels").stdout.startswith("#food  2 posts  latest ")
    [row] = lines(cli("channels", "--json").stdout)
    assert row["name"] == "food" and row["count"] == 2
    # An unknown name is one line naming what is close; nothing is published.
    proc = cli("post", "hi @Frie", ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert f"@Frie names no one you know (close: Friend {other})" in proc.stderr
    assert "hi @Frie" not in cli("feed").stdout
    assert cli("post", "hi @Frie", "--no-names", "--json").stdout  # taken as it is written
    for args, needle in (
        (["post", "x", "--channel", "two words"], "parameter 'channel'"),
        (["post", "x", "--mention", "@nope"], "parameter 'mentions'"),
        (["channel", "a b"], "parameter 'name'"),
    ):
        proc = cli(*args, ok=False)
        assert proc.returncode == 1 and needle in proc.stderr, (args, proc.stderr)
    # Mutes: by feed id; yourself is refused; nothing is published.
    entries = json.loads(cli("status", "--json").stdout)["entries"]
    assert cli("mute", other).stdout.strip() == f"muted Friend  {other}"
    assert cli("mute", other).stdout.strip() == f"already muted: Friend  {other}"
    assert lines(cli("mutes", "--json").stdout) == [{"feed_id": other, "display_name": "Friend"}]
    assert cli("mutes").stdout.strip() == f"Friend  {other}"
    proc = cli("mute", me, ok=False)
    assert proc.returncode == 1 and "you cannot mute yourself" in proc.stderr
    assert json.loads(cli("unmute", other, "--json").stdout) == {"feed_id": other, "changed": True}
    assert "no feed is muted" in cli("mutes").stdout
    assert "no suggestions" in cli("suggest").stdout
    assert cli("suggest", "--json").stdout == ""
    assert json.loads(cli("status", "--json").stdout)["entries"] == entries


def test_ambiguous_name_lists_the_candidates(offline: Cli) -> None:
    add_feeds(offline, (ALICE, [about(ALICE, "Alice")]), (ALICE2, [about(ALICE2, "alice")]))
    proc = offline("post", "hello @alice", ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "@alice is ambiguous: it could be " in proc.stderr
    assert ALICE.feed_id in proc.stderr and ALICE2.feed_id in proc.stderr
    assert f"Alice ({ALICE.feed_id[:9]}…)" in proc.stderr
    # A petname tells them apart.
    offline("name", ALICE2.feed_id, "Alice from work")
    posted = json.loads(offline("post", "hello @alice", "--json").stdout)
    assert posted["content"]["mentions"] == [ALICE.feed_id]


def test_suggest_and_mute_by_name(offline: Cli) -> None:
    def follow(keys: Keypair) -> dict[str, Any]:
        return contact_content(keys.public, following=True, blocking=False)

    offline("follow", ALICE.feed_id)
    offline("follow", BOB.feed_id)
    add_feeds(
        offline,
        (ALICE, [follow(CAROL), follow(ALICE2), {"type": "post", "text": "#talk alice"}]),
        (BOB, [follow(CAROL), about(CAROL, "Carol")]),
        (CAROL, [{"type": "post", "text": "#talk carol"}]),
    )
    out = offline("suggest").stdout.splitlines()
    assert out == [
        f"Carol  {CAROL.feed_id}  followed by 2 you follow",
        f"{ALICE2.feed_id[:9]}…  {ALICE2.feed_id}  followed by 1 you follow",
    ]
    assert [s["followed_by"] for s in lines(offline("suggest", "--json").stdout)] == [2, 1]
    assert len(lines(offline("channel", "talk", "--json").stdout)) == 2
    assert offline("mute", "@carol").stdout.strip() == f"muted Carol  {CAROL.feed_id}"
    assert [m["author"] for m in lines(offline("channel", "talk", "--json").stdout)] == [
        ALICE.feed_id
    ]
    assert [s["feed_id"] for s in lines(offline("suggest", "--json").stdout)] == [ALICE2.feed_id]
    assert offline("unmute", "Carol").stdout.startswith("unmuted Carol")
    proc = offline("mute", "nobody", ok=False)
    assert proc.returncode == 1 and "@nobody names no one you know" in proc.stderr


def test_peer_text_in_a_channel_is_shown_neutralised(offline: Cli) -> None:
    add_feeds(offline, (BOB, [{"type": "post", "text": f"#news {HOSTILE}"}]))
    shown = assert_terminal_safe(raw(offline, "channel", "news").stdout)
    for visible in SHOWN:
        assert visible in shown
    [message] = assert_json_lines_safe(raw(offline, "channel", "news", "--json").stdout)
    assert isinstance(message, dict) and message["content"]["text"] == f"#news {HOSTILE}"
    assert feed_id(BOB.public) == message["author"]
