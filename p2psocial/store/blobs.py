"""What the store knows about blobs: which are held (the ``blobs`` core table), which
entries refer to which (the ``blobrefs`` view), what to fetch and what to drop.

The files themselves are in ``<home>/blobs`` (``blobfiles.py``); this table mirrors them
and adds what the files cannot say: when a blob was last used (for purging the least
recently used first), whether it is ours (``pinned``: added by us, or fetched because we
asked; never purged for room) and whether it was fetched only for another peer
(``relay``). The daemon reconciles the table with the folder when it starts
(:meth:`BlobsStore.reconcile_blobs`), so a crash between a file and its row loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2psocial.msgtypes.blobs import AVATAR, THUMB
from p2psocial.store.reads import Reads
from p2psocial.store.views.base import in_chunks

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


@dataclass(frozen=True, slots=True)
class HeldBlob:
    blob: bytes
    size: int
    stored: int
    used: int
    pinned: bool
    relay: bool
    referenced: int
    """How many entries refer to it."""


class BlobsStore(Reads):
    """Held blobs and the entries that refer to them."""

    def _kept(self) -> bool:
        return self._view_kept("blobrefs")

    # ------------------------------------------------------------------ held blobs

    def blob_stored(
        self, blob: bytes, size: int, now: int, *, pinned: bool = False, relay: bool = False
    ) -> None:
        """Record a blob now held (or pin/unrelay one already held)."""
        with self._errors(), self._transaction() as conn:
            conn.execute(
                "INSERT INTO blobs (blob, size, stored_ts, used_ts, pinned, relay) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (blob) DO UPDATE SET "
                "size = excluded.size, used_ts = excluded.used_ts, "
                "pinned = max(pinned, excluded.pinned), relay = min(relay, excluded.relay)",
                (blob, size, now, now, int(pinned), int(relay)),
            )

    def blobs_used(self, blobs: Sequence[bytes], now: int) -> None:
        """These blobs were read or served now (the least recently used are purged first)."""
        with self._errors(), self._transaction() as conn:
            for chunk, marks in in_chunks(blobs):
                conn.execute(f"UPDATE blobs SET used_ts = ? WHERE blob IN ({marks})", (now, *chunk))

    def blobs_forgotten(self, blobs: Sequence[bytes]) -> None:
        """Their files are gone: forget them."""
        with self._errors(), self._transaction() as conn:
            conn.executemany("DELETE FROM blobs WHERE blob = ?", [(b,) for b in blobs])

    def blob_sizes(self, blobs: Sequence[bytes]) -> dict[bytes, int]:
        """The sizes of those of ``blobs`` that are held."""
        out: dict[bytes, int] = {}
        with self._errors():
            for chunk, marks in in_chunks(blobs):
                for blob, size in self._conn.execute(
                    f"SELECT blob, size FROM blobs WHERE blob IN ({marks})", chunk
                ):
                    out[blob] = size
        return out

    def held_blob(self, blob: bytes) -> HeldBlob | None:
        found = self.held_blobs(blob=blob)
        return found[0] if found else None

    def held_blobs(self, *, blob: bytes | None = None, limit: int = 1000) -> list[HeldBlob]:
        """Held blobs, the most recently stored first (or the one ``blob``)."""
        refs = "(SELECT count(*) FROM blobrefs r WHERE r.blob = b.blob)" if self._kept() else "0"
        where = "WHERE b.blob = ?" if blob is not None else ""
        args: tuple[object, ...] = (blob, limit) if blob is not None else (limit,)
        with self._errors():
            rows = self._conn.execute(
                f"SELECT blob, size, stored_ts, used_ts, pinned, relay, {refs} FROM blobs b "
                f"{where} ORDER BY stored_ts DESC, blob LIMIT ?",
                args,
            ).fetchall()
        return [HeldBlob(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5]), r[6]) for r in rows]

    def blob_totals(self) -> tuple[int, int]:
        """(number of held blobs, their bytes)."""
        with self._errors():
            count, size = self._conn.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM blobs"
            ).fetchone()
        return count, size

    def reconcile_blobs(self, files: Iterable[tuple[bytes, int]], now: int) -> tuple[int, int]:
        """Make the table match the blob folder's files (blob, size): rows without a file
        go, files without a row are added (not pinned). Returns (added, removed)."""
        on_disk = dict(files)
        with self._errors(), self._transaction() as conn:
            rows = dict(conn.execute("SELECT blob, size FROM blobs").fetchall())
            gone = [b for b in rows if b not in on_disk]
            new = [(b, s, now, now) for b, s in on_disk.items() if rows.get(b) != s]
            conn.executemany("DELETE FROM blobs WHERE blob = ?", [(b,) for b in gone])
            conn.executemany(
                "INSERT INTO blobs (blob, size, stored_ts, used_ts) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (blob) DO UPDATE SET size = excluded.size",
                new,
            )
        return len(new), len(gone)

    # ------------------------------------------------------------------ references

    def blob_keys(self, blob: bytes) -> list[bytes]:
        """The keys private messages we can read give for a private attachment (more than
        one only if someone gave a wrong one: try each)."""
        if not self._kept():
            return []
        with self._errors():
            rows = self._conn.execute(
                "SELECT DISTINCT key FROM blobrefs WHERE blob = ? AND key IS NOT NULL LIMIT 10",
                (blob,),
            ).fetchall()
        return [r[0] for r in rows]

    def blob_referrers(self, blob: bytes) -> set[bytes]:
        """The authors whose entries refer to ``blob``."""
        if not self._kept():
            return set()
        with self._errors():
            rows = self._conn.execute(
                "SELECT DISTINCT author FROM blobrefs WHERE blob = ?", (blob,)
            ).fetchall()
        return {r[0] for r in rows}

    def wanted_blobs(self, authors: set[bytes], *, limit: int = 2000) -> dict[bytes, int]:
        """Blobs to fetch: referred to by entries of ``authors`` (ours and those we follow)
        or by private messages to us, not held; blob -> priority (0: thumbnails and
        avatars, 1: the rest), the newest references first, at most ``limit``."""
        if not self._kept():
            return {}
        with self._errors():
            rows = self._conn.execute(
                "SELECT r.blob, r.kind, r.author, r.key FROM blobrefs r "
                "JOIN entries e ON e.id = r.msg "
                "WHERE r.blob NOT IN (SELECT blob FROM blobs) ORDER BY e.rx DESC"
            ).fetchall()
        wanted: dict[bytes, int] = {}
        for blob, kind, author, key in rows:
            if author not in authors and key is None:
                continue
            priority = 0 if kind in (THUMB, AVATAR) else 1
            if blob not in wanted or priority < wanted[blob]:
                wanted[blob] = priority
            if len(wanted) >= limit:
                break
        return wanted

    def orphan_blobs(self) -> list[bytes]:
        """Held blobs no entry refers to that are neither ours nor fetched for a peer: the
        post that referred to them was deleted, or its author blocked."""
        if not self._kept():
            return []
        with self._errors():
            rows = self._conn.execute(
                "SELECT blob FROM blobs WHERE pinned = 0 AND relay = 0 "
                "AND blob NOT IN (SELECT blob FROM blobrefs)"
            ).fetchall()
        return [r[0] for r in rows]

    def blobs_to_purge(self, need: int, me: bytes, near: set[bytes]) -> list[tuple[bytes, int]]:
        """Blobs to drop to free ``need`` bytes, in :meth:`purge_candidates` order."""
        chosen: list[tuple[bytes, int]] = []
        freed = 0
        for blob, size, _tier in self.purge_candidates(me, near):
            if freed >= need:
                break
            chosen.append((blob, size))
            freed += size
        return chosen

    def purge_candidates(self, me: bytes, near: set[bytes]) -> list[tuple[bytes, int, int]]:
        """Every blob that may be dropped for room, (blob, size, tier), in the order to drop
        them: tier 1, least recently used first, those neither ours nor referred to by
        ``near`` (the feeds we follow directly) nor attached to a private message to us;
        then tier 2, the others that are not ours. Ours (pinned, or referred to by our own
        entries) never are."""
        kept = self._kept()
        refs = (
            "SELECT b.blob, b.size, b.used_ts, "
            + (
                "(SELECT group_concat(hex(r.author)) FROM blobrefs r WHERE r.blob = b.blob), "
                "EXISTS (SELECT 1 FROM blobrefs r WHERE r.blob = b.blob AND r.key IS NOT NULL)"
                if kept
                else "NULL, 0"
            )
            + " FROM blobs b WHERE b.pinned = 0 ORDER BY b.used_ts, b.blob"
        )
        with self._errors():
            rows = self._conn.execute(refs).fetchall()
        me_hex = me.hex().upper()
        near_hex = {k.hex().upper() for k in near}
        first: list[tuple[bytes, int, int]] = []
        second: list[tuple[bytes, int, int]] = []
        for blob, size, _used, authors, private in rows:
            by = set(authors.split(",")) if authors else set()
            if me_hex in by:
                continue
            if by & near_hex or private:
                second.append((blob, size, 2))
            else:
                first.append((blob, size, 1))
        return first + second
