"""#12, names people can read: the ``about`` content type's rules and display names."""

from __future__ import annotations

from typing import Any

import pytest

from p2psocial.errors import UnpublishableContent
from p2psocial.identity import blob_id
from p2psocial.msgtypes.about import about_content, parse_about
from p2psocial.msgtypes.names import NameData, display_name, display_names, short_key
from p2psocial.msgtypes.registry import check_publish, describe, links_of
from tests.helpers import make_keys

ME = make_keys(1)
BOB = make_keys(2).public
CAROL = make_keys(3).public
DAVE = make_keys(4).public
AVATAR = blob_id(b"\x01" * 32)


# ----------------------------------------------------------------------------- content type


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Alice"},
        {"name": "A"},
        {"name": "x" * 64},
        {"name": "Zoë 山田"},
        {"name": "family \U0001f469\u200d\U0001f467"},  # an emoji ZWJ sequence
        {"bio": ""},
        {"bio": "line one\nline two"},
        {"bio": "b" * 1000},
        {"avatar": AVATAR},
        {"name": "Alice", "bio": "hi", "avatar": AVATAR},
    ],
)
def test_valid_about_is_publishable(fields: dict[str, Any]) -> None:
    check_publish({"type": "about", "about": ME.feed_id, **fields}, ME.public)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"name": ""}, "1 to 64"),
        ({"name": "x" * 65}, "1 to 64"),
        ({"name": "   "}, "only spaces"),
        ({"name": "a\x1b[2Jb"}, "control"),
        ({"name": "a\nb"}, "control"),
        ({"name": "evil\u202egnp"}, "control"),  # a bidi override (format character)
        ({"name": "in\u200bvisible"}, "control"),  # zero-width space
        ({"name": "two\u2028lines"}, "control"),  # line separator
        ({"name": "lone \ud800"}, "control"),  # a lone surrogate
        ({"name": 7}, "text"),
        ({"bio": "b" * 1001}, "1000"),
        ({"bio": ["no"]}, "text"),
        ({"avatar": "&nope.sha256"}, "blob id"),
        ({"avatar": "%" + AVATAR[1:]}, "blob id"),
        ({"avatar": 1}, "blob id"),
        ({}, "needs a 'name', 'bio' or 'avatar'"),
    ],
)
def test_invalid_about_is_refused(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(UnpublishableContent, match=words):
        check_publish({"type": "about", "about": ME.feed_id, **fields}, ME.public)


@pytest.mark.parametrize("about", [None, "bob", "@short.ed25519", 5])
def test_about_must_name_a_feed(about: object) -> None:
    content: dict[str, Any] = {"type": "about", "name": "x"}
    if about is not None:
        content["about"] = about
    with pytest.raises(UnpublishableContent, match="feed id"):
        check_publish(content, ME.public)


def test_our_about_must_be_about_ourselves() -> None:
    content = about_content(make_keys(2).feed_id, name="Bob")
    with pytest.raises(UnpublishableContent, match="your own feed id"):
        check_publish(content, ME.public)
    check_publish(content, BOB)  # Bob may say it of himself


def test_received_malformed_fields_are_skipped_not_fatal() -> None:
    value = {"type": "about", "about": ME.feed_id, "name": "a\x1bb", "bio": "ok", "avatar": 3}
    parsed = parse_about(value)
    assert parsed is not None
    assert (parsed.about, parsed.name, parsed.bio, parsed.avatar) == (ME.public, None, "ok", None)
    assert parse_about({"type": "about", "about": "nobody", "name": "x"}) is None
    assert parse_about({"type": "post", "about": ME.feed_id}) is None


def test_about_reads_and_links() -> None:
    value = about_content(ME.feed_id, name="Alice", avatar=AVATAR)
    text = describe(value)
    assert text is not None and "Alice" in text and AVATAR in text
    assert links_of(value) == []


# ----------------------------------------------------------------------------- display names


def test_no_name_known_is_a_short_key() -> None:
    shown = display_name(BOB, NameData())
    assert shown == short_key(BOB) and shown.startswith("@") and shown.endswith("…")
    assert len(shown) == 1 + 8 + 1


def test_petname_beats_self_name_beats_others_names() -> None:
    others = {BOB: {CAROL: "Bobby"}}
    followed = frozenset({CAROL})
    assert display_name(BOB, NameData(others=others, followed=followed)) == "Bobby"
    data = NameData(self_names={BOB: "Bob"}, others=others, followed=followed)
    assert display_name(BOB, data) == "Bob"
    data = NameData(
        petnames={BOB: "my brother"}, self_names={BOB: "Bob"}, others=others, followed=followed
    )
    assert display_name(BOB, data) == "my brother"


def test_the_name_most_people_you_follow_use() -> None:
    others = {BOB: {CAROL: "Robert", DAVE: "Bobby", ME.public: "Rob"}}
    everyone = frozenset({CAROL, DAVE, ME.public})
    # Only names by feeds we follow count; here each is used once: the tie is broken by
    # code-point order, never by the order of the data.
    assert display_name(BOB, NameData(others=others, followed=everyone)) == "Bobby"
    others[BOB][make_keys(5).public] = "Robert"
    more = everyone | {make_keys(5).public}
    assert display_name(BOB, NameData(others=others, followed=more)) == "Robert"
    # A name given by someone we do not follow does not count.
    assert display_name(BOB, NameData(others=others, followed=frozenset())) == short_key(BOB)
    assert display_name(BOB, NameData(others=others, followed=frozenset({DAVE}))) == "Bobby"


def test_two_feeds_shown_the_same_name_are_told_apart() -> None:
    data = NameData(self_names={BOB: "Alice", CAROL: "alice", DAVE: "Dave"})
    shown = display_names([BOB, DAVE], data)  # CAROL is known even when not asked for
    assert shown[BOB] == f"Alice ({short_key(BOB)})"
    assert shown[DAVE] == "Dave"
    assert display_name(CAROL, data) == f"alice ({short_key(CAROL)})"
    # A petname taking another's name is told apart too; a petname of its own is not.
    data = NameData(petnames={CAROL: "Dave"}, self_names={BOB: "Bob", DAVE: "Dave"})
    assert display_names([CAROL, DAVE], data) == {
        CAROL: f"Dave ({short_key(CAROL)})",
        DAVE: f"Dave ({short_key(DAVE)})",
    }
    data = NameData(petnames={CAROL: "Carol"}, self_names={CAROL: "Dave", DAVE: "Dave"})
    assert display_names([CAROL, DAVE], data) == {CAROL: "Carol", DAVE: "Dave"}
