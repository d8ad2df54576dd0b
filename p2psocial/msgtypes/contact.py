"""``contact``: our stance towards another feed, the follow graph's source.

``{"type": "contact", "contact": FEED_ID, "following": bool, "blocking": bool}``; either
flag may be absent (then it is false). The latest entry per (author, contact) wins. It
feeds the ``contacts`` view; the replication set is computed from that view
(docs/protocol.md, "Replication").
"""

from __future__ import annotations

from typing import Any

from p2psocial.errors import UnpublishableContent
from p2psocial.identity import feed_id
from p2psocial.msgtypes.base import ContentType, Value, feed_field


def contact_content(contact: bytes, *, following: bool, blocking: bool) -> dict[str, Any]:
    """The content of a contact entry about ``contact``."""
    return {
        "type": "contact",
        "contact": feed_id(contact),
        "following": following,
        "blocking": blocking,
    }


def parse_contact(value: Value) -> tuple[bytes, bool, bool] | None:
    """(contact key, following, blocking) of contact content; None if it is not usable."""
    if value.get("type") != "contact":
        return None
    contact = feed_field(value.get("contact"))
    if contact is None:
        return None
    return contact, value.get("following") is True, value.get("blocking") is True


def describe_stance(following: bool, blocking: bool, contact: bytes) -> str:
    if blocking:
        return f"blocking {feed_id(contact)}"
    return f"{'following' if following else 'not following'} {feed_id(contact)}"


def _check(value: Value) -> None:
    if feed_field(value.get("contact")) is None:
        raise UnpublishableContent("a contact's 'contact' must be a feed id (@...ed25519)")
    for flag in ("following", "blocking"):
        if flag in value and type(value[flag]) is not bool:
            raise UnpublishableContent(f"a contact's {flag!r} must be true or false")


def _describe(value: Value) -> str | None:
    parsed = parse_contact(value)
    if parsed is None:
        return None
    contact, following, blocking = parsed
    return describe_stance(following, blocking, contact)


TYPE = ContentType(
    "contact", check=_check, describe=_describe, links=lambda value: [], link_fields=frozenset()
)
