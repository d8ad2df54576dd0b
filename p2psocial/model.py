"""Domain objects the store returns and the CLI and APIs show."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cbor2

from p2psocial.identity import feed_id, message_id

if TYPE_CHECKING:
    from p2psocial.feed.chain import Accepted
    from p2psocial.feed.entry import Entry


def json_safe(value: Any) -> Any:
    """Content as JSON-compatible data: byte strings become base64 text, and the floats JSON
    cannot hold (NaN, infinities), which CBOR content may carry, become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Message:
    """A stored entry with its content, as people and apps see it."""

    id: bytes
    author: bytes
    seq: int
    previous: bytes | None
    timestamp: int
    received: int
    raw: bytes
    content_bytes: bytes | None
    value: dict[str, Any] | bytes | None
    """The decoded content (see :attr:`content`)."""
    deleted: bool = False
    """Its author took it back: the content is gone for good (``delete`` content)."""

    @classmethod
    def from_entry(
        cls,
        entry: Entry,
        content: bytes | None,
        received: int,
        value: dict[str, Any] | bytes | None = None,
    ) -> Message:
        """A message of a stored entry; ``value`` is its decoded content if the caller has
        it (else the content bytes are decoded here)."""
        if value is None and content is not None:
            decoded = cbor2.loads(content)
            value = decoded if isinstance(decoded, dict | bytes) else None
        return cls(
            id=entry.id,
            author=entry.author,
            seq=entry.seq,
            previous=entry.previous,
            timestamp=entry.timestamp,
            received=received,
            raw=entry.raw,
            content_bytes=content,
            value=value,
        )

    @classmethod
    def from_accepted(cls, accepted: Accepted) -> Message:
        """The message of an entry just stored, from its one decoded form."""
        return cls.from_entry(accepted.entry, accepted.content, accepted.received, accepted.value)

    @property
    def key(self) -> str:
        """The message id text (``%...sha256``)."""
        return message_id(self.id)

    @property
    def author_id(self) -> str:
        return feed_id(self.author)

    @property
    def content(self) -> dict[str, Any] | bytes | None:
        """Decoded content: a map (public), bytes (private) or None (not held)."""
        return self.value

    @property
    def is_private(self) -> bool:
        return isinstance(self.content, bytes)

    @property
    def text(self) -> str | None:
        content = self.content
        if isinstance(content, dict) and isinstance(content.get("text"), str):
            return str(content["text"])
        return None

    def to_json(self) -> dict[str, Any]:
        content = self.content
        return {
            "id": self.key,
            "author": self.author_id,
            "seq": self.seq,
            "previous": message_id(self.previous) if self.previous else None,
            "timestamp": self.timestamp,
            "received": self.received,
            "private": isinstance(content, bytes),
            "content": json_safe(content) if isinstance(content, dict) else None,
            "deleted": self.deleted,
        }


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What the store holds of one feed."""

    author: bytes
    latest_seq: int
    latest_id: bytes | None
    forked: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "feed_id": feed_id(self.author),
            "latest_seq": self.latest_seq,
            "latest_id": message_id(self.latest_id) if self.latest_id else None,
            "forked": self.forked,
        }


@dataclass(frozen=True, slots=True)
class ForkProof:
    """Two valid entries by one author at one sequence."""

    author: bytes
    seq: int
    first: bytes
    second: bytes
    detected: int

    def to_json(self) -> dict[str, Any]:
        return {
            "feed_id": feed_id(self.author),
            "seq": self.seq,
            "first": base64.b64encode(self.first).decode(),
            "second": base64.b64encode(self.second).decode(),
            "detected": self.detected,
        }
