"""What a person does with their own feed: post, follow, block. Used by the daemon (on its
store thread) and by the CLI when no daemon runs, so both behave the same."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.errors import ConfigError
from p2psocial.identity import Keypair, feed_id, parse_message_id
from p2psocial.store.contacts import contact_content

if TYPE_CHECKING:
    from p2psocial.model import Message
    from p2psocial.store.store import Store


def post_content(
    text: str, *, root: str | None = None, branch: str | None = None
) -> dict[str, Any]:
    """The content of a public post; ``root``/``branch`` make it a reply in a thread."""
    if not text.strip():
        raise ConfigError("a post needs some text")
    content: dict[str, Any] = {"type": "post", "text": text}
    if root is not None:
        parse_message_id(root)
        content["root"] = root
        content["branch"] = branch or root
        parse_message_id(content["branch"])
    return content


def set_contact(
    store: Store,
    keys: Keypair,
    contact: bytes,
    now_ms: int,
    *,
    following: bool | None = None,
    blocking: bool | None = None,
) -> Message | None:
    """Publish our new stance towards ``contact`` (None: keep that flag). Returns None when
    nothing changes. Blocking purges everything stored of the blocked feed."""
    if contact == keys.public:
        raise ConfigError("you cannot follow or block yourself")
    was_following, was_blocking = store.contact_state(keys.public, contact)
    follow = was_following if following is None else following
    block = was_blocking if blocking is None else blocking
    if block:
        follow = False  # a block ends a follow
    if (follow, block) == (was_following, was_blocking):
        return None
    message = store.publish(
        keys, contact_content(contact, following=follow, blocking=block), now_ms
    )
    if block:
        store.purge_feed(contact)
    return message


def describe_contact(following: bool, blocking: bool, contact: bytes) -> str:
    if blocking:
        return f"blocking {feed_id(contact)}"
    return f"{'following' if following else 'not following'} {feed_id(contact)}"
