"""Private messages: composing, opening and showing them.

A private message is an ordinary entry whose content is a private-box ciphertext
(proto/privatebox.py) instead of a map. Inside is a content map like a public post's, with
``recps`` listing its readers' feed ids; the author is always one of them, so they can read
their own messages. The store opens each private entry once, inside the transaction that
stores it, with :func:`make_opener`, and files what we can read in the ``inbox`` view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from p2psocial.errors import BadRecipients, PrivateBoxError
from p2psocial.identity import feed_id, parse_message_id
from p2psocial.model import json_safe
from p2psocial.proto.privatebox import MAX_RECIPIENTS, open_checked

if TYPE_CHECKING:
    from p2psocial.identity import Keypair
    from p2psocial.model import Message

log = logging.getLogger("p2psocial.private")

Opener = Callable[[bytes, bytes], tuple[bytes, dict[str, Any]] | None]
"""``opener(ciphertext, author key) -> (plaintext, content map) or None``."""


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


def make_opener(keys: Keypair) -> Opener:
    """Opens a private entry's ciphertext (its decoded content) with our key: the plaintext
    and its content map, or None when it is not for us. The plaintext's ``recps`` must list
    the entry's author, so nobody can republish someone else's private message as their
    own. A message that is ours but does not open (tampered, or copied) is logged and
    skipped, never raised: one bad message must not stop ingest."""

    def open_(ciphertext: bytes, author: bytes) -> tuple[bytes, dict[str, Any]] | None:
        try:
            return open_checked(ciphertext, keys.secret, author)
        except PrivateBoxError as exc:
            log.warning("a private message addressed to us does not open: %s", exc)
            return None

    return open_


def private_post(text: str, readers: Sequence[bytes], *, root: str | None = None) -> dict[str, Any]:
    """The content map sealed inside a private post. Raises BadRecipients for no text."""
    if not text.strip():
        raise BadRecipients("a private message needs some text")
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


def private_json(message: Message, content: dict[str, Any]) -> dict[str, Any]:
    """A private message as apps and ``--json`` see it: the envelope, decrypted content."""
    data = message.to_json()
    data["private"] = True
    data["content"] = json_safe(content)
    return data


__all__ = ["Opener", "make_opener", "private_json", "private_post", "recipients_with_author"]
