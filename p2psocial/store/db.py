"""Opening a store: the file checks, the connection, migrations and view versions.

:class:`StoreBase` owns the one SQLite connection of a store and the helpers every part of
the store uses: :meth:`StoreBase._transaction` (``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled
back on any error) and :meth:`StoreBase._errors` (sqlite errors become StorageError naming
the file; DatabaseCorrupt, saying what to do, when SQLite finds it damaged). Opening checks
that the file is a p2psocial store before anything is written, applies the numbered
migrations of the core tables (``schema.py``), then brings every view up to its version
(``views/``): a view whose recorded version differs is rebuilt from the stored entries, in
one transaction, with progress on the log.

The checks (#11), all on a read-only connection so a refused file is never written (not
even by a checkpoint of its -wal):

- every opening (:func:`inspect_store`): the file is a regular file of at least one page;
  the header fields a p2psocial store always has the same way are sane (magic, page size a
  power of two from 512 to 65536, format versions, payload fractions, no reserved bytes,
  schema format, UTF-8, no auto-vacuum, SQLite's reserved bytes zero) and, with no -wal
  pending, agree with the file's size (page count, free list); the header's application id
  and schema version agree with the ``meta`` table; the first and last leaf of every
  b-tree can be read; our own feed's head is its latest entry and hashes to its id; the
  store is the opener's (``meta`` owner). About 1 ms on a 100,000-entry store (52 MB)
  from the page cache, 4 ms from a cold disk, whatever the size. Fields SQLite itself ignores
  or rewrites (change counter, schema cookie, version numbers) are not judged.
- the daemon, after starting (:class:`StructureCheck`): SQLite's ``quick_check`` of every
  page, beside its work: 50 ms per 100,000 entries warm, 1 s cold (too slow to make every
  start or every CLI command wait for it).
- after an unclean stop of the daemon, and ``p2psocial check``: the whole
  ``integrity_check`` (also index against table) before anything else: 0.2 s per 100,000
  entries warm, 0.9 s cold.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sqlite3
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

import sqlite_utils

from p2psocial.errors import DatabaseCorrupt, StorageError, StoreOwnerMismatch
from p2psocial.store.schema import APPLICATION_ID, LATEST, META_SINCE, MIGRATIONS
from p2psocial.store.verify import Verifier
from p2psocial.store.views import View, default_views, rebuild_views

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from p2psocial.identity import Keypair
    from p2psocial.msgtypes.private import Opener

log = logging.getLogger("p2psocial.store")

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100
"""Bytes in an SQLite file header; every SQLite file is at least one page (>= 512)."""
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
"""The SQLite result codes (low byte of an extended code) that mean a damaged file."""
_MOST_PROBLEMS = 3
"""Problems of an integrity check quoted in the error (the rest are counted)."""


def wal_path(path: Path) -> Path:
    """The write-ahead log next to the store at ``path``; it holds committed transactions
    not yet copied into the file, so it belongs to the file."""
    return path.with_name(path.name + "-wal")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def what_to_do(path: Path) -> str:
    """What a user does about a damaged store at ``path`` (the text every error gives)."""
    return (
        f"Nothing was changed. Move it aside (e.g. mv {path} {path}.damaged, and its -wal "
        f"and -shm files if there are any) and put back a backup of {path.name}; with no "
        "backup, let the daemon start a new store and fetch your own feed back from your "
        "peers before you post again (a post first would fork your feed). "
        "'p2psocial check' tells what else is wrong."
    )


def missing_store(path: Path) -> StorageError:
    """The error for no store file at ``path``: DatabaseCorrupt if its write-ahead log is
    still there (the store was moved or deleted without it), else StorageError."""
    wal = wal_path(path)
    if _size(wal) > 0:
        return DatabaseCorrupt(
            f"store {path} is missing, but its write-ahead log {wal} is there (it holds "
            f"part of the store): put {path.name} back, or, to start a new store, move "
            f"{wal.name} and {path.name}-shm aside too. Nothing was changed."
        )
    return StorageError(f"no store at {path}: run 'p2psocial init'")


def storage_error(path: Path, exc: sqlite3.Error) -> StorageError:
    """The error of ours for an sqlite error on the store at ``path``: DatabaseCorrupt (with
    what to do) when SQLite says the file is damaged, else StorageError naming the file."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return DatabaseCorrupt(f"store {path} is damaged ({exc}). {what_to_do(path)}")
    return StorageError(f"store {path}: {exc}")


