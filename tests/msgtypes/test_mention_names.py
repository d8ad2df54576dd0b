"""#12: mentions by name, resolved among the names known at compose time (no I/O)."""

from __future__ import annotations

import pytest

from p2psocial.msgtypes.names import (
    MAX_CANDIDATES,
    NameData,
    Unresolved,
    mention_tokens,
    names_known,
    resolve_mentions,
    resolve_name,
    unresolved_message,
)
from tests.helpers import make_keys

ME, ALICE, ALICE2, BOB, CAROL, DAVE = (make_keys(n) for n in range(41, 47))


def data(**kw: object) -> NameData:
    return NameData(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("hi @alice", ["alice"]),
        ("@alice, @bob. and @alice again", ["alice", "bob"]),
        ("(@Anne-Marie) @bob.smith! @ann's", ["Anne-Marie", "bob.smith", "ann"]),
        ("mail me at me@example.org or @@x", []),
        ("@ alone, @", []),
        ("ça va @Zoë? @日本 @नमस्ते", ["Zoë", "日本", "नमस्ते"]),
        (f"cc {ALICE.feed_id} and @bob", ["bob"]),
    ],
)
def test_mention_tokens(text: str, tokens: list[str]) -> None:
    assert mention_tokens(text) == tokens


def test_a_unique_name_resolves_whatever_rule_gave_it() -> None:
    names = data(
        petnames={CAROL.public: "Cee"},
        self_names={ALICE.public: "Alice"},
        others={BOB.public: {DAVE.public: "Bobby"}},
        followed=frozenset({DAVE.public}),
    )
    found = resolve_mentions("hi @cee, @ALICE and @bobby", names)
    assert found.feeds == [CAROL.public, ALICE.public, BOB.public]  # in the text's order
    assert found.unresolved == []


def test_names_are_folded_by_case_and_width() -> None:
    names = data(self_names={ALICE.public: "Ålice"})
    assert resolve_mentions("@ÅLICE", names).feeds == [ALICE.public]
    fullwidth_a_and_ring = "@\uff21\u030alice"
    assert resolve_mentions(fullwidth_a_and_ring, names).feeds == [ALICE.public]


def test_only_names_by_people_we_follow_count() -> None:
    names = data(others={BOB.public: {DAVE.public: "Bobby"}})  # Dave is not followed
    [unknown] = resolve_mentions("@bobby", names).unresolved
    assert unknown == Unresolved("bobby", False, ())


def test_the_chosen_name_and_the_petname_match_not_a_name_hidden_behind_a_petname() -> None:
    names = data(petnames={ALICE.public: "sis"}, self_names={ALICE.public: "Alice"})
    assert resolve_mentions("@sis", names).feeds == [ALICE.public]
    [unknown] = resolve_mentions("@alice", names).unresolved
    assert not unknown.ambiguous


def test_a_name_two_feeds_are_shown_by_is_ambiguous() -> None:
    names = data(self_names={ALICE.public: "Alice", ALICE2.public: "alice", BOB.public: "Bob"})
    found = resolve_mentions("@Alice and @bob", names)
    assert found.feeds == [BOB.public]
    assert found.unresolved == [
        Unresolved("Alice", True, tuple(sorted([ALICE.public, ALICE2.public])))
    ]
    # A petname that tells one apart resolves; the other stays ambiguous by its own name
    # only if another feed still shows it.
    named = data(
        petnames={ALICE2.public: "work alice"},
        self_names={ALICE.public: "Alice", ALICE2.public: "alice"},
    )
    assert resolve_mentions("@alice", named).feeds == [ALICE.public]


def test_an_unknown_name_lists_close_names() -> None:
    names = data(self_names={ALICE.public: "Alice", BOB.public: "Bob", CAROL.public: "Carol"})
    known = names_known(names)
    assert resolve_name("ali", known) == Unresolved("ali", False, (ALICE.public,))  # a prefix
    assert resolve_name("Alicia", known) == Unresolved("Alicia", False, (ALICE.public,))
    assert resolve_name("Caroll", known) == Unresolved("Caroll", False, (CAROL.public,))
    assert resolve_name("zed", known) == Unresolved("zed", False, ())


def test_candidates_are_bounded() -> None:
    many = {make_keys(100 + n).public: "Sam" for n in range(MAX_CANDIDATES + 5)}
    [item] = resolve_mentions("@sam", data(self_names=many)).unresolved
    assert item.ambiguous and len(item.candidates) == MAX_CANDIDATES


def test_full_feed_ids_in_the_text_are_mentions_too() -> None:
    names = data(self_names={BOB.public: "Bob"})
    text = f"{ALICE.feed_id} meet @bob, and {ALICE.feed_id} again"
    assert resolve_mentions(text, names).feeds == [ALICE.public, BOB.public]
    assert resolve_mentions("no mentions", names).feeds == []


def test_the_message_lists_each_problem_and_its_candidates() -> None:
    problems = [
        Unresolved("alice", True, (ALICE.public, ALICE2.public)),
        Unresolved("ali", False, (ALICE.public,)),
        Unresolved("zed", False, ()),
    ]
    shown = {ALICE.public: "Alice (@aaaa…)", ALICE2.public: "alice (@bbbb…)"}
    message = unresolved_message(problems, shown)
    assert message == (
        f"@alice is ambiguous: it could be Alice (@aaaa…) {ALICE.feed_id}, "
        f"alice (@bbbb…) {ALICE2.feed_id}; "
        f"@ali names no one you know (close: Alice (@aaaa…) {ALICE.feed_id}); "
        "@zed names no one you know; write the feed id instead (@...ed25519)"
    )
