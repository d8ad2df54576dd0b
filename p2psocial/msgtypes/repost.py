"""``repost``: shares a message with one's followers, optionally with a comment.

``{"type": "repost", "repost": %MSG, "comment": TEXT?, "entry": BYTES?, "content": BYTES?}``:
``repost`` is the message shared; ``entry`` and ``content`` are its signed entry and its
content bytes exactly as stored, carried when they fit the content limit, so a follower who
does not replicate the original author can still verify it (the entry's id is the
``repost`` id, its signature verifies, the content's hash is the one the entry signs) and
show it. Without them (too large, or not held when reposted) a repost is the reference
alone, shown once the original is held. Only public content is reposted; a repost with a
``comment`` is a quote-repost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from p2psocial.errors import InvalidEntry, UnpublishableContent
from p2psocial.feed.content import MAX_CONTENT_SIZE, decode_content, encode_content
from p2psocial.feed.entry import check_content
from p2psocial.feed.formats import decode_entry, raw_signature_ok
from p2psocial.identity import message_id, parse_message_id
from p2psocial.msgtypes.base import ContentType, Link, Value, message_field

MAX_COMMENT = 4000
REPOST = "repost"
"""The relation of a repost in the ``links`` view (repost message -> the original)."""


@dataclass(frozen=True, slots=True)
class Embedded:
    """A reposted message carried inside the repost, verified."""

    raw: bytes
    content: bytes
    value: dict[str, Any]
    author: bytes
    seq: int
    timestamp: int


def repost_content(
    target: str,
    *,
    comment: str | None = None,
    original: tuple[bytes, bytes] | None = None,
) -> dict[str, Any]:
    """The content sharing message ``target``; ``original``: its (entry, content) bytes,
    embedded when the whole repost still fits the content limit. Raises InvalidId,
    UnpublishableContent (a bad comment)."""
    parse_message_id(target)
    content: dict[str, Any] = {"type": "repost", "repost": target}
    if comment is not None:
        content["comment"] = comment
    _check(content)
    if original is not None:
        embedded = {**content, "entry": original[0], "content": original[1]}
        try:
            encode_content(embedded)
        except UnpublishableContent:  # too large: the reference alone
            return content
        return embedded
    return content


def parse_repost(value: Value) -> tuple[bytes, str | None] | None:
    """(the message shared, the comment); None if the content is not a usable repost."""
    if value.get("type") != "repost":
        return None
    target = message_field(value, "repost")
    if target is None:
        return None
    comment = value.get("comment")
    return target, comment if type(comment) is str and comment.strip() else None


def embedded(value: Value) -> Embedded | None:
    """The reposted message carried in ``value``, if it carries one that verifies: the
    entry's id is the ``repost`` id, its signature is good, the content is what it signs
    and is public content. Anything else (absent, forged, damaged): None."""
    parsed = parse_repost(value)
    raw, content = value.get("entry"), value.get("content")
    if parsed is None or type(raw) is not bytes or type(content) is not bytes:
        return None
    if len(content) > MAX_CONTENT_SIZE:
        return None
    try:
        entry = decode_entry(raw)
        if entry.id != parsed[0] or not raw_signature_ok(raw):
            return None
        check_content(entry, content)
        decoded = decode_content(content)
    except InvalidEntry:
        return None
    if type(decoded) is not dict:
        return None
    return Embedded(raw, content, decoded, entry.author, entry.seq, entry.timestamp)


def _check(value: Value) -> None:
    if message_field(value, "repost") is None:
        raise UnpublishableContent("a repost's 'repost' must be a message id (%...sha256)")
    comment = value.get("comment")
    if comment is not None and (
        type(comment) is not str or not comment.strip() or len(comment) > MAX_COMMENT
    ):
        raise UnpublishableContent(
            f"a repost's 'comment' must be text of 1 to {MAX_COMMENT} characters"
        )
    if ("entry" in value or "content" in value) and embedded(value) is None:
        raise UnpublishableContent(
            "a repost's 'entry' and 'content' must be the reposted message's signed entry "
            "and its public content, exactly as stored"
        )


def _describe(value: Value) -> str | None:
    parsed = parse_repost(value)
    if parsed is None:
        return None
    target, comment = parsed
    shared = f"reposted {message_id(target)}"
    return f"{comment}\n({shared})" if comment else shared


def _links(value: Value) -> list[Link]:
    parsed = parse_repost(value)
    return [(parsed[0], REPOST)] if parsed is not None else []


TYPE = ContentType(
    "repost",
    check=_check,
    describe=_describe,
    links=_links,
    link_fields=frozenset({"repost"}),
)
