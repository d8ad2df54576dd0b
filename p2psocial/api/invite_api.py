"""JSON-RPC methods for pubs and invites: ``invite.create`` (on a pub) and ``invite.accept``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.errors import ConfigError
from p2psocial.invite import parse_duration

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.api.server import CallContext, MethodRegistry
    from p2psocial.daemon import Node


def register_invite_methods(registry: MethodRegistry, node: Node) -> None:
    @registry.method("invite.create")
    async def create(params: Params, ctx: CallContext) -> Any:
        uses = params.optional_int("uses", 1, min_value=1, max_value=1_000_000)
        expires = params.optional_str("expires", max_length=32)
        params.reject_unknown()
        if node.pub is None:
            raise ConfigError("this daemon is not a pub: start it with 'p2psocial daemon --pub'")
        code = await node.pub.create_invite(uses, parse_duration(expires) if expires else None)
        return {"code": code, "uses": uses, "expires": expires}

    @registry.method("invite.accept")
    async def accept(params: Params, ctx: CallContext) -> Any:
        code = params.require_str("code", max_length=1000)
        params.reject_unknown()
        return await node.accept_invite(code)
