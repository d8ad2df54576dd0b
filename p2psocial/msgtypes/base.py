"""The shape of a content type, and the field readers several types share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from p2psocial.errors import InvalidId, UnpublishableContent
from p2psocial.identity import parse_feed_id, parse_message_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

Value = dict[str, Any]
Link = tuple[bytes, str]
"""(destination id, relation): a message id for ``root`` (a reply), a feed key for
``mention``. The ``links`` view stores (source message, destination, relation)."""

REPLY = "root"
MENTION = "mention"


def _nothing(value: Value) -> None:
    return None


def message_field(value: Value, name: str) -> bytes | None:
    """The 32-byte id in field ``name`` if it holds a valid message id, else None."""
    text = value.get(name)
    if type(text) is not str or len(text) != 52 or text[0] != "%":
        return None
    try:
        return parse_message_id(text)
    except InvalidId:
        return None


def feed_field(value: object) -> bytes | None:
    """The key of a feed id value, None if it is not one."""
    if type(value) is not str:
        return None
    try:
        return parse_feed_id(value)
    except InvalidId:
        return None


def reply_links(value: Value) -> list[Link]:
    """The thread link any content may carry: its ``root`` field."""
    if "root" not in value:
        return []
    root = message_field(value, "root")
    return [(root, REPLY)] if root is not None else []


def require_message_field(value: Value, name: str) -> None:
    """For our own content: field ``name``, if present, must be a message id."""
    if name in value and message_field(value, name) is None:
        raise UnpublishableContent(f"content field {name!r} must be a message id (%...sha256)")


@dataclass(frozen=True, slots=True)
class ContentType:
    """What the rest of p2psocial knows about one content ``type``."""

    name: str
    check: Callable[[Value], None] = _nothing
    """Rules our own content of this type must keep; raises UnpublishableContent. Peers'
    content is never refused for these (it is signed; a view just skips what it cannot
    use)."""
    check_author: Callable[[Value, bytes], None] | None = None
    """Rules of our own content that depend on who writes it (our feed key); raises
    UnpublishableContent. None: there are none."""
    describe: Callable[[Value], str | None] = field(default=lambda value: None)
    """The text a person reads for this content (None: show it as data)."""
    links: Callable[[Value], Iterable[Link]] = reply_links
    """The links this content feeds into the ``links`` view."""
    link_fields: frozenset[str] = frozenset({"root"})
    """The fields :attr:`links` reads: content holding none of them has no links, which
    lets the view skip the call for most content (the ingest hot path)."""
