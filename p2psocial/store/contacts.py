"""The follow graph: reading ``contact`` content, and who is within N hops.

A contact entry's content is ``{"type": "contact", "contact": FEED_ID, "following": bool,
"blocking": bool}``; either flag may be absent (then it is false). The latest entry per
(author, contact) wins. See docs/protocol.md, "Replication".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cbor2

from p2psocial.errors import InvalidId
from p2psocial.identity import parse_feed_id

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator


def contact_content(contact: bytes, *, following: bool, blocking: bool) -> dict[str, Any]:
    """The content of a contact entry about ``contact``."""
    from p2psocial.identity import feed_id

    return {
        "type": "contact",
        "contact": feed_id(contact),
        "following": following,
        "blocking": blocking,
    }


def parse_contact(content: bytes) -> tuple[bytes, bool, bool] | None:
    """(contact key, following, blocking) of contact content; None if it is not usable."""
    try:
        value = cbor2.loads(content)
    except Exception:  # content was validated on ingest; be defensive all the same
        return None
    if not isinstance(value, dict) or value.get("type") != "contact":
        return None
    try:
        contact = parse_feed_id(value.get("contact"))
    except InvalidId:
        return None
    return contact, value.get("following") is True, value.get("blocking") is True


def contact_rows(
    rows: Iterable[tuple[bytes, int, bytes | None]],
) -> Iterator[tuple[bytes, bytes, int, int, int]]:
    """Rows for the contacts table from (author, seq, content) of contact entries."""
    for author, seq, content in rows:
        if content is None:
            continue
        parsed = parse_contact(content)
        if parsed is not None:
            contact, following, blocking = parsed
            yield author, contact, int(following), int(blocking), seq


def hops_from(
    me: bytes, follows: dict[bytes, set[bytes]], blocked: set[bytes], max_hops: int
) -> dict[bytes, int]:
    """Feeds within ``max_hops`` follows of ``me`` (me at 0), never any we block."""
    distance = {me: 0}
    frontier = [me]
    for hop in range(1, max_hops + 1):
        following = []
        for author in frontier:
            for contact in follows.get(author, ()):
                if contact not in distance and contact not in blocked:
                    distance[contact] = hop
                    following.append(contact)
        frontier = following
    return distance
