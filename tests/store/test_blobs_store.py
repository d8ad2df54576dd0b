"""Blobs in the store (#13): the attachment rules (msgtypes/blobs.py, post.py), the
``blobrefs`` view on real feeds, and what store/blobs.py says to fetch, keep and drop."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from p2psocial.errors import UnpublishableContent
from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.identity import Keypair, blob_id, feed_id, message_id
from p2psocial.msgtypes.blobs import (
    AVATAR,
    FULL,
    MAX_ALT,
    MAX_ATTACHMENTS,
    MAX_NAME,
    THUMB,
    BlobRef,
    attachment,
    attachments,
    blob_refs,
    check_attachment,
    is_attachment,
)
from p2psocial.msgtypes.registry import check_publish
from p2psocial.proto.privatebox import seal_content
from p2psocial.store.store import Store
from tests.helpers import make_keys

ME, BOB, CAROL, DAVE = make_keys(81), make_keys(82), make_keys(83), make_keys(84)
KEY = bytes(range(32))


def h(name: str) -> bytes:
    """A blob's sha256 (of some bytes named ``name``)."""
    return hashlib.sha256(name.encode()).digest()


def picture(name: str, *, thumb: str | None = None, key: bytes | None = None) -> dict[str, Any]:
    """An attachment entry for blob ``h(name)``, with a thumbnail ``h(thumb)``."""
    small = None
    if thumb is not None:
        small = {"link": blob_id(h(thumb)), "type": "image/jpeg", "size": 100}
    return attachment(
        h(name),
        media_type="image/jpeg",
        name=f"{name}.jpg",
        size=1000,
        width=640,
        height=480,
        alt=f"a picture of {name}",
        thumbnail=small,
        key=key,
    )


def post(text: str, *pictures: object, **fields: Any) -> dict[str, Any]:
    content: dict[str, Any] = {"type": "post", "text": text, **fields}
    if pictures:
        content["mentions"] = list(pictures)
    return content


def about(keys: Keypair, avatar: str) -> dict[str, Any]:
    return {"type": "about", "about": keys.feed_id, "avatar": blob_id(h(avatar))}


def _seq_rng(seed: bytes) -> Any:
    counter = [0]

    def rng(n: int) -> bytes:
        counter[0] += 1
        return hashlib.sha256(seed + counter[0].to_bytes(4, "big")).digest()[:n]

    return rng


