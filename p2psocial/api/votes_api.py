"""JSON-RPC methods for reactions: ``like``, ``unlike`` and ``likes`` (``vote`` content)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.errors import InvalidParams, NotFound
from p2psocial.identity import feed_id
from p2psocial.model import Message
from p2psocial.msgtypes.vote import MAX_EXPRESSION, vote_content

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App
    from p2psocial.store.store import Store


def register_vote_methods(registry: MethodRegistry, app: App) -> None:
    me = app.keys.public

    async def state(msg: bytes) -> tuple[bool, str | None, int, bool]:
        """(we like it, our expression, how many like it, it is a private message)."""

        def read(store: Store) -> tuple[bool, str | None, int, bool]:
            try:
                private = store.get(msg).is_private
            except NotFound:
                private = False
            voters = dict(store.likes(msg))
            return me in voters, voters.get(me), len(voters), private

        return await app.gateway.read(read)

    async def vote(params: Params, value: int) -> dict[str, Any]:
        text, msg = params.require_message_id("id")
        emoji = params.optional_str("emoji", max_length=MAX_EXPRESSION) if value else None
        params.reject_unknown()
        liked, expression, count, private = await state(msg)
        if private:
            raise InvalidParams(
                f"{text} is a private message: a like is public, so it is not published",
                "id",
            )
        if bool(value) == liked and (not value or emoji == expression):
            return {"id": text, "changed": False, "message": None, "likes": count}
        stored = await app.publish(vote_content(text, value, emoji))
        count += (1 if value else -1) if bool(value) != liked else 0
        return {
            "id": text,
            "changed": True,
            "message": Message.from_accepted(stored).to_json(),
            "likes": count,
        }

    @registry.method("like")
    async def like(params: Params, ctx: CallContext) -> Any:
        return await vote(params, 1)

    @registry.method("unlike")
    async def unlike(params: Params, ctx: CallContext) -> Any:
        return await vote(params, 0)

    @registry.method("likes")
    async def likes(params: Params, ctx: CallContext) -> Any:
        text, msg = params.require_message_id("id")
        params.reject_unknown()
        voters = await app.gateway.read(lambda s: s.likes(msg))
        return {
            "id": text,
            "likes": len(voters),
            "by": [{"feed_id": feed_id(k), "expression": e} for k, e in voters],
        }
