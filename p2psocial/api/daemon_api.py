"""The daemon's JSON-RPC methods (docs/rpc.md, "Methods"), registered on the local socket.

Each method reads its named params through :class:`~p2psocial.api.params.Params` (a wrong
or missing one is -32602 naming it), does its work on the store thread, and answers JSON.
Messages are answered in the form of :meth:`p2psocial.model.Message.to_json`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from p2psocial.api.invite_api import register_invite_methods
from p2psocial.api.private_api import private_publisher, register_private_methods
from p2psocial.api.server import CallContext, MethodRegistry, RpcServer, serve_unix
from p2psocial.config import parse_address
from p2psocial.errors import ConfigError
from p2psocial.identity import parse_feed_id, parse_message_id
from p2psocial.social import post_content, set_contact

if TYPE_CHECKING:
    from collections.abc import Sequence

    import trio

    from p2psocial.api.hub import Subscription
    from p2psocial.api.params import Params
    from p2psocial.daemon import Node
    from p2psocial.feed.content import Content
    from p2psocial.model import Message
    from p2psocial.store.store import Store

MAX_LIMIT = 1000
SUBSCRIBE_KINDS = ("all", "feed", "type", "mentions", "private")


def _now() -> int:
    return time.time_ns() // 1_000_000


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    return [m.to_json() for m in messages]


def mentions(message: Message, me: str) -> bool:
    """Whether public ``message`` mentions feed id ``me`` (in ``mentions`` or its text)."""
    content = message.content
    if not isinstance(content, dict):
        return False
    listed = content.get("mentions")
    if isinstance(listed, list) and any(
        m == me or (isinstance(m, dict) and m.get("link") == me) for m in listed
    ):
        return True
    text = content.get("text")
    return isinstance(text, str) and me in text


def build_registry(node: Node) -> MethodRegistry:
    """Every method of the daemon's local socket."""
    registry = MethodRegistry()
    gateway = node.gateway
    keys = node.keys

    @registry.method("whoami")
    async def whoami(params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        return {"feed_id": keys.feed_id}

    async def publish_content(content: Content) -> dict[str, Any]:
        message = await gateway.run(lambda s: s.publish(keys, content, _now()))
        await node.published(message)
        return message.to_json()

    @registry.method("publish")
    async def publish(params: Params, ctx: CallContext) -> Any:
        content = params.require_dict("content")
        params.reject_unknown()
        return await publish_content(content)

    @registry.method("post")
    async def post(params: Params, ctx: CallContext) -> Any:
        text = params.require_str("text")
        root = params.optional_str("root")
        branch = params.optional_str("branch")
        params.reject_unknown()
        return await publish_content(post_content(text, root=root, branch=branch))

    @registry.method("get")
    async def get(params: Params, ctx: CallContext) -> Any:
        msg_id = parse_message_id(params.require_str("id"))
        params.reject_unknown()
        return (await gateway.run(lambda s: s.get(msg_id))).to_json()

    @registry.method("feed")
    async def feed(params: Params, ctx: CallContext) -> Any:
        author = parse_feed_id(params.optional_str("feed_id", keys.feed_id))
        since = params.optional_int("seq", 0, min_value=0)
        limit = params.optional_int("limit", 50, min_value=1, max_value=MAX_LIMIT)
        reverse = params.optional_bool("reverse", False)
        params.reject_unknown()
        rows = await gateway.run(
            lambda s: s.feed(author, since_seq=since, limit=limit, reverse=reverse)
        )
        return _messages(rows)

    @registry.method("timeline")
    async def timeline(params: Params, ctx: CallContext) -> Any:
        limit = params.optional_int("limit", 50, min_value=1, max_value=MAX_LIMIT)
        before = params.optional_int("before")
        params.reject_unknown()
        return _messages(await gateway.run(lambda s: s.timeline(limit=limit, before=before)))

    @registry.method("thread")
    async def thread(params: Params, ctx: CallContext) -> Any:
        root = parse_message_id(params.require_str("root"))
        limit = params.optional_int("limit", 500, min_value=1, max_value=MAX_LIMIT)
        params.reject_unknown()
        return _messages(await gateway.run(lambda s: s.thread(root, limit=limit)))

    def contact_method(name: str, **stance: bool) -> None:
        async def handler(params: Params, ctx: CallContext) -> Any:
            contact = parse_feed_id(params.require_str("feed_id"))
            params.reject_unknown()

            def write(store: Store) -> Message | None:
                return set_contact(store, keys, contact, _now(), **stance)

            message = await gateway.run(write)
            await node.published(message)
            if message is None:
                await node.replication.refresh_graph()
            return {
                "changed": message is not None,
                "message": message.to_json() if message else None,
            }

        registry.add(name, handler)

    contact_method("follow", following=True)
    contact_method("unfollow", following=False)
    contact_method("block", blocking=True)
    contact_method("unblock", blocking=False)

    @registry.method("peers.list")
    async def peers_list(params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        return {
            "connected": node.replication.peer_report(),
            "known": node.scheduler.report(),
        }

    @registry.method("peers.connect")
    async def peers_connect(params: Params, ctx: CallContext) -> Any:
        address = params.require_str("address")
        key = parse_feed_id(params.require_str("feed_id"))
        params.reject_unknown()
        parse_address(address, "peer address")
        if key == keys.public:
            raise ConfigError("that is this daemon's own feed id")
        await gateway.run(lambda s: s.remember_peer(address, key, "manual", _now()))
        node.scheduler.add(address, key)
        return {"address": address, "feed_id": params.require_str("feed_id"), "remembered": True}

    @registry.method("status")
    async def status(params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        return await node.status()

    @registry.method("subscribe")
    async def subscribe(params: Params, ctx: CallContext) -> Any:
        kind = params.optional_str("filter", "all")
        if kind not in SUBSCRIBE_KINDS:
            raise ConfigError(
                f"parameter 'filter' must be one of {', '.join(SUBSCRIBE_KINDS)}, got {kind!r}"
            )
        wanted: Any = None
        if kind == "feed":
            wanted = parse_feed_id(params.require_str("feed_id"))
        elif kind == "type":
            wanted = params.require_str("type", max_length=64)
        params.reject_unknown()
        sub = ctx.subscribe("messages", params, (kind, wanted))
        return {"subscription": sub.id}

    register_invite_methods(registry, node)
    register_private_methods(registry, node)
    return registry


def _matcher(message: Message, me: str) -> Any:
    def match(sub: Subscription) -> bool:
        kind, wanted = sub.filter
        if kind == "all":
            return True
        if kind == "feed":
            return bool(message.author == wanted)
        if kind == "type":
            content = message.content
            return isinstance(content, dict) and content.get("type") == wanted
        if kind == "private":
            return False  # readable ones come decrypted through private_publisher
        return mentions(message, me)

    return match


async def start_api(nursery: trio.Nursery, node: Node) -> RpcServer:
    """Serve the daemon's methods on ``<home>/rpc.sock``; live messages go to subscribers."""
    registry = build_registry(node)
    server: RpcServer = await nursery.start(
        lambda task_status: serve_unix(node.home.socket_path, registry, task_status=task_status)
    )
    me = node.keys.feed_id

    def message_stored(messages: Sequence[Message]) -> None:
        hub = server.hub
        if not len(hub):
            return
        for message in messages:
            hub.publish("messages", message.to_json(), _matcher(message, me))

    node.message_stored = message_stored  # type: ignore[method-assign]
    node.private_stored = private_publisher(server.hub)  # type: ignore[method-assign]
    return server
