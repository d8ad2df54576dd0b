"""``delete``: the author takes back one of their own messages.

``{"type": "delete", "delete": %MSG, "reason": TEXT?}``. Every store that holds the target
drops its content and every row derived from it, never serves the content again, and
shows it as deleted; the signed entry stays, so the chain still verifies. A delete naming
someone else's message is invalid: refused when we publish it, ignored when received.
It feeds the ``deletions`` view; the store applies it (``store/ingest.py``).
"""

from __future__ import annotations

from typing import Any

from p2psocial.errors import UnpublishableContent
from p2psocial.identity import message_id, parse_message_id
from p2psocial.msgtypes.base import ContentType, Value, message_field

MAX_REASON = 200


def delete_content(target: str, reason: str | None = None) -> dict[str, Any]:
    """The content deleting message ``target``. Raises InvalidId."""
    parse_message_id(target)
    content: dict[str, Any] = {"type": "delete", "delete": target}
    if reason:
        content["reason"] = reason
    return content


def parse_delete(value: Value) -> bytes | None:
    """The id of the message a delete names; None if it is not usable."""
    if value.get("type") != "delete":
        return None
    return message_field(value, "delete")


def _check(value: Value) -> None:
    if parse_delete(value) is None:
        raise UnpublishableContent("a delete's 'delete' must be a message id (%...sha256)")
    reason = value.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise UnpublishableContent(f"a delete's 'reason' must be text of at most {MAX_REASON}")


def _describe(value: Value) -> str | None:
    target = parse_delete(value)
    return f"deleted {message_id(target)}" if target is not None else None


TYPE = ContentType(
    "delete", check=_check, describe=_describe, links=lambda value: [], link_fields=frozenset()
)
