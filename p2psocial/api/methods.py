"""The JSON-RPC methods (docs/rpc.md, "Methods"), over an :class:`~p2psocial.app.App`.

The same registry serves the daemon's socket and the CLI without a daemon (``local.py``),
so each method has one body, one set of limits and one error text. Each method reads its
named params through :class:`~p2psocial.api.params.Params` (a wrong, missing or unknown one
is -32602 naming it; a malformed id is -32002 naming it), does its store work through the
app's gateway, and answers JSON. Messages are answered in the form of
:meth:`p2psocial.model.Message.to_json` (see :func:`message_json`).

Live messages: :func:`live_messages` subscribes to the app's ``Stored`` events and queues
one ``message`` notification per matching ``subscribe`` subscription (private messages we
can read go, decrypted, to ``filter: "private"`` subscriptions).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from p2psocial.api.blobs_api import attachments_param, register_blob_methods
from p2psocial.api.cards import cards, threaded
from p2psocial.api.channel_api import register_channel_methods
from p2psocial.api.delete_api import register_delete_methods
from p2psocial.api.invite_api import register_invite_methods
from p2psocial.api.mute_api import register_mute_methods
from p2psocial.api.notify_api import (
    register_notify_methods,
    unread_notifications,
    watch_notifications,
)
from p2psocial.api.params import feed_id_param, message_id_param
from p2psocial.api.posts_api import register_post_methods
from p2psocial.api.private_api import register_private_methods
from p2psocial.api.profile_api import register_profile_methods
from p2psocial.api.publishing import publish_or_explain
from p2psocial.api.registry import MethodRegistry
from p2psocial.api.search_api import register_search_methods
from p2psocial.api.votes_api import register_vote_methods
from p2psocial.config import parse_address
from p2psocial.errors import (
    ConfigError,
    InvalidParams,
    NotFound,
    RpcError,
)
from p2psocial.identity import feed_id
from p2psocial.model import Message
from p2psocial.msgtypes.names import display_names, resolve_mentions, unresolved_message
from p2psocial.msgtypes.post import MAX_CHANNEL, MAX_CW, MAX_MENTIONS, channel_name, post_content
from p2psocial.msgtypes.private import private_json
from p2psocial.proto.jsonrpc import NOT_FOUND

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from p2psocial.api.hub import Hub, Subscription
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, Handler
    from p2psocial.app import App
    from p2psocial.events import Stored
    from p2psocial.feed.content import Content
    from p2psocial.msgtypes.names import Unresolved
    from p2psocial.store.store import Store

__all__ = [
    "MAX_LIMIT",
    "SUBSCRIBE_FILTERS",
    "build_registry",
    "live_messages",
    "mentions",
    "message_json",
]

MAX_LIMIT = 1000
"""Most messages one call answers (``limit``)."""
SUBSCRIBE_FILTERS = ("all", "feed", "type", "mentions", "private", "notifications")
"""What ``subscribe`` can select (its ``filter`` parameter)."""


# ----------------------------------------------------------------------------- JSON forms


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


def message_json(message: Message) -> dict[str, Any]:
    """The JSON form of a stored message (:meth:`Message.to_json`), always encodable:
    NaN and infinities, which CBOR content may hold and JSON cannot, become ``null``."""
    return message.to_json()


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    return [message_json(m) for m in messages]


def mentions(message: dict[str, Any], me: str) -> bool:
    """Whether the public message (JSON form) mentions feed id ``me``: in its ``mentions``
    list (an id or ``{"link": id}``) or in its ``text``."""
    content = message["content"]
    if not isinstance(content, dict):
        return False
    listed = content.get("mentions")
    if isinstance(listed, list) and any(
        m == me or (isinstance(m, dict) and m.get("link") == me) for m in listed
    ):
        return True
    text = content.get("text")
    return isinstance(text, str) and me in text


# ----------------------------------------------------------------------------- params


def _feed_id(params: Params, name: str, default: str | None = None) -> tuple[str, bytes]:
    """A feed id parameter as (text, key). -32602 if missing or not a string, -32002
    (``InvalidId``, ``data.param``) if malformed."""
    text = params.require_str(name) if default is None else params.optional_str(name, default)
    return text, feed_id_param(text, name)


def _limit(params: Params, default: int) -> int:
    return params.optional_int("limit", default, min_value=1, max_value=MAX_LIMIT)


def _check_finite(content: Content) -> None:
    if _has_non_finite(content):
        raise InvalidParams(
            "parameter 'content' holds a number JSON cannot carry (NaN or infinite)", "content"
        )


def _not_found(message: str, **data: Any) -> RpcError:
    return RpcError(NOT_FOUND, message, {"type": "NotFound", **data})


# ----------------------------------------------------------------------------- methods


class _Api:
    """The methods, bound to an :class:`~p2psocial.app.App`."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.gateway = app.gateway
        self.keys = app.keys
        self.me = app.keys.feed_id

    def register(self, registry: MethodRegistry) -> None:
        methods: dict[str, Handler] = {
            "whoami": self.whoami,
            "publish": self.publish,
            "post": self.post,
            "get": self.get,
            "feed": self.feed,
            "feed.info": self.feed_info,
            "feeds": self.feeds,
            "timeline": self.timeline,
            "thread": self.thread,
            "contacts": self.contacts,
            "peers.list": self.peers_list,
            "peers.connect": self.peers_connect,
            "status": self.status,
            "subscribe": self.subscribe,
        }
        for name, handler in methods.items():
            registry.add(name, handler)
        for name, stance in (
            ("follow", {"following": True}),
            ("unfollow", {"following": False}),
            ("block", {"blocking": True}),
            ("unblock", {"blocking": False}),
        ):
            registry.add(name, self._contact_method(stance))

        async def methods_method(params: Params, ctx: CallContext) -> Any:
            params.reject_unknown()
            return registry.names()

        registry.add("methods", methods_method)

    # ------------------------------------------------------------------ identity, writing

    async def whoami(self, params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        return {"feed_id": self.me}

    async def _publish(self, content: Content) -> dict[str, Any]:
        _check_finite(content)
        return message_json(Message.from_accepted(await publish_or_explain(self.app, content)))

    async def publish(self, params: Params, ctx: CallContext) -> Any:
        content = params.require_dict("content")
        params.reject_unknown()
        return await self._publish(content)

    async def post(self, params: Params, ctx: CallContext) -> Any:
        text = params.require_str("text")
        root = params.require_message_id("root") if params.get("root") is not None else None
        branch = params.require_message_id("branch") if params.get("branch") is not None else None
        listed = params.optional_list("mentions")
        channel = params.optional_str("channel", max_length=MAX_CHANNEL + 1)
        cw = params.optional_str("cw", max_length=MAX_CW)
        by_name = params.optional_bool("mention_names", False)
        attached = await attachments_param(self.app, params, private=False)
        params.reject_unknown()
        if not text.strip():
            raise InvalidParams("parameter 'text' must not be empty", "text")
        if branch is not None and root is None:
            raise InvalidParams("parameter 'branch' needs 'root' (the thread's root)", "branch")
        if channel is not None:
            channel = channel.removeprefix("#")
            if channel_name(channel) is None:
                raise InvalidParams(
                    f"parameter 'channel' must be a name of 1 to {MAX_CHANNEL} letters, "
                    "digits, '_' or '-' (a leading '#' is dropped)",
                    "channel",
                )
        if cw is not None and not cw.strip():
            raise InvalidParams("parameter 'cw' (a content warning) must not be blank", "cw")
        mentioned = self._mention_list(listed) if listed is not None else []
        for name, ref in (("root", root), ("branch", branch)):
            if ref is not None:
                await self._refuse_private_reply(name, *ref)
        if by_name:
            me = self.keys.public

            def resolve(store: Store) -> tuple[list[bytes], list[Unresolved], dict[bytes, str]]:
                data = store.name_data(me)
                found = resolve_mentions(text, data)
                shown = display_names(
                    [f for item in found.unresolved for f in item.candidates], data
                )
                return found.feeds, found.unresolved, shown

            feeds, unresolved, shown = await self.gateway.read(resolve)
            if unresolved:
                error = InvalidParams(
                    f"parameter 'text': {unresolved_message(unresolved, shown)}", "text"
                )
                error.data["candidates"] = {
                    item.name: [
                        {"feed_id": feed_id(f), "display_name": shown[f]} for f in item.candidates
                    ]
                    for item in unresolved
                }
                raise error
            mentioned += [m for m in dict.fromkeys(map(feed_id, feeds)) if m not in mentioned]
            if len(mentioned) > MAX_MENTIONS:
                raise InvalidParams(
                    f"the post mentions {len(mentioned)} feeds and messages; the limit is "
                    f"{MAX_MENTIONS}",
                    "mentions",
                )
        content = post_content(
            text,
            root=root[0] if root is not None else None,
            branch=branch[0] if branch is not None else None,
            channel=channel,
            cw=cw,
        )
        if mentioned or attached:
            content["mentions"] = [*mentioned, *attached]
        return await self._publish(content)

    async def _refuse_private_reply(self, name: str, text: str, msg_id: bytes) -> None:
        """A public reply to a private message we hold would show its thread to everyone
        (#11): INVALID_PARAMS naming ``name``. Messages not held here are not checked."""

        def held_private(store: Store) -> bool:
            try:
                return store.get(msg_id).is_private
            except NotFound:
                return False

        if await self.gateway.run(held_private):
            raise InvalidParams(
                f"parameter {name!r}: {text} is a private message; a public reply would "
                "show its thread to everyone: reply privately with 'private.reply' "
                f"('p2psocial dm reply {text} TEXT')",
                name,
            )

    @staticmethod
    def _mention_list(listed: list[Any]) -> list[str]:
        """The ``mentions`` param checked: at most MAX_MENTIONS feed ids (``@...``) or
        message ids (``%...``), each once."""
        if len(listed) > MAX_MENTIONS:
            raise InvalidParams(
                f"parameter 'mentions' has {len(listed)} ids; the limit is {MAX_MENTIONS}",
                "mentions",
            )
        for index, item in enumerate(listed):
            if not isinstance(item, str):
                raise InvalidParams(
                    f"parameter 'mentions'[{index}] must be a feed id or a message id",
                    "mentions",
                )
            if item.startswith("%"):
                message_id_param(item, "mentions")
            else:
                feed_id_param(item, "mentions")
        return list(dict.fromkeys(listed))

    # ------------------------------------------------------------------ reading

    async def get(self, params: Params, ctx: CallContext) -> Any:
        _text, msg_id = params.require_message_id("id")
        params.reject_unknown()
        return message_json(await self.gateway.read(lambda s: s.get(msg_id)))

    async def feed(self, params: Params, ctx: CallContext) -> Any:
        _text, author = _feed_id(params, "feed_id", self.me)
        from_seq = params.optional_int("from_seq", min_value=1)
        limit = _limit(params, 50)
        reverse = params.optional_bool("reverse", False)
        params.reject_unknown()
        if reverse and from_seq is not None:
            raise InvalidParams(
                "parameter 'from_seq' cannot be combined with 'reverse' (newest first)",
                "from_seq",
            )
        since = (from_seq or 1) - 1
        # The JSON forms are made on the read thread too, off the event loop.
        return await self.gateway.read(
            lambda s: _messages(s.feed(author, since_seq=since, limit=limit, reverse=reverse))
        )

    async def feed_info(self, params: Params, ctx: CallContext) -> Any:
        text, author = _feed_id(params, "feed_id", self.me)
        params.reject_unknown()
        me = self.keys.public

        def read(store: Store) -> tuple[Any, tuple[bool, bool]]:
            return store.feed_info(author), store.contact_state(me, author)

        info, (following, blocking) = await self.gateway.read(read)
        if info is None:
            raise _not_found(f"no entry of feed {text} is stored here", feed_id=text)
        return {**info.to_json(), "following": following, "blocking": blocking}

    async def feeds(self, params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        return [info.to_json() for info in await self.gateway.read(lambda s: s.feeds())]

    async def timeline(self, params: Params, ctx: CallContext) -> Any:
        limit = _limit(params, 50)
        before = params.optional_int("before", min_value=0)
        params.reject_unknown()
        me = self.keys.public

        def read(store: Store) -> list[dict[str, Any]]:
            page = store.timeline_page(me, limit=limit, before=before)
            return cards(store, me, [m for _t, m in page], [t for t, _m in page])

        return await self.gateway.read(read)

    async def thread(self, params: Params, ctx: CallContext) -> Any:
        text, root = params.require_message_id("root")
        limit = _limit(params, 500)
        params.reject_unknown()
        me = self.keys.public

        def read(store: Store) -> list[dict[str, Any]]:
            return threaded(cards(store, me, store.thread(root, limit=limit)))

        rows = await self.gateway.read(read)
        if not rows:
            raise _not_found(
                f"neither the message {text} nor any reply to it is stored here", root=text
            )
        return rows

    # ------------------------------------------------------------------ the graph

    def _contact_method(self, stance: dict[str, bool]) -> Handler:
        async def handler(params: Params, ctx: CallContext) -> Any:
            _text, contact = _feed_id(params, "feed_id")
            params.reject_unknown()
            if contact == self.keys.public:
                raise InvalidParams("you cannot follow or block yourself", "feed_id")
            stored = await self.app.set_contact(contact, **stance)
            return {
                "changed": stored is not None,
                "message": message_json(Message.from_accepted(stored)) if stored else None,
            }

        return handler

    async def contacts(self, params: Params, ctx: CallContext) -> Any:
        text, author = _feed_id(params, "feed_id", self.me)
        params.reject_unknown()

        def read(store: Store) -> tuple[set[bytes], set[bytes], set[bytes]]:
            return (
                store.follows().get(author, set()),
                store.blocked_by(author),
                store.followers(author),
            )

        following, blocking, followers = await self.gateway.read(read)
        return {
            "feed_id": text,
            "following": sorted(feed_id(k) for k in following),
            "blocking": sorted(feed_id(k) for k in blocking),
            "followers": sorted(feed_id(k) for k in followers),
        }

    # ------------------------------------------------------------------ peers, daemon

    async def peers_list(self, params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        return await self.app.peers()

    async def peers_connect(self, params: Params, ctx: CallContext) -> Any:
        address = params.require_str("address", max_length=300)
        text, key = _feed_id(params, "feed_id")
        params.reject_unknown()
        try:
            parse_address(address, "parameter 'address'")
        except ConfigError as exc:
            raise InvalidParams(str(exc), "address") from None
        if key == self.keys.public:
            raise InvalidParams("that is this daemon's own feed id", "feed_id")
        dialling = await self.app.connect(address, key)
        return {"address": address, "feed_id": text, "remembered": True, "dialling": dialling}

    async def status(self, params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        result = await self.app.status()
        result["notifications_unread"] = await unread_notifications(self.app)
        if ctx.hub is not None:
            subs = ctx.hub.subscriptions()
            result["rpc"] = {
                "connections": ctx.connection_count,
                "subscriptions": len(subs),
                "queued_notifications": sum(sub.queued for sub in subs),
                "dropped_notifications": sum(sub.dropped_total for sub in subs),
            }
        return result

    async def subscribe(self, params: Params, ctx: CallContext) -> Any:
        kind = params.optional_str("filter")
        if kind is None:  # inferred from the other params
            kind = "feed" if "feed_id" in params else "type" if "type" in params else "all"
        if kind not in SUBSCRIBE_FILTERS:
            raise InvalidParams(
                f"parameter 'filter' must be one of {', '.join(SUBSCRIBE_FILTERS)}, not {kind!r}",
                "filter",
            )
        wanted: Any = None
        if kind == "feed":
            wanted = feed_id(_feed_id(params, "feed_id")[1])  # canonical text
        elif kind == "type":
            wanted = params.require_str("type", max_length=64)
        params.reject_unknown()
        if kind == "notifications":
            await watch_notifications(self.app, ctx)  # notify_api.py delivers them
        sub = ctx.subscribe("messages", params, (kind, wanted))
        return {"subscription": sub.id, "filter": kind}


def build_registry(app: App) -> MethodRegistry:
    """Every method, over ``app`` (whose :meth:`~p2psocial.app.App.run` task must run)."""
    registry = MethodRegistry()
    _Api(app).register(registry)
    register_invite_methods(registry, app)
    register_private_methods(registry, app)
    register_profile_methods(registry, app)
    register_vote_methods(registry, app)
    register_delete_methods(registry, app)
    register_channel_methods(registry, app)
    register_mute_methods(registry, app)
    register_post_methods(registry, app)
    register_notify_methods(registry, app)
    register_search_methods(registry, app)
    register_blob_methods(registry, app)
    return registry


# ----------------------------------------------------------------------------- live messages


def _matcher(message: dict[str, Any], me: str) -> Callable[[Subscription], bool]:
    """Which ``subscribe`` subscriptions want ``message`` (JSON form)."""

    def match(sub: Subscription) -> bool:
        kind, wanted = sub.filter
        if kind == "all":
            return True
        if kind == "feed":
            return bool(message["author"] == wanted)
        if kind == "type":
            content = message["content"]
            return isinstance(content, dict) and content.get("type") == wanted
        if kind in ("private", "notifications"):
            return False  # sent by live_messages (decrypted) and by notify_api.py
        return message["author"] != me and mentions(message, me)

    return match


def live_messages(hub: Hub, me: str) -> Callable[[Stored], None]:
    """The ``Stored`` subscriber that feeds ``subscribe`` subscriptions: public messages to
    the filters they match, private ones we can read (decrypted) to ``filter: "private"``."""

    def on_stored(event: Stored) -> None:
        if not len(hub):
            return
        for accepted in event.entries:
            message = Message.from_accepted(accepted)
            if accepted.private_value is not None:
                item = private_json(message, accepted.private_value)
                hub.publish("messages", item, _wants_private)
            else:
                item = message_json(message)
                hub.publish("messages", item, _matcher(item, me))

    return on_stored


def _wants_private(sub: Subscription) -> bool:
    return bool(sub.filter and sub.filter[0] == "private")
