"""The ``vote`` content type: its rules, and the ``votes`` view on real feeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2psocial.errors import InvalidId, UnpublishableContent
from p2psocial.identity import message_id
from p2psocial.msgtypes.registry import check_publish, describe
from p2psocial.msgtypes.vote import parse_vote, vote_content
from p2psocial.store.store import Store
from tests.helpers import make_keys, signed_feed

A, B, C = make_keys(1), make_keys(2), make_keys(3)
MSG = message_id(b"\x05" * 32)


def test_a_vote_round_trips() -> None:
    content = vote_content(MSG, 1, "👍")
    check_publish(content)
    assert parse_vote(content) == (b"\x05" * 32, 1, "👍")
    assert describe(content) == f"👍 likes {MSG}"
    assert describe(vote_content(MSG, 0)) == f"no longer likes {MSG}"
    with pytest.raises(InvalidId):
        vote_content("%nope", 1)


@pytest.mark.parametrize(
    ("vote", "needle"),
    [
        (None, "needs a 'vote' map"),
        ({"value": 1}, "'link' must be a message id"),
        ({"link": "%x", "value": 1}, "'link' must be a message id"),
        ({"link": MSG, "value": 2}, "'value' must be 1"),
        ({"link": MSG, "value": True}, "'value' must be 1"),
        ({"link": MSG, "value": 1, "expression": ""}, "'expression'"),
        ({"link": MSG, "value": 1, "expression": "a b"}, "'expression'"),
        ({"link": MSG, "value": 1, "expression": "\x1b[2J"}, "'expression'"),
        ({"link": MSG, "value": 1, "expression": "x" * 17}, "'expression'"),
    ],
)
def test_our_bad_votes_are_refused(vote: Any, needle: str) -> None:
    content: dict[str, Any] = {"type": "vote"}
    if vote is not None:
        content["vote"] = vote
    with pytest.raises(UnpublishableContent, match=needle):
        check_publish(content)


def test_received_malformed_votes_are_kept_but_not_counted() -> None:
    assert parse_vote({"type": "vote", "vote": {"link": MSG, "value": 7}}) is None
    assert parse_vote({"type": "vote", "vote": "like"}) is None
    # a bad expression alone does not lose the like
    assert parse_vote({"type": "vote", "vote": {"link": MSG, "value": 1, "expression": 5}}) == (
        b"\x05" * 32,
        1,
        None,
    )


_feed = signed_feed


def test_likes_count_once_per_author_and_the_latest_wins(tmp_path: Path) -> None:
    other = message_id(b"\x06" * 32)
    a = _feed(A, [vote_content(MSG, 1), vote_content(MSG, 1, "🎉"), vote_content(other, 1)])
    b = _feed(B, [vote_content(MSG, 1), vote_content(MSG, 0)])  # liked, then took it back
    c = _feed(C, [vote_content(MSG, 1, "❤️")])
    with Store.open(tmp_path / "s.sqlite") as store:
        # received out of order across feeds, and B's second vote before its first batch
        assert not store.append_batch(c + a, 2_000_000_000_000).errors
        assert not store.append_batch(b, 2_000_000_000_000).errors
        target = b"\x05" * 32
        assert sorted(store.likes(target)) == sorted([(A.public, "🎉"), (C.public, "❤️")])
        assert store.like_counts([target, b"\x06" * 32, b"\x07" * 32]) == {
            target: 2,
            b"\x06" * 32: 1,
        }
        store.purge_feed(C.public)  # a block takes its likes away
        assert store.likes(target) == [(A.public, "🎉")]
        assert store.rebuild("votes") == len(a) + len(b)
        assert store.likes(target) == [(A.public, "🎉")]
