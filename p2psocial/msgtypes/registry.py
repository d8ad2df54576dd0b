"""The table of known content types, and the questions asked of content by type.

To add a type: write its module (see ``post.py``) and add its ``TYPE`` to :data:`TYPES`.
Content of a type nobody registered is stored, replicated and shown as data like any
other; it only feeds the generic reply link (its ``root`` field).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.msgtypes import about, contact, delete, edit, post, pub, repost, vote
from p2psocial.msgtypes.base import ContentType, Link, reply_links

if TYPE_CHECKING:
    from p2psocial.feed.content import Content

TYPES: dict[str, ContentType] = {
    t.name: t
    for t in (
        post.TYPE,
        contact.TYPE,
        pub.TYPE,
        vote.TYPE,
        delete.TYPE,
        about.TYPE,
        edit.TYPE,
        repost.TYPE,
    )
}


LINK_FIELDS: frozenset[str] = frozenset({"root"}).union(*(t.link_fields for t in TYPES.values()))
"""Every field some type reads links from: content with none of them has no links."""


def lookup(name: str | None) -> ContentType | None:
    """The registered type of this name, if any."""
    return TYPES.get(name) if name is not None else None


def check_publish(value: Content, author: bytes | None = None) -> None:
    """Apply the type's own rules to content we are about to publish (maps only; the
    generic shape is checked when it is encoded); ``author``: our feed key, for the rules
    that depend on who writes (``check_author``). Raises UnpublishableContent."""
    if isinstance(value, dict):
        kind = lookup(value.get("type"))
        if kind is not None:
            kind.check(value)
            if author is not None and kind.check_author is not None:
                kind.check_author(value, author)


def links_of(value: Content | None) -> list[Link]:
    """The links a decoded public content feeds into the ``links`` view."""
    if type(value) is not dict:
        return []
    kind = TYPES.get(value.get("type"))  # type: ignore[arg-type]
    if kind is None:
        return reply_links(value) if "root" in value else []
    if kind.link_fields.isdisjoint(value.keys()):
        return []
    return list(kind.links(value))


def describe(value: Content | None) -> str | None:
    """The text a person reads for this content, None to show it as data."""
    if not isinstance(value, dict):
        return None
    kind = lookup(value.get("type"))
    return kind.describe(value) if kind is not None else None
