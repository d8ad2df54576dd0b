"""Opening checks (#11): a damaged or foreign store is refused, never taken for an empty one,
and never written; a store and the identity opening it must belong together."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from p2psocial.errors import DatabaseCorrupt, StoreOwnerMismatch
from p2psocial.identity import Keypair
from p2psocial.msgtypes.post import post_content
from p2psocial.store import db as store_db
from p2psocial.store.db import SQLITE_MAGIC, StructureCheck, inspect_store
from p2psocial.store.schema import LATEST
from p2psocial.store.store import Store
from tests.damage import files_of, set_bytes, smash_leaf_page
from tests.helpers import REPO, make_feed, make_keys, pairs

A = make_keys(1)
B = make_keys(2)
GUIDANCE = "Move it aside"


def made(path: Path, owner: Keypair | None = A, entries: int = 0) -> Path:
    """A store at ``path`` of ``owner`` (a Keypair or None) holding ``entries`` of A."""
    with Store.open(path, owner=owner) as s:
        if entries:
            assert not s.append_batch(pairs(make_feed(A, entries)), now_ms=1).errors
    return path


def test_zero_byte_file_is_refused_never_initialised(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    path.touch()
    with pytest.raises(DatabaseCorrupt, match=r"is empty \(0 bytes\)") as caught:
        Store.open(path, owner=A)
    assert str(path) in str(caught.value) and GUIDANCE in str(caught.value)
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.sqlite"]


@pytest.mark.parametrize("content", [SQLITE_MAGIC[:8], SQLITE_MAGIC + b"\x10\x00\x02\x02"])
def test_file_shorter_than_a_header_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "store.sqlite"
    path.write_bytes(content)
    with pytest.raises(DatabaseCorrupt, match="shorter than an SQLite header"):
        Store.open(path)
    assert path.read_bytes() == content


def test_truncated_store_is_refused(tmp_path: Path) -> None:
    path = made(tmp_path / "store.sqlite", entries=500)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 // 4096 * 4096])
    before = files_of(path)
    with pytest.raises(DatabaseCorrupt, match=r"header counts \d+ pages, the file holds"):
        Store.open(path, owner=A)
    assert files_of(path) == before


def test_existing_empty_sqlite_file_is_not_initialised(tmp_path: Path) -> None:
    """What an interrupted first start of an older p2psocial left (it touched the file,
    then SQLite wrote a header): refused with what to do, not filled."""
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(DatabaseCorrupt, match=r"empty SQLite database.*move it aside"):
        Store.open(path, owner=A)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("offset", "value", "needle"),
    [
        (16, b"\x0b\xb8", "page size 3000 is not a power of two"),
        (16, b"\x00\x80", "page size 128 is not a power of two"),
        (18, b"\x07", "file format versions 7/2"),
        (20, b"\x20", "32 bytes reserved per page"),
        (21, b"\x41", "payload fractions 65/32/32"),
        (28, b"\x00\x01\x00\x00", "the header counts 65536 pages"),
        (36, b"\x00\x00\x10\x00", "free-page list"),
        (44, b"\x00\x00\x00\x09", "schema format 9"),
        (52, b"\x00\x00\x00\x02", "auto-vacuum"),
        (56, b"\x00\x00\x00\x02", "text encoding 2 is not UTF-8"),
        (60, b"\x00\x00\x01\x07", f"it says schema 263, the store records schema {LATEST}"),
        (63, b"\x03", f"it says schema 3, the store records schema {LATEST}"),
        (68, b"\x70\x32\x70\x74", "application id 0x70327074 is not p2psocial's"),
        (80, b"\x01", "bytes 72 to 91"),
    ],
)
def test_header_damage_is_named(tmp_path: Path, offset: int, value: bytes, needle: str) -> None:
    path = made(tmp_path / "store.sqlite", entries=50)
    set_bytes(path, offset, value)
    before = files_of(path)
    with pytest.raises(DatabaseCorrupt, match="header of store") as caught:
        Store.open(path, owner=A)
    assert needle in str(caught.value) and GUIDANCE in str(caught.value)
    assert files_of(path) == before


@pytest.mark.parametrize("offset", [24, 40, 96])  # change counter, schema cookie, version
def test_header_fields_sqlite_ignores_are_not_judged(tmp_path: Path, offset: int) -> None:
    path = made(tmp_path / "store.sqlite", entries=5)
    set_bytes(path, offset, b"\x5a")
    with Store.open(path, owner=A) as s:
        assert s.counts()["entries"] == 5


def test_an_interrupted_creation_leaves_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "home" / "store.sqlite"

    def crash(self: object) -> None:
        raise KeyboardInterrupt  # as a kill during the first migrations

    monkeypatch.setattr(store_db.StoreBase, "_prepare", crash)
    with pytest.raises(KeyboardInterrupt):
        Store.open(path, owner=A)
    monkeypatch.undo()
    assert list(path.parent.iterdir()) == []  # nothing half made, nothing to refuse later
    with Store.open(path, owner=A) as s:
        assert s.counts()["entries"] == 0
    assert (path.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["store.sqlite"]


def test_store_records_its_owner_and_refuses_another(tmp_path: Path) -> None:
    path = made(tmp_path / "store.sqlite", owner=A)
    assert inspect_store(path).owner == A.public
    before = files_of(path)
    with pytest.raises(StoreOwnerMismatch) as caught:
        Store.open(path, owner=B)
    text = str(caught.value)
    assert A.feed_id in text and B.feed_id in text and "secret key" in text
    assert files_of(path) == before
    Store.open(path).close()  # tools open any store, and record nothing
    assert inspect_store(path).owner == A.public


def _as_schema_6(path: Path) -> None:
    """Make ``path`` look like a store from before schema 7 (no meta table)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE meta")
    conn.execute("PRAGMA user_version = 6")
    conn.close()


