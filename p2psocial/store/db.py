"""Opening a store: the file checks, the connection, migrations and view versions.

:class:`StoreBase` owns the one SQLite connection of a store and the helpers every part of
the store uses: :meth:`StoreBase._transaction` (``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled
back on any error) and :meth:`StoreBase._errors` (sqlite errors become StorageError naming
the file). Opening checks that the file is a p2psocial store before anything is written,
applies the numbered migrations of the core tables (``schema.py``), then brings every view
up to its version (``views/``): a view whose recorded version differs is rebuilt from the
stored entries, in one transaction, with progress on the log.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Self

import sqlite_utils

from p2psocial.errors import DatabaseCorrupt, StorageError
from p2psocial.store.schema import APPLICATION_ID, LATEST, MIGRATIONS
from p2psocial.store.verify import Verifier
from p2psocial.store.views import View, default_views, rebuild_view

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from p2psocial.identity import Keypair
    from p2psocial.msgtypes.private import Opener

log = logging.getLogger("p2psocial.store")

SQLITE_MAGIC = b"SQLite format 3\x00"


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
        self.views: Sequence[View] = default_views(private=owner is not None)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        create: bool = True,
        verify_workers: int | None = 1,
        owner: Keypair | None = None,
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

        Raises DatabaseCorrupt naming the file if it is damaged or not a p2psocial store
        (the file is never overwritten), StorageError if it cannot be opened at all.
        """
        path = Path(path)
        if path.exists():
            if not path.is_file():
                raise StorageError(f"{path} is not a file")
            with path.open("rb") as f:
                head = f.read(len(SQLITE_MAGIC))
            if head and head != SQLITE_MAGIC:
                raise DatabaseCorrupt(
                    f"{path} is not an SQLite database (damaged, or another program's file); "
                    "it was left untouched"
                )
        elif not create:
            raise StorageError(f"no store at {path}: run 'p2psocial init'")
        else:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)  # private messages live here: owner only
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open store {path}: {exc}") from exc
        store = cls(path, conn, verify_workers, owner)
        try:
            store._prepare()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise DatabaseCorrupt(
                f"store {path} is damaged ({exc}); it was left untouched"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return store

    def _prepare(self) -> None:
        conn = self._conn
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and (version or tables):
            raise DatabaseCorrupt(
                f"{self.path} is an SQLite database of another program, not a p2psocial "
                "store; it was left untouched"
            )
        if version > LATEST:
            raise StorageError(
                f"store {self.path} has schema version {version}, newer than this "
                f"p2psocial knows ({LATEST}): upgrade p2psocial"
            )
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        for number in range(version, LATEST):
            with self._transaction():
                MIGRATIONS[number](self.db)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {number + 1}")
        self._sync_views()

    def _sync_views(self) -> None:
        """Rebuild every view whose recorded version is not its current one; forget the
        version of a view this opening does not keep, so it is rebuilt when next kept."""
        recorded = dict(self._conn.execute("SELECT name, version FROM views").fetchall())
        active = {view.name for view in self.views}
        stale = [name for name in recorded if name not in active]
        if stale:
            with self._transaction() as conn:
                conn.executemany("DELETE FROM views WHERE name = ?", [(n,) for n in stale])
        for view in self.views:
            if recorded.get(view.name) != view.version:
                self.rebuild(view.name)

    def rebuild(self, name: str) -> int:
        """Drop view ``name`` and index every stored entry into it again, in one
        transaction. Returns the number of entries replayed."""
        view = next((v for v in self.views if v.name == name), None)
        if view is None:
            raise StorageError(f"no view named {name!r} is kept by this store")
        with self._errors(), self._transaction() as conn:
            replayed = rebuild_view(conn, view, self.opener, log)
            conn.execute(
                "INSERT INTO views (name, version) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                (view.name, view.version),
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
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"store {self.path}: {exc}") from exc

    def integrity_check(self) -> list[str]:
        """SQLite's integrity check: ``["ok"]`` for a sound file."""
        with self._errors():
            return [row[0] for row in self._conn.execute("PRAGMA integrity_check")]
