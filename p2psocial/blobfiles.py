"""The blob folder: blob files on disk, named by their sha256, never half written.

Layout under ``<home>/blobs/``::

    sha256/ab/cdef...    a held blob: the 64 hex digits of its sha256, split 2 + 62
    partial/<hex>.part   a download under way (resumed from its size after a cut)
    partial/add-*.tmp    a blob being added

A blob reaches its real name only by ``os.replace`` of a finished, fsynced file whose
hash was checked: a crash (or a SIGKILL mid-download) can leave a ``.part`` file behind,
never a wrong or half blob under a real name. Partial files are resumed, or dropped when
their hash fails.

The methods are blocking file I/O: the daemon runs them on worker threads (never on the
store's thread or trio's loop; ``net/blobs.py`` and ``api/blobs_api.py``). What is known
about blobs beyond the files (who refers to them, when they were last used, which are
ours) is in the store (``store/blobs.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from p2psocial.errors import BadBlob, BlobMissing
from p2psocial.identity import blob_id

if TYPE_CHECKING:
    from collections.abc import Iterator

READ_CHUNK = 1 << 20


class BlobFiles:
    """The blob files of one home."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.held_dir = root / "sha256"
        self.partial_dir = root / "partial"

    def ensure(self) -> None:
        """Make the folders (mode 0700, like the home)."""
        for path in (self.root, self.held_dir, self.partial_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, digest: bytes) -> Path:
        text = digest.hex()
        return self.held_dir / text[:2] / text[2:]

    def size(self, digest: bytes) -> int | None:
        """The size of a held blob, None if it is not held."""
        try:
            return self.path(digest).stat().st_size
        except OSError:
            return None

    def read(self, digest: bytes, offset: int = 0, length: int = -1) -> bytes:
        """Bytes of a held blob from ``offset`` (all of the rest when ``length`` < 0)."""
        try:
            with self.path(digest).open("rb") as f:
                f.seek(offset)
                return f.read(length)
        except FileNotFoundError:
            raise BlobMissing(f"blob {blob_id(digest)} is not held here") from None

    def put(self, data: bytes) -> tuple[bytes, bool]:
        """Store ``data`` as a blob: (its sha256, whether it is new)."""
        digest = hashlib.sha256(data).digest()
        if self.size(digest) == len(data):
            return digest, False
        self.ensure()
        fd, name = tempfile.mkstemp(prefix="add-", suffix=".tmp", dir=self.partial_dir)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self._move_into_place(tmp, digest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return digest, True

    def remove(self, digest: bytes) -> bool:
        """Delete a held blob; whether there was one."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def scan(self) -> Iterator[tuple[bytes, int]]:
        """Every held blob: (sha256, size). Files that are not blob names are skipped."""
        if not self.held_dir.is_dir():
            return
        for sub in os.scandir(self.held_dir):
            if len(sub.name) != 2 or not sub.is_dir():
                continue
            for item in os.scandir(sub.path):
                try:
                    digest = bytes.fromhex(sub.name + item.name)
                except ValueError:
                    continue
                if digest.hex() != sub.name + item.name:
                    continue  # not a name path() gives (upper case, spaces)
                if len(digest) == 32 and item.is_file():
                    yield digest, item.stat().st_size

    def clean_partials(self, older_than_s: float) -> int:
        """Remove files of adds that never finished (a crash) and downloads not touched
        for ``older_than_s`` seconds. Returns how many went."""
        removed = 0
        if not self.partial_dir.is_dir():
            return 0
        limit = time.time() - older_than_s
        for item in os.scandir(self.partial_dir):
            try:
                if item.name.endswith(".tmp") or item.stat().st_mtime < limit:
                    os.unlink(item.path)
                    removed += 1
            except OSError:
                continue
        return removed

    def partial(self, digest: bytes) -> Partial:
        """The download of ``digest``, resumed from what an earlier try left."""
        self.ensure()
        return Partial(self, digest)

    def partial_size(self, digest: bytes) -> int:
        try:
            return (self.partial_dir / f"{digest.hex()}.part").stat().st_size
        except OSError:
            return 0

    def _move_into_place(self, tmp: Path, digest: bytes) -> None:
        final = self.path(digest)
        final.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(tmp, final)
        with contextlib.suppress(OSError):  # make the rename itself durable
            fd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class Partial:
    """One blob being downloaded into ``partial/<hex>.part``, its hash kept as it grows."""

    def __init__(self, files: BlobFiles, digest: bytes) -> None:
        self.files = files
        self.digest = digest
        self.path = files.partial_dir / f"{digest.hex()}.part"
        self.hasher = hashlib.sha256()
        self.offset = 0
        self._file = self.path.open("ab+")
        self._file.seek(0)
        while chunk := self._file.read(READ_CHUNK):
            self.hasher.update(chunk)
            self.offset += len(chunk)

    def write_all(self, chunks: list[bytes]) -> None:
        """Write several chunks in order (one call from the event loop's side)."""
        for chunk in chunks:
            self.write(chunk)

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:  # unbuffered: a write may take less than all
            written = self._file.write(view)
            if written is None:  # pragma: no cover - only non-blocking files do this
                raise OSError(f"could not write to {self.path}")
            view = view[written:]
        self.hasher.update(chunk)
        self.offset += len(chunk)

    def close(self) -> None:
        """Stop for now: what was written stays for a later resume."""
        self._file.close()

    def commit(self) -> None:
        """The download is complete: check the hash and move it into place. Raises BadBlob
        (and drops the partial file) when the bytes do not hash to the blob's id."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
        if self.hasher.digest() != self.digest:
            self.discard()
            raise BadBlob(
                f"{self.offset} bytes sent for blob {blob_id(self.digest)} hash to "
                f"{blob_id(self.hasher.digest())}"
            )
        self.files._move_into_place(self.path, self.digest)

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
