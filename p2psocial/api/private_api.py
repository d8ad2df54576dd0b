"""JSON-RPC methods for private messages: ``private.publish``, ``private.inbox``,
``private.thread``; live ones arrive through ``subscribe`` with ``filter: "private"``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.identity import parse_feed_id, parse_message_id
from p2psocial.private import private_json

if TYPE_CHECKING:
    from collections.abc import Sequence

    from p2psocial.api.hub import Hub, Subscription
    from p2psocial.api.params import Params
    from p2psocial.api.server import CallContext, MethodRegistry
    from p2psocial.daemon import Node
    from p2psocial.model import Message

MAX_LIMIT = 1000


def register_private_methods(registry: MethodRegistry, node: Node) -> None:
    @registry.method("private.publish")
    async def publish(params: Params, ctx: CallContext) -> Any:
        to_ids = params.require_str_list("to")
        text = params.require_str("text")
        root = params.optional_str("root")
        params.reject_unknown()
        to = [parse_feed_id(x) for x in to_ids]
        if root is not None:
            parse_message_id(root)
        message, plaintext = await node.publish_private(text, to, root)
        return private_json(message, plaintext)

    @registry.method("private.inbox")
    async def inbox(params: Params, ctx: CallContext) -> Any:
        limit = params.optional_int("limit", 50, min_value=1, max_value=MAX_LIMIT)
        before = params.optional_int("before")
        params.reject_unknown()
        rows = await node.gateway.run(lambda s: s.inbox(limit=limit, before=before))
        return [private_json(m, p) for m, p in rows]

    @registry.method("private.thread")
    async def thread(params: Params, ctx: CallContext) -> Any:
        root = parse_message_id(params.require_str("root"))
        params.reject_unknown()
        rows = await node.gateway.run(lambda s: s.private_thread(root))
        return [private_json(m, p) for m, p in rows]


def private_publisher(hub: Hub) -> Any:
    """The daemon's ``private_stored`` hook: private messages we can read, decrypted, to
    subscribers of ``filter: "private"``."""

    def wants(sub: Subscription) -> bool:
        return bool(sub.filter and sub.filter[0] == "private")

    def private_stored(filed: Sequence[tuple[Message, bytes]]) -> None:
        if not len(hub):
            return
        for message, plaintext in filed:
            hub.publish("messages", private_json(message, plaintext), wants)

    return private_stored
