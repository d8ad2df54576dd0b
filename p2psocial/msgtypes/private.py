"""Private messages: composing, sealing, opening and showing them.

A private message is an ordinary entry whose content is a private-box ciphertext
(proto/privatebox.py) instead of a map. Inside is a content map like a public post's, with
``recps`` listing its readers' feed ids; the author is always one of them, so they can read
their own messages. Used by the daemon (on its store thread) and by the offline CLI.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from p2psocial.errors import BadRecipients, PrivateBoxError
from p2psocial.feed.chain import Accepted
from p2psocial.feed.entry import decode_entry
from p2psocial.identity import Keypair, feed_id, parse_message_id
from p2psocial.model import Message, json_safe
from p2psocial.proto.privatebox import MAX_RECIPIENTS, open_entry_content, seal_content

if TYPE_CHECKING:
    from p2psocial.store.store import Store

log = logging.getLogger("p2psocial.private")

Opener = Callable[[bytes, bytes], bytes | None]


def recipients_with_author(author: bytes, to: Sequence[bytes]) -> list[bytes]:
    """The author first, then each other recipient once. Raises BadRecipients."""
    readers = [author]
    for key in to:
        if key not in readers:
            readers.append(key)
    if len(readers) == 1:
        raise BadRecipients("a private message needs at least one recipient besides you")
    if len(readers) > MAX_RECIPIENTS:
        raise BadRecipients(
            f"a private message holds at most {MAX_RECIPIENTS} recipients including you; "
            f"got {len(readers)}"
        )
    return readers


def private_post(text: str, readers: Sequence[bytes], *, root: str | None = None) -> dict[str, Any]:
    """The content map sealed inside a private post."""
    content: dict[str, Any] = {
        "type": "post",
        "text": text,
        "recps": [feed_id(k) for k in readers],
    }
    if root is not None:
        parse_message_id(root)
        content["root"] = root
        content["branch"] = root
    return content


def make_opener(keys: Keypair) -> Opener:
    """Opens an entry's content bytes with our key: the plaintext content, or None when it
    is not for us. The plaintext's ``recps`` must list the entry's author, so nobody can
    republish someone else's private message as their own. A message that is ours but does
    not open (tampered, or copied) is logged and skipped, never raised: one bad message must
    not stop ingest."""

    def open_(content: bytes, author: bytes) -> bytes | None:
        try:
            return open_entry_content(content, keys.secret, author=author)
        except PrivateBoxError as exc:
            log.warning("a private message addressed to us does not open: %s", exc)
            return None

    return open_


def publish_private(
    store: Store,
    keys: Keypair,
    text: str,
    to: Sequence[bytes],
    now_ms: int,
    *,
    root: str | None = None,
) -> tuple[Message, bytes]:
    """Seal and publish a private post to ``to`` (and us); file it in our inbox.

    Raises BadRecipients, InvalidId, ContentTooLarge; nothing is published then."""
    if not text.strip():
        raise BadRecipients("a private message needs some text")
    readers = recipients_with_author(keys.public, to)
    content = private_post(text, readers, root=root)
    ciphertext = seal_content(content, readers, rng_bytes=os.urandom)
    message = store.publish(keys, ciphertext, now_ms)
    accepted = Accepted(decode_entry(message.raw), message.content_bytes, None)
    filed = store.index_private([accepted], make_opener(keys))
    if not filed:  # pragma: no cover - we are always a recipient
        raise PrivateBoxError("could not open our own private message")
    return message, filed[0][1]


def private_json(message: Message, plaintext: bytes) -> dict[str, Any]:
    """A private message as apps and ``--json`` see it: the envelope, decrypted content."""
    import cbor2

    data = message.to_json()
    data["private"] = True
    data["content"] = json_safe(cbor2.loads(plaintext))
    return data


__all__ = [
    "Opener",
    "make_opener",
    "private_json",
    "private_post",
    "publish_private",
    "recipients_with_author",
]
