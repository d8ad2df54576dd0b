"""``edit``, ``repost`` and the new ``post`` fields: the rules our own content keeps, and
how a peer's content is read (a malformed one is not used, never refused)."""

from __future__ import annotations

import hashlib

import pytest

from p2psocial.errors import InvalidId, UnpublishableContent
from p2psocial.identity import message_id
from p2psocial.msgtypes.edit import edit_content, parse_edit
from p2psocial.msgtypes.post import channel_name, channels, content_warning, post_content
from p2psocial.msgtypes.registry import check_publish, describe, links_of
from p2psocial.msgtypes.repost import embedded, parse_repost, repost_content
from tests.helpers import make_keys, signed_feed

MSG = message_id(b"\x01" * 32)
A = make_keys(1)


def _original() -> tuple[str, bytes, bytes]:
    raw, content = signed_feed(A, [{"type": "post", "text": "the original"}])[0]
    return message_id(hashlib.sha256(raw).digest()), raw, content


def test_edit_rules() -> None:
    content = edit_content(MSG, "better words")
    assert content == {"type": "edit", "edit": MSG, "text": "better words"}
    check_publish(content)
    assert parse_edit(content) == (b"\x01" * 32, "better words")
    assert describe(content) == f"edited {MSG}"
    with pytest.raises(InvalidId):
        edit_content("%nope", "x")
    for bad, why in (
        ({"type": "edit", "text": "x"}, "'edit' must be"),
        ({"type": "edit", "edit": "@x", "text": "x"}, "'edit' must be"),
        ({"type": "edit", "edit": MSG}, "new 'text'"),
        ({"type": "edit", "edit": MSG, "text": "  "}, "new 'text'"),
        ({"type": "edit", "edit": MSG, "text": 5}, "new 'text'"),
        ({"type": "edit", "edit": MSG, "text": "x" * 8001}, "at most"),
    ):
        with pytest.raises(UnpublishableContent, match=why):
            check_publish(bad)
        assert parse_edit(bad) is None or bad.get("text") == "x" * 8001


def test_repost_carries_a_verifiable_original() -> None:
    target, raw, content = _original()
    shared = repost_content(target, comment="look", original=(raw, content))
    check_publish(shared)
    assert parse_repost(shared) == (hashlib.sha256(raw).digest(), "look")
    carried = embedded(shared)
    assert carried is not None and carried.value["text"] == "the original"
    assert carried.author == A.public and carried.seq == 1
    assert links_of(shared) == [(hashlib.sha256(raw).digest(), "repost")]
    assert describe(shared) == f"look\n(reposted {target})"


def test_a_forged_or_mismatched_original_is_not_used() -> None:
    target, raw, content = _original()
    other = signed_feed(A, [{"type": "post", "text": "something else"}])[0]
    forged_content = content.replace(b"original", b"0riginal")
    bad_signature = raw[:-1] + bytes([raw[-1] ^ 1])
    for entry, body in (
        (raw, forged_content),  # content not what the entry signs
        (bad_signature, content),  # signature broken
        (other[0], other[1]),  # a valid entry, but not the one named
        (raw, b"\x00"),
        ("text", content),
    ):
        value = {"type": "repost", "repost": target, "entry": entry, "content": body}
        assert embedded(value) is None
        with pytest.raises(UnpublishableContent, match="exactly as stored"):
            check_publish(value)
    # the reference alone is a valid repost, shown once the original is held
    assert embedded({"type": "repost", "repost": target}) is None
    check_publish({"type": "repost", "repost": target})


def test_a_repost_too_large_to_carry_is_the_reference_alone() -> None:
    raw, content = signed_feed(A, [{"type": "post", "text": "y" * 7000}])[0]
    target = message_id(hashlib.sha256(raw).digest())
    assert repost_content(target, comment="x" * 1000, original=(raw, content)) == {
        "type": "repost",
        "repost": target,
        "comment": "x" * 1000,
    }


def test_repost_rules() -> None:
    for bad, why in (
        ({"type": "repost"}, "'repost' must be"),
        ({"type": "repost", "repost": "%short"}, "'repost' must be"),
        ({"type": "repost", "repost": MSG, "comment": ""}, "'comment'"),
        ({"type": "repost", "repost": MSG, "comment": 7}, "'comment'"),
        ({"type": "repost", "repost": MSG, "comment": "c" * 4001}, "'comment'"),
    ):
        with pytest.raises(UnpublishableContent, match=why):
            check_publish(bad)


def test_post_channel_cw_and_mentions() -> None:
    feed = A.feed_id
    content = post_content("hi #Python", mentions=[feed, MSG], channel="News", cw="spoilers")
    check_publish(content)
    assert channels(content) == ["news", "python"]
    assert content_warning(content) == "spoilers"
    assert (b"\x01" * 32, "mention") in links_of(content)
    assert (A.public, "mention") in links_of(content)
    assert channel_name("#\uff23af\u00e9") == "café"  # NFKC (full-width C) and case folded
    assert channel_name("") is None and channel_name("a b") is None and channel_name(5) is None
    assert channels({"type": "post", "text": "a#b &#12; x/#y #ok #ok"}) == ["ok"]
    for bad, why in (
        ({"type": "post", "text": "x", "channel": "two words"}, "'channel'"),
        ({"type": "post", "text": "x", "channel": "x" * 65}, "'channel'"),
        ({"type": "post", "text": "x", "cw": ""}, "'cw'"),
        ({"type": "post", "text": "x", "cw": "w" * 201}, "'cw'"),
        ({"type": "post", "text": "x", "mentions": ["bob"]}, "'mentions'"),
        ({"type": "post", "text": "x", "mentions": "@x"}, "'mentions'"),
        ({"type": "post", "text": "x", "mentions": [feed] * 101}, "'mentions'"),
        ({"type": "post", "text": " "}, "some text"),
    ):
        with pytest.raises(UnpublishableContent, match=why):
            check_publish(bad)