def header_problem(head: bytes, size: int, wal_pending: bool) -> str | None:
    """What is wrong with the 100-byte SQLite header ``head`` of a file of ``size`` bytes,
    or None. Only fields that a p2psocial store always has the same way, or that must agree
    with the file's size, are judged; the size checks are skipped while a write-ahead log is
    pending (``wal_pending``: the file's own header may then lag behind)."""

    def u32(offset: int) -> int:
        return int.from_bytes(head[offset : offset + 4], "big")

    page_size = int.from_bytes(head[16:18], "big")
    if page_size == 1:
        page_size = 65536
    if not 512 <= page_size <= 65536 or page_size & (page_size - 1):
        return f"page size {page_size} is not a power of two from 512 to 65536"
    if head[18] not in (1, 2) or head[19] not in (1, 2):
        return f"file format versions {head[18]}/{head[19]} are not 1 or 2"
    if head[20]:
        return f"{head[20]} bytes reserved per page (p2psocial stores reserve none)"
    if head[21:24] != b"\x40\x20\x20":
        return f"payload fractions {head[21]}/{head[22]}/{head[23]} are not 64/32/32"
    if u32(44) > 4:
        return f"schema format {u32(44)} is not 1 to 4"
    if u32(56) not in (0, 1):
        return f"text encoding {u32(56)} is not UTF-8 (p2psocial stores are UTF-8)"
    if u32(52) or u32(64):
        return "auto-vacuum fields are set (p2psocial stores never use auto-vacuum)"
    if any(head[72:92]):
        return "bytes 72 to 91, reserved by SQLite, are not zero"
    if size < page_size:
        return f"the file ({size} bytes) is shorter than one page ({page_size} bytes)"
    if wal_pending:
        return None
    pages = size // page_size
    if size % page_size:
        return f"the file ({size} bytes) is not a whole number of {page_size}-byte pages"
    counted = u32(28)
    if counted and u32(24) == u32(92) and counted > pages:
        return f"the header counts {counted} pages, the file holds {pages} (truncated)"
    trunk, free = u32(32), u32(36)
    if trunk > pages or free > pages or (trunk == 0) != (free == 0):
        return f"the free-page list (first page {trunk}, {free} pages) is out of range"
    return None


def check_file(path: Path) -> None:
    """The checks of an existing store file made before SQLite reads it: a regular file of
    at least one page with a sound SQLite header. Raises DatabaseCorrupt (or StorageError
    when it cannot be read at all); never writes."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise StorageError(f"{path} is not a file")
        with path.open("rb") as f:
            head = f.read(HEADER_SIZE)
    except OSError as exc:
        raise StorageError(f"cannot read store {path}: {exc.strerror or exc}") from exc
    size = st.st_size
    if size == 0:
        raise DatabaseCorrupt(
            f"store {path} is empty (0 bytes): its first creation was interrupted (by an earlier "
            "p2psocial), or the file was truncated (a full or failing disk, "
            f"a copy gone wrong). {what_to_do(path)}"
        )
    if head[:16] != SQLITE_MAGIC and not (size < 16 and SQLITE_MAGIC.startswith(head)):
        raise DatabaseCorrupt(
            f"{path} is not an SQLite database (damaged, or another program's file). "
            f"{what_to_do(path)}"
        )
    if size < HEADER_SIZE:
        raise DatabaseCorrupt(
            f"store {path} is truncated: {size} bytes, shorter than an SQLite header. "
            f"{what_to_do(path)}"
        )
    problem = header_problem(head, size, _size(wal_path(path)) > 0)
    if problem is not None:
        raise DatabaseCorrupt(
            f"the header of store {path} is damaged: {problem}. {what_to_do(path)}"
        )


@dataclass
class StoreFacts:
    """What the checks of a store file found (``inspect_store``)."""

    path: Path
    schema: int
    """The schema version (``PRAGMA user_version``)."""
    owner: bytes | None
    """The owner's public key as recorded in the store (None: none recorded yet)."""
    recorded_schema: int | None = None
    """The schema the ``meta`` table records (None: no such table, before schema 7)."""
    pages: int = 0
    full: bool = False
    """Whether SQLite's ``integrity_check`` ran (else only the cheap structural probes)."""
    entries: int | None = None
    """How many entries are stored (counted by a full check only)."""
    feeds: int | None = None
    seconds: float = 0.0


def _schema_damaged(path: Path, header: int, recorded: int) -> DatabaseCorrupt:
    return DatabaseCorrupt(
        f"the header of store {path} is damaged: it says schema {header}, the store "
        f"records schema {recorded}. {what_to_do(path)}"
    )


