"""The blob folder (blobfiles.py): files named by their sha256, downloads resumed from a
partial file, committed only when the hash is right."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from p2psocial.blobfiles import BlobFiles
from p2psocial.errors import BadBlob, BlobMissing

DATA = b"a picture of a cat " * 1000
DIGEST = hashlib.sha256(DATA).digest()


@pytest.fixture
def files(tmp_path: Path) -> BlobFiles:
    return BlobFiles(tmp_path / "blobs")


def test_a_blob_is_named_by_its_sha256(files: BlobFiles) -> None:
    digest, new = files.put(DATA)
    assert (digest, new) == (DIGEST, True)
    text = DIGEST.hex()
    path = files.root / "sha256" / text[:2] / text[2:]
    assert files.path(DIGEST) == path
    assert len(path.name) == 62
    assert path.read_bytes() == DATA
    assert files.size(DIGEST) == len(DATA)
    assert list(files.partial_dir.iterdir()) == []  # no temporary file left


def test_put_is_idempotent(files: BlobFiles) -> None:
    files.put(DATA)
    before = files.path(DIGEST).stat().st_mtime_ns
    assert files.put(DATA) == (DIGEST, False)
    assert files.path(DIGEST).stat().st_mtime_ns == before
    assert [p for p in files.held_dir.rglob("*") if p.is_file()] == [files.path(DIGEST)]


def test_put_repairs_a_short_file(files: BlobFiles) -> None:
    files.put(DATA)
    files.path(DIGEST).write_bytes(DATA[:10])  # damaged outside our control
    assert files.put(DATA) == (DIGEST, True)
    assert files.read(DIGEST) == DATA


def test_the_folders_are_private(files: BlobFiles) -> None:
    files.ensure()
    for path in (files.root, files.held_dir, files.partial_dir):
        assert path.stat().st_mode & 0o077 == 0


def test_read_with_offset_and_length(files: BlobFiles) -> None:
    files.put(DATA)
    assert files.read(DIGEST) == DATA
    assert files.read(DIGEST, 5) == DATA[5:]
    assert files.read(DIGEST, 5, 10) == DATA[5:15]
    assert files.read(DIGEST, len(DATA) - 3, 100) == DATA[-3:]
    assert files.read(DIGEST, len(DATA) + 10) == b""
    assert files.read(DIGEST, 0, 0) == b""


def test_a_blob_not_held(files: BlobFiles) -> None:
    assert files.size(DIGEST) is None
    with pytest.raises(BlobMissing, match="not held"):
        files.read(DIGEST)
    assert files.remove(DIGEST) is False


def test_remove(files: BlobFiles) -> None:
    files.put(DATA)
    assert files.remove(DIGEST) is True
    assert files.size(DIGEST) is None
    assert files.remove(DIGEST) is False
    assert list(files.scan()) == []


def test_a_partial_download_resumes_where_it_stopped(files: BlobFiles) -> None:
    partial = files.partial(DIGEST)
    assert partial.offset == 0
    partial.write(DATA[:1000])
    partial.write(DATA[1000:2500])
    assert partial.offset == 2500
    partial.close()
    assert files.partial_size(DIGEST) == 2500
    assert files.size(DIGEST) is None  # not under its real name before it is complete

    again = files.partial(DIGEST)
    assert again.offset == 2500
    assert again.hasher.digest() == hashlib.sha256(DATA[:2500]).digest()
    again.write(DATA[2500:])
    again.commit()
    assert files.read(DIGEST) == DATA
    assert files.partial_size(DIGEST) == 0
    assert list(files.partial_dir.iterdir()) == []


def test_a_wrong_download_is_dropped(files: BlobFiles) -> None:
    partial = files.partial(DIGEST)
    partial.write(DATA[:-1] + b"!")
    with pytest.raises(BadBlob, match=f"{len(DATA)} bytes sent"):
        partial.commit()
    assert files.size(DIGEST) is None
    assert not files.path(DIGEST).exists()
    assert files.partial_size(DIGEST) == 0
    assert list(files.partial_dir.iterdir()) == []
    retry = files.partial(DIGEST)
    assert retry.offset == 0  # the next try starts over
    retry.close()


def test_a_short_download_does_not_commit(files: BlobFiles) -> None:
    partial = files.partial(DIGEST)
    partial.write(DATA[:100])
    with pytest.raises(BadBlob):
        partial.commit()
    assert files.size(DIGEST) is None


def test_an_empty_blob(files: BlobFiles) -> None:
    empty = hashlib.sha256(b"").digest()
    files.partial(empty).commit()
    assert files.size(empty) == 0
    assert files.read(empty) == b""


def test_discard(files: BlobFiles) -> None:
    partial = files.partial(DIGEST)
    partial.write(DATA[:10])
    partial.discard()
    partial.discard()  # twice: nothing there
    assert files.partial_size(DIGEST) == 0


def test_scan_lists_held_blobs(files: BlobFiles) -> None:
    assert list(files.scan()) == []  # no folder yet
    held = {}
    for n in range(5):
        data = f"blob {n}".encode() * (n + 1)
        digest, _new = files.put(data)
        held[digest] = len(data)
    partial = files.partial(DIGEST)  # a download under way is not held
    partial.write(DATA[:10])
    partial.close()
    assert dict(files.scan()) == held


def test_scan_skips_junk(files: BlobFiles) -> None:
    digest, _new = files.put(DATA)
    text = DIGEST.hex()
    (files.held_dir / "README").write_text("junk")
    (files.held_dir / "abc").mkdir()
    (files.held_dir / "abc" / text[3:]).write_text("junk")
    sub = files.held_dir / text[:2]
    (sub / "not-hex").write_text("junk")
    (sub / text[2:-2]).write_text("junk")  # 31 bytes
    (sub / (text[2:] + "00")).write_text("junk")  # 33 bytes
    (sub / (text[2:-1] + "x")).write_text("junk")
    other = "ff" * 31 + "fe"
    (sub / other).mkdir()  # a folder with a blob's name
    (files.held_dir / "zz").mkdir()
    (files.held_dir / "zz" / other).write_text("junk")  # the folder is not hex
    assert list(files.scan()) == [(digest, len(DATA))]


@pytest.mark.parametrize(
    "spell", [str.upper, lambda t: t[:10] + " " + t[10:]], ids=["upper-case", "a space"]
)
def test_scan_lists_only_names_that_path_gives(files: BlobFiles, spell: object) -> None:
    assert callable(spell)
    files.ensure()
    other = hashlib.sha256(b"other").hexdigest()
    sub = files.held_dir / other[:2]
    sub.mkdir()
    (sub / spell(other[2:])).write_bytes(b"x")
    found = list(files.scan())
    assert all(files.size(digest) is not None for digest, _size in found), found
