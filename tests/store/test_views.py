"""Views: indexing in one batch, batch by batch, and by rebuild() give the same rows."""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.identity import feed_id, message_id
from p2psocial.proto.privatebox import seal_content
from p2psocial.store.schema import LATEST
from p2psocial.store.store import Store
from p2psocial.store.views.contacts import ContactsView
from tests.helpers import make_keys

OWNER = make_keys(1)
AUTHORS = [OWNER, make_keys(2), make_keys(3)]
STRANGER = make_keys(4)
NOW = 2_000_000_000_000
VIEW_TABLES = (
    "contacts",
    "links",
    "inbox",
    "votes",
    "deletions",
    "edits",
    "reposted",
    "channels",
    "notifications",
    "notify_threads",
)


def _rng(seed: bytes) -> Any:
    counter = [0]

    def rng(n: int) -> bytes:
        counter[0] += 1
        return hashlib.sha256(seed + counter[0].to_bytes(4, "big")).digest()[:n]

    return rng


# What an entry says: (kind, author index, target index, flag, reply-to earlier entry?)
actions = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "post",
                "contact",
                "private_to_owner",
                "private_other",
                "other",
                "edit",
                "repost",
                "delete",
                "vote",
            ]
        ),
        st.integers(0, 2),
        st.integers(0, 3),
        st.booleans(),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
)


def build(plan: list[tuple[str, int, int, bool, bool]]) -> list[tuple[bytes, bytes]]:
    """Signed entries (in an order that keeps each feed in sequence), from ``plan``."""
    heads: dict[int, tuple[int, bytes | None]] = {}
    ids: list[str] = []
    out: list[tuple[bytes, bytes]] = []
    everyone = [*AUTHORS, STRANGER]
    for n, (kind, who, target, flag, reply) in enumerate(plan):
        keys = AUTHORS[who]
        value: Any
        root = ids[target % len(ids)] if reply and ids else None
        if kind == "post":
            value = {"type": "post", "text": f"post {n}"}
            if root:
                value["root"] = root
            if flag:
                value["mentions"] = [feed_id(everyone[target].public)]
        elif kind == "contact":
            value = {
                "type": "contact",
                "contact": feed_id(everyone[target].public),
                "following": flag,
                "blocking": not flag and target % 2 == 0,
            }
        elif kind.startswith("private"):
            readers = [keys.public]
            other = OWNER if kind == "private_to_owner" else STRANGER
            if other.public not in readers:
                readers.append(other.public)
            inner: dict[str, Any] = {
                "type": "post",
                "text": f"secret {n}",
                "recps": [feed_id(k) for k in readers],
            }
            if root:
                inner["root"] = root
            value = seal_content(inner, readers, rng_bytes=_rng(n.to_bytes(4, "big")))
        elif kind in ("edit", "delete", "vote") and ids:
            link = ids[target % len(ids)]  # maybe someone else's, maybe not a post
            if kind == "edit":
                value = {"type": "edit", "edit": link, "text": f"edit {n}"}
            elif kind == "delete":
                value = {"type": "delete", "delete": link}
            else:
                value = {"type": "vote", "vote": {"link": link, "value": int(flag)}}
        elif kind == "repost" and ids:
            value = {"type": "repost", "repost": ids[target % len(ids)]}
            if flag:  # carry the original (a private one does not verify as public)
                value["entry"], value["content"] = out[target % len(out)]
        else:
            value = {"type": "x-unknown", "n": n, **({"root": root} if root else {})}
        content = encode_content(value)
        seq, previous = heads.get(who, (0, None))
        entry = create_entry(keys, seq + 1, previous, 1_000 + n, content)
        heads[who] = (seq + 1, entry.id)
        ids.append(message_id(entry.id))
        out.append((entry.raw, content))
    return out


def rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    conn: sqlite3.Connection = store._conn
    # notify_threads.rx is the store's own receive order, which batching may change
    columns = {"notify_threads": "root, id"}
    return {
        t: sorted(conn.execute(f"SELECT {columns.get(t, '*')} FROM {t}").fetchall())
        for t in VIEW_TABLES
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=actions, cuts=st.lists(st.integers(1, 25), max_size=6))
def test_one_batch_many_batches_and_rebuild_agree(
    plan: list[tuple[str, int, int, bool, bool]], cuts: list[int]
) -> None:
    items = build(plan)
    with tempfile.TemporaryDirectory() as tmp:
        whole = Store.open(Path(tmp) / "whole.sqlite", owner=OWNER)
        parts = Store.open(Path(tmp) / "parts.sqlite", owner=OWNER)
        try:
            result = whole.append_batch(items, NOW)
            assert not result.errors and len(result.stored) == len(items)
            bounds = sorted({0, len(items), *(c for c in cuts if c < len(items))})
            for start, end in itertools.pairwise(bounds):
                assert not parts.append_batch(items[start:end], NOW).errors
            # Notifications depend on what was stored first (a reply to our message is
            # one if ours was there before it), and a batch is stored author by author:
            # they may differ between the two stores, never within one after a rebuild.
            arrival = {"notifications", "notify_threads"}
            expected = rows(whole)
            got = rows(parts)
            assert {t: r for t, r in got.items() if t not in arrival} == {
                t: r for t, r in expected.items() if t not in arrival
            }
            for store, before in ((whole, expected), (parts, got)):
                for view in store.views:
                    assert store.rebuild(view.name) == len(items)
                assert rows(store) == before
        finally:
            whole.close()
            parts.close()