_WITHOUT_ROWID = re.compile(r"\bwithout\s+rowid\b", re.IGNORECASE)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_PARTIAL = re.compile(r"\bWHERE\b(.*)$", re.IGNORECASE | re.DOTALL)


def _probe(conn: sqlite3.Connection) -> None:
    """Walk to the first and the last leaf of every table and index b-tree: a few pages
    each, so damaged roots and damaged right edges (where the latest writes went) show at
    every opening, in milliseconds whatever the store's size. SQLite raises on damage."""
    queries: list[str] = []
    master = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE rootpage > 0"
    ).fetchall()
    for kind, name, table, sql in master:
        t = _quoted(table)
        if kind == "table":
            queries.append(f"SELECT * FROM {t} LIMIT 1")
            if sql and _WITHOUT_ROWID.search(sql):  # its primary key is its b-tree
                keys = [r[1] for r in conn.execute(f"PRAGMA table_info({t})") if r[5]]
                order = ", ".join(f"{_quoted(k)} DESC" for k in keys)
            else:
                order = "rowid DESC"
            queries.append(f"SELECT * FROM {t} ORDER BY {order} LIMIT 1")
        elif kind == "index":
            columns = [r[2] for r in conn.execute(f"PRAGMA index_info({_quoted(name)})")]
            if not columns or columns[0] is None:
                continue  # an expression index: none of ours
            c, i = _quoted(columns[0]), _quoted(name)
            partial = _PARTIAL.search(sql or "")  # a partial index: only its own rows
            where = f" WHERE {partial.group(1).strip()}" if partial else ""
            for direction in ("", " DESC"):
                queries.append(
                    f"SELECT {c} FROM {t} INDEXED BY {i}{where} ORDER BY {c}{direction} LIMIT 1"
                )
    conn.text_factory = bytes  # rows are read for their pages: damaged text is no error here
    try:
        for query in queries:
            conn.execute(query).fetchall()
    finally:
        conn.text_factory = str


def _check_own_head(conn: sqlite3.Connection, path: Path, owner: Keypair) -> None:
    """Our next entry is built on the head the ``feeds`` row records: it must be the latest
    stored entry of our feed, and that entry's bytes must hash to its id. Otherwise the
    next post would fork our feed (or chain onto damaged bytes)."""
    head = conn.execute(
        "SELECT latest_seq, latest_id FROM feeds WHERE author = ?", (owner.public,)
    ).fetchone()
    last = conn.execute(
        "SELECT seq, id, raw FROM entries WHERE author = ? ORDER BY seq DESC LIMIT 1",
        (owner.public,),
    ).fetchone()
    recorded = head[0] if head is not None else 0
    stored = last[0] if last is not None else 0
    if recorded != stored:
        raise DatabaseCorrupt(
            f"store {path} is damaged: your feed's head says seq {recorded} but its entries "
            f"go to seq {stored} (a post now would fork your feed). {what_to_do(path)}"
        )
    if head is None or last is None:
        return
    if head[1] != last[1] or hashlib.sha256(last[2]).digest() != last[1]:
        raise DatabaseCorrupt(
            f"store {path} is damaged: the latest entry of your feed (seq {stored}) does "
            f"not match its id. {what_to_do(path)}"
        )


def _check_owner(
    conn: sqlite3.Connection, path: Path, recorded: bytes | None, owner: Keypair
) -> None:
    """Refuse a store that is not ``owner``'s (StoreOwnerMismatch). A store recording no
    owner yet (made before schema 7, or only ever opened without an owner) is taken by its
    first owner, unless it holds entries of other feeds and not one of the owner's: no
    p2psocial node holds others' feeds without having followed them in its own."""
    from p2psocial.identity import feed_id

    me = owner.feed_id
    if recorded is not None:
        if recorded != owner.public:
            them = feed_id(recorded)
            raise StoreOwnerMismatch(
                f"store {path} belongs to {them}, but the secret key opening it is {me}: "
                f"put back the secret key of {them} (from your backup), or, to start "
                f"afresh as {me}, move {path.name} and its -wal and -shm files aside. "
                "Nothing was changed."
            )
        return
    own = conn.execute("SELECT 1 FROM feeds WHERE author = ?", (owner.public,)).fetchone()
    feeds = conn.execute("SELECT count(*) FROM feeds").fetchone()[0]
    if own is None and feeds:
        raise StoreOwnerMismatch(
            f"store {path} records no owner and holds entries of {feeds} feeds but none of "
            f"{me}, the secret key opening it: it was made with another identity. Put back "
            f"that identity's secret key (from your backup), or, if this store is meant for "
            f"{me}, move {path.name} and its -wal and -shm files aside (it holds nothing of "
            "yours). Nothing was changed."
        )


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write the file: checks run on it, so a damaged store is
    left exactly as it was (a read-only connection never checkpoints the -wal into it)."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


