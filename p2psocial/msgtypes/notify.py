"""Notifications: which public entries of others tell us something. Sans-IO.

One function, :func:`classify`, holds the rules; the ``notifications`` view
(``store/views/notifications.py``) and the live ``subscribe`` filter
(``api/notify_api.py``) both ask it, each answering its two questions from what it holds:
``is_mine(id)`` (is this message one of ours, held with its content, stored before the
entry asked about?) and ``my_reply_in(root)`` (the id of our first reply in the thread
``root`` stored before it, if any).

An entry gives at most one notice, the first that applies:

- ``reply``: a post whose ``branch`` or ``root`` is ours (its target: that message), or
  whose ``root`` is a thread we replied in (``in_thread``; its target: our reply there);
- ``mention``: a post naming our feed in ``mentions`` (an id or ``{"link": id}``) or
  holding our full feed id in its text;
- ``reaction``: a vote on our message; ``value 1`` likes it (with its ``expression``),
  ``value 0`` withdraws the like (``active`` false);
- ``repost``: a repost of our message (with or without a comment);
- ``follow``: a contact following us; an unfollow or a block withdraws it (``active``
  false).

Our own entries never notify us; nor does anything about a message that is not ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2psocial.identity import feed_id
from p2psocial.msgtypes.base import message_field
from p2psocial.msgtypes.contact import parse_contact
from p2psocial.msgtypes.post import mentioned
from p2psocial.msgtypes.repost import parse_repost
from p2psocial.msgtypes.vote import parse_vote

if TYPE_CHECKING:
    from collections.abc import Callable

    from p2psocial.msgtypes.base import Value

MENTION = "mention"
REPLY = "reply"
REACTION = "reaction"
REPOST = "repost"
FOLLOW = "follow"
KINDS = (MENTION, REPLY, REACTION, REPOST, FOLLOW)

CONTENT_TYPES = frozenset({"post", "vote", "repost", "contact"})
"""The content types that can notify (and ``post``: our replies make threads ours)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """What one entry tells us."""

    kind: str
    target: bytes | None = None
    """The message of ours it is about (None: a mention, a follow)."""
    expression: str | None = None
    """A reaction's emoji (or word), if it gave one."""
    in_thread: bool = False
    """A reply in a thread we replied in, not to a message of ours (target: our reply)."""
    active: bool = True
    """False: it withdraws its author's earlier reaction to the target, or follow."""


def references(value: Value) -> list[bytes]:
    """The message ids :func:`classify` may ask ``is_mine`` or ``my_reply_in`` about, so a
    caller can look them all up at once first."""
    kind = value.get("type")
    if kind == "post":
        return [m for m in (message_field(value, "branch"), message_field(value, "root")) if m]
    if kind == "vote":
        vote = parse_vote(value)
        return [vote[0]] if vote is not None else []
    if kind == "repost":
        repost = parse_repost(value)
        return [repost[0]] if repost is not None else []
    return []


def may_notify(value: Value) -> bool:
    """Whether :func:`classify` could find anything in ``value``: false for most content
    (a post that neither replies nor mentions), cheaply, on the ingest path."""
    kind = value.get("type")
    if kind == "post":
        if "root" in value or "branch" in value or "mentions" in value:
            return True
        text = value.get("text")
        return type(text) is str and "@" in text
    return kind in CONTENT_TYPES


def _never(msg: bytes) -> bool:
    return False


def _nothing(root: bytes) -> bytes | None:
    return None


def classify(
    value: Value,
    author: bytes,
    owner: bytes,
    is_mine: Callable[[bytes], bool] = _never,
    my_reply_in: Callable[[bytes], bytes | None] = _nothing,
) -> Notice | None:
    """What public content ``value`` by ``author`` tells ``owner`` (see the module's
    rules); None: nothing. Without the predicates only mentions and follows are found."""
    if author == owner:
        return None
    kind = value.get("type")
    if kind == "post":
        return _post(value, owner, is_mine, my_reply_in)
    if kind == "vote":
        vote = parse_vote(value)
        if vote is None or not is_mine(vote[0]):
            return None
        link, amount, expression = vote
        return Notice(REACTION, link, expression if amount else None, active=amount == 1)
    if kind == "repost":
        repost = parse_repost(value)
        if repost is None or not is_mine(repost[0]):
            return None
        return Notice(REPOST, repost[0])
    if kind == "contact":
        contact = parse_contact(value)
        if contact is None or contact[0] != owner:
            return None
        _key, following, blocking = contact
        return Notice(FOLLOW, active=following and not blocking)
    return None


def _post(
    value: Value,
    owner: bytes,
    is_mine: Callable[[bytes], bool],
    my_reply_in: Callable[[bytes], bytes | None],
) -> Notice | None:
    for field in ("branch", "root"):
        msg = message_field(value, field)
        if msg is not None and is_mine(msg):
            return Notice(REPLY, msg)
    root = message_field(value, "root")
    if root is not None:
        mine = my_reply_in(root)
        if mine is not None:
            return Notice(REPLY, mine, in_thread=True)
    if owner in mentioned(value):
        return Notice(MENTION)
    text = value.get("text")
    if type(text) is str and "@" in text and feed_id(owner) in text:
        return Notice(MENTION)
    return None
