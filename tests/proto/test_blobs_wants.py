"""The sans-IO blob exchange (proto/blobs.py): ``blobs.wants`` messages parsed, and the
wants, haves and fetch decisions of :class:`BlobWants`. No sockets, no clock; peers are
plain strings."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2psocial.errors import BadBlob
from p2psocial.identity import blob_id
from p2psocial.proto.blobs import (
    MAX_FETCHES,
    MAX_HOPS,
    MAX_MESSAGE_ENTRIES,
    MAX_PEER_FETCHES,
    MAX_PEER_WANTS,
    MAX_SENT_FORWARDED,
    MAX_SENT_WANTS,
    BlobWants,
    Fetch,
    parse_wants_message,
)

CAP = 10_000
"""The largest blob the daemon under test fetches."""


def d(n: int) -> bytes:
    """A 32-byte digest, distinct per ``n``."""
    return n.to_bytes(32, "big")


X, Y, Z, W = d(1), d(2), d(3), d(4)


def core(*peers: str) -> BlobWants:
    """A BlobWants with ``peers`` connected and their first messages drained."""
    wants = BlobWants(max_size=CAP)
    for peer in peers:
        wants.peer_connected(peer)
        drain(wants, peer)
    return wants


def drain(wants: BlobWants, peer: str) -> dict[str, int]:
    """Everything there is to say to ``peer`` now, in one map."""
    said: dict[str, int] = {}
    while (message := wants.take_message(peer)) is not None:
        said.update(message)
    return said


def blobs_of(fetches: list[Fetch]) -> list[bytes]:
    return [f.blob for f in fetches]


# ---------------------------------------------------------------------------- messages


def test_a_message_splits_into_wants_and_haves() -> None:
    message = {blob_id(X): -1, blob_id(Y): -2, blob_id(Z): 500, blob_id(W): 0}
    assert parse_wants_message(message) == ({X: 1, Y: 2}, {Z: 500, W: 0})
    assert parse_wants_message({}) == ({}, {})


def test_the_largest_message_allowed() -> None:
    message = {blob_id(d(n)): -1 for n in range(MAX_MESSAGE_ENTRIES)}
    wants, haves = parse_wants_message(message)
    assert len(wants) == MAX_MESSAGE_ENTRIES
    assert haves == {}
    message[blob_id(d(MAX_MESSAGE_ENTRIES))] = 7
    with pytest.raises(BadBlob, match="at most"):
        parse_wants_message(message)


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        ([blob_id(X), -1], "must be a map"),
        (None, "must be a map"),
        (b"\x81", "must be a map"),
        ({"&nope.sha256": -1}, "bad blob id"),
        ({"%" + blob_id(X)[1:-7] + ".sha256": -1}, "bad blob id"),
        ({blob_id(X).encode(): -1}, "bad blob id"),
        ({7: -1}, "bad blob id"),
        ({blob_id(X): True}, "must be an integer"),
        ({blob_id(X): -1.0}, "must be an integer"),
        ({blob_id(X): "12"}, "must be an integer"),
        ({blob_id(X): None}, "must be an integer"),
        ({blob_id(X): [1]}, "must be an integer"),
    ],
)
def test_malformed_messages_are_bad_blob(message: object, needle: str) -> None:
    with pytest.raises(BadBlob, match=needle):
        parse_wants_message(message)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=60)
    | st.binary(max_size=40)
    | st.sampled_from([blob_id(X), blob_id(Y), blob_id(Z)])
)
_msgpack_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(_scalars.filter(lambda k: not isinstance(k, float)), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_msgpack_values)
def test_any_msgpack_value_parses_or_is_bad_blob(value: Any) -> None:
    # As it arrives: through msgpack (lists come back as lists, any scalar map key kept).
    wire = msgpack.unpackb(msgpack.packb(value), raw=False, strict_map_key=False)
    try:
        wants, haves = parse_wants_message(wire)
    except BadBlob:
        return
    assert all(len(b) == 32 and hops >= 1 for b, hops in wants.items())
    assert all(len(b) == 32 and size >= 0 for b, size in haves.items())


# ---------------------------------------------------------------------------- our wants


def test_a_new_peer_hears_our_wants() -> None:
    wants = BlobWants(max_size=CAP)
    wants.set_wanted({X: 1, Y: 0})
    wants.peer_connected("a")
    assert drain(wants, "a") == {blob_id(X): -1, blob_id(Y): -1}
    assert wants.take_message("a") is None
    assert wants.take_message("nobody") is None


def test_new_wants_go_to_every_connected_peer_once() -> None:
    wants = core("a", "b")
    wants.set_wanted({X: 1})
    assert drain(wants, "a") == drain(wants, "b") == {blob_id(X): -1}
    wants.set_wanted({X: 1, Y: 0})  # only the new one is said again
    assert drain(wants, "a") == drain(wants, "b") == {blob_id(Y): -1}
    wants.want(Z)
    assert drain(wants, "a") == {blob_id(Z): -1}
    wants.want(Z, priority=0)  # wanted already: nothing new to say, the first priority stays
    assert drain(wants, "a") == {}
    assert wants.local == {X: 1, Y: 0, Z: -1}


def test_long_want_lists_are_sent_in_bounded_messages() -> None:
    wants = BlobWants(max_size=CAP)
    wants.set_wanted({d(n): 1 for n in range(MAX_MESSAGE_ENTRIES + 500)})
    wants.peer_connected("a")
    first, second = wants.take_message("a"), wants.take_message("a")
    assert first is not None and second is not None
    assert (len(first), len(second)) == (MAX_MESSAGE_ENTRIES, 500)
    assert wants.take_message("a") is None
    assert parse_wants_message(first)[0] == {d(n): 1 for n in range(MAX_MESSAGE_ENTRIES)}


# ---------------------------------------------------------------------------- peers' wants


def test_a_want_for_a_held_blob_is_answered_with_its_size() -> None:
    wants = core("a", "b")
    wants.wants_received("a", {X: 1, Y: 1}, held={X: 1234})
    assert drain(wants, "a") == {blob_id(X): 1234}  # Y is not held: no answer yet
    assert drain(wants, "b") == {blob_id(Y): -2}  # but it is asked for one hop on
    assert wants.peers["a"].wants == {Y: 1}


def test_wants_travel_one_hop_and_never_back_to_the_asker() -> None:
    wants = core("a", "b", "c")
    wants.wants_received("a", {X: 1}, held={})
    assert drain(wants, "a") == {}
    assert drain(wants, "b") == drain(wants, "c") == {blob_id(X): -(1 + 1)}
    wants.wants_received("b", {Y: MAX_HOPS}, held={})  # came as far as it may
    assert drain(wants, "a") == drain(wants, "c") == {}
    wants.wants_received("a", {X: 1}, held={})  # said again: not forwarded again
    assert drain(wants, "b") == {}
    # Still kept, to answer once held.
    assert wants.peers["b"].wants == {Y: MAX_HOPS}


def test_a_want_of_ours_is_not_forwarded_again() -> None:
    wants = core("a", "b")
    wants.set_wanted({X: 1})
    drain(wants, "a"), drain(wants, "b")
    wants.wants_received("a", {X: 1}, held={})
    assert drain(wants, "b") == {}  # b heard our own want already


def test_a_new_peer_hears_the_wants_we_forward() -> None:
    wants = core("a")
    wants.set_wanted({X: 1})
    wants.wants_received("a", {X: 1, Y: 1, Z: MAX_HOPS}, held={})
    wants.peer_connected("b")
    # Ours at -1 (not -2 although a wants it too); Z came as far as it may.
    assert drain(wants, "b") == {blob_id(X): -1, blob_id(Y): -2}


def test_a_want_that_comes_closer_is_forwarded() -> None:
    wants = core("a", "b")
    wants.wants_received("a", {X: MAX_HOPS}, held={})  # relayed by a: not forwarded
    assert drain(wants, "b") == {}
    wants.wants_received("a", {X: 1}, held={})  # now a's own want
    assert drain(wants, "b") == {blob_id(X): -2}


def test_open_wants_of_one_peer_are_bounded() -> None:
    wants = core("a")
    many = {d(n): MAX_HOPS for n in range(MAX_PEER_WANTS)}
    wants.wants_received("a", many, held={})
    wants.wants_received("a", {d(0): 1}, held={})  # one it wants already: no new room needed
    wants.wants_received("a", {d(MAX_PEER_WANTS): 1}, held={d(MAX_PEER_WANTS): 5})  # held
    with pytest.raises(BadBlob, match=str(MAX_PEER_WANTS)):
        wants.wants_received("a", {d(MAX_PEER_WANTS + 1): 1}, held={})


def test_haves_count_only_for_blobs_someone_wants() -> None:
    wants = core("a", "b")
    wants.set_wanted({X: 1})
    wants.wants_received("b", {Y: 1}, held={})
    wants.haves_received("a", {X: 100, Y: 200, Z: 300})  # Z: nobody asked
    assert wants.peers["a"].haves == {X: 100, Y: 200}
    assert sorted(blobs_of(wants.next_fetches())) == sorted([X, Y])


def test_haves_are_kept_only_for_what_is_wanted_within_the_cap() -> None:
    wants = core("a")
    wants.set_wanted({X: 1, Y: 1})
    wants.haves_received("a", {d(n): 1 for n in range(100, 100 + MAX_PEER_WANTS + 10)})
    wants.haves_received("a", {X: 10, Y: CAP + 1})  # Y is over our cap
    assert wants.peers["a"].haves == {X: 10}  # the rest ignored, and nobody is cut off
    wants.set_wanted({})  # we no longer want X: its have goes too
    assert wants.peers["a"].haves == {}


def test_we_keep_our_open_wants_under_what_a_peer_allows() -> None:
    """The protocol cannot withdraw a want: a node keeps at most MAX_SENT_WANTS of its own
    open at one peer (and fewer passed on for others), so an honest node is never cut off
    by an honest peer's MAX_PEER_WANTS."""
    wants = core("a", "b")
    wants.set_wanted({d(n): 1 for n in range(MAX_SENT_WANTS + 500)})
    sent: dict[str, int] = {}
    while (message := wants.take_message("a")) is not None:
        sent.update(message)
    assert len(sent) == MAX_SENT_WANTS < MAX_PEER_WANTS
    # a have answers a want: that frees room at the peer for one that found none
    wants.haves_received("a", {d(0): 5})
    (more,) = wants.take_message("a") or {}
    assert more not in sent and more.startswith("&")
    wants.want(d(99_999))  # no room for a new one now
    assert wants.take_message("a") is None
    # wants passed on for b's peers are fewer still
    c = core("c")
    c.peer_connected("b")
    c.wants_received("b", {d(n): 1 for n in range(MAX_PEER_WANTS)}, held={})
    passed: dict[str, int] = {}
    c.peer_connected("e")
    while (message := c.take_message("e")) is not None:
        passed.update(message)
    assert len(passed) == MAX_SENT_FORWARDED