def _integrity(conn: sqlite3.Connection, path: Path, pragma: str) -> None:
    problems = [row[0] for row in conn.execute(f"PRAGMA {pragma}")]
    if problems != ["ok"]:
        shown = "; ".join(p.replace("\n", " ") for p in problems[:_MOST_PROBLEMS])
        more = len(problems) - _MOST_PROBLEMS
        extra = f" (and {more} more)" if more > 0 else ""
        raise DatabaseCorrupt(
            f"store {path} is damaged: SQLite's {pragma} found {shown}{extra}. {what_to_do(path)}"
        )


def inspect_store(path: Path, *, owner: Keypair | None = None, full: bool = False) -> StoreFacts:
    """Check the store file at ``path`` without writing to it: the header, that it is a
    p2psocial store of a schema we know, the first and last page of every b-tree, our own
    feed's head, that it is ``owner``'s store (when given), and with ``full`` SQLite's whole
    ``integrity_check``. Returns what it found; raises DatabaseCorrupt, StorageError or
    StoreOwnerMismatch saying what is wrong and what to do."""
    started = time.monotonic()
    if not os.path.lexists(path):
        raise missing_store(path)
    check_file(path)
    try:
        conn = _read_only(path)
    except sqlite3.Error as exc:
        raise storage_error(path, exc) from exc
    try:
        facts = _inspect(conn, path, owner, full)
    except sqlite3.Error as exc:
        raise storage_error(path, exc) from exc
    finally:
        conn.close()
    facts.seconds = time.monotonic() - started
    return facts


def _inspect(conn: sqlite3.Connection, path: Path, owner: Keypair | None, full: bool) -> StoreFacts:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) if "meta" in names else {}
    ours = meta.get("application") == "p2psocial"
    if app_id != APPLICATION_ID:
        if ours:
            raise DatabaseCorrupt(
                f"the header of store {path} is damaged: application id {app_id:#x} is not "
                f"p2psocial's, yet the file holds a p2psocial store. {what_to_do(path)}"
            )
        if version or names:
            raise DatabaseCorrupt(
                f"{path} is an SQLite database of another program, not a p2psocial "
                "store; it was left untouched"
            )
        raise DatabaseCorrupt(
            f"{path} is an empty SQLite database, not a p2psocial store (p2psocial creates "
            "its stores whole, it never fills a file already there): if an older p2psocial's "
            "first start was interrupted, move it aside and start again. Nothing was changed."
        )
    recorded_schema = meta.get("schema")
    if isinstance(recorded_schema, int) and version > recorded_schema:
        raise _schema_damaged(path, version, recorded_schema)
    if version > LATEST:
        raise StorageError(
            f"store {path} has schema version {version}, newer than this "
            f"p2psocial knows ({LATEST}): upgrade p2psocial"
        )
    recorded = meta.get("owner")
    if recorded is not None and not (isinstance(recorded, bytes) and len(recorded) == 32):
        raise DatabaseCorrupt(f"store {path} records a malformed owner. {what_to_do(path)}")
    _probe(conn)
    if owner is not None and "feeds" in names:
        _check_owner(conn, path, recorded, owner)
        _check_own_head(conn, path, owner)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    facts = StoreFacts(path, version, recorded, pages=pages)
    if isinstance(recorded_schema, int):
        facts.recorded_schema = recorded_schema
    if full:
        _integrity(conn, path, "integrity_check")
        facts.full = True
        if "entries" in names:
            facts.entries = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
            facts.feeds = conn.execute("SELECT count(*) FROM feeds").fetchone()[0]
    return facts


