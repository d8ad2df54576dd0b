"""JSON-RPC method ``delete``: take back one of your own messages (``delete`` content)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.api.params import message_id_param
from p2psocial.errors import InvalidParams, NotFound
from p2psocial.model import Message
from p2psocial.msgtypes.delete import MAX_REASON, delete_content

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App


def register_delete_methods(registry: MethodRegistry, app: App) -> None:
    @registry.method("delete")
    async def delete(params: Params, ctx: CallContext) -> Any:
        text = params.require_str("id")
        reason = params.optional_str("reason", max_length=MAX_REASON)
        params.reject_unknown()
        target = message_id_param(text, "id")
        try:
            held = await app.gateway.read(lambda s: s.get(target))
        except NotFound:
            raise InvalidParams(f"{text} is not stored here: nothing to delete", "id") from None
        if held.author != app.keys.public:
            raise InvalidParams(f"{text} is not yours: you can delete only your own", "id")
        if held.deleted:
            return {"id": text, "changed": False, "message": None}
        if isinstance(held.value, dict) and held.value.get("type") == "delete":
            raise InvalidParams(f"{text} is a delete: a delete is for good", "id")
        stored = await app.publish(delete_content(text, reason))
        return {"id": text, "changed": True, "message": Message.from_accepted(stored).to_json()}