def test_a_blob_is_never_fetched_from_the_peer_that_wants_it() -> None:
    wants = core("a", "b")
    wants.set_wanted({X: 1})
    wants.wants_received("a", {X: 1}, held={})
    assert wants.peers["b"].haves == {}
    wants.haves_received("b", {X: 10})
    assert wants.next_fetches() == [Fetch(X, "b", 10)]  # not from a, which wants it


def test_a_peer_that_wanted_a_blob_and_then_has_it_is_asked_for_it() -> None:
    """a wanted X too, fetched it elsewhere and says so: its want is over, and it is a
    source like any other (else two peers that wanted the same blob would wait on each
    other for ever)."""
    wants = core("a")
    wants.set_wanted({X: 1})
    wants.wants_received("a", {X: 1}, held={})
    wants.haves_received("a", {X: 10})
    assert X not in wants.peers["a"].wants
    assert wants.next_fetches() == [Fetch(X, "a", 10)]


def test_a_have_of_a_blob_only_its_sender_wanted_is_ignored() -> None:
    wants = core("a", "b")
    wants.wants_received("a", {X: 1}, held={})  # only a wants X; we pass it on to b
    wants.haves_received("a", {X: 10})  # ...and a says it has it after all
    assert wants.next_fetches() == []  # nobody wants it any more: nothing to fetch


