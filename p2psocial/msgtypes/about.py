"""``about``: what a feed says about itself (its profile) or calls another feed.

``{"type": "about", "about": FEED_ID, "name": TEXT?, "bio": TEXT?, "avatar": BLOB_ID?}``.
An ``about`` whose ``about`` is its author's own feed sets that author's profile (the latest
per field wins, by sequence); one about another feed with a ``name`` is only what the
author calls that feed (used for "the name most of the people you follow call them",
``names.py``). Our own must keep the rules of :func:`check_about`; a peer's malformed one
is stored and replicated, and the ``profiles`` view skips the fields it cannot use.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from p2psocial.errors import InvalidId, UnpublishableContent
from p2psocial.identity import parse_blob_id
from p2psocial.msgtypes.base import ContentType, Value, feed_field

MAX_NAME = 64
"""Most characters of a name."""
MAX_BIO = 1000
"""Most characters of a bio."""
FIELDS = ("name", "bio", "avatar")


_JOINERS = frozenset("\u200c\u200d")
"""ZWNJ and ZWJ: format characters that scripts and emoji sequences need."""
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _has_control(text: str) -> bool:
    """Control (Cc), format (Cf: bidi, zero-width; but ZWNJ and ZWJ), lone surrogate or
    line/paragraph separator characters: what ``textsafe`` would have to escape."""
    return any(
        unicodedata.category(ch) in _REFUSED_CATEGORIES and ch not in _JOINERS for ch in text
    )


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a usable name, None if it is."""
    if type(name) is not str:
        return "must be text"
    if not 1 <= len(name) <= MAX_NAME:
        return f"must be 1 to {MAX_NAME} characters"
    if not name.strip():
        return "must not be only spaces"
    if _has_control(name):
        return "must not hold control or format characters"
    return None


def bio_problem(bio: object) -> str | None:
    if type(bio) is not str:
        return "must be text"
    if len(bio) > MAX_BIO:
        return f"must be at most {MAX_BIO} characters"
    return None


def avatar_problem(avatar: object) -> str | None:
    if type(avatar) is not str:
        return "must be a blob id (&...sha256)"
    try:
        parse_blob_id(avatar)
    except InvalidId:
        return "must be a blob id (&...sha256)"
    return None


_PROBLEMS = {"name": name_problem, "bio": bio_problem, "avatar": avatar_problem}


def about_content(
    about: str, *, name: str | None = None, bio: str | None = None, avatar: str | None = None
) -> dict[str, Any]:
    """The content of an about entry (fields given as None are left out)."""
    content: dict[str, Any] = {"type": "about", "about": about}
    for key, value in (("name", name), ("bio", bio), ("avatar", avatar)):
        if value is not None:
            content[key] = value
    return content


@dataclass(frozen=True, slots=True)
class About:
    """The usable parts of about content: whom it is about, and its valid fields."""

    about: bytes
    name: str | None
    bio: str | None
    avatar: str | None


def parse_about(value: Value) -> About | None:
    """The usable fields of about content (a malformed field is None); None if the content
    is not an about or names no feed."""
    if value.get("type") != "about":
        return None
    about = feed_field(value.get("about"))
    if about is None:
        return None
    usable = {
        k: value[k] if k in value and _PROBLEMS[k](value[k]) is None else None for k in FIELDS
    }
    return About(about, usable["name"], usable["bio"], usable["avatar"])


def check_about(value: Value) -> None:
    """The rules our own about content keeps (but who it is about: :func:`check_author`)."""
    if feed_field(value.get("about")) is None:
        raise UnpublishableContent("an about's 'about' must be a feed id (@...ed25519)")
    if not any(k in value for k in FIELDS):
        raise UnpublishableContent("an about needs a 'name', 'bio' or 'avatar'")
    for key in FIELDS:
        if key in value:
            problem = _PROBLEMS[key](value[key])
            if problem is not None:
                raise UnpublishableContent(f"an about's {key!r} {problem}")


def check_author(value: Value, author: bytes) -> None:
    """Our own about may only be about ourselves: a profile is set by its owner alone."""
    if feed_field(value.get("about")) != author:
        raise UnpublishableContent(
            "an about's 'about' must be your own feed id: only you set your profile "
            "(a name of your own for another feed is a petname: 'name.set')"
        )


def _describe(value: Value) -> str | None:
    parsed = parse_about(value)
    if parsed is None:
        return None
    parts = [f"about {value['about']}:"]
    if parsed.name is not None:
        parts.append(f"name {parsed.name!r}")
    if parsed.bio is not None:
        parts.append(f"bio {parsed.bio!r}")
    if parsed.avatar is not None:
        parts.append(f"avatar {parsed.avatar}")
    return " ".join(parts)


TYPE = ContentType(
    "about",
    check=check_about,
    check_author=check_author,
    describe=_describe,
    links=lambda value: [],
    link_fields=frozenset(),
)
