"""Chain rules: which offered entries extend a feed, which are duplicates, which fork it.

Theory of operation
-------------------
A feed is a gap-free chain: entry ``n + 1`` names entry ``n``'s id as its previous. Given
what we hold of a feed (:class:`FeedState`) and a run of offered entries for it,
:func:`plan_chain` decides, without I/O and without checking signatures:

- entries at a sequence we hold with the id we hold are duplicates, ignored, unless we
  hold that entry without its content and this copy brings content matching the signed
  hash and size: then the content is taken (a relay that dropped content cannot make it
  disappear for good);
- an entry at a sequence we hold with another id is a fork candidate: once its signature
  verifies, it and ours are a proof that the author signed two entries at one sequence;
- the rest must continue the chain exactly: sequence previous + 1, previous id = the id
  before it, content (when present) matching the signed hash and size and well-formed.

Any broken rule rejects the whole run for that feed (all-or-nothing per feed chain) with
the error for the first entry that broke it. Signatures are checked by the caller, so it
can verify every feed's entries on all cores at once; a bad signature anywhere in a run
rejects the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from p2psocial.errors import (
    AuthorMismatch,
    FeedForked,
    PreviousMismatch,
    SequenceError,
)
from p2psocial.feed.content import Content, content_type, decode_content
from p2psocial.feed.entry import Entry, check_content

if TYPE_CHECKING:
    from collections.abc import Container, Mapping, Sequence


@dataclass(frozen=True, slots=True)
class FeedState:
    """What we hold of one feed: the latest sequence (0: nothing) and its id."""

    author: bytes
    latest_seq: int = 0
    latest_id: bytes | None = None
    forked: bool = False


@dataclass(slots=True)  # not frozen: frozen __init__ costs ~2us on the ingest path
class Offered:
    """An entry with its content (None: content not sent, or deleted by its author)."""

    entry: Entry
    content: bytes | None


@dataclass(slots=True)  # not frozen: frozen __init__ costs ~2us on the ingest path
class Accepted:
    """An entry that extends the chain, with its content, decoded once.

    This is the one decoded form of a stored entry: views index it, and the ``Stored``
    event carries it to every subscriber, so nothing decodes the same bytes again."""

    entry: Entry
    content: bytes | None
    """The content bytes as signed (None: not held)."""
    content_type: str | None
    """The public content's ``type``; None for private or missing content."""
    value: Content | None = None
    """The decoded content: a map (public), the ciphertext bytes (private), or None."""
    plaintext: bytes | None = None
    """Private content we could open (we are a recipient): the CBOR content inside."""
    private_value: dict[str, Any] | None = None
    """``plaintext`` decoded."""
    received: int = 0
    """When the store stored it (ms); set by the store."""


@dataclass(slots=True)
class ChainPlan:
    """The outcome of :func:`plan_chain` for one feed."""

    append: list[Accepted] = field(default_factory=list)
    duplicates: int = 0
    fork_candidate: tuple[bytes, Entry] | None = None
    """Our stored id and the other entry at the same sequence, when one was offered."""
    fill: list[Accepted] = field(default_factory=list)
    """Entries we hold without content, offered again with their content."""


def plan_chain(
    state: FeedState,
    offered: Sequence[Offered],
    held_ids: Mapping[int, bytes],
    missing: Container[int] = (),
) -> ChainPlan:
    """Plan how ``offered`` (entries of ``state.author``) extend the feed.

    ``held_ids`` maps sequence to stored id for every offered sequence ``<= latest_seq``;
    ``missing`` holds the sequences among them we hold without content.
    Raises an InvalidEntry subclass for the first rule broken; FeedForked if the feed is
    already known to be forked.
    """
    plan = ChainPlan()
    if state.forked:
        raise FeedForked("feed is forked: no new entries are accepted for it")
    expect_seq = state.latest_seq + 1
    expect_prev = state.latest_id
    for item in sorted(offered, key=lambda o: o.entry.seq):
        entry = item.entry
        if entry.author != state.author:
            raise AuthorMismatch("entry author is not the feed it was offered for")
        if entry.seq < expect_seq:
            held = held_ids.get(entry.seq)
            if held is None:
                # Same sequence offered twice in this run: compare with the one planned.
                held = next(o.entry.id for o in plan.append if o.entry.seq == entry.seq)
            if held == entry.id:
                plan.duplicates += 1
                if item.content is not None and entry.seq in missing:
                    check_content(entry, item.content)
                    found = decode_content(item.content)
                    plan.fill.append(Accepted(entry, item.content, content_type(found), found))
                continue
            plan.fork_candidate = (held, entry)
            plan.append.clear()
            return plan
        if entry.seq != expect_seq:
            raise SequenceError(
                f"entry sequence {entry.seq} does not follow {expect_seq - 1}: a gap"
            )
        if entry.previous != expect_prev:
            raise PreviousMismatch(
                f"entry {entry.seq} does not name entry {entry.seq - 1} as its previous"
            )
        kind = value = None
        if item.content is not None:
            check_content(entry, item.content)
            value = decode_content(item.content)
            kind = content_type(value)
        plan.append.append(Accepted(entry, item.content, kind, value))
        expect_seq = entry.seq + 1
        expect_prev = entry.id
    return plan