# ---------------------------------------------------------------------------- fetching


def test_thumbnails_first_then_full_then_what_peers_want() -> None:
    wants = core("a", "b", "c")
    full, thumb, theirs = X, Y, Z
    wants.set_wanted({full: 1, thumb: 0})
    wants.wants_received("c", {theirs: 1}, held={})
    for peer in ("a", "b"):
        wants.haves_received(peer, {theirs: 10, full: 10, thumb: 10})
    assert blobs_of(wants.next_fetches()) == [thumb, full, theirs]


def test_the_user_s_own_ask_goes_before_the_rest() -> None:
    wants = core("a", "b", "c")
    wants.set_wanted({X: 1, Y: 0})
    wants.want(Z)  # priority -1
    for peer in ("a", "b", "c"):
        wants.haves_received(peer, {X: 1, Y: 1, Z: 1})
    assert blobs_of(wants.next_fetches()) == [Z, Y, X]


def test_at_most_max_fetches_at_once_in_priority_order() -> None:
    peers = [f"p{n}" for n in range(MAX_FETCHES + 2)]
    wants = core(*peers)
    blobs = [d(n) for n in range(1, MAX_FETCHES + 3)]
    wants.set_wanted({b: n for n, b in enumerate(blobs)})
    for peer in peers:
        wants.haves_received(peer, {b: 10 for b in blobs})
    started = wants.next_fetches()
    assert blobs_of(started) == blobs[:MAX_FETCHES]
    assert len({f.peer for f in started}) >= MAX_FETCHES // MAX_PEER_FETCHES
    assert wants.next_fetches() == []  # full
    wants.fetch_ended(started[0], ok=True)
    wants.held(started[0].blob, 10)
    assert blobs_of(wants.next_fetches()) == [blobs[MAX_FETCHES]]


