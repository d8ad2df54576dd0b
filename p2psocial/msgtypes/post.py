"""``post``: a public text post, possibly a reply in a thread and mentioning feeds.

``{"type": "post", "text": TEXT, "root": %ID?, "branch": %ID?, "mentions": [@ID, ...]?}``:
``root`` is the thread's first message, ``branch`` the message replied to (the root when
not given). Mentions are feed ids, or ``{"link": @ID}`` maps as Scuttlebutt writes them.
"""

from __future__ import annotations

from typing import Any

from p2psocial.errors import UnpublishableContent
from p2psocial.identity import parse_feed_id, parse_message_id
from p2psocial.msgtypes.base import (
    MENTION,
    ContentType,
    Link,
    Value,
    feed_field,
    reply_links,
    require_message_field,
)

MAX_MENTIONS = 100


def post_content(
    text: str,
    *,
    root: str | None = None,
    branch: str | None = None,
    mentions: list[str] | None = None,
) -> dict[str, Any]:
    """The content of a public post; ``root``/``branch`` make it a reply in a thread.
    Raises UnpublishableContent (empty text) or InvalidId (a malformed id)."""
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
            parse_feed_id(item)
        content["mentions"] = mentions
    return content


def mentioned(value: Value) -> list[bytes]:
    """The feed keys a post's ``mentions`` list names (ids or ``{"link": id}``)."""
    listed = value.get("mentions")
    if not isinstance(listed, list):
        return []
    keys = []
    for item in listed[:MAX_MENTIONS]:
        key = feed_field(item.get("link") if isinstance(item, dict) else item)
        if key is not None and key not in keys:
            keys.append(key)
    return keys


def _check(value: Value) -> None:
    if not isinstance(value.get("text"), str):
        raise UnpublishableContent("a post's 'text' must be text")
    require_message_field(value, "root")
    require_message_field(value, "branch")
    if "branch" in value and "root" not in value:
        raise UnpublishableContent("a post with a 'branch' needs its thread's 'root'")


def _describe(value: Value) -> str | None:
    text = value.get("text")
    return text if isinstance(text, str) else None


def _links(value: Value) -> list[Link]:
    return reply_links(value) + [(key, MENTION) for key in mentioned(value)]


TYPE = ContentType(
    "post",
    check=_check,
    describe=_describe,
    links=_links,
    link_fields=frozenset({"root", "mentions"}),
)
