"""``post``: a public text post, possibly a reply in a thread, mentioning feeds and
messages, in a channel, behind a content warning.

``{"type": "post", "text": TEXT, "root": %ID?, "branch": %ID?, "mentions": [ID, ...]?,
"channel": NAME?, "cw": TEXT?}``: ``root`` is the thread's first message, ``branch`` the
message replied to (the root when not given). Mentions are feed ids (``@...``) or message
ids (``%...``), or ``{"link": ID}`` maps as Scuttlebutt writes them. ``channel`` names the
post's channel; every ``#tag`` in the text is indexed as a channel too (:func:`channels`).
``cw`` is a content warning: clients fold the text behind it until asked.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from p2psocial.errors import UnpublishableContent
from p2psocial.identity import parse_feed_id, parse_message_id
from p2psocial.msgtypes.base import (
    MENTION,
    ContentType,
    Link,
    Value,
    feed_field,
    message_field,
    reply_links,
    require_message_field,
)
from p2psocial.msgtypes.blobs import MAX_ATTACHMENTS, check_attachment, is_attachment

MAX_MENTIONS = 100
MAX_CHANNEL = 64
"""Most characters of a channel name."""
MAX_CW = 200
"""Most characters of a content warning."""
MAX_TAGS = 20
"""Most ``#tags`` of one post that are indexed as channels."""

_TAG = re.compile(r"(?:^|(?<=[^\w&/#]))#(\w[\w-]{0,63})", re.UNICODE)
"""A ``#tag`` in text: ``#`` after a start, space or punctuation (not ``a#b``, ``&#1;`` or a
URL's ``/#anchor``), then letters, digits, ``_`` or ``-``."""


def post_content(
    text: str,
    *,
    root: str | None = None,
    branch: str | None = None,
    mentions: list[str] | None = None,
    channel: str | None = None,
    cw: str | None = None,
) -> dict[str, Any]:
    """The content of a public post; ``root``/``branch`` make it a reply in a thread.
    Raises UnpublishableContent (empty text, a bad channel or warning) or InvalidId (a
    malformed id)."""
    if not text.strip():
        raise UnpublishableContent("a post needs some text")
    content: dict[str, Any] = {"type": "post", "text": text}
    if root is not None:
        parse_message_id(root)
        content["root"] = root
        content["branch"] = branch or root
        parse_message_id(content["branch"])
    if mentions is not None:
        for item in mentions:
            if item.startswith("%"):
                parse_message_id(item)
            else:
                parse_feed_id(item)
        content["mentions"] = mentions
    if channel is not None:
        content["channel"] = channel
    if cw is not None:
        content["cw"] = cw
    _check(content)
    return content


def channel_name(name: object) -> str | None:
    """The canonical form of a channel name (without ``#``, NFKC, case-folded), None if
    it is not one: 1 to 64 letters, digits, ``_`` or ``-``, starting with a letter or
    digit."""
    if type(name) is not str:
        return None
    name = unicodedata.normalize("NFKC", name.removeprefix("#")).casefold()
    if not 1 <= len(name) <= MAX_CHANNEL or not re.fullmatch(r"\w[\w-]*", name):
        return None
    return name


def channels(value: Value) -> list[str]:
    """The channels a post is in: its ``channel`` field and the ``#tags`` of its text,
    canonical, each once, the field first."""
    found: list[str] = []
    named = channel_name(value.get("channel"))
    if named is not None:
        found.append(named)
    text = value.get("text")
    if type(text) is str and "#" in text:
        for match in _TAG.finditer(text):
            tag = channel_name(match.group(1))
            if tag is not None and tag not in found:
                found.append(tag)
            if len(found) > MAX_TAGS:
                break
    return found


def content_warning(value: Value) -> str | None:
    """A post's content warning, if it has a usable one."""
    cw = value.get("cw")
    return cw if type(cw) is str and cw.strip() else None


def _mention_items(value: Value) -> list[object]:
    listed = value.get("mentions")
    if not isinstance(listed, list):
        return []
    return [item.get("link") if isinstance(item, dict) else item for item in listed[:MAX_MENTIONS]]


def mentioned(value: Value) -> list[bytes]:
    """The feed keys a post's ``mentions`` list names (ids or ``{"link": id}``)."""
    keys = []
    for item in _mention_items(value):
        key = feed_field(item)
        if key is not None and key not in keys:
            keys.append(key)
    return keys


def mentioned_messages(value: Value) -> list[bytes]:
    """The message ids a post's ``mentions`` list names."""
    ids = []
    for item in _mention_items(value):
        msg = message_field({"m": item}, "m")
        if msg is not None and msg not in ids:
            ids.append(msg)
    return ids


def _check(value: Value) -> None:
    if not isinstance(value.get("text"), str):
        raise UnpublishableContent("a post's 'text' must be text")
    require_message_field(value, "root")
    require_message_field(value, "branch")
    if "branch" in value and "root" not in value:
        raise UnpublishableContent("a post with a 'branch' needs its thread's 'root'")
    if not value["text"].strip():
        raise UnpublishableContent("a post needs some text")
    listed = value.get("mentions")
    if listed is not None:
        if not isinstance(listed, list) or len(listed) > MAX_MENTIONS:
            raise UnpublishableContent(
                f"a post's 'mentions' must be a list of at most {MAX_MENTIONS} ids"
            )
        attached = 0
        for item in listed:
            if is_attachment(item):
                problem = check_attachment(item)
                if problem is not None:
                    raise UnpublishableContent(problem)
                if "key" in item:
                    raise UnpublishableContent(
                        "a public post's attachment must not carry a 'key': it would "
                        "publish what opens a private blob"
                    )
                attached += 1
                continue
            link = item.get("link") if isinstance(item, dict) else item
            if feed_field(link) is None and message_field({"m": link}, "m") is None:
                raise UnpublishableContent(
                    f"a post's 'mentions' must hold feed ids (@...), message ids (%...) or "
                    f"attachments ({{link: &...sha256, ...}}), not {item!r:.80}"
                )
        if attached > MAX_ATTACHMENTS:
            raise UnpublishableContent(
                f"a post attaches {attached} blobs; the limit is {MAX_ATTACHMENTS}"
            )
    if "channel" in value and channel_name(value["channel"]) is None:
        raise UnpublishableContent(
            f"a post's 'channel' must be a name of 1 to {MAX_CHANNEL} letters, digits, '_' or '-'"
        )
    if "cw" in value:
        cw = value["cw"]
        if type(cw) is not str or not cw.strip() or len(cw) > MAX_CW:
            raise UnpublishableContent(
                f"a post's 'cw' (content warning) must be text of 1 to {MAX_CW} characters"
            )


def _describe(value: Value) -> str | None:
    text = value.get("text")
    return text if isinstance(text, str) else None


def _links(value: Value) -> list[Link]:
    return (
        reply_links(value)
        + [(key, MENTION) for key in mentioned(value)]
        + [(msg, MENTION) for msg in mentioned_messages(value)]
    )


TYPE = ContentType(
    "post",
    check=_check,
    describe=_describe,
    links=_links,
    link_fields=frozenset({"root", "mentions"}),
)
