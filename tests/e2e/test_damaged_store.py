"""Damaged stores and lost keys met by the real CLI and a real daemon process (#11).

Each test damages a real store the way it happens (truncated to 0 bytes, the secret key
deleted or replaced, bytes flipped in the header or in a data page, a SIGKILL), then runs
the console script and ``p2psocial daemon``: both must refuse with one clear message naming
the file and saying what to do, exit non-zero, and leave the files exactly as they were.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from p2psocial.home import Home
from p2psocial.identity import Keypair
from p2psocial.store.schema import LATEST
from p2psocial.store.store import Store
from tests.damage import files_of, set_bytes, smash_leaf_page
from tests.e2e.daemons import BIN, DaemonProcess
from tests.helpers import make_feed, pairs

pytestmark = pytest.mark.e2e

ENTRIES = 3000
GUIDANCE = "Move it aside"


def populated(tmp_path: Path, entries: int = ENTRIES) -> DaemonProcess:
    """A home made by ``p2psocial init`` whose store holds ``entries`` of our own feed."""
    d = DaemonProcess(tmp_path / "home")
    d.cli("init")
    keys = Home(d.home).load_identity()
    with Store.open(d.home / "store.sqlite", owner=keys) as store:
        assert not store.append_batch(pairs(make_feed(keys, entries)), now_ms=1).errors
    return d


def db_of(d: DaemonProcess) -> Path:
    return d.home / "store.sqlite"


def refused_start(d: DaemonProcess) -> str:
    """Run the daemon on ``d``'s home: it must exit non-zero by itself. Returns its stderr."""
    proc = subprocess.run(
        [
            str(BIN / "p2psocial"),
            "--home",
            str(d.home),
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--no-lan",
            "--log-level",
            "debug",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=d.env,
    )
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def refused(d: DaemonProcess, *args: str) -> str:
    """Run a CLI command that must fail with one line on stderr; returns that line."""
    proc = d.cli(*args, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("p2psocial: error: ")
    return proc.stderr


def test_store_truncated_to_zero_bytes(tmp_path: Path) -> None:
    d = populated(tmp_path)
    db = db_of(d)
    os.truncate(db, 0)
    for args in (["timeline"], ["post", "hello again"], ["init"], ["check"]):
        message = refused(d, *args)
        assert f"store {db} is empty (0 bytes)" in message and GUIDANCE in message
        assert "would fork your feed" in message
    assert f"store {db} is empty (0 bytes)" in refused_start(d)
    assert db.read_bytes() == b""
    assert not (d.home / "store.sqlite-wal").exists()


def test_secret_key_deleted(tmp_path: Path) -> None:
    d = populated(tmp_path)
    db, secret = db_of(d), d.home / "secret"
    me = Home(d.home).load_identity().feed_id
    before = files_of(db)
    secret.unlink()
    for args in (["init"], ["timeline"], ["post", "as someone new"]):
        message = refused(d, *args)
        assert f"no secret key at {secret}, but a store is at {db}" in message
        assert "backup" in message
    stderr = refused_start(d)
    assert f"no secret key at {secret}, but a store is at {db}" in stderr
    assert "a new identity would never match it" in stderr
    assert not secret.exists()  # no new identity was made
    assert files_of(db) == before
    checked = d.cli("check", check=False)
    assert checked.returncode == 1 and f"owner     {me}" in checked.stdout  # the key to restore


def test_secret_key_of_another_identity(tmp_path: Path) -> None:
    d = populated(tmp_path)
    db, secret = db_of(d), d.home / "secret"
    me = Home(d.home).load_identity().feed_id
    before = files_of(db)
    secret.unlink()
    other = Home(tmp_path / "other").create_identity(b"\x09" * 32)
    os.replace(tmp_path / "other" / "secret", secret)
    for message in (refused(d, "timeline"), refused(d, "init"), refused_start(d)):
        assert f"store {db} belongs to {me}, but the secret key opening it is" in message
        assert other.feed_id in message
    assert files_of(db) == before


@pytest.mark.parametrize(
    ("offset", "value", "needle"),
    [
        (16, b"\x0b\xb8", "page size 3000 is not a power of two from 512 to 65536"),
        (21, b"\x00", "payload fractions 0/32/32 are not 64/32/32"),
        (
            60,
            b"\x01",
            f"it says schema {0x01000000 + LATEST}, the store records schema {LATEST}",
        ),
        (68, b"\x00", "application id 0x327073 is not p2psocial's"),
    ],
)
def test_bytes_flipped_in_the_header(
    tmp_path: Path, offset: int, value: bytes, needle: str
) -> None:
    d = populated(tmp_path, entries=200)
    db = db_of(d)
    set_bytes(db, offset, value)
    before = files_of(db)
    for message in (refused(d, "timeline"), refused(d, "check"), refused_start(d)):
        assert f"the header of store {db} is damaged: {needle}" in message
        assert GUIDANCE in message
    assert files_of(db) == before


def test_bytes_flipped_in_a_data_page(tmp_path: Path) -> None:
    """The cheap checks at every opening look at the edges of each b-tree; a page in the
    middle is found by the daemon's quick_check (beside its work, right after it starts),
    by 'p2psocial check', and by any read that meets it."""
    d = populated(tmp_path)
    db = db_of(d)
    me = Home(d.home).load_identity().feed_id
    smash_leaf_page(db)
    before = files_of(db)
    assert f"store {db} is damaged" in refused(d, "check")
    reads = [
        d.cli("rpc", "feed", f'{{"feed_id": "{me}", "from_seq": {s}, "limit": 1000}}', check=False)
        for s in range(1, ENTRIES, 1000)
    ]
    failed = [r for r in reads if r.returncode != 0]
    assert failed, "no read met the damaged page"
    for r in failed:
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"store {db} is damaged" in r.stderr and GUIDANCE in r.stderr
    stderr = refused_start(d)
    assert f"store {db} is damaged" in stderr and GUIDANCE in stderr
    assert files_of(db) == before


def test_killed_daemon_gets_a_full_check_at_next_start(tmp_path: Path) -> None:
    d = populated(tmp_path, entries=500)
    d.start()
    d.cli("post", "just before the crash")
    d.kill()
    assert (d.home / "daemon.running").exists()
    d.start()  # starts: the store is intact
    log = d.log()
    assert "did not stop cleanly: checking all of" in log
    assert f"integrity check of {db_of(d)}: ok" in log
    assert d.stop() == 0
    assert not (d.home / "daemon.running").exists()
    d.start()  # after a clean stop: the quick check only
    assert d.log().count("integrity check of") == 1
    assert "quick check of" in d.log()
    d.stop()


def test_check_after_a_kill_spares_the_next_start_its_full_check(tmp_path: Path) -> None:
    d = populated(tmp_path, entries=100)
    d.start()
    d.kill()
    out = d.cli("check").stdout
    assert "the last one did not stop cleanly; the store is intact" in out
    assert not (d.home / "daemon.running").exists()
    d.start()
    assert "did not stop cleanly" not in d.log() and "integrity check of" not in d.log()
    d.stop()


def test_killed_daemon_then_damage_is_found_before_serving(tmp_path: Path) -> None:
    d = populated(tmp_path)
    db = db_of(d)
    d.start()
    d.cli("post", "in the write-ahead log when the daemon dies")
    d.kill()
    smash_leaf_page(db)  # a page of the file itself, not one the log holds
    before = files_of(db)
    assert before["wal"]
    stderr = refused_start(d)
    assert "did not stop cleanly: checking all of" in stderr
    assert f"store {db} is damaged" in stderr and GUIDANCE in stderr
    assert "listening on" not in stderr  # refused before serving anything
    assert files_of(db) == before
    assert (d.home / "daemon.running").exists()  # and the next start checks again
    assert f"store {db} is damaged" in refused(d, "check")


def test_daemon_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    d = populated(tmp_path, entries=1)
    os.chmod(d.home, 0o755)
    old = os.umask(0)
    try:
        d.start()
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE((d.home / "daemon.json").stat().st_mode) == 0o600
        assert stat.S_IMODE(d.home.stat().st_mode) == 0o700
        assert d.log().count("was mode 0755, open to other users: tightened it to 0700") == 1
    finally:
        d.stop()


def test_check_of_a_sound_home(tmp_path: Path) -> None:
    d = populated(tmp_path, entries=100)
    keys: Keypair = Home(d.home).load_identity()
    out = d.cli("check").stdout
    assert f"store     {db_of(d)}: ok (integrity_check of" in out
    assert "100 entries in 1 feeds" in out
    assert f"owner     {keys.feed_id} (matches the identity)" in out
    d.start()
    try:
        running = d.cli("check").stdout  # beside a running daemon: read-only
        assert "daemon    running" in running and ": ok (" in running
    finally:
        d.stop()
