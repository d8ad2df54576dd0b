"""JSON-RPC methods for pubs and invites: ``invite.create`` (on a pub) and ``invite.accept``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.invite import parse_duration

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App


def register_invite_methods(registry: MethodRegistry, app: App) -> None:
    @registry.method("invite.create")
    async def create(params: Params, ctx: CallContext) -> Any:
        uses = params.optional_int("uses", 1, min_value=1, max_value=1_000_000)
        expires = params.optional_str("expires", max_length=32)
        params.reject_unknown()
        expires_ms = parse_duration(expires) if expires else None
        code = await app.create_invite(uses, expires_ms)
        return {"code": code, "uses": uses, "expires": expires}

    @registry.method("invite.accept")
    async def accept(params: Params, ctx: CallContext) -> Any:
        code = params.require_str("code", max_length=1000)
        params.reject_unknown()
        return await app.accept_invite(code)
