"""JSON-RPC methods for whom you see (#12): ``mute``, ``unmute``, ``mutes`` and
``suggest``; docs/rpc.md.

A muted feed is left out of your views (timeline, channels, suggestions) but still
replicated and stored, unlike a blocked one; mutes are kept in your store and never
published. ``suggest`` ranks the feeds that the feeds you follow follow.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from p2psocial.api.naming import feed_param
from p2psocial.errors import InvalidParams
from p2psocial.identity import feed_id
from p2psocial.msgtypes.names import display_names

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App
    from p2psocial.store.store import Store

MAX_SUGGESTIONS = 1000
"""Most feeds one ``suggest`` call answers."""


def register_mute_methods(registry: MethodRegistry, app: App) -> None:
    me = app.keys.public

    async def target(params: Params) -> tuple[str, bytes]:
        """The feed a ``mute``/``unmute`` call names: ``feed_id``, or ``name`` (a name
        you know it by, resolved as ``post`` resolves ``@NAME``)."""
        named = "name" in params
        feed = await feed_param(app, params)
        params.reject_unknown()
        if feed == me:
            raise InvalidParams("you cannot mute yourself", "name" if named else "feed_id")
        return feed_id(feed), feed

    @registry.method("mute")
    async def mute(params: Params, ctx: CallContext) -> Any:
        text, feed = await target(params)
        now = time.time_ns() // 1_000_000
        changed = await app.gateway.run(lambda s: s.mute(feed, now))
        return {"feed_id": text, "changed": changed}

    @registry.method("unmute")
    async def unmute(params: Params, ctx: CallContext) -> Any:
        text, feed = await target(params)
        changed = await app.gateway.run(lambda s: s.unmute(feed))
        return {"feed_id": text, "changed": changed}

    @registry.method("mutes")
    async def mutes(params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()

        def read(store: Store) -> list[dict[str, Any]]:
            feeds = store.mutes()
            shown = display_names(feeds, store.name_data(me))
            return [{"feed_id": feed_id(f), "display_name": shown[f]} for f in feeds]

        return await app.gateway.read(read)

    @registry.method("suggest")
    async def suggest(params: Params, ctx: CallContext) -> Any:
        limit = params.optional_int("limit", 20, min_value=1, max_value=MAX_SUGGESTIONS)
        params.reject_unknown()

        def read(store: Store) -> list[dict[str, Any]]:
            ranked = store.suggestions(me, limit=limit)
            shown = display_names([f for f, _n in ranked], store.name_data(me))
            return [
                {"feed_id": feed_id(f), "followed_by": n, "display_name": shown[f]}
                for f, n in ranked
            ]

        return await app.gateway.read(read)
