"""Replication decisions: per-feed clocks in, notes and sends out.

Theory of operation
-------------------
Feeds are gap-free chains, so one integer per feed says where a peer stands. Peers exchange
*notes*, one integer per feed (Scuttlebutt's epidemic broadcast trees):

- ``-1``: I do not replicate this feed (any more);
- ``-2``: I hold this feed and it is forked: I will neither send nor take it;
- ``seq << 1 | 0``: I hold it up to ``seq``; **send** me what follows, and keep sending live;
- ``seq << 1 | 1``: I hold it up to ``seq``; do not send (I am getting it elsewhere), but
  I tell you my progress so you can stand in if my sender stalls.

For every feed we want, one connected peer at a time is the *sender* (we sent it a note with
the send bit); all others get standby notes. A sender that has more than we hold (by its
notes) but delivers nothing new for ``stall_ms`` is replaced by another peer that has more.
When a sender disconnects, the feed goes to another peer at once.

Claims are not trusted blindly. The feed's author, when connected, is always its sender
(nobody can hold more of a feed than its author publishes). A claim more than
:data:`MAX_CLAIM_AHEAD` beyond what we hold is ignored. A sender that claims more than we
hold but delivers nothing new for ``stall_ms`` is replaced and *penalised*: it is passed
over for that feed for :data:`PENALTY_MS`, doubling with each repeat. A sender that has
caught us up is not replaced merely because another peer claims more: that peer must
first be the best credible source, and then it too must deliver or be penalised.

On the sending side a peer's send notes become *wants*: we send what we hold beyond the
seq they said, in order, and from then on every new entry of that feed (live). A standby
note withdraws the want.

The wire messages of a session (``{"clock": ...}`` and ``{"entries": ...}``) are checked
by :func:`parse_message`; which of two connections to one peer to keep is
:func:`keep_new_connection`; whether a stored batch's outcome cuts the peer off is
:func:`cut_off_reason`.

The :class:`Replicator` class makes the per-feed decisions only. It holds no sockets,
reads no clock (``now`` is passed in) and touches no store: the shell feeds it events
(:meth:`peer_connected`,
:meth:`notes_received`, :meth:`entries_stored`, :meth:`tick`, ...) and drains what to do
(:meth:`take_notes`, :meth:`to_send`, then reports :meth:`sent`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from p2psocial.errors import RemoteProtocolError
from p2psocial.feed.content import MAX_CONTENT_SIZE
from p2psocial.feed.entry import MAX_ENTRY_SIZE

NOT_REPLICATING = -1
FORKED = -2
MAX_NOTE = (1 << 63) - 1
DEFAULT_STALL_MS = 5_000
MAX_CLAIM_AHEAD = 1_000_000
"""A peer's claim to hold a feed this far beyond what we hold is not trusted: it is not
asked to send, and its claim counts for nothing (an honest feed grows by a few entries a
day; a claim of 2**40 is a lie)."""
PENALTY_MS = 60_000
"""How long a peer that did not deliver what it claimed is passed over for that feed; the
time doubles with each repeat (up to :data:`MAX_PENALTY_MS`)."""
MAX_PENALTY_MS = 3_600_000

PeerId = Hashable

SEND_BATCH_ENTRIES = 1000
"""Most entries we put in one ``entries`` message."""
SEND_BATCH_BYTES = 512 * 1024
"""A batch we send stops growing once it holds this many bytes."""
MAX_BATCH_ENTRIES = 10 * SEND_BATCH_ENTRIES
"""Most entries a peer may put in one ``entries`` message."""

Items = list[tuple[bytes, bytes | None]]


def parse_message(message: object) -> tuple[dict[Any, Any] | None, Items | None]:
    """(clock notes, entries) of one replication message; either may be None.

    The notes are checked by :meth:`Replicator.notes_received`. Raises RemoteProtocolError
    for a message that is not a map, a clock that is not a map, or a malformed batch."""
    if not isinstance(message, dict):
        raise RemoteProtocolError("replication message must be a map")
    clock = message.get("clock")
    if clock is not None and not isinstance(clock, dict):
        raise RemoteProtocolError("clock must be a map of feed to note")
    entries = message.get("entries")
    return clock, (parse_batch(entries) if entries is not None else None)


def parse_batch(value: object) -> Items:
    """The ``[entry, content]`` pairs of a batch; RemoteProtocolError if it is malformed."""
    if not isinstance(value, list) or len(value) > MAX_BATCH_ENTRIES:
        raise RemoteProtocolError(f"entries must be a list of at most {MAX_BATCH_ENTRIES} pairs")
    items: Items = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise RemoteProtocolError("each entry must be an [entry, content] pair")
        raw, content = pair
        if type(raw) is not bytes or len(raw) > MAX_ENTRY_SIZE:
            raise RemoteProtocolError(f"entry must be bytes of at most {MAX_ENTRY_SIZE}")
        if content is not None and (type(content) is not bytes or len(content) > MAX_CONTENT_SIZE):
            raise RemoteProtocolError(f"content must be nil or bytes of at most {MAX_CONTENT_SIZE}")
        items.append((raw, content))
    return items


def keep_new_connection(me: bytes, new_dialler: bytes, existing_dialler: bytes) -> bool:
    """Two connections to one peer (both sides dialled): keep the one dialled by the smaller
    key, so both sides make the same choice. ``*_dialler``: the key that dialled each."""
    return new_dialler < existing_dialler


def cut_off_reason(errors: Mapping[str, str], forks: int) -> str | None:
    """Why a peer must be cut off after a stored batch, or None: any rejected run (per
    feed id, its error) or any fork proof it delivered is a reason."""
    problems = [f"{feed}: {error}" for feed, error in errors.items()]
    if forks:
        problems.append("sent a forked feed's entry")
    return "; ".join(problems) if problems else None


def make_note(seq: int, send: bool) -> int:
    """The note for 'I hold up to ``seq``', asking to be sent the rest or not."""
    return (seq << 1) | (0 if send else 1)


def parse_note(value: object) -> tuple[int, bool] | None:
    """(seq, send) of a note; None for 'not replicating' or 'forked'.

    Raises RemoteProtocolError for anything that is not a valid note."""
    if type(value) is not int or value < FORKED or value > MAX_NOTE:
        raise RemoteProtocolError(f"invalid replication note {value!r}")
    if value < 0:
        return None
    return value >> 1, not (value & 1)


@dataclass
class PeerState:
    """What we know of one connected peer."""

    has: dict[bytes, int] = field(default_factory=dict)
    """Per feed, how far the peer says it holds it (from its notes, raised as we send)."""
    wants: dict[bytes, int] = field(default_factory=dict)
    """Feeds the peer asked us to send, and the seq it holds (raised as we send)."""
    outbox: dict[bytes, int] = field(default_factory=dict)
    """Notes to send it, not yet taken by the shell."""
    told: dict[bytes, int] = field(default_factory=dict)
    """The last note we sent it per feed."""
    key: bytes | None = None
    """The peer's own feed key (its feed it is the author of), if known."""
    floor: dict[bytes, int] = field(default_factory=dict)
    """Per feed, the seq of the first note we sent it: entries at or below it are ones we
    told it we hold, so sending them is a protocol violation."""


