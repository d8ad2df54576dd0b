"""``vote``: a reaction to a message, in Scuttlebutt's shape.

``{"type": "vote", "vote": {"link": %MSG, "value": 1 | 0, "expression": TEXT?}}``: value 1
likes the message, 0 withdraws an earlier like; ``expression`` is one emoji (or a short
word such as Scuttlebutt's "Like"). Each author counts once per message: their latest
vote (by sequence) wins. It feeds the ``votes`` view.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from p2psocial.errors import UnpublishableContent
from p2psocial.identity import parse_message_id
from p2psocial.msgtypes.base import ContentType, Value, message_field

MAX_EXPRESSION = 16
"""Most characters an ``expression`` may hold (an emoji can take several code points)."""


def vote_content(link: str, value: int, expression: str | None = None) -> dict[str, Any]:
    """The content of a vote on message ``link``. Raises InvalidId for a bad link."""
    parse_message_id(link)
    vote: dict[str, Any] = {"link": link, "value": value}
    if expression is not None:
        vote["expression"] = expression
    return {"type": "vote", "vote": vote}


def parse_vote(value: Value) -> tuple[bytes, int, str | None] | None:
    """(message id, 1 or 0, expression) of vote content; None if it is not usable."""
    vote = value.get("vote")
    if value.get("type") != "vote" or not isinstance(vote, dict):
        return None
    link = message_field(vote, "link")
    amount = vote.get("value")
    if link is None or type(amount) is not int or amount not in (0, 1):
        return None
    expression = vote.get("expression")
    if not _good_expression(expression):
        expression = None
    return link, amount, expression


def _good_expression(expression: object) -> bool:
    return (
        isinstance(expression, str)
        and 0 < len(expression) <= MAX_EXPRESSION
        and not any(unicodedata.category(c)[0] in "CZ" and c != "\u200d" for c in expression)
    )


def _check(value: Value) -> None:
    vote = value.get("vote")
    if not isinstance(vote, dict):
        raise UnpublishableContent("a vote needs a 'vote' map: {link, value, expression?}")
    if message_field(vote, "link") is None:
        raise UnpublishableContent("a vote's 'link' must be a message id (%...sha256)")
    if type(vote.get("value")) is not int or vote.get("value") not in (0, 1):
        raise UnpublishableContent("a vote's 'value' must be 1 (like) or 0 (withdrawn)")
    if "expression" in vote and not _good_expression(vote["expression"]):
        raise UnpublishableContent(
            f"a vote's 'expression' must be one emoji or word of at most {MAX_EXPRESSION} "
            "characters, without spaces or control characters"
        )


def _describe(value: Value) -> str | None:
    parsed = parse_vote(value)
    if parsed is None:
        return None
    link, amount, expression = parsed
    from p2psocial.identity import message_id

    what = f"{expression} " if expression and amount else ""
    return f"{what}{'likes' if amount else 'no longer likes'} {message_id(link)}"


TYPE = ContentType(
    "vote", check=_check, describe=_describe, links=lambda value: [], link_fields=frozenset()
)