def test_views_fill_what_they_should() -> None:
    plan = [
        ("post", 1, 0, False, False),  # 0: B posts
        ("post", 2, 0, True, True),  # 1: C replies to 0, mentioning A
        ("contact", 1, 2, True, False),  # 2: B follows C
        ("private_to_owner", 1, 0, False, True),  # 3: B -> A privately, in thread 0
        ("private_other", 2, 0, False, False),  # 4: C -> stranger: not for us
    ]
    items = build(plan)
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "s", owner=OWNER) as s:
        s.append_batch(items, NOW)
        got = rows(s)
        assert len(got["links"]) == 2  # the reply and the mention
        assert {r[1] for r in got["links"]} == {"root", "mention"}
        assert got["contacts"] == [(AUTHORS[1].public, AUTHORS[2].public, 1, 0, 2)]
        assert len(got["inbox"]) == 1 and got["inbox"][0][1] == AUTHORS[1].public
        root = s.feed(AUTHORS[1].public)[0].id
        assert [m.text for m in s.thread(root)] == ["post 0", "post 1"]
        assert [p["text"] for _m, p in s.private_thread(root)] == ["secret 3"]
        s.purge_feed(AUTHORS[1].public)
        after = rows(s)
        assert after["contacts"] == [] and after["inbox"] == []
        assert after["links"] == got["links"]  # both are C's (C is not purged)


def test_changed_version_rebuilds_and_unkept_view_is_rebuilt_later(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    items = build([("private_to_owner", 1, 0, False, False), ("contact", 1, 2, True, False)])
    with Store.open(path, owner=OWNER) as s:
        s.append_batch(items[:1], NOW)
    # Opened without the owner: the inbox is not kept, and its version is forgotten...
    with Store.open(path) as s:
        s.append_batch(items[1:], NOW)
        versions = dict(s._conn.execute("SELECT name, version FROM views").fetchall())
        assert "inbox" not in versions and versions["contacts"] == ContactsView.version
        s._conn.execute("UPDATE views SET version = 0 WHERE name = 'contacts'")
        s._conn.execute("DELETE FROM contacts")
    # ...so the owner's next opening rebuilds it, and the stale contacts view too.
    with Store.open(path, owner=OWNER) as s:
        got = rows(s)
        assert len(got["inbox"]) == 1 and len(got["contacts"]) == 1
        assert s._conn.execute("PRAGMA user_version").fetchone()[0] == LATEST


def test_a_store_from_before_views_gets_them_rebuilt(tmp_path: Path) -> None:
    """A version-5 store (contacts, links and inbox made by migrations) opens with the
    tables rebuilt by the views, the old rows replaced by the views' own."""
    path = tmp_path / "old.sqlite"
    items = build([("post", 1, 0, False, False), ("post", 2, 0, False, True)])
    with Store.open(path, owner=OWNER) as s:
        s.append_batch(items, NOW)
        conn = s._conn
        conn.execute("DROP TABLE views")
        conn.execute("DROP TABLE links")
        conn.execute("CREATE TABLE links (root BLOB NOT NULL, id BLOB NOT NULL)")
        conn.execute("PRAGMA user_version = 5")
    with Store.open(path, owner=OWNER) as s:
        got = rows(s)
        assert len(got["links"]) == 1 and got["links"][0][1] == "root"


def test_content_that_arrives_later_is_taken_and_indexed(tmp_path: Path) -> None:
    items = build([("contact", 1, 2, True, False), ("post", 1, 0, False, False)])
    with Store.open(tmp_path / "s.sqlite", owner=OWNER) as s:
        first = s.append_batch([(raw, None) for raw, _ in items], NOW)
        assert len(first.stored) == 2 and first.missing == {AUTHORS[1].public: 1}
        assert rows(s)["contacts"] == []
        assert s.missing_content() == {AUTHORS[1].public: 1}
        # A copy with content that does not match is refused, nothing changes.
        wrong = encode_content({"type": "post", "text": "not what was signed"})
        bad = s.append_batch([(items[0][0], wrong)], NOW)
        assert bad.errors and not bad.filled and rows(s)["contacts"] == []
        again = s.append_batch(items, NOW)
        assert not again.errors and len(again.filled) == 2 and not again.stored
        assert again.missing == {AUTHORS[1].public: None}
        assert len(rows(s)["contacts"]) == 1
        assert [m.text for m in s.feed(AUTHORS[1].public)] == [None, "post 1"]
        assert s.missing_content() == {}
        assert not s.append_batch(items, NOW).filled  # held whole now: nothing to take
