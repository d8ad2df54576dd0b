"""The method registry and what a method sees of its call: shared by the socket server
(``server.py``) and the in-process dispatcher the CLI uses without a daemon (``local.py``),
so a method has one body whichever way it is called."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar

from p2psocial.errors import LocalProtocolError, RpcError
from p2psocial.proto.jsonrpc import METHOD_NOT_FOUND

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from p2psocial.api.hub import Hub, Subscription
    from p2psocial.api.params import Params

__all__ = ["CallContext", "Handler", "MethodRegistry"]


class CallContext(Protocol):
    """What a handler knows about its call, and its way to open subscriptions."""

    @property
    def hub(self) -> Hub | None:
        """The subscription hub (None: no live subscriptions here, no daemon runs)."""
        ...

    @property
    def connection_count(self) -> int:
        """Open connections of the server answering (0 in-process)."""
        ...

    def subscribe(
        self, kind: str, params: Params | Mapping[str, Any] | None = None, filter: Any = None
    ) -> Subscription:
        """Open a subscription of ``kind`` on this connection; raises RpcError OVERLOADED
        at the connection's limit, DaemonNotRunning where nothing can stay subscribed."""
        ...

    def unsubscribe(self, sub_id: str) -> bool:
        """Close subscription ``sub_id`` of this connection. False if it is not open here."""
        ...


Handler: TypeAlias = "Callable[[Params, CallContext], Awaitable[Any]]"
"""A method: ``async def handler(params: Params, ctx: CallContext) -> JSON-compatible``."""
_H = TypeVar("_H", bound="Callable[[Params, CallContext], Awaitable[Any]]")


async def _unsubscribe(params: Params, ctx: CallContext) -> bool:
    sub_id = params.require_str("subscription")
    params.reject_unknown()
    return ctx.unsubscribe(sub_id)


class MethodRegistry:
    """The methods a server offers, by name.

    ``unsubscribe`` (params ``{"subscription": id}``, result ``true`` if it was open on this
    connection, else ``false``) is built in. Names starting with ``rpc.`` are reserved by
    JSON-RPC; registering one, or a name twice, raises :class:`LocalProtocolError`.
    """

    def __init__(self) -> None:
        self._methods: dict[str, Handler] = {}
        self.add("unsubscribe", _unsubscribe)

    def add(self, name: str, handler: Handler) -> None:
        if not name or name.startswith("rpc."):
            raise LocalProtocolError(f"invalid method name {name!r}")
        if name in self._methods:
            raise LocalProtocolError(f"method {name!r} is already registered")
        self._methods[name] = handler

    def method(self, name: str) -> Callable[[_H], _H]:
        """Decorator: ``@registry.method("publish")`` registers the function under ``name``."""

        def register(handler: _H) -> _H:
            self.add(name, handler)
            return handler

        return register

    def get(self, name: str) -> Handler | None:
        return self._methods.get(name)

    def names(self) -> list[str]:
        return sorted(self._methods)

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    async def call(self, name: str, params: Params, ctx: CallContext) -> Any:
        """Run method ``name``; RpcError METHOD_NOT_FOUND if there is none."""
        handler = self._methods.get(name)
        if handler is None:
            raise RpcError(
                METHOD_NOT_FOUND,
                f"method not found: {name!r}",
                {"type": "MethodNotFound", "method": name},
            )
        return await handler(params, ctx)
