"""#12: mutes (local, never published, the feed still replicated) and follow suggestions,
on a store holding several real feeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2psocial.msgtypes.contact import contact_content
from p2psocial.store.store import Store
from tests.helpers import Feeds, make_keys, post

ME, A, B, C, D, E, F = (make_keys(n) for n in range(61, 68))


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(tmp_path / "store.sqlite", owner=ME)
    yield s
    s.close()


def follow(who: bytes, following: bool = True, blocking: bool = False) -> dict[str, object]:
    return contact_content(who, following=following, blocking=blocking)


def test_mute_and_unmute_say_whether_they_changed(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with Store.open(path, owner=ME) as s:
        assert s.mutes() == []
        assert s.mute(B.public, 1) is True
        assert s.mute(B.public, 2) is False
        assert s.mute(A.public, 3) is True
        assert s.mutes() == sorted([A.public, B.public])
        entries = s.counts()["entries"]
    with Store.open(path, owner=ME) as s:  # kept in the store ...
        assert s.mutes() == sorted([A.public, B.public])
        assert s.counts()["entries"] == entries == 0  # ... and nothing was published
        assert s.unmute(B.public) is True
        assert s.unmute(B.public) is False
        assert s.mutes() == [A.public]


def test_a_muted_feed_is_still_replicated(store: Store) -> None:
    feeds = Feeds(store)
    store.publish(ME, follow(B.public), 1_000)
    store.mute(B.public, 2_000)
    assert B.public in store.replication_set(ME.public, 2)
    feeds.add(B, post("still stored"))
    assert store.feed_info(B.public) is not None
    assert store.feed(B.public)[0].content == {"type": "post", "text": "still stored"}


def test_suggestions_rank_by_how_many_of_my_follows_follow_them(store: Store) -> None:
    feeds = Feeds(store)
    for friend in (A, B, C):
        store.publish(ME, follow(friend.public), 1_000)
    feeds.add(A, follow(D.public), follow(E.public), follow(ME.public), follow(B.public))
    feeds.add(B, follow(D.public), follow(E.public), follow(F.public))
    feeds.add(C, follow(D.public), follow(F.public, following=False))
    # D: 3 of my follows; E: 2; F: 1 (C unfollowed it); B and I are left out.
    assert store.suggestions(ME.public) == [(D.public, 3), (E.public, 2), (F.public, 1)]
    assert store.suggestions(ME.public, limit=2) == [(D.public, 3), (E.public, 2)]
    # Muted, blocked or followed feeds are not suggested.
    store.mute(E.public, 2_000)
    store.publish(ME, follow(F.public, following=False, blocking=True), 2_000)
    assert store.suggestions(ME.public) == [(D.public, 3)]
    store.publish(ME, follow(D.public), 3_000)
    assert store.suggestions(ME.public) == []
    store.unmute(E.public)
    assert store.suggestions(ME.public) == [(E.public, 2)]


def test_ties_go_by_feed_key(store: Store) -> None:
    feeds = Feeds(store)
    store.publish(ME, follow(A.public), 1_000)
    feeds.add(A, follow(F.public), follow(D.public), follow(E.public))
    assert store.suggestions(ME.public) == [(k, 1) for k in sorted([D.public, E.public, F.public])]


def test_no_follows_no_suggestions(store: Store) -> None:
    Feeds(store).add(A, follow(D.public))
    assert store.suggestions(ME.public) == []
