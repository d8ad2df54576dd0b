"""The sans-IO replication core: notes in, decisions out. No sockets, no clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2psocial.errors import RemoteProtocolError
from p2psocial.proto.replication import (
    FORKED,
    MAX_BATCH_ENTRIES,
    NOT_REPLICATING,
    Replicator,
    cut_off_reason,
    keep_new_connection,
    make_note,
    parse_batch,
    parse_message,
    parse_note,
)

F = b"\x01" * 32
G = b"\x02" * 32


@given(st.integers(min_value=0, max_value=2**62 - 1), st.booleans())
def test_note_round_trip(seq: int, send: bool) -> None:
    assert parse_note(make_note(seq, send)) == (seq, send)


@pytest.mark.parametrize("value", [-3, 2**63, "5", 1.0, None, True])
def test_bad_notes_are_protocol_errors(value: object) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_note(value)


def test_special_notes() -> None:
    assert parse_note(NOT_REPLICATING) is None
    assert parse_note(FORKED) is None


def test_first_peer_is_asked_to_send_others_stand_by() -> None:
    r = Replicator({F: 3}, [F])
    r.peer_connected("p1", now=0)
    r.peer_connected("p2", now=0)
    assert r.take_notes("p1") == {F: make_note(3, send=True)}
    assert r.take_notes("p2") == {F: make_note(3, send=False)}
    assert r.take_notes("p1") == {}  # drained
    assert r.sender[F] == "p1"


def test_peer_wants_what_we_hold_beyond_its_seq() -> None:
    r = Replicator({F: 10}, [F])
    r.peer_connected("p", now=0)
    r.notes_received("p", {F: make_note(4, send=True)}, now=0)
    assert r.to_send("p") == {F: 4}
    r.sent("p", F, 10)
    assert r.to_send("p") == {}
    r.entries_stored(F, 11, now=1)  # live: a new entry is owed at once
    assert r.to_send("p") == {F: 10}


def test_standby_note_withdraws_the_want() -> None:
    r = Replicator({F: 10}, [F])
    r.peer_connected("p", now=0)
    r.notes_received("p", {F: make_note(4, send=True)}, now=0)
    r.notes_received("p", {F: make_note(4, send=False)}, now=0)
    assert r.to_send("p") == {}


def test_stalled_sender_is_replaced_by_one_that_has_more() -> None:
    r = Replicator({F: 0}, [F], stall_ms=1000)
    r.peer_connected("slow", now=0)
    r.peer_connected("fast", now=0)
    r.take_notes("slow")
    r.take_notes("fast")
    r.notes_received("slow", {F: make_note(50, send=False)}, now=0)
    r.notes_received("fast", {F: make_note(50, send=False)}, now=0)
    r.tick(now=500)
    assert r.sender[F] == "slow"
    r.tick(now=1500)  # nothing arrived from "slow" for longer than stall_ms
    assert r.sender[F] == "fast"
    assert r.take_notes("slow") == {F: make_note(0, send=False)}
    assert r.take_notes("fast") == {F: make_note(0, send=True)}


def test_progress_keeps_the_sender() -> None:
    r = Replicator({F: 0}, [F], stall_ms=1000)
    r.peer_connected("a", now=0)
    r.peer_connected("b", now=0)
    # a says first that it has more (a sender that has said nothing yet would give the
    # feed up to b at once: see test_a_sender_that_said_nothing_yields_to_a_claim)
    r.notes_received("a", {F: make_note(50, send=False)}, now=0)
    r.notes_received("b", {F: make_note(50, send=False)}, now=0)
    r.entries_stored(F, 10, now=900)
    r.tick(now=1500)
    assert r.sender[F] == "a"


def test_disconnect_hands_feeds_to_another_peer() -> None:
    r = Replicator({F: 2}, [F])
    r.peer_connected("a", now=0)
    r.peer_connected("b", now=0)
    r.take_notes("b")
    r.notes_received("b", {F: make_note(9, send=False)}, now=0)
    r.peer_disconnected("a", now=5)
    assert r.sender[F] == "b"
    assert r.take_notes("b") == {F: make_note(2, send=True)}


def test_feed_only_one_peer_has_gets_designated() -> None:
    r = Replicator({}, [F, G])
    r.peer_connected("a", now=0)  # sender of both, by default
    r.peer_connected("b", now=0)
    r.notes_received("a", {F: make_note(0, send=False)}, now=0)
    r.set_wanted([F, G], now=0)
    r.peer_disconnected("a", now=1)
    r.notes_received("b", {G: make_note(7, send=False)}, now=1)
    assert r.sender[G] == "b"


def test_forked_feed_is_announced_and_never_sent() -> None:
    r = Replicator({F: 5}, [F])
    r.peer_connected("p", now=0)
    r.take_notes("p")
    r.notes_received("p", {F: make_note(1, send=True)}, now=0)
    assert r.to_send("p") == {F: 1}
    r.feed_forked(F)
    assert r.take_notes("p") == {F: FORKED}
    assert r.to_send("p") == {}
    assert F not in r.sender


def test_unwanted_feed_is_withdrawn() -> None:
    r = Replicator({F: 1, G: 1}, [F, G])
    r.peer_connected("p", now=0)
    r.take_notes("p")
    r.set_wanted([F], now=1)
    assert r.take_notes("p") == {G: NOT_REPLICATING}


def test_notes_for_malformed_keys_are_errors() -> None:
    r = Replicator({}, [])
    r.peer_connected("p", now=0)
    with pytest.raises(RemoteProtocolError):
        r.notes_received("p", {b"short": 0}, now=0)


@given(st.dictionaries(st.binary(max_size=40), st.integers(-5, 2**64) | st.text(max_size=3)))
def test_any_notes_raise_only_protocol_errors(notes: dict[bytes, object]) -> None:
    r = Replicator({F: 3}, [F])
    r.peer_connected("p", now=0)
    try:
        r.notes_received("p", notes, now=0)
    except RemoteProtocolError:
        pass
    r.tick(now=10)
    r.to_send("p")


# ---------------------------------------------------------------------------- messages


def test_parse_message_splits_clock_and_entries() -> None:
    assert parse_message({"clock": {F: 2}}) == ({F: 2}, None)
    assert parse_message({"entries": [[b"e", None], [b"f", b"c"]]}) == (
        None,
        [(b"e", None), (b"f", b"c")],
    )
    assert parse_message({}) == (None, None)


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        ([1, 2], "must be a map"),
        ({"clock": [1]}, "clock must be a map"),
        ({"entries": {"a": 1}}, "entries must be a list"),
        ({"entries": [[b"e"]]}, "pair"),
        ({"entries": [["text", None]]}, "entry must be bytes"),
        ({"entries": [[b"x" * 513, None]]}, "entry must be bytes of at most 512"),
        ({"entries": [[b"e", "text"]]}, "content must be nil or bytes"),
        ({"entries": [[b"e", b"x" * 8193]]}, "at most 8192"),
        ({"entries": [[b"e", None]] * (MAX_BATCH_ENTRIES + 1)}, "at most 10000"),
    ],
)
def test_malformed_messages_are_protocol_errors(message: object, needle: str) -> None:
    with pytest.raises(RemoteProtocolError, match=needle):
        parse_message(message)


@given(st.recursive(st.none() | st.binary(max_size=40) | st.integers(), st.lists, max_leaves=20))
def test_any_batch_value_is_parsed_or_refused_with_our_error(value: object) -> None:
    try:
        items = parse_batch(value)
    except RemoteProtocolError:
        return
    assert all(type(raw) is bytes for raw, _ in items)


def test_duplicate_connections_keep_the_one_dialled_by_the_smaller_key() -> None:
    small, big = b"\x01" * 32, b"\x02" * 32
    # Both sides decide the same: the connection small dialled survives.
    assert keep_new_connection(small, new_dialler=small, existing_dialler=big)
    assert not keep_new_connection(big, new_dialler=big, existing_dialler=small)
    assert not keep_new_connection(small, new_dialler=small, existing_dialler=small)


def test_cut_off_reasons() -> None:
    assert cut_off_reason({}, 0) is None
    assert cut_off_reason({"@x": "bad signature"}, 0) == "@x: bad signature"
    assert cut_off_reason({}, 1) == "sent a forked feed's entry"
    both = cut_off_reason({"@x": "gap", "@y": "bad"}, 2)
    assert both == "@x: gap; @y: bad; sent a forked feed's entry"


def test_reports() -> None:
    r = Replicator({F: 3, G: 1}, [F, G])
    r.peer_connected("p1", now=0)
    r.notes_received("p1", {F: make_note(10, False), G: make_note(1, True)}, now=0)
    assert r.peer_progress("p1") == {
        "feeds_from_peer": 2,
        "entries_to_receive": 7,
        "wants_from_us": 1,
    }
    assert r.progress() == {"feeds_wanted": 2, "feeds_held": 2, "entries_behind": 7}
    assert r.peer_progress("gone") == {
        "feeds_from_peer": 0,
        "entries_to_receive": 0,
        "wants_from_us": 0,
    }


# ---------------------------------------------------------------------------- trust


def test_claims_far_beyond_anything_held_are_not_trusted() -> None:
    r = Replicator({F: 10}, [F], stall_ms=1000)
    for liar in ("liar1", "liar2"):
        r.peer_connected(liar, now=0)
        r.notes_received(liar, {F: make_note(2**40, send=False)}, now=0)
    r.peer_connected("honest", now=0)
    r.notes_received("honest", {F: make_note(20, send=False)}, now=0)
    r.peer_disconnected("liar1", now=1)  # liar1 was asked first (first connected)
    assert r.sender[F] == "honest"  # not liar2, for all its 2**40
    assert r.progress()["entries_behind"] == 10  # the lie counts for nothing
    r.entries_stored(F, 20, now=4000)  # honest delivers
    r.tick(now=5000)  # caught up; the liar's claim is still no reason to move
    assert r.sender[F] == "honest"


def test_the_author_wins_its_own_feed() -> None:
    r = Replicator({F: 5}, [F, G])
    r.peer_connected("relay", now=0, key=G)
    r.notes_received("relay", {F: make_note(9, send=False)}, now=0)
    assert r.sender[F] == "relay"
    r.peer_connected("author", now=1, key=F)
    assert r.sender[F] == "author"
    r.take_notes("relay")
    # A caught-up author is never replaced because someone else claims more.
    r.notes_received("relay", {F: make_note(7, send=False)}, now=2)
    r.entries_stored(F, 9, now=2)
    r.peer_connected("liar", now=3, key=b"\x09" * 32)
    r.notes_received("liar", {F: make_note(50, send=False)}, now=3)
    r.tick(now=60_000)
    assert r.sender[F] == "author"


def test_a_sender_that_does_not_deliver_is_replaced_and_penalised() -> None:
    r = Replicator({F: 10}, [F], stall_ms=1000)
    r.peer_connected("honest", now=0, key=G)
    r.take_notes("honest")
    r.notes_received("honest", {F: make_note(10, send=False)}, now=0)  # caught up
    r.peer_connected("liar", now=0, key=b"\x09" * 32)
    r.notes_received("liar", {F: make_note(15, send=False)}, now=0)  # credible, a lie
    assert r.sender[F] == "liar"  # honest is caught up: the one claiming more gets a chance
    r.tick(now=1000)  # liar delivered nothing within the stall: penalised, the feed goes back
    assert r.sender[F] == "honest"
    r.tick(now=3000)
    assert r.sender[F] == "honest"  # passed over while penalised
    # Reconnecting does not clear the penalty: it sticks to the key.
    r.peer_disconnected("liar", now=3000)
    r.peer_connected("liar again", now=3000, key=b"\x09" * 32)
    r.notes_received("liar again", {F: make_note(15, send=False)}, now=3000)
    r.tick(now=5000)
    assert r.sender[F] == "honest"


def test_entries_below_the_note_we_gave_are_a_replay() -> None:
    r = Replicator({F: 10}, [F])
    r.peer_connected("p", now=0)
    assert r.take_notes("p") == {F: make_note(10, send=True)}
    assert r.below_floor("p", F, 10) and r.below_floor("p", F, 1)
    assert not r.below_floor("p", F, 11)
    assert not r.below_floor("p", G, 1)  # no note given for G: nothing to say
    r.entries_stored(F, 30, now=1)
    assert not r.below_floor("p", F, 11)  # the floor is the first note, not our progress


def test_a_feed_missing_content_is_noted_from_before_the_gap() -> None:
    r = Replicator({F: 10}, [F])
    r.content_missing(F, 4)
    r.peer_connected("p", now=0)
    assert r.take_notes("p") == {F: make_note(3, send=True)}  # send again from 4
    assert not r.below_floor("p", F, 4)  # so its copies of 4.. are welcome
    r.content_missing(F, None)
    r.tick(now=10_000)
    r.peer_connected("q", now=10_000)
    assert r.take_notes("q") == {F: make_note(10, send=False)}


def test_a_sender_that_said_nothing_yields_to_a_claim() -> None:
    r = Replicator({F: 0}, [F])
    for liar in ("liar1", "liar2"):
        r.peer_connected(liar, now=0)  # liar1, first, is asked before anyone has spoken
    r.notes_received("liar1", {F: make_note(2**40, send=False)}, now=0)
    r.notes_received("liar2", {F: make_note(2**40, send=False)}, now=0)
    r.peer_connected("honest", now=1)
    r.notes_received("honest", {F: make_note(20, send=False)}, now=1)
    assert r.sender[F] == "honest"  # at once: liar1's claim is not credible
    r.notes_received("liar2", {F: make_note(30, send=False)}, now=2)
    assert r.sender[F] == "honest"  # a credible sender with more keeps the feed
