"""JSON-RPC methods for channels (#12): ``channel`` (a channel's posts, newest first) and
``channels`` (the channels in use, with counts); docs/rpc.md.

A post is in the channel its ``channel`` field names and in those of its ``#tags``;
names are compared NFKC and case-folded, without the ``#`` (``msgtypes/post.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.api.cards import cards
from p2psocial.errors import InvalidParams
from p2psocial.msgtypes.post import MAX_CHANNEL, channel_name

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App
    from p2psocial.store.store import Store

MAX_LIMIT = 1000
"""Most posts or channels one call answers."""


def _limit(params: Params, default: int) -> int:
    return params.optional_int("limit", default, min_value=1, max_value=MAX_LIMIT)


def register_channel_methods(registry: MethodRegistry, app: App) -> None:
    @registry.method("channel")
    async def channel(params: Params, ctx: CallContext) -> Any:
        name = params.require_str("name", max_length=MAX_CHANNEL + 1)
        limit = _limit(params, 50)
        before = params.optional_int("before", min_value=0)
        params.reject_unknown()
        canonical = channel_name(name)
        if canonical is None:
            raise InvalidParams(
                f"parameter 'name' must be a channel name: 1 to {MAX_CHANNEL} letters, "
                "digits, '_' or '-', with or without a leading '#'",
                "name",
            )

        def read(store: Store) -> list[dict[str, Any]]:
            return cards(
                store, app.keys.public, store.channel_posts(canonical, limit=limit, before=before)
            )

        return await app.gateway.read(read)

    @registry.method("channels")
    async def channels(params: Params, ctx: CallContext) -> Any:
        limit = _limit(params, 100)
        params.reject_unknown()
        rows = await app.gateway.read(lambda s: s.channels(limit=limit))
        return [{"name": name, "count": count, "latest": latest} for name, count, latest in rows]