def test_at_most_max_peer_fetches_from_one_peer() -> None:
    wants = core("a")
    blobs = [d(n) for n in range(1, MAX_PEER_FETCHES + 2)]
    wants.set_wanted(dict.fromkeys(blobs, 1))
    wants.haves_received("a", dict.fromkeys(blobs, 10))
    first = wants.next_fetches()
    assert blobs_of(first) == blobs[:MAX_PEER_FETCHES]
    assert {f.peer for f in first} == {"a"}
    assert wants.next_fetches() == []
    wants.peer_connected("b")
    wants.haves_received("b", {blobs[-1]: 10})
    assert wants.next_fetches() == [Fetch(blobs[-1], "b", 10)]  # another peer has room


def test_each_blob_from_one_peer_at_a_time() -> None:
    wants = core("a", "b")
    wants.set_wanted({X: 1})
    wants.haves_received("a", {X: 10})
    wants.haves_received("b", {X: 10})
    assert wants.next_fetches() == [Fetch(X, "a", 10)]
    assert wants.next_fetches() == []


def test_a_failed_fetch_goes_to_another_peer() -> None:
    wants = core("a", "b")
    wants.set_wanted({X: 1})
    wants.haves_received("a", {X: 10})
    wants.haves_received("b", {X: 10})
    [fetch] = wants.next_fetches()
    wants.fetch_ended(fetch, ok=False)
    assert wants.next_fetches() == [Fetch(X, "b", 10)]


def test_a_failed_fetch_is_not_retried_from_that_peer_while_connected() -> None:
    wants = core("a")
    wants.set_wanted({X: 1})
    wants.haves_received("a", {X: 10})
    [fetch] = wants.next_fetches()
    wants.fetch_ended(fetch, ok=False)
    assert wants.next_fetches() == []
    wants.haves_received("a", {X: 10})  # said again: still not asked
    assert wants.next_fetches() == []
    assert wants.peers["a"].fetching == 0
    wants.peer_disconnected("a")
    wants.peer_connected("a")  # a new connection: asked again
    wants.haves_received("a", {X: 10})
    assert wants.next_fetches() == [Fetch(X, "a", 10)]


def test_a_finished_fetch_frees_its_slot() -> None:
    wants = core("a")
    blobs = [d(n) for n in range(1, MAX_PEER_FETCHES + 2)]
    wants.set_wanted(dict.fromkeys(blobs, 1))
    wants.haves_received("a", dict.fromkeys(blobs, 10))
    first = wants.next_fetches()
    assert blobs_of(first) == blobs[:-1]
    wants.held(blobs[0], 10)  # the shell says held() (the stored blob's event), then fetch_ended
    wants.fetch_ended(first[0], ok=True)
    assert wants.peers["a"].fetching == MAX_PEER_FETCHES - 1
    assert wants.next_fetches() == [Fetch(blobs[-1], "a", 10)]


def test_never_a_blob_over_the_size_cap() -> None:
    wants = core("a", "b")
    wants.set_wanted({X: 1, Y: 1})
    wants.haves_received("a", {X: CAP + 1, Y: CAP})
    assert wants.next_fetches() == [Fetch(Y, "a", CAP)]
    wants.haves_received("b", {X: 5})  # b says it is small: fetched from b, as b said
    assert wants.next_fetches() == [Fetch(X, "b", 5)]


