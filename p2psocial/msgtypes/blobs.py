"""Blobs that content refers to: attachments in a post's ``mentions``, a profile's avatar.

An attachment is a ``mentions`` entry whose ``link`` is a blob id::

    {"link": "&...sha256", "type": "image/jpeg", "name": "cat.jpg", "size": 48213,
     "width": 2048, "height": 1536, "alt": "a cat on a chair",
     "thumbnail": {"link": "&...sha256", "type": "image/jpeg", "size": 9120,
                   "width": 320, "height": 240},
     "key": "<base64 of 32 bytes>"}

``type`` (a media type), ``size`` (bytes) and ``name`` are required; ``width``/``height``
for images, ``alt`` (a description for people who cannot see the picture), ``thumbnail``
(a smaller copy, its own blob) and ``key`` are optional. ``key`` is only ever inside a
private message: the blob holds ciphertext (``proto/blobbox.py``), and the key, carried
encrypted to the message's readers, opens it. A profile's ``avatar`` (``about``) is a blob
id too.

:func:`blob_refs` says which blobs content refers to (the ``blobrefs`` view indexes them:
it decides what a daemon fetches); :func:`check_attachment` is the rule our own content
keeps; a peer's malformed attachment is stored and replicated but refers to nothing.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from p2psocial.errors import InvalidId
from p2psocial.identity import blob_id, parse_blob_id

MAX_ATTACHMENTS = 4
"""Most blobs one post (or private message) attaches, as other networks allow."""
MAX_ALT = 1500
"""Most characters of an alt text."""
MAX_NAME = 200
"""Most characters of an attachment's file name."""
MAX_MEDIA_TYPE = 100

FULL = "full"
THUMB = "thumb"
AVATAR = "avatar"
KINDS = (THUMB, AVATAR, FULL)
"""What a reference is, in the order a daemon fetches: thumbnails and avatars first."""


@dataclass(frozen=True, slots=True)
class BlobRef:
    """One blob that content refers to."""

    blob: bytes
    kind: str
    """:data:`FULL` (an attachment), :data:`THUMB` (its thumbnail) or :data:`AVATAR`."""
    size: int | None
    """The size the content claims (a hint: the blob's hash is what is checked)."""
    key: bytes | None = None
    """The key that opens a private attachment's ciphertext."""


def _blob(value: object) -> bytes | None:
    if type(value) is not str or not value.startswith("&"):
        return None
    try:
        return parse_blob_id(value)
    except InvalidId:
        return None


def _size(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _key(value: object) -> bytes | None:
    if type(value) is not str:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def is_attachment(item: object) -> bool:
    """Whether a ``mentions`` entry is a blob attachment (a map linking a blob id)."""
    return isinstance(item, dict) and _blob(item.get("link")) is not None


def blob_refs(value: dict[str, Any]) -> list[BlobRef]:
    """The blobs ``value`` (public content, or a private message's opened content) refers
    to: attachments and their thumbnails, and an about's avatar. Malformed ones are
    skipped."""
    refs: list[BlobRef] = []
    listed = value.get("mentions")
    if isinstance(listed, list):
        for item in listed[: MAX_ATTACHMENTS * 4]:
            if not is_attachment(item):
                continue
            blob = _blob(item["link"])
            assert blob is not None
            key = _key(item.get("key"))
            refs.append(BlobRef(blob, FULL, _size(item.get("size")), key))
            thumb = item.get("thumbnail")
            if isinstance(thumb, dict):
                small = _blob(thumb.get("link"))
                if small is not None:
                    refs.append(BlobRef(small, THUMB, _size(thumb.get("size")), key))
    if value.get("type") == "about":
        avatar = _blob(value.get("avatar"))
        if avatar is not None:
            refs.append(BlobRef(avatar, AVATAR, None))
    return refs


def attachments(value: dict[str, Any]) -> list[dict[str, Any]]:
    """The well-formed attachment entries of content (for showing them)."""
    listed = value.get("mentions")
    if not isinstance(listed, list):
        return []
    return [item for item in listed if is_attachment(item) and check_attachment(item) is None]


def _text_problem(item: dict[str, Any], name: str, limit: int, required: bool) -> str | None:
    if name not in item:
        return f"needs '{name}'" if required else None
    text = item[name]
    if type(text) is not str or not text.strip() or len(text) > limit:
        return f"'{name}' must be text of 1 to {limit} characters"
    return None


def _picture_problem(item: dict[str, Any], what: str) -> str | None:
    if _blob(item.get("link")) is None:
        return f"{what} 'link' must be a blob id (&...sha256)"
    problem = _text_problem(item, "type", MAX_MEDIA_TYPE, True)
    if problem is not None:
        return f"{what} {problem}"
    if _size(item.get("size")) is None:
        return f"{what} 'size' must be a number of bytes"
    for side in ("width", "height"):
        if side in item and (type(item[side]) is not int or item[side] <= 0):
            return f"{what} '{side}' must be a positive number of pixels"
    return None


def check_attachment(item: dict[str, Any]) -> str | None:
    """Why an attachment entry breaks the rules, None if it keeps them."""
    problem = _picture_problem(item, "an attachment's")
    if problem is not None:
        return problem
    for name, limit, required in (("name", MAX_NAME, True), ("alt", MAX_ALT, False)):
        problem = _text_problem(item, name, limit, required)
        if problem is not None:
            return f"an attachment {problem}"
    if "key" in item and _key(item["key"]) is None:
        return "an attachment's 'key' must be the base64 of 32 bytes"
    thumb = item.get("thumbnail")
    if thumb is not None:
        if not isinstance(thumb, dict):
            return "an attachment's 'thumbnail' must be a map"
        problem = _picture_problem(thumb, "a thumbnail's")
        if problem is not None:
            return problem
    known = {"link", "type", "name", "size", "width", "height", "alt", "thumbnail", "key"}
    extra = sorted(set(item) - known)
    if extra:
        return f"an attachment has unknown field(s): {', '.join(map(str, extra))}"
    return None


def attachment(
    digest: bytes,
    *,
    media_type: str,
    name: str,
    size: int,
    width: int | None = None,
    height: int | None = None,
    alt: str | None = None,
    thumbnail: dict[str, Any] | None = None,
    key: bytes | None = None,
) -> dict[str, Any]:
    """An attachment entry for a post's ``mentions``."""
    item: dict[str, Any] = {"link": blob_id(digest), "type": media_type, "name": name}
    item["size"] = size
    if width is not None and height is not None:
        item["width"], item["height"] = width, height
    if alt is not None:
        item["alt"] = alt
    if thumbnail is not None:
        item["thumbnail"] = thumbnail
    if key is not None:
        item["key"] = base64.b64encode(key).decode("ascii")
    return item
