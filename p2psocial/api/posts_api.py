"""JSON-RPC methods that change or share posts, and read them as cards: ``edit``,
``repost``, ``cards`` and ``history`` (docs/rpc.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.api.cards import cards, history
from p2psocial.api.params import message_id_param
from p2psocial.api.publishing import publish_or_explain
from p2psocial.errors import InvalidParams, NotFound
from p2psocial.msgtypes.edit import MAX_TEXT, edit_content
from p2psocial.msgtypes.repost import MAX_COMMENT, repost_content

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App
    from p2psocial.model import Message
    from p2psocial.store.store import Store

MAX_CARDS = 500
"""Most ids one ``cards`` call answers."""


def register_post_methods(registry: MethodRegistry, app: App) -> None:
    me = app.keys.public

    async def published_card(content: dict[str, Any]) -> dict[str, Any]:
        stored = await publish_or_explain(app, content)
        card = await app.gateway.read(lambda s: cards(s, me, [s.get(stored.entry.id)]))
        return card[0]

    @registry.method("edit")
    async def edit(params: Params, ctx: CallContext) -> Any:
        text, _msg = params.require_message_id("id")
        new = params.require_str("text", max_length=MAX_TEXT)
        params.reject_unknown()
        if not new.strip():
            raise InvalidParams("parameter 'text' must not be empty", "text")
        card = await published_card(edit_content(text, new))
        post = await app.gateway.read(lambda s: cards(s, me, [s.get(_msg)]))
        return {"message": card, "post": post[0]}

    @registry.method("repost")
    async def repost(params: Params, ctx: CallContext) -> Any:
        text, msg = params.require_message_id("id")
        comment = params.optional_str("comment", max_length=MAX_COMMENT)
        params.reject_unknown()
        if comment is not None and not comment.strip():
            raise InvalidParams("parameter 'comment' must not be empty", "comment")

        def original(store: Store) -> Message | None:
            try:
                return store.get(msg)
            except NotFound:
                return None

        held = await app.gateway.read(original)
        carried = None
        if held is not None:
            if held.is_private:
                raise InvalidParams(
                    f"{text} is a private message: a repost would show it to everyone", "id"
                )
            if held.deleted:
                raise InvalidParams(f"{text} was deleted by its author: nothing to share", "id")
            if held.content_bytes is not None:
                carried = (held.raw, held.content_bytes)
        return await published_card(repost_content(text, comment=comment, original=carried))

    @registry.method("cards")
    async def cards_method(params: Params, ctx: CallContext) -> Any:
        texts = params.require_str_list("ids")
        params.reject_unknown()
        if len(texts) > MAX_CARDS:
            raise InvalidParams(
                f"parameter 'ids' has {len(texts)} ids; the limit is {MAX_CARDS}", "ids"
            )
        ids = [message_id_param(t, "ids") for t in texts]

        def read(store: Store) -> list[dict[str, Any]]:
            return cards(store, me, [store.get(i) for i in ids])

        return await app.gateway.read(read)

    @registry.method("history")
    async def history_method(params: Params, ctx: CallContext) -> Any:
        _text, msg = params.require_message_id("id")
        params.reject_unknown()
        return await app.gateway.read(lambda s: history(s, me, msg))
