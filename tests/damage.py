"""Damaging store files the way failing disks, crashes and accidents do (tests of #11)."""

from __future__ import annotations

from pathlib import Path

TABLE_LEAF = 0x0D
"""The first byte of an SQLite table b-tree leaf page (the pages that hold the rows)."""


def page_size(path: Path) -> int:
    size = int.from_bytes(path.read_bytes()[16:18], "big")
    return 65536 if size == 1 else size


def set_bytes(path: Path, offset: int, value: bytes) -> None:
    """Overwrite ``len(value)`` bytes of ``path`` at ``offset``, in place."""
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(value)


def smash_leaf_page(path: Path) -> int:
    """Break the header of a table leaf page in the middle of the file (its cell count
    becomes 65535), as a torn or misdirected write does; returns the page number."""
    data = path.read_bytes()
    size = page_size(path)
    pages = len(data) // size
    number = next(
        n for n in range(pages // 2, pages) if n > 1 and data[(n - 1) * size] == TABLE_LEAF
    )
    set_bytes(path, (number - 1) * size + 3, b"\xff\xff")
    return number


def files_of(path: Path) -> dict[str, bytes]:
    """The bytes of a store and of its write-ahead log (empty when absent): what must not
    change when a damaged store is refused."""
    wal = path.with_name(path.name + "-wal")
    return {
        "store": path.read_bytes() if path.exists() else b"",
        "wal": wal.read_bytes() if wal.exists() else b"",
    }
