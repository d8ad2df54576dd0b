"""Post cards: a public message as a timeline or thread shows it (docs/rpc.md, "Cards").

A card is the message's JSON form (:meth:`p2psocial.model.Message.to_json`) with what a
person reads beside it: the author's display name, the post's text now (its latest edit)
and whether it was edited, its content warning, its reply, like and repost counts, its
sort time (the paging cursor), and for a repost the card of the message it shares. Cards
are built on the store's read thread (:func:`cards`), names and counts in a few queries
for the whole page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.identity import blob_id, message_id
from p2psocial.msgtypes.blobs import attachments, blob_refs
from p2psocial.msgtypes.names import display_names
from p2psocial.msgtypes.post import content_warning
from p2psocial.msgtypes.repost import parse_repost

if TYPE_CHECKING:
    from collections.abc import Sequence

    from p2psocial.model import Message
    from p2psocial.store.posts import Extras
    from p2psocial.store.store import Store


def _text(message: Message, extras: Extras | None) -> str | None:
    if message.deleted or not isinstance(message.value, dict):
        return None
    if extras is not None and extras.edits and message.value.get("type") == "post":
        return extras.edits[-1].text
    text = message.value.get("text")
    return text if isinstance(text, str) else None


def attachment_cards(value: dict[str, Any], held: set[str]) -> list[dict[str, Any]]:
    """What a post (or private message) attaches, as shown: each blob's id, media type,
    name, size, picture size and alt text, its thumbnail, and whether each is held here."""
    out = []
    for item in attachments(value):
        shown: dict[str, Any] = {
            "id": item["link"],
            "type": item["type"],
            "name": item["name"],
            "size": item["size"],
            "held": item["link"] in held,
        }
        for key in ("width", "height", "alt"):
            if key in item:
                shown[key] = item[key]
        thumb = item.get("thumbnail")
        if isinstance(thumb, dict):
            shown["thumbnail"] = {
                "id": thumb["link"],
                "type": thumb["type"],
                "size": thumb["size"],
                "width": thumb.get("width"),
                "height": thumb.get("height"),
                "held": thumb["link"] in held,
            }
        shown["private"] = "key" in item
        out.append(shown)
    return out


def held_blob_ids(store: Store, values: Sequence[object]) -> set[str]:
    """Which of the blobs these contents attach are held here (ids)."""
    wanted: list[bytes] = []
    for value in values:
        if isinstance(value, dict):
            wanted += [ref.blob for ref in blob_refs(value)]
    if not wanted:
        return set()
    return {blob_id(b) for b in store.blob_sizes(wanted)}


def _card(
    message: Message,
    extras: Extras | None,
    names: dict[bytes, str],
    sort_ts: int | None,
    held: set[str] | None = None,
) -> dict[str, Any]:
    card = message.to_json()
    value = message.value if isinstance(message.value, dict) else {}
    card["author_name"] = names.get(message.author)
    card["sort_ts"] = sort_ts if sort_ts is not None else min(message.timestamp, message.received)
    card["text"] = _text(message, extras)
    card["edited"] = bool(extras and extras.edits and value.get("type") == "post")
    card["cw"] = content_warning(value) if not message.deleted else None
    card["attachments"] = attachment_cards(value, held or set()) if not message.deleted else []
    card["counts"] = {
        "replies": extras.replies if extras else 0,
        "likes": extras.likes if extras else 0,
        "reposts": extras.reposts if extras else 0,
    }
    parsed = parse_repost(value) if value.get("type") == "repost" else None
    if parsed is not None:
        target, comment = parsed
        original = extras.original if extras else None
        card["repost"] = {
            "id": message_id(target),
            "comment": comment,
            "held": original is not None,
            "message": (
                _card(original, extras.original_extras if extras else None, names, None, held)
                if original is not None
                else None
            ),
        }
    return card


def cards(
    store: Store,
    me: bytes,
    messages: Sequence[Message],
    sort_times: Sequence[int | None] | None = None,
) -> list[dict[str, Any]]:
    """The cards of ``messages`` (in order), as ``me`` sees them; ``sort_times``: their
    sort times when the caller has them."""
    extras = store.extras([m for m in messages if not m.is_private])
    authors = {m.author for m in messages}
    for found in extras.values():
        if found.original is not None:
            authors.add(found.original.author)
    names = display_names(sorted(authors), store.name_data(me)) if authors else {}
    times = sort_times or [None] * len(messages)
    values = [m.value for m in messages] + [
        e.original.value for e in extras.values() if e.original is not None
    ]
    held = held_blob_ids(store, values)
    return [
        _card(m, extras.get(m.id), names, t, held) for m, t in zip(messages, times, strict=True)
    ]


def history(store: Store, me: bytes, msg: bytes) -> dict[str, Any]:
    """A post's card with its history: the original text, then each edit's."""
    message = store.get(msg)
    (card,) = cards(store, me, [message])
    value = message.value if isinstance(message.value, dict) else {}
    first = value.get("text") if not message.deleted else None
    versions: list[dict[str, Any]] = [
        {"id": card["id"], "timestamp": message.timestamp, "text": first, "edit": False}
    ]
    for edit in store.edit_history(msg):
        versions.append(
            {
                "id": message_id(edit.id),
                "timestamp": edit.timestamp,
                "text": None if message.deleted else edit.text,
                "edit": True,
            }
        )
    card["history"] = versions
    return card


def threaded(thread: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A thread's cards (root first, replies oldest first) with who answered whom: each
    reply's ``parent`` (the message its ``branch`` names, if in the thread, else the root)
    and ``depth`` (the root 0, its replies 1, replies to those 2, ...)."""
    if not thread:
        return thread
    ids = {card["id"] for card in thread}
    root = thread[0]["id"]
    depth: dict[str, int] = {}
    for card in thread:
        content = card.get("content")
        branch = content.get("branch") if isinstance(content, dict) else None
        if card["id"] == root and not (isinstance(content, dict) and "root" in content):
            parent = None
        elif isinstance(branch, str) and branch in ids and branch != card["id"]:
            parent = branch
        else:
            parent = root if card["id"] != root else None
        card["parent"] = parent
        card["depth"] = depth.get(parent, 0) + 1 if parent is not None else 0
        depth[card["id"]] = card["depth"]
    return thread