class Replicator:
    """Replication decisions for one node across all its connected peers."""

    def __init__(
        self,
        held: Mapping[bytes, int],
        wanted: Iterable[bytes],
        forked: Iterable[bytes] = (),
        *,
        stall_ms: int = DEFAULT_STALL_MS,
    ) -> None:
        self.held: dict[bytes, int] = dict(held)
        """Our latest seq of every feed we hold (serving), whether wanted or not."""
        self.wanted: set[bytes] = set(wanted)
        self.forked: set[bytes] = set(forked)
        self.stall_ms = stall_ms
        self.peers: dict[PeerId, PeerState] = {}
        self.sender: dict[bytes, PeerId] = {}
        self._progress: dict[bytes, int] = {}
        self._penalised: dict[tuple[Hashable, bytes], int] = {}
        """(peer key, feed) -> until when (ms) the peer is passed over for the feed."""
        self._strikes: dict[Hashable, int] = {}
        self.gaps: dict[bytes, int] = {}
        """Per feed, the first seq we hold without its content: our notes say we hold the
        feed only up to just before it, so the sender sends the rest again, content and
        all (a relay that dropped content cannot make it disappear for good)."""
        """Per peer key (or peer), how often it failed to deliver: its penalty doubles."""

    # ------------------------------------------------------------------ helpers

    def _ours(self, feed: bytes) -> int:
        return self.held.get(feed, 0)

    def _noted(self, feed: bytes) -> int:
        """The seq our notes give for ``feed``: what we hold whole, content included."""
        ours = self.held.get(feed, 0)
        gap = self.gaps.get(feed)
        return ours if gap is None else min(ours, gap - 1)

    def content_missing(self, feed: bytes, first: int | None) -> None:
        """The first seq of ``feed`` we hold without content is now ``first`` (None: no
        content is missing)."""
        if first is None:
            self.gaps.pop(feed, None)
        else:
            self.gaps[feed] = first

    def _tell(self, peer: PeerId, feed: bytes, value: int) -> None:
        state = self.peers[peer]
        if state.told.get(feed) != value:
            state.outbox[feed] = value
            state.told[feed] = value
            if value >= 0 and feed not in state.floor:
                state.floor[feed] = value >> 1

    def _author_of(self, feed: bytes) -> PeerId | None:
        """The connected peer that is the feed's author, if any."""
        for peer, state in self.peers.items():
            if state.key == feed:
                return peer
        return None

    def _who(self, peer: PeerId) -> Hashable:
        """What a penalty sticks to: the peer's key (so reconnecting does not clear it)."""
        state = self.peers.get(peer)
        return state.key if state is not None and state.key is not None else peer

    def _trusted(self, peer: PeerId, feed: bytes, now: int | None) -> bool:
        until = self._penalised.get((self._who(peer), feed))
        return until is None or (now is not None and now >= until)

    def _credible(self, feed: bytes, seq: int) -> bool:
        return seq - self._ours(feed) <= MAX_CLAIM_AHEAD

    def _promising(self, peer: PeerId, feed: bytes) -> bool:
        """Whether the sender of ``feed`` is worth keeping for a newcomer with more: it is
        the author, or its own claim is credible and beyond what we hold. A sender chosen
        before it said anything (the first connected peer), or one whose claim is a lie,
        gives the feed up at once to a peer with a credible claim."""
        state = self.peers[peer]
        claim = state.has.get(feed)
        if state.key == feed:
            return True
        return claim is not None and claim > self._ours(feed) and self._credible(feed, claim)

    def _penalise(self, peer: PeerId, feed: bytes, now: int) -> None:
        who = self._who(peer)
        strikes = self._strikes.get(who, 0)
        self._strikes[who] = strikes + 1
        self._penalised[(who, feed)] = now + min(MAX_PENALTY_MS, PENALTY_MS << min(strikes, 16))

    def _designate(self, feed: bytes, peer: PeerId, now: int) -> None:
        old = self.sender.get(feed)
        if old is not None and old != peer and old in self.peers:
            self._tell(old, feed, make_note(self._noted(feed), send=False))
        self.sender[feed] = peer
        self._progress[feed] = now
        self._tell(peer, feed, make_note(self._noted(feed), send=True))

    def _note_for(self, peer: PeerId, feed: bytes) -> int:
        if feed in self.forked:
            return FORKED
        return make_note(self._noted(feed), send=self.sender.get(feed) == peer)

    # ------------------------------------------------------------------ events

    def peer_connected(self, peer: PeerId, now: int, key: bytes | None = None) -> None:
        """A peer is ready: tell it our clock, and make it the sender of every wanted feed
        that has none yet, and of its own feed (``key``: its feed key) whoever had it."""
        if peer in self.peers:
            raise ValueError(f"peer {peer!r} is already connected")
        self.peers[peer] = PeerState(key=key)
        if key is not None and key in self.wanted and key not in self.forked:
            if key in self.sender:
                self._designate(key, peer, now)  # the author wins its own feed
        for feed in sorted(self.wanted | self.forked):
            if feed in self.wanted and feed not in self.forked and feed not in self.sender:
                self.sender[feed] = peer
                self._progress[feed] = now
            self._tell(peer, feed, self._note_for(peer, feed))

    def peer_disconnected(self, peer: PeerId, now: int) -> None:
        """A peer is gone: hand the feeds it was sending us to other peers."""
        self.peers.pop(peer, None)
        for feed in [f for f, p in self.sender.items() if p == peer]:
            del self.sender[feed]
            replacement = self._choose(feed, now, exclude=peer)
            if replacement is not None:
                self._designate(feed, replacement, now)

    def notes_received(self, peer: PeerId, notes: Mapping[bytes, object], now: int) -> None:
        """A peer's notes arrived. Raises RemoteProtocolError for a malformed note."""
        state = self.peers[peer]
        for feed, value in notes.items():
            if type(feed) is not bytes or len(feed) != 32:
                raise RemoteProtocolError("replication note for a malformed feed key")
            parsed = parse_note(value)
            if parsed is None:
                state.has.pop(feed, None)
                state.wants.pop(feed, None)
                continue
            seq, send = parsed
            state.has[feed] = max(seq, state.has.get(feed, 0))
            if send and feed not in self.forked:
                state.wants[feed] = seq
            else:
                state.wants.pop(feed, None)
            if feed in self.wanted and feed not in self.forked:
                current = self.sender.get(feed)
                if state.key == feed and current != peer and self._trusted(peer, feed, now):
                    self._designate(feed, peer, now)  # the author wins its own feed
                elif (
                    current != peer
                    and seq > self._ours(feed)
                    and self._credible(feed, seq)
                    and self._trusted(peer, feed, now)
                    and (current is None or not self._promising(current, feed))
                ):
                    self._designate(feed, peer, now)
                elif feed not in state.told:
                    self._tell(peer, feed, self._note_for(peer, feed))

    def entries_stored(self, feed: bytes, seq: int, now: int) -> None:
        """We now hold ``feed`` up to ``seq`` (received, or published by us)."""
        if seq > self._ours(feed):
            self.held[feed] = seq
            self._progress[feed] = now

    def feed_forked(self, feed: bytes) -> None:
        """``feed`` turned out forked: stop replicating it, tell every peer."""
        self.forked.add(feed)
        self.sender.pop(feed, None)
        for peer, state in self.peers.items():
            state.wants.pop(feed, None)
            self._tell(peer, feed, FORKED)

    def set_wanted(self, wanted: Iterable[bytes], now: int) -> None:
        """The set of feeds we replicate changed (follows, blocks)."""
        wanted = set(wanted)
        for feed in self.wanted - wanted:
            self.sender.pop(feed, None)
            for peer in self.peers:
                self._tell(peer, feed, NOT_REPLICATING)
        for feed in wanted - self.wanted:
            if feed in self.forked:
                continue
            source = self._choose(feed, now)
            for peer in self.peers:
                if peer != source:
                    self._tell(peer, feed, make_note(self._noted(feed), send=False))
            if source is not None:
                self._designate(feed, source, now)
        self.wanted = wanted

    def forget_feed(self, feed: bytes) -> None:
        """We no longer hold ``feed`` at all (blocked and purged)."""
        self.held.pop(feed, None)
        for state in self.peers.values():
            state.wants.pop(feed, None)

    def tick(self, now: int) -> None:
        """Replace (and penalise) senders that claim more than they deliver; move a feed to
        a better credible source; let standby peers know our progress."""
        for feed in self.wanted:
            if feed in self.forked:
                continue
            ours = self._ours(feed)
            current = self.sender.get(feed)
            if current is None:
                best = self._choose(feed, now)
                if best is not None:
                    self._designate(feed, best, now)
                continue
            if now - self._progress.get(feed, now) < self.stall_ms:
                continue
            owed = self.peers[current].has.get(feed, 0) > ours
            if owed:  # it claimed more than it delivered within the deadline
                self._penalise(current, feed, now)
            elif self.peers[current].key == feed:
                self._progress[feed] = now  # the author, caught up: nobody knows better
                continue
            best = self._best_source(feed, now, exclude=current)
            if best is None and owed:
                best = self._choose(feed, now, exclude=current)
            if best is not None:
                self._designate(feed, best, now)
            else:
                self._progress[feed] = now
        for peer, state in self.peers.items():
            for feed in state.has:
                if feed in self.held and self.sender.get(feed) != peer:
                    self._tell(peer, feed, self._note_for(peer, feed))

    def _best_source(
        self, feed: bytes, now: int | None = None, exclude: PeerId | None = None
    ) -> PeerId | None:
        """The connected, trusted peer with the most credible claim of ``feed`` beyond us:
        the author if it has any."""
        ours = self._ours(feed)
        best, best_seq = None, ours
        for peer, state in self.peers.items():
            seq = state.has.get(feed, 0)
            if peer == exclude or not self._trusted(peer, feed, now):
                continue
            if seq > ours and state.key == feed:
                return peer
            if seq > best_seq and self._credible(feed, seq):
                best, best_seq = peer, seq
        return best

    def _choose(self, feed: bytes, now: int, exclude: PeerId | None = None) -> PeerId | None:
        """Who to ask for ``feed`` now: the author if connected and trusted, else the best
        credible source, else any trusted connected peer (it sends what it gets later)."""
        author = self._author_of(feed)
        if author is not None and author != exclude and self._trusted(author, feed, now):
            return author
        best = self._best_source(feed, now, exclude)
        if best is not None:
            return best
        for peer in self.peers:
            if peer != exclude and self._trusted(peer, feed, now):
                return peer
        return None

    def floors(self, peer: PeerId) -> Mapping[bytes, int]:
        """Per feed, the seq at or below which ``peer`` may send us nothing (see
        :meth:`below_floor`); empty for an unknown peer."""
        state = self.peers.get(peer)
        return state.floor if state is not None else {}

    def below_floor(self, peer: PeerId, feed: bytes, seq: int) -> bool:
        """Whether entry ``seq`` of ``feed`` from ``peer`` is one we told it we hold (a
        protocol violation: replaying entries we have)."""
        state = self.peers.get(peer)
        floor = state.floor.get(feed) if state is not None else None
        return floor is not None and seq <= floor

    # ------------------------------------------------------------------ reports

    def peer_progress(self, peer: PeerId) -> dict[str, int]:
        """For ``peers``: how many feeds ``peer`` sends us, how many entries it says it has
        beyond ours of those, and how many feeds it wants from us."""
        state = self.peers.get(peer)
        feeds_from = [f for f, p in self.sender.items() if p == peer]
        behind = 0
        if state is not None:
            for feed in feeds_from:
                claim = state.has.get(feed, 0)
                if self._credible(feed, claim):
                    behind += max(0, claim - self._ours(feed))
        return {
            "feeds_from_peer": len(feeds_from),
            "entries_to_receive": behind,
            "wants_from_us": len(state.wants) if state else 0,
        }

    def progress(self) -> dict[str, int]:
        """Totals over the feeds we want: how many, how many we hold something of, and how
        many entries the best connected peer says it has beyond ours."""
        behind = 0
        for feed in self.wanted:
            claims = (s.has.get(feed, 0) for s in self.peers.values())
            best = max((c for c in claims if self._credible(feed, c)), default=0)
            behind += max(0, best - self._ours(feed))
        return {
            "feeds_wanted": len(self.wanted),
            "feeds_held": sum(1 for f in self.wanted if self._ours(f) > 0),
            "entries_behind": behind,
        }

    # ------------------------------------------------------------------ outputs

    def take_notes(self, peer: PeerId) -> dict[bytes, int]:
        """Notes to send to ``peer`` now (emptied by the call)."""
        state = self.peers.get(peer)
        if state is None or not state.outbox:
            return {}
        notes, state.outbox = state.outbox, {}
        return notes

    def to_send(self, peer: PeerId) -> dict[bytes, int]:
        """Feeds ``peer`` wants that we hold further: feed -> the seq it holds."""
        state = self.peers.get(peer)
        if state is None:
            return {}
        return {
            feed: seq
            for feed, seq in state.wants.items()
            if self.held.get(feed, 0) > seq and feed not in self.forked
        }

    def sent(self, peer: PeerId, feed: bytes, seq: int) -> None:
        """We sent ``peer`` ``feed`` up to ``seq``."""
        state = self.peers.get(peer)
        if state is not None:
            if feed in state.wants:
                state.wants[feed] = max(seq, state.wants[feed])
            state.has[feed] = max(seq, state.has.get(feed, 0))
