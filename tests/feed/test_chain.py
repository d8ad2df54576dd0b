from __future__ import annotations

import pytest

from p2psocial.errors import (
    AuthorMismatch,
    ContentMismatch,
    FeedForked,
    PreviousMismatch,
    SequenceError,
)
from p2psocial.feed.chain import FeedState, Offered, plan_chain
from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from tests.helpers import make_feed, make_keys

A = make_keys(1)
B = make_keys(2)


def offered(feed, start: int = 0, stop: int | None = None) -> list[Offered]:
    return [Offered(e, c) for e, c in feed[start:stop]]


def test_new_feed_accepts_run_in_any_order() -> None:
    feed = make_feed(A, 5)
    plan = plan_chain(FeedState(A.public), list(reversed(offered(feed))), {})
    assert [a.entry.seq for a in plan.append] == [1, 2, 3, 4, 5]
    assert plan.append[0].content_type == "post"
    assert plan.duplicates == 0 and plan.fork_candidate is None


def test_continues_from_state() -> None:
    feed = make_feed(A, 5)
    state = FeedState(A.public, 3, feed[2][0].id)
    plan = plan_chain(state, offered(feed, 3), {})
    assert [a.entry.seq for a in plan.append] == [4, 5]


def test_gap_rejected() -> None:
    feed = make_feed(A, 5)
    with pytest.raises(SequenceError, match="gap"):
        plan_chain(FeedState(A.public, 2, feed[1][0].id), offered(feed, 3), {})


def test_gap_inside_run_rejected() -> None:
    feed = make_feed(A, 5)
    with pytest.raises(SequenceError):
        plan_chain(FeedState(A.public), offered(feed, 0, 2) + offered(feed, 3), {})


def test_previous_mismatch() -> None:
    feed = make_feed(A, 3)
    other = create_entry(A, 2, b"\x09" * 32, 1, feed[1][1])
    with pytest.raises(PreviousMismatch):
        plan_chain(FeedState(A.public), [*offered(feed, 0, 1), Offered(other, feed[1][1])], {})


def test_author_mismatch() -> None:
    feed = make_feed(B, 1)
    with pytest.raises(AuthorMismatch):
        plan_chain(FeedState(A.public), offered(feed), {})


def test_content_mismatch_rejects_run() -> None:
    feed = make_feed(A, 2)
    bad = [Offered(feed[0][0], feed[0][1]), Offered(feed[1][0], feed[0][1])]
    with pytest.raises(ContentMismatch):
        plan_chain(FeedState(A.public), bad, {})


def test_missing_content_is_allowed() -> None:
    feed = make_feed(A, 2)
    plan = plan_chain(FeedState(A.public), [Offered(e, None) for e, _ in feed], {})
    assert [a.content_type for a in plan.append] == [None, None]


def test_duplicates_ignored() -> None:
    feed = make_feed(A, 4)
    state = FeedState(A.public, 2, feed[1][0].id)
    held = {1: feed[0][0].id, 2: feed[1][0].id}
    plan = plan_chain(state, offered(feed), held)
    assert plan.duplicates == 2
    assert [a.entry.seq for a in plan.append] == [3, 4]


def test_duplicate_within_run_ignored() -> None:
    feed = make_feed(A, 2)
    plan = plan_chain(FeedState(A.public), offered(feed) + offered(feed, 1), {})
    assert plan.duplicates == 1 and len(plan.append) == 2


def test_fork_candidate() -> None:
    feed = make_feed(A, 3)
    fork = create_entry(A, 2, feed[0][0].id, 999, encode_content({"type": "post", "text": "b"}))
    state = FeedState(A.public, 3, feed[2][0].id)
    plan = plan_chain(state, [Offered(fork, None)], {2: feed[1][0].id})
    assert plan.fork_candidate == (feed[1][0].id, fork)
    assert plan.append == []


def test_fork_inside_one_run() -> None:
    feed = make_feed(A, 2)
    fork = create_entry(A, 2, feed[0][0].id, 999, feed[1][1])
    plan = plan_chain(FeedState(A.public), [*offered(feed), Offered(fork, None)], {})
    assert plan.fork_candidate is not None
    assert plan.fork_candidate[1] in (fork, feed[1][0])


def test_forked_feed_accepts_nothing() -> None:
    feed = make_feed(A, 1)
    with pytest.raises(FeedForked):
        plan_chain(FeedState(A.public, forked=True), offered(feed), {})
