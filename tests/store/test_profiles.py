"""#12: the ``profiles`` view and petnames, on a store holding several real feeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.identity import Keypair, blob_id
from p2psocial.msgtypes.contact import contact_content
from p2psocial.msgtypes.names import display_name, display_names, short_key
from p2psocial.store.store import Store
from tests.helpers import make_keys

ME, BOB, CAROL, DAVE, EVE = (make_keys(n) for n in range(11, 16))


class Feeds:
    """Real signed feeds of several authors, handed to the store as a peer's batches."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.heads: dict[bytes, tuple[int, bytes | None]] = {}

    def add(self, keys: Keypair, *contents: dict[str, Any]) -> None:
        items = []
        for content in contents:
            seq, previous = self.heads.get(keys.public, (0, None))
            data = encode_content(content)
            entry = create_entry(keys, seq + 1, previous, 1_000 + seq, data)
            self.heads[keys.public] = (seq + 1, entry.id)
            items.append((entry.raw, data))
        result = self.store.append_batch(items, now_ms=2_000)
        assert not result.errors, result.errors


def about(who: Keypair, of: Keypair | None = None, **fields: Any) -> dict[str, Any]:
    return {"type": "about", "about": (of or who).feed_id, **fields}


@pytest.fixture
def mine(tmp_path: Path):
    s = Store.open(tmp_path / "store.sqlite", owner=ME)
    yield s
    s.close()


def test_latest_self_about_wins_per_field(mine: Store) -> None:
    feeds = Feeds(mine)
    avatar = blob_id(b"\x02" * 32)
    feeds.add(BOB, about(BOB, name="Bob", bio="first"), about(BOB, avatar=avatar))
    feeds.add(BOB, {"type": "post", "text": "hi"}, about(BOB, name="Robert"))
    assert mine.profile(BOB.public) == {"name": "Robert", "bio": "first", "avatar": avatar}
    # A malformed field of a later about is skipped; its valid fields still count.
    feeds.add(BOB, about(BOB, name="\x1b[2J", bio="second"))
    assert mine.profile(BOB.public) == {"name": "Robert", "bio": "second", "avatar": avatar}
    assert mine.profile(CAROL.public) == {"name": None, "bio": None, "avatar": None}


def test_only_a_self_about_sets_the_profile(mine: Store) -> None:
    feeds = Feeds(mine)
    feeds.add(CAROL, about(CAROL, BOB, name="Mallory", bio="not his"))
    assert mine.profile(BOB.public) == {"name": None, "bio": None, "avatar": None}
    # ... it is what Carol calls Bob, which counts once we follow Carol.
    assert display_name(BOB.public, mine.name_data(ME.public)) == short_key(BOB.public)
    mine.publish(ME, contact_content(CAROL.public, following=True, blocking=False), 3_000)
    assert display_name(BOB.public, mine.name_data(ME.public)) == "Mallory"


def test_petname_beats_self_name_beats_others_names(mine: Store) -> None:
    feeds = Feeds(mine)
    for friend in (CAROL, DAVE, EVE):
        mine.publish(ME, contact_content(friend.public, following=True, blocking=False), 3_000)
    feeds.add(CAROL, about(CAROL, BOB, name="Bobby"))
    feeds.add(DAVE, about(DAVE, BOB, name="Bobby"))
    feeds.add(EVE, about(EVE, BOB, name="Rob"))
    assert display_name(BOB.public, mine.name_data(ME.public)) == "Bobby"  # most say so
    feeds.add(BOB, about(BOB, name="Bob"))
    assert display_name(BOB.public, mine.name_data(ME.public)) == "Bob"
    assert mine.set_petname(BOB.public, "my brother", 4_000) is True
    assert mine.set_petname(BOB.public, "my brother", 4_001) is False
    assert mine.petname(BOB.public) == "my brother"
    assert display_name(BOB.public, mine.name_data(ME.public)) == "my brother"
    assert mine.set_petname(BOB.public, None, 4_002) is True
    assert mine.set_petname(BOB.public, None, 4_003) is False
    assert mine.petnames() == {}
    assert display_name(BOB.public, mine.name_data(ME.public)) == "Bob"


def test_ambiguous_names_are_shown_apart(mine: Store) -> None:
    feeds = Feeds(mine)
    feeds.add(BOB, about(BOB, name="Alice"))
    feeds.add(CAROL, about(CAROL, name="Alice"))
    feeds.add(DAVE, about(DAVE, name="Dave"))
    shown = display_names([BOB.public, CAROL.public, DAVE.public], mine.name_data(ME.public))
    assert shown == {
        BOB.public: f"Alice ({short_key(BOB.public)})",
        CAROL.public: f"Alice ({short_key(CAROL.public)})",
        DAVE.public: "Dave",
    }


def test_blocking_forgets_what_a_feed_said(mine: Store) -> None:
    feeds = Feeds(mine)
    feeds.add(BOB, about(BOB, name="Bob"))
    mine.purge_feed(BOB.public)
    assert mine.profile(BOB.public)["name"] is None


def test_rebuild_gives_the_same_rows(mine: Store) -> None:
    feeds = Feeds(mine)
    feeds.add(BOB, about(BOB, name="Bob"), about(BOB, name="Robert", bio="b"))
    feeds.add(CAROL, about(CAROL, BOB, name="Bobby"), about(CAROL, BOB, name="Bobbo"))
    rows = mine._conn.execute("SELECT * FROM profiles").fetchall()
    named = mine._conn.execute("SELECT * FROM named").fetchall()
    mine.rebuild("profiles")
    assert mine._conn.execute("SELECT * FROM profiles").fetchall() == rows
    assert mine._conn.execute("SELECT * FROM named").fetchall() == named
    assert [r[2] for r in named] == ["Bobbo"]
