"""JSON-RPC methods for blobs (#13): ``blobs.add``, ``blobs.get``, ``blobs.has``,
``blobs.want``, ``blobs.list``, ``blobs.remove``, ``blobs.subscribe``; and the
``attachments`` of ``post`` and ``private.publish`` (docs/rpc.md).

``blobs.add`` takes a local file (``path``: the daemon runs as the same user on the same
machine) or base64 ``data``. Pictures are re-encoded without their metadata (EXIF, GPS,
camera serial) and scaled to at most 2048 px on the long side unless ``keep_metadata``, and
a thumbnail is added as its own blob (``media.py``). With ``private`` the bytes are sealed
with a fresh key before they are hashed (``proto/blobbox.py``): the answer's
``attachment`` carries the key, for a private message only. Every answer has the
``attachment`` entry to put in a post.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from p2psocial.errors import (
    BlobMissing,
    BlobRefused,
    DaemonNotRunning,
    InvalidParams,
    PrivateBoxError,
)
from p2psocial.identity import blob_id, parse_blob_id
from p2psocial.media import MAX_SIDE, THUMB_SIDE, is_image, prepare_image
from p2psocial.msgtypes.blobs import MAX_ALT, MAX_ATTACHMENTS, attachment, check_attachment
from p2psocial.proto.blobbox import open_blob, seal_blob

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App
    from p2psocial.blobstore import BlobStore
    from p2psocial.store.blobs import HeldBlob
    from p2psocial.store.store import Store

MAX_INPUT = 64 * 1024 * 1024
"""The largest file ``blobs.add`` reads (a picture is made smaller before the cap applies)."""
DEFAULT_WAIT = 30.0
"""Seconds ``blobs.get`` waits for a missing blob to arrive from peers."""


async def _read_input(params: Params, limit: int) -> tuple[bytes, str | None]:
    """The bytes to add and the file's name, from ``path`` (an absolute path, read on a
    worker thread) or ``data``."""
    path = params.optional_str("path", max_length=4096)
    data = params.optional_str("data", max_length=1 << 20)
    if (path is None) == (data is None):
        raise InvalidParams("blobs.add needs one of 'path' (a local file) or 'data' (base64)")
    if data is not None:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidParams("parameter 'data' is not valid base64", "data") from None
        return raw, None
    assert path is not None
    file = Path(path)
    if not file.is_absolute():
        raise InvalidParams(f"parameter 'path' must be an absolute path, not {path!r}", "path")

    def read() -> bytes:
        try:
            size = file.stat().st_size
            if not file.is_file():
                raise InvalidParams(f"parameter 'path': {path} is not a regular file", "path")
            if size > limit:
                raise BlobRefused(f"{path} is {size} bytes; the largest file read is {limit} bytes")
            return file.read_bytes()
        except OSError as exc:
            raise InvalidParams(
                f"parameter 'path': cannot read {path}: {exc.strerror or exc}", "path"
            ) from None

    return await trio.to_thread.run_sync(read), file.name


def picture_name(media_type: str) -> str:
    """``picture.jpg``, ``picture.png``, ...: the name of a picture whose own name went."""
    ext = mimetypes.guess_extension(media_type) or ""
    return f"picture{'.jpg' if ext in ('.jpe', '.jpeg') else ext}"


def _media_type(name: str) -> str:
    guessed, _enc = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


async def add_blob(
    blobs: BlobStore,
    data: bytes,
    name: str,
    *,
    keep_metadata: bool = False,
    private: bool = False,
    alt: str | None = None,
    max_side: int = MAX_SIDE,
    pin: bool = True,
    named: bool = True,
) -> dict[str, Any]:
    """Add a file as a blob (a picture with its thumbnail): the ``blobs.add`` answer. A
    picture whose metadata goes gets a plain name too, unless ``named`` (given by the
    caller): file names from cameras and phones hold the time a picture was taken."""
    picture = await trio.to_thread.run_sync(is_image, data)
    key = os.urandom(32) if private else None

    async def store(raw: bytes, what: str) -> tuple[bytes, int]:
        sealed = seal_blob(raw, key, os.urandom(24)) if key is not None else raw
        blobs.check_size(len(sealed), what)
        digest, _new = await blobs.add(sealed, pinned=pin)
        return digest, len(sealed)

    answer: dict[str, Any] = {"name": name, "metadata_removed": False, "scaled": False}
    if not picture:
        digest, size = await store(data, name)
        media_type = _media_type(name)
        entry = attachment(digest, media_type=media_type, name=name, size=size, alt=alt, key=key)
        answer.update(id=blob_id(digest), size=size, type=media_type)
    else:
        prepared = await trio.to_thread.run_sync(
            lambda: prepare_image(
                data, keep_metadata=keep_metadata, max_side=max_side, thumb_side=THUMB_SIDE
            )
        )
        full = prepared.full
        if not keep_metadata and not named:
            name = picture_name(full.media_type)  # a camera's file name tells when it was
        digest, size = await store(full.data, f"{name} (as re-encoded)")
        thumb_entry: dict[str, Any] | None = None
        if prepared.thumbnail is not None:
            small = prepared.thumbnail
            try:
                thumb_digest, thumb_size = await store(small.data, f"the thumbnail of {name}")
            except BlobRefused:
                held = await blobs.gateway.read(lambda s: s.held_blob(digest))
                if held is not None and held.referenced == 0:
                    await blobs.drop([digest], reason="its thumbnail did not fit")
                raise
            thumb_entry = {
                "link": blob_id(thumb_digest),
                "type": small.media_type,
                "size": thumb_size,
                "width": small.width,
                "height": small.height,
            }
        entry = attachment(
            digest,
            media_type=full.media_type,
            name=name,
            size=size,
            width=full.width,
            height=full.height,
            alt=alt,
            thumbnail=thumb_entry,
            key=key,
        )
        answer.update(
            id=blob_id(digest),
            size=size,
            type=full.media_type,
            width=full.width,
            height=full.height,
            thumbnail=thumb_entry,
            metadata_removed=prepared.metadata_removed,
            scaled=prepared.scaled,
        )
    if key is not None:
        answer["key"] = entry["key"]
    answer["name"] = name
    answer["private"] = private
    answer["attachment"] = entry
    return answer


async def attachments_param(
    app: App, params: Params, *, private: bool, name: str = "attachments"
) -> list[dict[str, Any]]:
    """The ``attachments`` of a post or private message: entries as ``blobs.add`` answers
    them, at most MAX_ATTACHMENTS, each held here; a private message's must be private
    (hold a key), a public post's must not (it would publish the key)."""
    listed = params.optional_list(name)
    if not listed:
        return []
    if len(listed) > MAX_ATTACHMENTS:
        raise InvalidParams(
            f"parameter {name!r} has {len(listed)} attachments; the limit is {MAX_ATTACHMENTS}",
            name,
        )
    out = []
    for index, item in enumerate(listed):
        where = f"parameter {name!r}[{index}]"
        if not isinstance(item, dict):
            raise InvalidParams(f"{where} must be an attachment map (blobs.add answers one)")
        problem = check_attachment(item)
        if problem is not None:
            raise InvalidParams(f"{where}: {problem}", name)
        if private and "key" not in item:
            raise InvalidParams(
                f"{where} is not private: add files for a private message with "
                "blobs.add {private: true}, so only its readers can open them",
                name,
            )
        if not private and "key" in item:
            raise InvalidParams(
                f"{where} carries its key: a public post would publish it; "
                "attach blobs added without 'private'",
                name,
            )
        digest = parse_blob_id(item["link"])
        if await app.blobs.size(digest) is None:
            raise InvalidParams(
                f"{where}: blob {item['link']} is not held here: add it with blobs.add first",
                name,
            )
        out.append(dict(item))
    return out


