"""The blob exchange, sans-IO: wants and haves in, messages and fetches out.

Theory of operation
-------------------
Every connection carries one ``blobs.wants`` duplex stream (docs/protocol.md section 10).
Both sides send maps ``{blob_id: n}`` on it: ``n < 0`` is a *want* (``-n`` is how many
hops the want has travelled: 1 for the sender's own), ``n >= 0`` a *have* (the blob's size
in bytes). A blob is then fetched with one ``blobs.get`` stream per blob, from whichever
peer said it has it.

:class:`BlobWants` keeps, for one daemon:

- our own wants (blob -> priority; lower goes first: thumbnails and avatars before full
  images), sent to every peer;
- the wants of peers for blobs we do not hold, which we forward one hop further (up to
  :data:`MAX_HOPS`) and answer with a have once we hold the blob; bounded per peer
  (:data:`MAX_PEER_WANTS`: more is a protocol violation, and the peer is cut off);
- which peer has which blob, and so which blobs to fetch from whom (:meth:`next_fetches`),
  at most :data:`MAX_FETCHES` at once, each blob from one peer at a time, another peer
  after a failure.

It does no I/O: the shell (``net/blobs.py``) tells it what it holds, what peers said and
how fetches ended, and carries out :meth:`take_message` and :meth:`next_fetches`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from p2psocial.errors import BadBlob, InvalidId
from p2psocial.identity import blob_id, parse_blob_id

if TYPE_CHECKING:
    from collections.abc import Mapping

MAX_HOPS = 2
"""How far a want travels: our own (1) and one hop on (2)."""
MAX_MESSAGE_ENTRIES = 1000
"""Most wants and haves in one message."""
MAX_PEER_WANTS = 5000
"""Most wants of one peer for blobs we do not hold that we keep (to answer and forward);
one more is a protocol violation."""
MAX_SENT_WANTS = 4000
"""Most of our wants open at one peer (sent, not answered with a have): we stay well under
the peer's MAX_PEER_WANTS. Wants are open until the peer holds the blob or the connection
ends (the protocol has no withdrawal)."""
MAX_SENT_FORWARDED = 2000
"""Of them, wants passed on for other peers (best effort: our own come first)."""
MAX_FETCHES = 8
"""Blob downloads under way at once."""
MAX_PEER_FETCHES = 4
"""Of them, from one peer."""
CHUNK_SIZE = 256 * 1024
"""Bytes per ``blobs.get`` stream item."""


def parse_wants_message(message: object) -> tuple[dict[bytes, int], dict[bytes, int]]:
    """A ``blobs.wants`` message as (wants: blob -> hops, haves: blob -> size). Raises
    BadBlob for anything but a map of at most MAX_MESSAGE_ENTRIES blob ids to integers."""
    if not isinstance(message, dict):
        raise BadBlob(f"a blobs.wants message must be a map, not {type(message).__name__}")
    if len(message) > MAX_MESSAGE_ENTRIES:
        raise BadBlob(
            f"a blobs.wants message has {len(message)} entries; at most "
            f"{MAX_MESSAGE_ENTRIES} are allowed"
        )
    wants: dict[bytes, int] = {}
    haves: dict[bytes, int] = {}
    for key, value in message.items():
        try:
            digest = parse_blob_id(key)
        except InvalidId as exc:
            raise BadBlob(f"a blobs.wants message names a bad blob id: {exc}") from None
        if type(value) is not int:
            raise BadBlob(f"a blobs.wants value must be an integer, not {value!r:.40}")
        if value < 0:
            wants[digest] = -value
        else:
            haves[digest] = value
    return wants, haves


@dataclass
class _PeerState:
    wants: dict[bytes, int] = field(default_factory=dict)
    """Its wants for blobs we do not hold: blob -> hops."""
    haves: dict[bytes, int] = field(default_factory=dict)
    """Blobs it said it has: blob -> size."""
    outbox: dict[str, int] = field(default_factory=dict)
    sent: dict[bytes, int] = field(default_factory=dict)
    """Our wants open at this peer: blob -> the hops we said (see MAX_SENT_WANTS)."""
    fetching: int = 0

    def want(self, blob: bytes, hops: int) -> None:
        """Queue a want for this peer if there is room for it (forwarded ones: less), or
        if it is nearer than the one we sent."""
        said = self.sent.get(blob)
        if said is not None:
            if hops < said:
                self.sent[blob] = hops
                self.outbox[blob_id(blob)] = -hops
            return
        limit = MAX_SENT_WANTS if hops == 1 else MAX_SENT_FORWARDED
        if len(self.sent) < limit:
            self.sent[blob] = hops
            self.outbox[blob_id(blob)] = -hops


@dataclass(frozen=True, slots=True)
class Fetch:
    """Download ``blob`` (``size`` bytes, as the peer said) from ``peer``."""

    blob: bytes
    peer: Any
    size: int


class BlobWants:
    """Wants, haves and fetch decisions of one daemon (see the module docstring)."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.local: dict[bytes, int] = {}
        """Our own wants: blob -> priority (lower first)."""
        self.peers: dict[Any, _PeerState] = {}
        self.fetching: dict[bytes, Any] = {}
        self.failed: dict[bytes, set[Any]] = {}
        """Peers a blob's download failed from (not asked again while connected)."""

    # -- peers

    def peer_connected(self, peer: Any) -> None:
        state = self.peers[peer] = _PeerState()
        for blob in sorted(self.local, key=self.local.__getitem__):
            state.want(blob, 1)
        for blob, hops in self._forwarded().items():
            if hops < MAX_HOPS and blob not in self.local:
                state.want(blob, hops + 1)

    def peer_disconnected(self, peer: Any) -> None:
        """The peer is gone. Its downloads keep their slots until they end
        (:meth:`fetch_ended`): no second download of a blob starts while one still runs."""
        self.peers.pop(peer, None)
        for blob in list(self.failed):
            self.failed[blob].discard(peer)
            if not self.failed[blob]:
                del self.failed[blob]

    def _forwarded(self) -> dict[bytes, int]:
        """Blobs peers want that we do not hold: blob -> the fewest hops it came."""
        out: dict[bytes, int] = {}
        for state in self.peers.values():
            for blob, hops in state.wants.items():
                out[blob] = min(hops, out.get(blob, hops))
        return out

    # -- our own wants

    def set_wanted(self, wanted: Mapping[bytes, int]) -> None:
        """Our wants are now ``wanted`` (blob -> priority); new ones go to every peer."""
        new = [blob for blob in wanted if blob not in self.local]
        self.local = dict(wanted)
        for blob in sorted(new, key=self.local.__getitem__):
            self._tell_all(blob, 1)
        forwarded = self._forwarded()
        for state in self.peers.values():  # haves of blobs nobody wants any more go
            state.haves = {
                b: size for b, size in state.haves.items() if b in self.local or b in forwarded
            }

    def want(self, blob: bytes, priority: int = -1) -> None:
        """Want one more blob (asked for by the user: before the rest by default)."""
        if blob not in self.local:
            self._tell_all(blob, 1)
        self.local[blob] = min(priority, self.local.get(blob, priority))

    def _tell_all(self, blob: bytes, hops: int, but: Any = None) -> None:
        """Want ``blob`` of every peer (but ``but``), ``hops`` away from who wants it."""
        for peer, state in self.peers.items():
            if peer != but:
                state.want(blob, hops)

    # -- what peers say

    def wants_received(
        self, peer: Any, wants: Mapping[bytes, int], held: Mapping[bytes, int]
    ) -> None:
        """``peer`` wants these blobs (blob -> hops); ``held``: the sizes of those of them
        we hold and may serve. Raises BadBlob past MAX_PEER_WANTS open wants."""
        state = self.peers[peer]
        forwarded = self._forwarded()
        for blob, hops in wants.items():
            size = held.get(blob)
            if size is not None:
                state.outbox[blob_id(blob)] = size
                continue
            if blob not in state.wants and len(state.wants) >= MAX_PEER_WANTS:
                raise BadBlob(f"more than {MAX_PEER_WANTS} wants of blobs we do not hold at once")
            closest = forwarded.get(blob)
            if hops < MAX_HOPS and blob not in self.local and (closest is None or hops < closest):
                self._tell_all(blob, hops + 1, but=peer)  # new, or nearer than before
                forwarded[blob] = hops
            state.wants[blob] = min(hops, state.wants.get(blob, hops))

    def haves_received(self, peer: Any, haves: Mapping[bytes, int]) -> None:
        """``peer`` has these blobs (blob -> size). Only haves of blobs we (or our peers)
        want and that are within our cap are kept; the rest are ignored."""
        state = self.peers[peer]
        for blob, size in haves.items():
            state.sent.pop(blob, None)  # answered: no longer open at that peer
            state.wants.pop(blob, None)  # it has it: it no longer wants it
            if size > self.max_size:
                continue
            if blob in self.local or any(blob in s.wants for s in self.peers.values()):
                state.haves[blob] = size
        if len(self.local) > len(state.sent):
            self._top_up(state)

    def _top_up(self, state: _PeerState) -> None:
        """Send the peer those of our wants that found no room at it before."""
        for blob in sorted(self.local, key=self.local.__getitem__):
            if len(state.sent) >= MAX_SENT_WANTS:
                return
            if blob not in state.sent and blob not in state.haves:
                state.want(blob, 1)

    def take_message(self, peer: Any) -> dict[str, int] | None:
        """The next message to send ``peer`` (None: nothing to say)."""
        state = self.peers.get(peer)
        if state is None or not state.outbox:
            return None
        items = list(state.outbox.items())[:MAX_MESSAGE_ENTRIES]
        for key, _value in items:
            del state.outbox[key]
        return dict(items)

    # -- fetching

    def next_fetches(self) -> list[Fetch]:
        """Downloads to start now: wanted blobs some peer has, ours first by priority,
        then the ones we fetch for peers."""
        room = MAX_FETCHES - len(self.fetching)
        if room <= 0:
            return []
        order = sorted(self.local, key=self.local.__getitem__)
        order += [b for b in self._forwarded() if b not in self.local]
        starts: list[Fetch] = []
        for blob in order:
            if len(starts) >= room:
                break
            if blob in self.fetching:
                continue
            tried = self.failed.get(blob, set())
            for peer, state in self.peers.items():
                size = state.haves.get(blob)
                if size is None or peer in tried or state.fetching >= MAX_PEER_FETCHES:
                    continue
                if blob in state.wants:
                    continue  # never from the peer that asked us for it
                if size > self.max_size:
                    continue  # over our cap: never fetched
                self.fetching[blob] = peer
                state.fetching += 1
                starts.append(Fetch(blob, peer, size))
                break
        return starts

    def fetch_ended(self, fetch: Fetch, ok: bool, *, blame: bool = True) -> None:
        """A download ended; when ``ok`` the blob is now held (then call :meth:`held`).
        A failure with ``blame`` is not asked of that peer again while it is connected;
        without (bytes of several peers did not hash right), it may be asked again."""
        if self.fetching.get(fetch.blob) == fetch.peer:
            del self.fetching[fetch.blob]
        state = self.peers.get(fetch.peer)
        if state is not None:
            state.fetching = max(0, state.fetching - 1)
            if not ok and blame:
                state.haves.pop(fetch.blob, None)
        if not ok and blame and state is not None:  # a peer gone is forgotten, failures too
            self.failed.setdefault(fetch.blob, set()).add(fetch.peer)

    def held(self, blob: bytes, size: int) -> None:
        """We hold ``blob`` now (fetched or added): stop wanting it, and tell the peers
        that wanted it."""
        self.local.pop(blob, None)
        self.failed.pop(blob, None)
        text = blob_id(blob)
        for state in self.peers.values():
            if state.wants.pop(blob, None) is not None:
                state.outbox[text] = size
            state.haves.pop(blob, None)

    def dropped(self, blob: bytes) -> None:
        """We no longer hold ``blob`` (purged): nothing to do but forget fetch failures."""
        self.failed.pop(blob, None)

    def report(self) -> dict[str, int]:
        return {
            "wanted": len(self.local),
            "fetching": len(self.fetching),
            "wanted_by_peers": len(self._forwarded()),
        }
