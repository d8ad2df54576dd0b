"""JSON-RPC methods for names people can read (#12): ``profile``, ``profile.set``,
``name.set`` and ``names`` (docs/rpc.md).

A profile is what a feed says about itself (its latest self-``about`` per field); a
petname is our own local name for a feed, kept in the store and never published; the
display name follows the rules of :mod:`p2psocial.msgtypes.names`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from p2psocial.api.naming import feed_param
from p2psocial.api.params import feed_id_param
from p2psocial.errors import InvalidParams, RpcError, UnpublishableContent
from p2psocial.identity import feed_id
from p2psocial.model import Message
from p2psocial.msgtypes.about import (
    about_content,
    avatar_problem,
    bio_problem,
    check_about,
    name_problem,
)
from p2psocial.msgtypes.names import display_name, display_names
from p2psocial.proto.jsonrpc import INVALID_CONTENT

if TYPE_CHECKING:
    from collections.abc import Callable

    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App
    from p2psocial.store.store import Store

MAX_NAMES = 1000
"""Most feed ids one ``names`` call answers."""


def _checked(params: Params, name: str, problem: Callable[[object], str | None]) -> str | None:
    value = params.optional_str(name)
    if value is not None:
        why = problem(value)
        if why is not None:
            raise InvalidParams(f"parameter {name!r} {why}", name)
    return value


def register_profile_methods(registry: MethodRegistry, app: App) -> None:
    me = app.keys.public

    def profile_of(store: Store, feed: bytes) -> dict[str, Any]:
        own = store.profile(feed)
        return {
            "feed_id": feed_id(feed),
            **own,
            "petname": store.petname(feed),
            "display_name": display_name(feed, store.name_data(me)),
        }

    @registry.method("profile")
    async def profile(params: Params, ctx: CallContext) -> Any:
        feed = await feed_param(app, params, default=me)
        params.reject_unknown()
        return await app.gateway.read(lambda s: profile_of(s, feed))

    @registry.method("profile.set")
    async def profile_set(params: Params, ctx: CallContext) -> Any:
        name = _checked(params, "name", name_problem)
        bio = _checked(params, "bio", bio_problem)
        avatar = _checked(params, "avatar", avatar_problem)
        params.reject_unknown()
        content = about_content(app.keys.feed_id, name=name, bio=bio, avatar=avatar)
        try:
            check_about(content)
            stored = await app.publish(content)
        except UnpublishableContent as exc:
            raise RpcError(
                INVALID_CONTENT, str(exc), {"type": "InvalidContent", "param": "content"}
            ) from None
        return {
            "message": Message.from_accepted(stored).to_json(),
            "profile": await app.gateway.read(lambda s: profile_of(s, me)),
        }

    @registry.method("name.set")
    async def name_set(params: Params, ctx: CallContext) -> Any:
        text = params.require_str("feed_id")
        if "petname" not in params:
            raise InvalidParams(
                "missing required parameter 'petname' (null clears the petname)", "petname"
            )
        petname = _checked(params, "petname", name_problem)
        params.reject_unknown()
        feed = feed_id_param(text, "feed_id")
        now = time.time_ns() // 1_000_000

        def write(store: Store) -> dict[str, Any]:
            changed = store.set_petname(feed, petname, now)
            return {**profile_of(store, feed), "changed": changed}

        return await app.gateway.run(write)

    @registry.method("names")
    async def names(params: Params, ctx: CallContext) -> Any:
        texts = params.require_str_list("feed_ids")
        params.reject_unknown()
        if len(texts) > MAX_NAMES:
            raise InvalidParams(
                f"parameter 'feed_ids' has {len(texts)} ids; the limit is {MAX_NAMES}",
                "feed_ids",
            )
        feeds = {text: feed_id_param(text, "feed_ids") for text in texts}
        shown = await app.gateway.read(lambda s: display_names(feeds.values(), s.name_data(me)))
        return {text: shown[feed] for text, feed in feeds.items()}
