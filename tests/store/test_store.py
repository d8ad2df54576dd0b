from __future__ import annotations

import itertools
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from p2psocial.errors import BadSignature, DatabaseCorrupt, NotFound, SequenceError, StorageError
from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.model import Message
from p2psocial.msgtypes.contact import contact_content
from p2psocial.store.schema import LATEST
from p2psocial.store.store import Store
from tests.helpers import make_feed, make_keys, pairs

A = make_keys(1)
B = make_keys(2)


def test_publish_builds_chain(store: Store) -> None:
    first = store.publish(A, {"type": "post", "text": "one"}, 10).entry
    second = store.publish(A, {"type": "post", "text": "two"}, 20).entry
    assert (first.seq, second.seq) == (1, 2)
    assert second.previous == first.id
    assert store.get(second.id).text == "two"
    info = store.feed_info(A.public)
    assert info is not None and info.latest_seq == 2 and info.latest_id == second.id


def test_two_writers_never_fork_own_feed(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store.open(path).close()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with Store.open(path) as s:
                for i in range(20):
                    s.publish(A, {"type": "post", "text": f"{n}-{i}"}, i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store.open(path) as s:
        msgs = s.feed(A.public, limit=100)
        assert [m.seq for m in msgs] == list(range(1, 61))
        assert all(m.previous == p.id for p, m in itertools.pairwise(msgs))
        assert s.forks() == []


def test_batch_many_feeds(store: Store) -> None:
    fa, fb = make_feed(A, 100), make_feed(B, 100)
    mixed = [x for pair in zip(pairs(fa), pairs(fb), strict=True) for x in pair]
    result = store.append_batch(mixed, now_ms=5)
    assert result.errors == {}
    assert len(result.stored) == 200
    assert store.counts() == {"feeds": 2, "entries": 200, "forked_feeds": 0}
    assert [m.seq for m in store.feed(A.public, since_seq=98)] == [99, 100]


def test_batch_is_idempotent(store: Store) -> None:
    feed = pairs(make_feed(A, 70))
    store.append_batch(feed, now_ms=5)
    again = store.append_batch(feed, now_ms=6)
    assert again.stored == [] and again.duplicates == 70 and again.errors == {}
    assert store.counts()["entries"] == 70


def test_gap_rejected_other_feed_stored(store: Store) -> None:
    fa, fb = pairs(make_feed(A, 5)), pairs(make_feed(B, 5))
    result = store.append_batch(fa[:2] + fa[3:] + fb, now_ms=5)
    assert isinstance(result.errors[A.public], SequenceError)
    assert store.feed_info(A.public) is None  # all-or-nothing for A's run
    info = store.feed_info(B.public)
    assert info is not None and info.latest_seq == 5


@pytest.mark.parametrize(("size", "workers"), [(3, None), (100, 1), (100, None)])
def test_bad_signature_rejects_whole_run(tmp_path: Path, size: int, workers: int | None) -> None:
    """Inline, and on worker processes (None: one per core)."""
    store = Store.open(tmp_path / "s.sqlite", verify_workers=workers)
    feed = pairs(make_feed(A, size))
    raw = bytearray(feed[size - 1][0])
    raw[-1] ^= 1
    feed[size - 1] = (bytes(raw), feed[size - 1][1])
    result = store.append_batch(feed + pairs(make_feed(B, 2)), now_ms=1)
    assert isinstance(result.errors[A.public], BadSignature)
    assert store.feed_info(A.public) is None
    assert store.counts()["entries"] == 2
    store.close()


def test_undecodable_bytes_reported(store: Store) -> None:
    result = store.append_batch([(b"junk", None), *pairs(make_feed(A, 1))], now_ms=1)
    assert None in result.errors
    assert store.counts()["entries"] == 1


def test_fork_is_proven_stored_and_stops_feed(store: Store) -> None:
    feed = make_feed(A, 3)
    store.append_batch(pairs(feed), now_ms=1)
    content = encode_content({"type": "post", "text": "other history"})
    fork = create_entry(A, 2, feed[0][0].id, 77, content)
    result = store.append_batch([(fork.raw, content)], now_ms=2)
    assert len(result.forks) == 1
    proof = store.forks()[0]
    assert (proof.author, proof.seq) == (A.public, 2)
    assert {proof.first, proof.second} == {feed[1][0].raw, fork.raw}
    info = store.feed_info(A.public)
    assert info is not None and info.forked
    more = make_feed(A, 1, start_seq=4, previous=feed[2][0].id)
    rejected = store.append_batch(pairs(more), now_ms=3)
    assert A.public in rejected.errors
    assert store.counts()["entries"] == 3


def test_forged_fork_with_bad_signature_is_not_a_proof(store: Store) -> None:
    feed = make_feed(A, 2)
    store.append_batch(pairs(feed), now_ms=1)
    fake = bytearray(create_entry(A, 2, feed[0][0].id, 9, feed[1][1]).raw)
    fake[-1] ^= 1
    result = store.append_batch([(bytes(fake), None)], now_ms=2)
    assert isinstance(result.errors[A.public], BadSignature)
    assert store.forks() == []


def _timeline(store: Store, **kw: Any) -> list[Message]:
    return [m for _t, m in store.timeline_page(B.public, **kw)]


def test_timeline_newest_first(store: Store) -> None:
    store.append_batch(pairs(make_feed(A, 3, ts=100)), now_ms=10_000)
    store.publish(B, contact_content(A.public, following=True, blocking=False), 4_000)
    store.publish(B, {"type": "post", "text": "now"}, 5_000)
    times = [m.timestamp for m in _timeline(store, limit=10)]
    assert times == [5_000, 103, 102, 101]
    assert [m.timestamp for m in _timeline(store, limit=10, before=103)] == [102, 101]


def test_future_timestamps_do_not_pin_to_top(store: Store) -> None:
    store.append_batch(pairs(make_feed(A, 1, ts=10**15)), now_ms=1_000)
    store.publish(B, contact_content(A.public, following=True, blocking=False), 1_500)
    store.publish(B, {"type": "post", "text": "later"}, 2_000)
    assert _timeline(store, limit=1)[0].author == B.public


def test_get_missing(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get(b"\x00" * 32)


def test_garbage_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(DatabaseCorrupt, match=str(path)):
        Store.open(path)
    assert path.read_bytes() == before


def test_foreign_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(DatabaseCorrupt, match="another program"):
        Store.open(path)
    assert path.read_bytes() == before


def test_damaged_pages_named(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with Store.open(path) as s:
        s.append_batch(pairs(make_feed(A, 300)), now_ms=1)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # smash the schema page
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match=str(path)):
        with Store.open(path) as s:
            s.counts()


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    Store.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    # a newer p2psocial records its schema in the store too (else: a damaged header)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (LATEST + 1,))
    conn.close()
    with pytest.raises(StorageError, match="newer than this p2psocial knows"):
        Store.open(path)


def test_reopen_keeps_data_and_integrity(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with Store.open(path) as s:
        s.append_batch(pairs(make_feed(A, 10)), now_ms=1)
    with Store.open(path) as s:
        assert s.counts()["entries"] == 10
        assert s.integrity_check() == ["ok"]
        assert s.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


def test_append_stream_pipelines_batches(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite", verify_workers=2)
    feed = pairs(make_feed(A, 300))
    batches = [feed[i : i + 100] for i in range(0, 300, 100)]
    results = list(store.append_stream(batches, lambda: 1))
    assert [len(r.stored) for r in results] == [100, 100, 100]
    assert store.counts()["entries"] == 300
    store.close()


def test_a_damaged_row_is_reported_as_damage_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store.open(path) as s:
        msg = s.publish(A, {"type": "post", "text": "soon damaged"}, 10).entry
    with sqlite3.connect(path) as conn:  # what a flipped byte inside the row amounts to
        conn.execute("UPDATE entries SET content = x'ff00' WHERE id = ?", (msg.id,))
    with Store.open(path) as s, pytest.raises(DatabaseCorrupt, match="no longer decodes"):
        s.get(msg.id)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE entries SET raw = x'8801' WHERE id = ?", (msg.id,))
    with Store.open(path) as s, pytest.raises(DatabaseCorrupt, match="p2psocial check"):
        s.feed(A.public)