def test_held_tells_the_askers_and_stops_wanting() -> None:
    wants = core("a", "b", "c")
    wants.set_wanted({X: 1})
    wants.wants_received("a", {X: 1, Y: 1}, held={})
    wants.wants_received("b", {Y: 2}, held={})
    wants.haves_received("c", {X: 10, Y: 10})
    for peer in ("a", "b", "c"):
        drain(wants, peer)
    wants.held(X, 10)
    wants.held(Y, 20)
    assert drain(wants, "a") == {blob_id(X): 10, blob_id(Y): 20}
    assert drain(wants, "b") == {blob_id(Y): 20}
    assert drain(wants, "c") == {}
    assert wants.local == {}
    assert wants.peers["c"].haves == {}
    assert wants.next_fetches() == []
    assert wants.report() == {"wanted": 0, "fetching": 0, "wanted_by_peers": 0}


def test_a_disconnected_peer_leaves_nothing_behind() -> None:
    wants = core("a", "b")
    wants.set_wanted({X: 1, Y: 1})
    wants.wants_received("a", {Z: 1}, held={})
    wants.haves_received("a", {X: 10, Y: 10})
    wants.haves_received("b", {X: 10, Z: 10})
    assert wants.next_fetches() == [Fetch(X, "a", 10), Fetch(Y, "a", 10), Fetch(Z, "b", 10)]
    assert wants.report() == {"wanted": 2, "fetching": 3, "wanted_by_peers": 1}
    wants.peer_disconnected("a")
    assert "a" not in wants.peers
    assert wants.take_message("a") is None
    # a's downloads keep their slots until they end: no second download of X starts
    # while the first may still be writing its partial file
    assert wants.report() == {"wanted": 2, "fetching": 3, "wanted_by_peers": 0}
    assert wants.next_fetches() == []
    wants.fetch_ended(Fetch(X, "a", 10), ok=False)
    wants.fetch_ended(Fetch(Y, "a", 10), ok=False)
    # Z is still being fetched from b, though nobody wants it any more.
    assert wants.report() == {"wanted": 2, "fetching": 1, "wanted_by_peers": 0}
    assert wants.next_fetches() == [Fetch(X, "b", 10)]  # Y: nobody else has it
    wants.peer_disconnected("a")  # twice: nothing happens


def test_a_disconnection_forgets_the_peer_s_failures() -> None:
    wants = core("a", "b")
    wants.set_wanted({X: 1})
    wants.haves_received("a", {X: 10})
    [fetch] = wants.next_fetches()
    wants.fetch_ended(fetch, ok=False)
    assert wants.failed == {X: {"a"}}
    wants.peer_disconnected("a")
    assert not wants.failed.get(X)


def test_a_fetch_ending_after_its_peer_left_leaves_no_trace() -> None:
    wants = core("a")
    wants.set_wanted({X: 1})
    wants.haves_received("a", {X: 10})
    [fetch] = wants.next_fetches()
    wants.peer_disconnected("a")
    wants.fetch_ended(fetch, ok=False)
    assert "a" not in wants.failed.get(X, set())


def test_another_peer_takes_over_once_the_cut_download_has_ended() -> None:
    wants = core("a", "b")
    wants.set_wanted({X: 1})
    wants.haves_received("a", {X: 10})
    wants.haves_received("b", {X: 10})
    [old] = wants.next_fetches()
    wants.peer_disconnected("a")
    assert wants.next_fetches() == []  # the old download still holds the blob's slot
    wants.fetch_ended(old, ok=False)
    [new] = wants.next_fetches()
    assert new == Fetch(X, "b", 10)
    assert wants.fetching == {X: "b"}
    assert wants.peers["b"].fetching == 1


def test_dropped_forgets_failures() -> None:
    wants = core("a")
    wants.set_wanted({X: 1})
    wants.haves_received("a", {X: 10})
    [fetch] = wants.next_fetches()
    wants.fetch_ended(fetch, ok=False)
    wants.dropped(X)
    assert wants.failed == {}
    wants.haves_received("a", {X: 10})
    assert wants.next_fetches() == [Fetch(X, "a", 10)]
