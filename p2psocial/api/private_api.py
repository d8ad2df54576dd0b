"""JSON-RPC methods for private messages: ``private.publish``, ``private.reply``,
``private.inbox``, ``private.thread``; live ones arrive through ``subscribe`` with
``filter: "private"``.

``private.reply`` answers a private message in its thread, to the same readers: the
``recps`` of the message replied to (which list its author) and us. A public reply to a
private message would show its thread to everyone, so ``post`` refuses one (#11).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.api.blobs_api import attachments_param
from p2psocial.api.params import message_id_param
from p2psocial.errors import InvalidId, InvalidParams, RpcError
from p2psocial.identity import parse_feed_id, parse_message_id
from p2psocial.model import Message
from p2psocial.msgtypes.private import private_json
from p2psocial.proto.jsonrpc import INVALID_CONTENT

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App
    from p2psocial.store.store import Store

MAX_LIMIT = 1000


def reply_recipients(msg_id: str, content: dict[str, Any]) -> list[bytes]:
    """The readers of a private message (its ``recps``, which list its author), for a reply
    to it. A peer's message may list anything: one that is not a feed id is INVALID_CONTENT
    (naming ``id``), and no reply is sent."""
    recps = content.get("recps")
    if not isinstance(recps, list):
        raise RpcError(
            INVALID_CONTENT,
            f"message {msg_id} has no 'recps' list, so its readers are unknown",
            {"type": "InvalidContent", "param": "id"},
        )
    readers = []
    for item in recps:
        try:
            readers.append(parse_feed_id(item))
        except InvalidId as exc:
            raise RpcError(
                INVALID_CONTENT,
                f"message {msg_id} lists a recipient in 'recps' that is not a feed id: {exc}",
                {"type": "InvalidContent", "param": "id"},
            ) from None
    return readers


def reply_root(msg_id: str, content: dict[str, Any]) -> str:
    """The private thread a reply to ``msg_id`` goes in: the ``root`` it replies in, or the
    message itself when it is a root (or names no valid root)."""
    root = content.get("root")
    if isinstance(root, str):
        try:
            parse_message_id(root)
        except InvalidId:
            return msg_id
        return root
    return msg_id


def register_private_methods(registry: MethodRegistry, app: App) -> None:
    @registry.method("private.publish")
    async def publish(params: Params, ctx: CallContext) -> Any:
        to_ids = params.require_str_list("to")
        text = params.require_str("text")
        root = params.optional_str("root")
        attached = await attachments_param(app, params, private=True)
        params.reject_unknown()
        to = [parse_feed_id(x) for x in to_ids]
        if root is not None:
            parse_message_id(root)
        stored = await app.publish_private(text, to, root, attachments=attached)
        assert stored.private_value is not None  # publish_private guarantees it
        return private_json(Message.from_accepted(stored), stored.private_value)

    @registry.method("private.reply")
    async def reply(params: Params, ctx: CallContext) -> Any:
        text_id = params.require_str("id")
        text = params.require_str("text")
        attached = await attachments_param(app, params, private=True)
        params.reject_unknown()
        msg_id = message_id_param(text_id, "id")
        if not text.strip():
            raise InvalidParams("parameter 'text' must not be empty", "text")

        def read(store: Store) -> tuple[Message, dict[str, Any] | None]:
            rows = store.private_thread(msg_id, limit=1)  # the message itself comes first
            if rows and rows[0][0].id == msg_id:
                return rows[0]
            return store.get(msg_id), None  # NotFound when not stored

        message, content = await app.gateway.run(read)
        if content is None:
            if not message.is_private:
                raise InvalidParams(
                    f"parameter 'id': {text_id} is a public message: reply to it with "
                    "'post' (root and branch)",
                    "id",
                )
            raise InvalidParams(
                f"parameter 'id': {text_id} is a private message you cannot read, so its "
                "readers are unknown to you",
                "id",
            )
        to = reply_recipients(text_id, content)
        stored = await app.publish_private(
            text, to, reply_root(text_id, content), attachments=attached
        )
        assert stored.private_value is not None  # publish_private guarantees it
        return private_json(Message.from_accepted(stored), stored.private_value)

    @registry.method("private.inbox")
    async def inbox(params: Params, ctx: CallContext) -> Any:
        limit = params.optional_int("limit", 50, min_value=1, max_value=MAX_LIMIT)
        before = params.optional_int("before", min_value=0)
        params.reject_unknown()
        return await app.gateway.read(
            lambda s: [private_json(m, p) for m, p in s.inbox(limit=limit, before=before)]
        )

    @registry.method("private.thread")
    async def thread(params: Params, ctx: CallContext) -> Any:
        root = parse_message_id(params.require_str("root"))
        limit = params.optional_int("limit", 500, min_value=1, max_value=MAX_LIMIT)
        params.reject_unknown()
        return await app.gateway.read(
            lambda s: [private_json(m, p) for m, p in s.private_thread(root, limit=limit)]
        )