def _open_with_any(sealed: bytes, keys: list[bytes]) -> bytes:
    """The plaintext of a private blob, opened with the first of ``keys`` that opens it
    (PrivateBoxError from the last when none does)."""
    for key in keys[:-1]:
        try:
            return open_blob(sealed, key)
        except PrivateBoxError:
            continue
    return open_blob(sealed, keys[-1])


def _held_json(held: HeldBlob) -> dict[str, Any]:
    return {
        "id": blob_id(held.blob),
        "size": held.size,
        "stored": held.stored,
        "used": held.used,
        "pinned": held.pinned,
        "relay": held.relay,
        "referenced": held.referenced,
    }


def register_blob_methods(registry: MethodRegistry, app: App) -> None:
    blobs = app.blobs

    @registry.method("blobs.add")
    async def add(params: Params, ctx: CallContext) -> Any:
        data, file_name = await _read_input(params, MAX_INPUT)
        given = params.optional_str("name", max_length=200)
        name = given or file_name or "blob"
        keep = params.optional_bool("keep_metadata", False)
        private = params.optional_bool("private", False)
        alt = params.optional_str("alt", max_length=MAX_ALT)
        max_side = params.optional_int("max_side", MAX_SIDE, min_value=16, max_value=8192)
        pin = params.optional_bool("pin", True)
        params.reject_unknown()
        if not name.strip():
            raise InvalidParams("parameter 'name' must not be blank", "name")
        if alt is not None and not alt.strip():
            raise InvalidParams("parameter 'alt' must not be blank", "alt")
        return await add_blob(
            blobs,
            data,
            name,
            keep_metadata=keep,
            private=private,
            alt=alt,
            max_side=max_side,
            pin=pin,
            named=given is not None,
        )

    @registry.method("blobs.has")
    async def has(params: Params, ctx: CallContext) -> Any:
        text, digest = params.require_blob_id("id")
        params.reject_unknown()
        size = await blobs.size(digest)
        partial = await blobs.in_thread(lambda: blobs.files.partial_size(digest))
        return {"id": text, "held": size is not None, "size": size, "partial": partial}

    @registry.method("blobs.want")
    async def want(params: Params, ctx: CallContext) -> Any:
        text, digest = params.require_blob_id("id")
        params.reject_unknown()
        if await blobs.size(digest) is not None:
            return {"id": text, "held": True}
        if app.network is None:
            raise DaemonNotRunning(
                "fetching a blob from peers needs the running daemon: 'p2psocial daemon'"
            )
        app.network.want_blob(digest)
        return {"id": text, "held": False}

    @registry.method("blobs.get")
    async def get(params: Params, ctx: CallContext) -> Any:
        text, digest = params.require_blob_id("id")
        wait = params.optional_float("wait", DEFAULT_WAIT, min_value=0, max_value=3600)
        key_text = params.optional_str("key", max_length=64)
        raw = params.optional_bool("raw", False)
        params.reject_unknown()
        size = await blobs.size(digest)
        if size is None:
            if app.network is None or wait == 0:
                hint = "" if app.network is None else " (asked peers for it: wait > 0 to wait)"
                if app.network is not None:
                    app.network.want_blob(digest)
                raise BlobMissing(f"blob {text} is not held here{hint}")
            arrived = app.network.want_blob(digest)
            if await blobs.size(digest) is None:  # it may have come in the meantime
                with trio.move_on_after(wait):
                    await arrived.wait()
            size = await blobs.size(digest)
            if size is None:
                raise BlobMissing(f"blob {text} did not arrive from any peer within {wait:g} s")
        data = await blobs.read(digest)
        await blobs.used([digest])
        answer: dict[str, Any] = {"id": text, "size": len(data), "decrypted": False}
        keys: list[bytes] = []
        if key_text is not None:
            try:
                keys = [base64.b64decode(key_text, validate=True)]
            except (binascii.Error, ValueError):
                raise InvalidParams("parameter 'key' is not valid base64", "key") from None
        elif not raw:
            keys = await app.gateway.read(lambda s: s.blob_keys(digest))
        if keys and not raw:
            try:
                data = _open_with_any(data, keys)
                answer.update(decrypted=True, size=len(data))
            except PrivateBoxError:
                if key_text is not None:
                    raise  # the key asked for does not open it
                # a private message named this blob with a key that does not open it: it
                # is not that message's attachment; answer the bytes as they are
        answer["data"] = base64.b64encode(data).decode("ascii")
        return answer

    @registry.method("blobs.list")
    async def list_(params: Params, ctx: CallContext) -> Any:
        limit = params.optional_int("limit", 100, min_value=1, max_value=10_000)
        params.reject_unknown()

        def read(store: Store) -> list[dict[str, Any]]:
            return [_held_json(h) for h in store.held_blobs(limit=limit)]

        return {"blobs": await app.gateway.read(read), **await blobs.totals()}

    @registry.method("blobs.remove")
    async def remove(params: Params, ctx: CallContext) -> Any:
        text, digest = params.require_blob_id("id")
        params.reject_unknown()
        return {"id": text, "removed": await blobs.remove(digest)}

    @registry.method("blobs.subscribe")
    async def subscribe(params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        sub = ctx.subscribe("blobs", params)
        return {"subscription": sub.id}


__all__ = ["add_blob", "attachments_param", "register_blob_methods"]