class World:
    """Our store, our publishes, and others' real signed feeds arriving as peers' batches,
    each later than the one before."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.heads: dict[bytes, tuple[int, bytes | None]] = {}
        self.clock = 1_000_000

    def tick(self) -> int:
        self.clock += 1000
        return self.clock

    def mine(self, content: dict[str, Any]) -> str:
        check_publish(content, ME.public)
        return message_id(self.store.publish(ME, content, self.tick()).entry.id)

    def add(self, keys: Keypair, *contents: object) -> list[str]:
        items = []
        for content in contents:
            seq, previous = self.heads.get(keys.public, (0, None))
            data = encode_content(content)  # type: ignore[arg-type]
            entry = create_entry(keys, seq + 1, previous, self.tick(), data)
            self.heads[keys.public] = (seq + 1, entry.id)
            items.append((entry.raw, data))
        result = self.store.append_batch(items, now_ms=self.tick())
        assert not result.errors, result.errors
        return [message_id(a.entry.id) for a in result.stored]

    def private(self, keys: Keypair, to: list[Keypair], inner: dict[str, Any]) -> str:
        """``keys`` sends ``inner`` privately to ``to``; its id."""
        readers = [keys.public] + [k.public for k in to]
        inner = {**inner, "recps": [feed_id(k) for k in readers]}
        sealed = seal_content(inner, readers, rng_bytes=_seq_rng(self.tick().to_bytes(8, "big")))
        [msg] = self.add(keys, sealed)
        return msg

    def refs(self) -> set[tuple[bytes, str, bytes, int | None, bytes | None]]:
        rows = self.store._conn.execute(
            "SELECT blob, kind, author, size, key FROM blobrefs"
        ).fetchall()
        return {tuple(r) for r in rows}


@pytest.fixture
def world(tmp_path: Path):
    s = Store.open(tmp_path / "store.sqlite", owner=ME)
    yield World(s)
    s.close()


NEAR = {ME.public, BOB.public}
"""Whose blobs the daemon fetches in these tests: ours and those of a feed we follow."""


# ---------------------------------------------------------------------------- attachment rules


def test_an_attachment_entry() -> None:
    item = picture("cat", thumb="cat-small", key=KEY)
    assert item == {
        "link": blob_id(h("cat")),
        "type": "image/jpeg",
        "name": "cat.jpg",
        "size": 1000,
        "width": 640,
        "height": 480,
        "alt": "a picture of cat",
        "thumbnail": {"link": blob_id(h("cat-small")), "type": "image/jpeg", "size": 100},
        "key": base64.b64encode(KEY).decode(),
    }
    assert check_attachment(item) is None
    plain = attachment(h("x"), media_type="text/plain", name="x.txt", size=0, width=5)
    assert plain == {"link": blob_id(h("x")), "type": "text/plain", "name": "x.txt", "size": 0}
    assert check_attachment(plain) is None


def _broken(**changes: Any) -> dict[str, Any]:
    item = picture("cat", thumb="cat-small")
    for name, value in changes.items():
        if value is None:
            del item[name]
        else:
            item[name] = value
    return item


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        (_broken(link="&nope.sha256"), "'link' must be a blob id"),
        (_broken(link=message_id(h("m"))), "'link' must be a blob id"),
        (_broken(type=None), "needs 'type'"),
        (_broken(type=""), "'type' must be text"),
        (_broken(type=" "), "'type' must be text"),
        (_broken(type=7), "'type' must be text"),
        (_broken(type="x" * 101), "'type' must be text"),
        (_broken(size=None), "'size' must be a number"),
        (_broken(size=-1), "'size' must be a number"),
        (_broken(size=True), "'size' must be a number"),
        (_broken(size=1.5), "'size' must be a number"),
        (_broken(width=0), "'width' must be a positive"),
        (_broken(height=-3), "'height' must be a positive"),
        (_broken(height=True), "'height' must be a positive"),
        (_broken(name=None), "needs 'name'"),
        (_broken(name="x" * (MAX_NAME + 1)), "'name' must be text"),
        (_broken(alt=""), "'alt' must be text"),
        (_broken(alt="x" * (MAX_ALT + 1)), "'alt' must be text"),
        (_broken(key="short"), "'key' must be the base64 of 32 bytes"),
        (_broken(key=base64.b64encode(bytes(31)).decode()), "'key' must be the base64"),
        (_broken(key=KEY), "'key' must be the base64"),
        (_broken(thumbnail="&x"), "'thumbnail' must be a map"),
        (_broken(thumbnail={"link": "&x", "type": "image/png", "size": 1}), "a thumbnail's"),
        (_broken(thumbnail={"link": blob_id(h("t")), "size": 1}), "a thumbnail's needs 'type'"),
        (_broken(thumbnail={"link": blob_id(h("t")), "type": "i/p"}), "a thumbnail's 'size'"),
        (_broken(exif="secret"), "unknown field"),
    ],
)
def test_attachment_rules(item: dict[str, Any], needle: str) -> None:
    problem = check_attachment(item)
    assert problem is not None and needle in problem, problem
    if is_attachment(item):  # otherwise it is not taken as one (see the test below)
        with pytest.raises(UnpublishableContent, match=needle.replace("(", r"\(")):
            check_publish(post("look", item))


def test_the_longest_texts_are_allowed() -> None:
    assert check_attachment(_broken(name="n" * MAX_NAME, alt="a" * MAX_ALT)) is None


def test_a_post_attaches_at_most_four_blobs() -> None:
    four = [picture(f"p{n}", thumb=f"t{n}") for n in range(MAX_ATTACHMENTS)]
    content = post("four", *four)
    content["mentions"].append(BOB.feed_id)  # thumbnails and other mentions do not count
    check_publish(content)
    content["mentions"].append(picture("one more"))
    with pytest.raises(UnpublishableContent, match=f"attaches {MAX_ATTACHMENTS + 1} blobs"):
        check_publish(content)


def test_a_post_with_attachments_and_other_mentions() -> None:
    content = post("look", picture("cat"))
    content["mentions"] += [BOB.feed_id, {"link": CAROL.feed_id}, message_id(h("m"))]
    check_publish(content)
    with pytest.raises(UnpublishableContent, match="mentions"):
        check_publish(post("look", {"link": "&nope.sha256", "type": "image/png"}))
    # A map linking a message is a mention of it, whatever else it holds: not an attachment.
    linked = {"link": message_id(h("m")), "type": "image/png", "exif": 1}
    assert not is_attachment(linked)
    check_publish(post("look", linked))
    assert blob_refs(post("look", linked)) == []


def test_blob_refs_of_content() -> None:
    content = post(
        "look",
        picture("a", thumb="a-small", key=KEY),
        {"link": blob_id(h("b")), "size": "big", "thumbnail": "nope"},  # malformed: a ref
        {"link": "&nope.sha256"},
        BOB.feed_id,
    )
    assert blob_refs(content) == [
        BlobRef(h("a"), FULL, 1000, KEY),
        BlobRef(h("a-small"), THUMB, 100, KEY),
        BlobRef(h("b"), FULL, None, None),
    ]
    assert attachments(content) == [content["mentions"][0]]
    assert blob_refs(about(BOB, "face")) == [BlobRef(h("face"), AVATAR, None)]
    assert blob_refs({"type": "about", "about": BOB.feed_id, "avatar": "&x"}) == []
    assert blob_refs({"type": "post", "text": "x", "mentions": "nope"}) == []
    assert attachments({"type": "post", "text": "x"}) == []


# ---------------------------------------------------------------------------- blobrefs


def test_posts_and_profiles_give_refs(world: World) -> None:
    world.mine(post("my cat", picture("cat", thumb="cat-small")))
    world.add(BOB, about(BOB, "bob-face"), post("plain text"))
    assert world.refs() == {
        (h("cat"), FULL, ME.public, 1000, None),
        (h("cat-small"), THUMB, ME.public, 100, None),
        (h("bob-face"), AVATAR, BOB.public, None, None),
    }
    assert world.store.blob_referrers(h("cat")) == {ME.public}
    assert world.store.blob_referrers(h("nothing")) == set()
    before = world.refs()
    world.store.rebuild("blobrefs")
    assert world.refs() == before


def test_a_public_post_s_key_is_not_kept(world: World) -> None:
    world.add(BOB, post("oops", picture("cat", key=KEY)))
    assert world.refs() == {(h("cat"), FULL, BOB.public, 1000, None)}
    assert world.store.blob_keys(h("cat")) == []


def test_a_private_attachment_s_key(world: World) -> None:
    world.private(CAROL, [ME], post("for you", picture("secret", thumb="secret-small", key=KEY)))
    world.private(CAROL, [DAVE], post("not for us", picture("other", key=bytes(32))))
    assert world.store.blob_keys(h("secret")) == [KEY]
    assert world.store.blob_keys(h("secret-small")) == [KEY]
    assert world.store.blob_keys(h("other")) == []
    assert {r[0] for r in world.refs()} == {h("secret"), h("secret-small")}
    # Carol is not followed, but the message is to us: fetched.
    assert world.store.wanted_blobs(NEAR) == {h("secret"): 1, h("secret-small"): 0}
    before = world.refs()
    world.store.rebuild("blobrefs")  # reopened with our key
    assert world.refs() == before


def test_our_own_private_attachment(world: World) -> None:
    inner = post("for bob", picture("ours", key=KEY))
    inner["recps"] = [ME.feed_id, BOB.feed_id]
    sealed = seal_content(inner, [ME.public, BOB.public], rng_bytes=_seq_rng(b"ours"))
    world.store.publish(ME, sealed, world.tick(), opened=(encode_content(inner), inner))
    assert world.store.blob_keys(h("ours")) == [KEY]
    assert world.refs() == {(h("ours"), FULL, ME.public, 1000, KEY)}


def test_wanted_blobs_thumbnails_first(world: World) -> None:
    world.mine(post("mine", picture("mine", thumb="mine-small")))
    world.add(BOB, about(BOB, "bob-face"), post("bob's", picture("bob")))
    world.add(CAROL, post("carol's", picture("carol", thumb="carol-small")), about(CAROL, "c"))
    wanted = world.store.wanted_blobs(NEAR)
    assert wanted == {
        h("mine"): 1,
        h("mine-small"): 0,
        h("bob-face"): 0,
        h("bob"): 1,
    }
    assert list(wanted)[:1] == [h("bob")]  # the newest references first
    assert len(world.store.wanted_blobs(NEAR, limit=2)) == 2
    assert world.store.wanted_blobs(set()) == {}
    world.store.blob_stored(h("mine-small"), 100, world.tick())
    world.store.blob_stored(h("bob"), 1000, world.tick(), relay=True)
    assert world.store.wanted_blobs(NEAR) == {h("mine"): 1, h("bob-face"): 0}


def test_a_blob_both_full_and_thumbnail_is_wanted_first(world: World) -> None:
    world.mine(post("big", picture("pic")))
    world.mine(post("small", picture("other", thumb="pic")))
    assert world.store.wanted_blobs(NEAR)[h("pic")] == 0


def test_a_deleted_post_s_blobs_become_orphans(world: World) -> None:
    mine = world.mine(post("mine", picture("cat", thumb="cat-small")))
    [bobs] = world.add(BOB, post("bob's", picture("dog")))
    world.mine(post("again", picture("shared")))
    world.add(BOB, post("shared too", picture("shared")))
    store = world.store
    for name in ("cat", "cat-small", "dog", "shared"):
        store.blob_stored(h(name), 10, world.tick())
    assert store.orphan_blobs() == []
    world.mine({"type": "delete", "delete": mine})
    assert sorted(store.orphan_blobs()) == sorted([h("cat"), h("cat-small")])
    world.add(BOB, {"type": "delete", "delete": bobs})
    assert sorted(store.orphan_blobs()) == sorted([h("cat"), h("cat-small"), h("dog")])
    assert store.wanted_blobs(NEAR) == {}
    assert store.blob_referrers(h("shared")) == {ME.public, BOB.public}
    assert store.held_blob(h("shared")).referenced == 2  # type: ignore[union-attr]
    assert store.held_blob(h("dog")).referenced == 0  # type: ignore[union-attr]


def test_a_post_deleted_in_its_own_batch_refers_to_nothing(world: World) -> None:
    data = encode_content(post("gone", picture("dog")))
    first = create_entry(BOB, 1, None, 5000, data)
    delete = encode_content({"type": "delete", "delete": message_id(first.id)})
    second = create_entry(BOB, 2, first.id, 6000, delete)
    result = world.store.append_batch([(first.raw, data), (second.raw, delete)], now_ms=7000)
    assert not result.errors
    assert len(result.stored) == 2
    assert world.refs() == set()


def test_pinned_and_relay_blobs_are_never_orphans(world: World) -> None:
    store = world.store
    store.blob_stored(h("ours"), 10, world.tick(), pinned=True)
    store.blob_stored(h("relayed"), 10, world.tick(), relay=True)
    store.blob_stored(h("loose"), 10, world.tick())
    assert store.orphan_blobs() == [h("loose")]


def test_a_purged_feed_s_refs_go(world: World) -> None:
    world.add(BOB, post("bob's", picture("dog")), about(BOB, "bob-face"))
    world.add(CAROL, post("carol's", picture("bird")))
    for name in ("dog", "bob-face", "bird"):
        world.store.blob_stored(h(name), 10, world.tick())
    world.store.purge_feed(BOB.public)
    assert sorted(world.store.orphan_blobs()) == sorted([h("dog"), h("bob-face")])
    assert {r[2] for r in world.refs()} == {CAROL.public}


# ---------------------------------------------------------------------------- held blobs


def test_blob_stored_upserts(world: World) -> None:
    store = world.store
    store.blob_stored(h("b"), 10, 100, relay=True)
    held = store.held_blob(h("b"))
    assert held is not None
    assert (held.size, held.stored, held.used, held.pinned, held.relay) == (
        10,
        100,
        100,
        False,
        True,
    )
    store.blob_stored(h("b"), 12, 200, relay=True)  # fetched for a peer again
    held = store.held_blob(h("b"))
    assert held is not None
    assert (held.size, held.stored, held.used, held.relay) == (12, 100, 200, True)
    store.blob_stored(h("b"), 12, 300, pinned=True)  # now we asked for it: ours, no relay
    held = store.held_blob(h("b"))
    assert held is not None and (held.pinned, held.relay, held.used) == (True, False, 300)
    store.blob_stored(h("b"), 12, 400, relay=True)  # neither unpinned nor a relay again
    held = store.held_blob(h("b"))
    assert held is not None and (held.pinned, held.relay, held.stored) == (True, False, 100)
    assert store.held_blob(h("other")) is None


def test_held_blobs_totals_and_sizes(world: World) -> None:
    store = world.store
    assert store.blob_totals() == (0, 0)
    store.blob_stored(h("a"), 10, 100)
    store.blob_stored(h("b"), 20, 200)
    store.blob_stored(h("c"), 30, 300)
    assert [b.blob for b in store.held_blobs()] == [h("c"), h("b"), h("a")]
    assert [b.blob for b in store.held_blobs(limit=1)] == [h("c")]
    assert store.blob_totals() == (3, 60)
    assert store.blob_sizes([h("a"), h("c"), h("nope")]) == {h("a"): 10, h("c"): 30}
    assert store.blob_sizes([]) == {}
    store.blobs_used([h("a")], 999)
    assert store.held_blob(h("a")).used == 999  # type: ignore[union-attr]
    store.blobs_forgotten([h("a"), h("b")])
    assert store.blob_totals() == (1, 30)


def test_reconcile_with_the_folder(world: World) -> None:
    store = world.store
    store.blob_stored(h("kept"), 10, 100, pinned=True)
    store.blob_stored(h("file gone"), 10, 100)
    files = [(h("kept"), 10), (h("row gone"), 7)]
    assert store.reconcile_blobs(files, 500) == (1, 1)
    held = {b.blob: b for b in store.held_blobs()}
    assert set(held) == {h("kept"), h("row gone")}
    assert held[h("kept")].pinned and held[h("kept")].stored == 100
    new = held[h("row gone")]
    assert (new.size, new.stored, new.used, new.pinned, new.relay) == (7, 500, 500, False, False)
    assert store.reconcile_blobs(files, 600) == (0, 0)
    assert store.reconcile_blobs([], 700) == (0, 2)
    assert store.blob_totals() == (0, 0)


def test_reconcile_takes_a_file_s_size(world: World) -> None:
    world.store.blob_stored(h("b"), 10, 100, pinned=True)
    world.store.reconcile_blobs([(h("b"), 15)], 500)
    held = world.store.held_blob(h("b"))
    assert held is not None and (held.size, held.pinned) == (15, True)


# ---------------------------------------------------------------------------- purging


def test_blobs_to_purge_least_recently_used_far_ones_first(world: World) -> None:
    world.mine(post("mine", picture("mine")))
    world.add(BOB, post("near", picture("near-old"), picture("near-new"), picture("both")))
    world.add(CAROL, post("far", picture("far-old"), picture("far-new"), picture("both")))
    world.add(CAROL, post("ours too", picture("mine")))
    store = world.store
    used = {
        "far-new": 50,
        "far-old": 10,
        "near-new": 40,
        "near-old": 20,
        "both": 30,
        "mine": 1,  # ours: never, however old
        "loose": 60,  # no entry refers to it
        "pinned": 0,
    }
    for name, ts in used.items():
        store.blob_stored(h(name), 100, ts, pinned=name == "pinned")
    near = {BOB.public}
    order = store.blobs_to_purge(10**9, ME.public, near)
    assert [b for b, _size in order] == [
        h("far-old"),
        h("far-new"),
        h("loose"),
        h("near-old"),
        h("both"),
        h("near-new"),
    ]
    assert all(size == 100 for _b, size in order)
    assert store.blobs_to_purge(0, ME.public, near) == []
    assert store.blobs_to_purge(1, ME.public, near) == [(h("far-old"), 100)]
    assert store.blobs_to_purge(150, ME.public, near) == [(h("far-old"), 100), (h("far-new"), 100)]
    assert store.blobs_to_purge(200, ME.public, near) == [(h("far-old"), 100), (h("far-new"), 100)]
    # Nothing is near: every blob not ours is in the first tier, by use.
    assert [b for b, _s in store.blobs_to_purge(10**9, ME.public, set())] == [
        h("far-old"),
        h("near-old"),
        h("both"),
        h("near-new"),
        h("far-new"),
        h("loose"),
    ]