class StructureCheck:
    """SQLite's ``quick_check`` of a whole store on a read-only connection of its own: every
    b-tree page is read (about 50 ms per 100,000 entries from the page cache, 1 s from a
    cold disk), so the daemon runs it beside its work after starting rather than before.
    :meth:`run` may be called on another thread, :meth:`interrupt` from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._stopped = False

    def run(self) -> float:
        """Check; returns the seconds it took. Raises DatabaseCorrupt naming the file."""
        started = time.monotonic()
        try:
            with self._lock:
                if self._stopped:
                    return 0.0
                self._conn = _read_only(self.path)
                conn = self._conn
            try:
                _integrity(conn, self.path, "quick_check")
            finally:
                with self._lock:
                    conn.close()
                    self._conn = None
        except sqlite3.Error as exc:
            if self._stopped:
                return 0.0
            raise storage_error(self.path, exc) from exc
        return time.monotonic() - started

    def interrupt(self) -> None:
        """Stop a running check at once (its :meth:`run` then returns)."""
        with self._lock:
            self._stopped = True
            if self._conn is not None:
                self._conn.interrupt()


REBUILD_CACHE_KIB = 512 * 1024
"""SQLite's page cache while views are rebuilt (every view's b-trees are written at
once); the connection's own (SQLite's default, 2 MiB) is set back afterwards."""


class StoreBase:
    """A p2psocial store in one SQLite file: the connection and its helpers."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        verify_workers: int | None = 1,
        owner: Keypair | None = None,
    ) -> None:
        self.path = path
        self._conn = conn
        self.db = sqlite_utils.Database(conn)
        self.verifier = Verifier(verify_workers)
        self.owner = owner
        self.opener: Opener | None = None
        if owner is not None:
            from p2psocial.msgtypes.private import make_opener

            self.opener = make_opener(owner)
        self.views: Sequence[View] = default_views(
            owner=owner.public if owner is not None else None
        )

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        create: bool = True,
        verify_workers: int | None = 1,
        owner: Keypair | None = None,
        full_check: bool = False,
    ) -> Self:
        """Open (and create or upgrade) the store at ``path``.

        ``owner``: the identity whose store this is. With it, private messages addressed to
        it are opened as they are stored and filed in the ``inbox`` view; without it (tools,
        benchmarks) that view is not kept, and is rebuilt the next time the owner opens it.

        ``verify_workers``: signature checks of large batches run on this many worker
        processes (None: one per core). The default, 1, verifies inline: worker processes are
        started with multiprocessing's ``spawn``, which needs the ``if __name__ ==
        "__main__":`` guard in the calling program, so only programs that have it (the daemon,
        the benchmarks) ask for them.

        ``full_check``: also run SQLite's whole ``integrity_check`` before opening (the daemon
        does after an unclean stop; ``p2psocial check`` calls :func:`inspect_store`).

        Every opening first checks the file without writing to it (:func:`inspect_store`):
        the header fields, the first and last page of every b-tree, our own feed's head, and
        the owner: a store records the public key of its owner (``meta``, schema 7); opened
        with another ``owner`` it is refused (StoreOwnerMismatch). A store recording none yet
        is taken by the first owner that opens it, unless it holds other feeds' entries and
        none of that owner's. A store opened without an owner records none.

        Only a store this method creates is initialised: it is built whole in a temporary
        file next to ``path`` and linked into place, so an interrupted first start leaves no
        half-made store. An existing file is never initialised: one of 0 bytes, or shorter
        than an SQLite header, is refused like any damaged file.

        Raises DatabaseCorrupt naming the file and saying what to do if it is damaged or
        not a p2psocial store (the file is never written then), StorageError if it cannot
        be opened at all.
        """
        path = Path(path)
        if not os.path.lexists(path):
            if not create or _size(wal_path(path)) > 0:
                raise missing_store(path)
            cls._create(path, owner)
        facts = inspect_store(path, owner=owner, full=full_check)
        if full_check:
            log.info(
                "integrity check of %s: ok (%d pages, %.2f s)", path, facts.pages, facts.seconds
            )
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open store {path}: {exc}") from exc
        store = cls(path, conn, verify_workers, owner)
        try:
            store._prepare()
            store._claim(facts)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if facts.recorded_schema is not None and facts.recorded_schema > facts.schema:
                # the header says an older schema and its migrations do not apply
                raise _schema_damaged(path, facts.schema, facts.recorded_schema) from exc
            raise storage_error(path, exc) from exc
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def _create(cls, path: Path, owner: Keypair | None) -> None:
        """Make a new store at ``path``: built whole in a temporary file in the same folder
        (mode 0600: private messages live here), then linked into place, so ``path`` never
        holds a half-made store. Losing a race to another creator keeps theirs."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".creating", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            try:
                conn = sqlite3.connect(tmp, isolation_level=None)
                new = StoreBase(tmp, conn, 1, owner)
                try:
                    new._prepare()
                    new._claim(StoreFacts(tmp, 0, None))
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot create store {path}: {exc}") from exc
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # never replaces a file another creator put there
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                if not os.path.lexists(path):
                    os.rename(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StorageError(f"cannot create store {path}: {exc.strerror or exc}") from exc
        finally:
            for leftover in (tmp, wal_path(tmp), tmp.with_name(tmp.name + "-shm")):
                leftover.unlink(missing_ok=True)
        log.info("created store %s", path)

    def _prepare(self) -> None:
        conn = self._conn
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number in range(version, LATEST):
            with self._transaction():
                MIGRATIONS[number](self.db)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {number + 1}")
                if number + 1 >= META_SINCE:
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema', ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (number + 1,),
                    )
        self._sync_views()

    def _claim(self, facts: StoreFacts) -> None:
        """Record our owner in a store that records none yet (``inspect_store`` has checked
        that the store may be theirs)."""
        if self.owner is None or facts.owner is not None:
            return
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('owner', ?) ON CONFLICT (key) DO NOTHING",
                (self.owner.public,),
            )
        if facts.schema:  # an existing store, not one just made
            log.info("store %s now records its owner: %s", self.path, self.owner.feed_id)

    def _sync_views(self) -> None:
        """Rebuild every view whose recorded version is not its current one (all of them in
        one replay); forget the version of a view this opening does not keep, so it is
        rebuilt when next kept."""
        recorded = dict(self._conn.execute("SELECT name, version FROM views").fetchall())
        active = {view.name for view in self.views}
        stale = [name for name in recorded if name not in active]
        if stale:
            with self._transaction() as conn:
                conn.executemany("DELETE FROM views WHERE name = ?", [(n,) for n in stale])
        changed = [view.name for view in self.views if recorded.get(view.name) != view.version]
        if changed:
            self.rebuild(*changed)

    def rebuild(self, *names: str) -> int:
        """Drop the views ``names`` (none: every view) and index every stored entry into
        them again, in one replay and one transaction. Returns the number of stored
        entries the replay covered."""
        known = {view.name: view for view in self.views}
        for name in names:
            if name not in known:
                raise StorageError(f"no view named {name!r} is kept by this store")
        chosen = [known[n] for n in dict.fromkeys(names)] if names else list(self.views)
        with self._errors(), self._transaction() as conn:
            # a replay writes every view's b-trees at once: keep them in memory meanwhile
            cache = conn.execute("PRAGMA cache_size").fetchone()[0]
            conn.execute(f"PRAGMA cache_size = -{REBUILD_CACHE_KIB}")
            try:
                replayed = rebuild_views(conn, chosen, self.opener, log)
            finally:
                conn.execute(f"PRAGMA cache_size = {int(cache)}")
            conn.executemany(
                "INSERT INTO views (name, version) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                [(view.name, view.version) for view in chosen],
            )
        return replayed

    def close(self) -> None:
        self.verifier.close()
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """sqlite errors become ours naming the file: DatabaseCorrupt (with what to do)
        when SQLite finds the file damaged, else StorageError."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise storage_error(self.path, exc) from exc

    def integrity_check(self) -> list[str]:
        """SQLite's integrity check: ``["ok"]`` for a sound file."""
        with self._errors():
            return [row[0] for row in self._conn.execute("PRAGMA integrity_check")]

    # ------------------------------------------------------------------ read-only opening

    @classmethod
    def open_read_only(cls, path: str | Path) -> Self:
        """A second connection to the store at ``path`` that can only read (#11): the
        daemon's pure reads run on it, on a thread of their own, so they never queue
        behind (or hold up) the writer. The store must be open already by its writer (which
        checked, migrated and put it in WAL mode): WAL lets this connection read the last
        committed state while the writer writes. Each read is its own short transaction.

        It keeps no views and starts no verifier processes; every write through it fails
        (``PRAGMA query_only``, and the file is opened ``mode=ro``). Raises StorageError if
        the store cannot be opened so or is not in WAL mode."""
        path = Path(path)
        uri = f"{path.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise storage_error(path, exc) from exc
        try:
            conn.execute("PRAGMA query_only = 1")
            conn.execute("PRAGMA busy_timeout = 10000")
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        except sqlite3.Error as exc:
            conn.close()
            raise storage_error(path, exc) from exc
        if str(mode).lower() != "wal":
            conn.close()
            raise StorageError(
                f"store {path} is not in WAL mode ({mode}): a reader beside the writer needs it"
            )
        return cls(path, conn, 1, None)
