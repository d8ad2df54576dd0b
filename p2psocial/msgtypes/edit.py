"""``edit``: new text for one of the author's own posts.

``{"type": "edit", "edit": %MSG, "text": TEXT}``. Views show a post with the text of its
latest edit (by sequence) and mark it edited; the earlier texts stay in the author's feed
and are shown on request (``show --history``). An edit naming someone else's post is
invalid: refused when we publish it, ignored when received (the ``edits`` view keeps only
edits whose author wrote the target).
"""

from __future__ import annotations

from typing import Any

from p2psocial.errors import UnpublishableContent
from p2psocial.identity import message_id, parse_message_id
from p2psocial.msgtypes.base import ContentType, Value, message_field

MAX_TEXT = 8000
"""An edit's text fits the content limit with room for the fields around it."""


def edit_content(target: str, text: str) -> dict[str, Any]:
    """The content giving post ``target`` the new ``text``. Raises InvalidId,
    UnpublishableContent (empty text)."""
    parse_message_id(target)
    content = {"type": "edit", "edit": target, "text": text}
    _check(content)
    return content


def parse_edit(value: Value) -> tuple[bytes, str] | None:
    """(the post edited, its new text); None if the content is not a usable edit."""
    if value.get("type") != "edit":
        return None
    target = message_field(value, "edit")
    text = value.get("text")
    if target is None or type(text) is not str or not text.strip():
        return None
    return target, text


def _check(value: Value) -> None:
    if message_field(value, "edit") is None:
        raise UnpublishableContent("an edit's 'edit' must be the id of your post (%...sha256)")
    text = value.get("text")
    if type(text) is not str or not text.strip():
        raise UnpublishableContent("an edit needs the post's new 'text'")
    if len(text) > MAX_TEXT:
        raise UnpublishableContent(f"an edit's 'text' must be at most {MAX_TEXT} characters")


def _describe(value: Value) -> str | None:
    parsed = parse_edit(value)
    return f"edited {message_id(parsed[0])}" if parsed is not None else None


TYPE = ContentType(
    "edit", check=_check, describe=_describe, links=lambda value: [], link_fields=frozenset()
)
