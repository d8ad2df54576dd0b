"""Typed helpers over the daemon's methods (docs/rpc.md), for :class:`~p2psocial.client.Client`.

Each helper is one ``call`` with the method's named params, returning its JSON result
with a type a checker can follow::

    with Client.for_home(home) as client:
        for card in client.timeline(limit=20):
            print(card["author_name"], card["text"], card["counts"]["likes"])
        client.like(card["id"], emoji="🎉")
        hits = client.search("bread recipe")

Optional params left as None are not sent (the method's default applies). Errors are the
:class:`~p2psocial.errors.RpcError` of ``call``.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast


class Counts(TypedDict):
    replies: int
    likes: int
    reposts: int


class Card(TypedDict, total=False):
    """A post as a timeline shows it (docs/rpc.md, "Cards"): the message and more."""

    id: str
    author: str
    seq: int
    previous: str | None
    timestamp: int
    received: int
    private: bool
    content: dict[str, Any] | None
    deleted: bool
    author_name: str
    sort_ts: int
    text: str | None
    edited: bool
    cw: str | None
    counts: Counts
    repost: dict[str, Any]
    depth: int
    parent: str | None
    history: list[dict[str, Any]]
    rank: float


class Notification(TypedDict, total=False):
    kind: str
    read: bool
    message: dict[str, Any]
    target: str | None
    expression: str | None
    in_thread: bool


def _params(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class SocialMethods:
    """The helpers; the class using them provides ``call``."""

    def call(self, method: str, /, **params: Any) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------------ posting

    def post(
        self,
        text: str,
        *,
        root: str | None = None,
        branch: str | None = None,
        mentions: list[str] | None = None,
        channel: str | None = None,
        cw: str | None = None,
        mention_names: bool | None = None,
    ) -> dict[str, Any]:
        """Publish a post (``post``); a reply with ``root`` (and ``branch``)."""
        return cast(
            "dict[str, Any]",
            self.call(
                "post",
                **_params(
                    text=text,
                    root=root,
                    branch=branch,
                    mentions=mentions,
                    channel=channel,
                    cw=cw,
                    mention_names=mention_names,
                ),
            ),
        )

    def edit(self, msg_id: str, text: str) -> dict[str, Any]:
        """Give one of your posts new text: ``{"message", "post"}`` (``edit``)."""
        return cast("dict[str, Any]", self.call("edit", id=msg_id, text=text))

    def repost(self, msg_id: str, *, comment: str | None = None) -> Card:
        """Share a message, optionally with a comment (``repost``)."""
        return cast("Card", self.call("repost", **_params(id=msg_id, comment=comment)))

    def delete(self, msg_id: str, *, reason: str | None = None) -> dict[str, Any]:
        """Take back one of your messages (``delete``)."""
        return cast("dict[str, Any]", self.call("delete", **_params(id=msg_id, reason=reason)))

    def like(self, msg_id: str, *, emoji: str | None = None) -> dict[str, Any]:
        return cast("dict[str, Any]", self.call("like", **_params(id=msg_id, emoji=emoji)))

    def unlike(self, msg_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.call("unlike", id=msg_id))

    def likes(self, msg_id: str) -> dict[str, Any]:
        """``{"id", "likes": N, "by": [{"feed_id", "expression"}]}`` (``likes``)."""
        return cast("dict[str, Any]", self.call("likes", id=msg_id))

    # ------------------------------------------------------------------ reading

    def timeline(self, *, limit: int | None = None, before: int | None = None) -> list[Card]:
        """Posts and reposts of the feeds you follow, newest first; page with ``before``
        = the last card's ``sort_ts``."""
        return cast("list[Card]", self.call("timeline", **_params(limit=limit, before=before)))

    def thread(self, root: str, *, limit: int | None = None) -> list[Card]:
        """A thread's cards, root first, with ``depth`` and ``parent``."""
        return cast("list[Card]", self.call("thread", **_params(root=root, limit=limit)))

    def cards(self, ids: list[str]) -> list[Card]:
        return cast("list[Card]", self.call("cards", ids=ids))

    def history(self, msg_id: str) -> Card:
        """A post's card with its ``history`` (its text, then each edit's)."""
        return cast("Card", self.call("history", id=msg_id))

    def search(
        self, query: str, *, limit: int | None = None, before: int | None = None
    ) -> list[Card]:
        """Full-text search over stored public posts, best first (``search``)."""
        return cast(
            "list[Card]", self.call("search", **_params(query=query, limit=limit, before=before))
        )

    def channel(
        self, name: str, *, limit: int | None = None, before: int | None = None
    ) -> list[Card]:
        return cast(
            "list[Card]", self.call("channel", **_params(name=name, limit=limit, before=before))
        )

    def channels(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """``[{"name", "count", "latest"}]``, the most used first."""
        return cast("list[dict[str, Any]]", self.call("channels", **_params(limit=limit)))

    def notifications(
        self, *, limit: int | None = None, before: int | None = None, unread: bool | None = None
    ) -> list[Notification]:
        return cast(
            "list[Notification]",
            self.call("notifications", **_params(limit=limit, before=before, unread=unread)),
        )

    def mark_notifications_read(self, *, up_to: int | None = None) -> dict[str, int]:
        """``{"marked", "unread"}`` (``notifications.mark_read``)."""
        return cast("dict[str, int]", self.call("notifications.mark_read", **_params(up_to=up_to)))

    # ------------------------------------------------------------------ people

    def profile(self, feed_id: str | None = None) -> dict[str, Any]:
        return cast("dict[str, Any]", self.call("profile", **_params(feed_id=feed_id)))

    def set_profile(
        self, *, name: str | None = None, bio: str | None = None, avatar: str | None = None
    ) -> dict[str, Any]:
        return cast(
            "dict[str, Any]", self.call("profile.set", **_params(name=name, bio=bio, avatar=avatar))
        )

    def set_petname(self, feed_id: str, petname: str | None) -> dict[str, Any]:
        """Your own name for a feed (None clears it; never published)."""
        return cast("dict[str, Any]", self.call("name.set", feed_id=feed_id, petname=petname))

    def names(self, feed_ids: list[str]) -> dict[str, str]:
        """The display name of each feed id."""
        return cast("dict[str, str]", self.call("names", feed_ids=feed_ids))

    def follow(self, feed_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.call("follow", feed_id=feed_id))

    def unfollow(self, feed_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.call("unfollow", feed_id=feed_id))

    def contacts(self, feed_id: str | None = None) -> dict[str, Any]:
        """``{"feed_id", "following", "blocking", "followers"}`` (``contacts``)."""
        return cast("dict[str, Any]", self.call("contacts", **_params(feed_id=feed_id)))

    def mute(self, feed_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.call("mute", feed_id=feed_id))

    def unmute(self, feed_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.call("unmute", feed_id=feed_id))

    def mutes(self) -> list[dict[str, Any]]:
        return cast("list[dict[str, Any]]", self.call("mutes"))

    def suggest(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Feeds the people you follow follow: ``[{"feed_id", "followed_by",
        "display_name"}]``, most followed first."""
        return cast("list[dict[str, Any]]", self.call("suggest", **_params(limit=limit)))
