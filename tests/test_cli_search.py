"""#12: the real console script's ``search``, without a daemon (the CLI runs the method
in-process on the store; other people's feeds are put in the store between commands)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2psocial.home import Home
from p2psocial.identity import Keypair, feed_id
from p2psocial.store.store import Store
from tests.helpers import make_keys, signed_feed
from tests.hostile_text import HOSTILE, SHOWN, assert_json_lines_safe, assert_terminal_safe
from tests.test_cli import Cli, home, lines, offline, raw

__all__ = ["offline"]  # a fixture

BOB = make_keys(97)


def add_feed(cli: Cli, keys: Keypair, contents: list[dict[str, Any]]) -> None:
    """Store someone else's feed in the home's store, as if replicated."""
    h = Home(home(cli.env))
    with Store.open(h.store_path, owner=h.load_identity()) as store:
        assert not store.append_batch(signed_feed(keys, contents), now_ms=10_000).errors


def test_search_prints_matches_best_first_with_names(offline: Cli) -> None:
    add_feed(
        offline,
        BOB,
        [
            {"type": "about", "about": BOB.feed_id, "name": "Bob"},
            {"type": "post", "text": "Zürich, Zürich, Zürich!"},
        ],
    )
    mine = json.loads(offline("post", "a weekend in Zürich 🎉", "--json").stdout)
    out = offline("search", "zurich").stdout
    assert out.index("Zürich, Zürich, Zürich!") < out.index("a weekend in Zürich")
    assert f"Bob  {feed_id(BOB.public)}" in out
    hits = lines(offline("search", "🎉", "--json").stdout)
    assert [h["id"] for h in hits] == [mine["id"]]
    assert hits[0]["rank"] < 0 and hits[0]["content"]["text"] == "a weekend in Zürich 🎉"
    assert len(lines(offline("search", "zurich", "--json", "-n", "1").stdout)) == 1


def test_search_shows_the_edited_text_and_says_when_nothing_matches(offline: Cli) -> None:
    post = offline("post", "first draft about walruses").stdout.strip()
    offline("edit", post, "final words about narwhals")
    assert offline("search", "walruses").stdout == "no posts match\n"
    out = offline("search", "narwhals").stdout
    assert "final words about narwhals" in out and "(edited)" in out
    assert "walruses" not in out
    assert offline("search", "walruses", "--json").stdout == ""


def test_search_pages_back_with_before(offline: Cli) -> None:
    for n in range(3):
        offline("post", f"heron {n}")
    hits = lines(offline("search", "heron", "--json").stdout)
    newest = max(h["sort_ts"] for h in hits)
    older = lines(offline("search", "heron", "--json", "--before", str(newest)).stdout)
    assert len(older) == 2 and all(h["sort_ts"] < newest for h in older)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "parameter 'query' must not be empty"),
        ("!!!", "parameter 'query' has no words to search for"),
        ("ab*", "parameter 'query': a prefix needs at least 3 characters"),
    ],
)
def test_search_errors_are_one_line(offline: Cli, query: str, message: str) -> None:
    proc = offline("search", query, ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"p2psocial: error: {message}")
    assert proc.stderr.count("\n") == 1


def test_hostile_text_in_a_hit_is_shown_neutralised(offline: Cli) -> None:
    add_feed(offline, BOB, [{"type": "post", "text": f"albatross {HOSTILE}"}])
    shown = assert_terminal_safe(raw(offline, "search", "albatross").stdout)
    for visible in SHOWN:
        assert visible in shown
    [hit] = assert_json_lines_safe(raw(offline, "search", "albatross", "--json").stdout)
    assert isinstance(hit, dict) and hit["text"] == f"albatross {HOSTILE}"