def test_store_recording_no_owner_is_claimed_by_its_first_owner(tmp_path: Path) -> None:
    own = made(tmp_path / "own.sqlite", owner=None, entries=3)  # A's entries
    empty = made(tmp_path / "empty.sqlite", owner=None)
    _as_schema_6(own)
    for path in (own, empty):
        assert inspect_store(path).owner is None
        Store.open(path, owner=A).close()
        assert inspect_store(path).owner == A.public


def test_store_with_only_other_feeds_is_not_claimed(tmp_path: Path) -> None:
    path = made(tmp_path / "store.sqlite", owner=None, entries=3)  # A's entries only
    _as_schema_6(path)
    before = files_of(path)
    with pytest.raises(StoreOwnerMismatch, match=re.escape(f"none of {B.feed_id}")):
        Store.open(path, owner=B)
    assert files_of(path) == before
    assert inspect_store(path).owner is None


def test_write_ahead_log_without_its_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    wal = tmp_path / "store.sqlite-wal"
    wal.write_bytes(b"\x37\x7f\x06\x82" + bytes(28))
    for create in (True, False):
        with pytest.raises(DatabaseCorrupt, match="write-ahead log"):
            Store.open(path, create=create)
    assert not path.exists()


def test_own_feed_head_that_would_fork_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with Store.open(path, owner=A) as s:
        for n in range(3):
            s.publish(A, post_content(f"post {n}"), now_ms=1)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE feeds SET latest_seq = 2 WHERE author = ?", (A.public,))
    conn.close()
    with pytest.raises(DatabaseCorrupt, match="head says seq 2 but its entries go to seq 3"):
        Store.open(path, owner=A)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE feeds SET latest_seq = 3 WHERE author = ?", (A.public,))
    (raw,) = conn.execute("SELECT raw FROM entries WHERE seq = 3").fetchone()
    conn.execute("UPDATE entries SET raw = ? WHERE seq = 3", (raw[:-1] + b"\x00",))
    conn.close()
    with pytest.raises(DatabaseCorrupt, match="does not match its id"):
        Store.open(path, owner=A)


def test_damaged_data_page(tmp_path: Path) -> None:
    """A page in the middle: the cheap probes at opening need not see it; the full check
    and SQLite's quick_check do, and a read that meets it is DatabaseCorrupt naming the
    file (never a bare sqlite error)."""
    path = made(tmp_path / "store.sqlite", owner=A, entries=2000)
    smash_leaf_page(path)
    before = files_of(path)
    with pytest.raises(DatabaseCorrupt, match=str(path)):
        Store.open(path, owner=A, full_check=True)
    with pytest.raises(DatabaseCorrupt, match=str(path)):
        StructureCheck(path).run()
    assert files_of(path) == before
    with Store.open(path, owner=A) as s, pytest.raises(DatabaseCorrupt, match=GUIDANCE):
        s.feed(A.public, limit=2000)


def test_checks_of_a_sound_store(tmp_path: Path) -> None:
    path = made(tmp_path / "store.sqlite", owner=A, entries=200)
    facts = inspect_store(path, owner=A, full=True)
    assert (facts.full, facts.entries, facts.feeds, facts.schema) == (True, 200, 1, LATEST)
    assert StructureCheck(path).run() >= 0
    stopped = StructureCheck(path)
    stopped.interrupt()
    assert stopped.run() == 0.0


def test_checks_never_write_a_crashed_store(tmp_path: Path) -> None:
    """A process killed with committed transactions still in the -wal: checking (even the
    full check) reads the log but never copies it into the file."""
    path = made(tmp_path / "store.sqlite", owner=A)
    script = (
        "import os, sys\n"
        "from p2psocial.store.store import Store\n"
        "from tests.helpers import make_keys, make_feed, pairs\n"
        "s = Store.open(sys.argv[1], owner=make_keys(1))\n"
        "s.append_batch(pairs(make_feed(make_keys(1), 20)), now_ms=1)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=REPO)
    before = files_of(path)
    assert before["wal"]
    with pytest.raises(StoreOwnerMismatch):  # B's secret key: refused, nothing written
        Store.open(path, owner=B, full_check=True)
    assert inspect_store(path, owner=A, full=True).entries == 20
    assert files_of(path) == before
    os.remove(path.with_name("store.sqlite-shm"))
    assert inspect_store(path, owner=A).schema == LATEST
    assert files_of(path) == before
