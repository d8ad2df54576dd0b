"""JSON-RPC methods for private messages: ``private.publish``, ``private.inbox``,
``private.thread``; live ones arrive through ``subscribe`` with ``filter: "private"``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.identity import parse_feed_id, parse_message_id
from p2psocial.model import Message
from p2psocial.msgtypes.private import private_json

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App

MAX_LIMIT = 1000


def register_private_methods(registry: MethodRegistry, app: App) -> None:
    @registry.method("private.publish")
    async def publish(params: Params, ctx: CallContext) -> Any:
        to_ids = params.require_str_list("to")
        text = params.require_str("text")
        root = params.optional_str("root")
        params.reject_unknown()
        to = [parse_feed_id(x) for x in to_ids]
        if root is not None:
            parse_message_id(root)
        stored = await app.publish_private(text, to, root)
        assert stored.private_value is not None  # publish_private guarantees it
        return private_json(Message.from_accepted(stored), stored.private_value)

    @registry.method("private.inbox")
    async def inbox(params: Params, ctx: CallContext) -> Any:
        limit = params.optional_int("limit", 50, min_value=1, max_value=MAX_LIMIT)
        before = params.optional_int("before", min_value=0)
        params.reject_unknown()
        rows = await app.gateway.run(lambda s: s.inbox(limit=limit, before=before))
        return [private_json(m, p) for m, p in rows]

    @registry.method("private.thread")
    async def thread(params: Params, ctx: CallContext) -> Any:
        root = parse_message_id(params.require_str("root"))
        limit = params.optional_int("limit", 500, min_value=1, max_value=MAX_LIMIT)
        params.reject_unknown()
        rows = await app.gateway.run(lambda s: s.private_thread(root, limit=limit))
        return [private_json(m, p) for m, p in rows]
