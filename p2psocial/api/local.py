"""Calling the JSON-RPC methods in-process, on the store, when no daemon runs.

The CLI makes every call through a *caller*: the socket client when the daemon runs, a
:class:`LocalCaller` when it does not. Both run the same method bodies
(``methods.py``) and give the same answers: results go through the same JSON encoding the
socket uses, and errors become the same :class:`~p2psocial.errors.RpcError` (code, message,
data) the client raises. Only what needs a running daemon differs: subscriptions and
dialling peers (``App`` without a network says so, or does what it can alone).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import trio

from p2psocial.api.methods import build_registry
from p2psocial.api.params import Params
from p2psocial.app import App
from p2psocial.config import Config, load_config
from p2psocial.errors import ConfigError, DaemonNotRunning, RpcError
from p2psocial.events import EventBus
from p2psocial.proto.jsonrpc import INTERNAL_ERROR, dumps, error_for_exception
from p2psocial.store.gateway import InlineGateway

if TYPE_CHECKING:
    from collections.abc import Mapping

    from p2psocial.api.hub import Hub, Subscription
    from p2psocial.home import Home
    from p2psocial.identity import Keypair
    from p2psocial.store.store import Store


class LocalCallContext:
    """A call made in-process: no hub, no connection to stay subscribed on."""

    hub: Hub | None = None
    connection_count = 0

    def subscribe(
        self, kind: str, params: Params | Mapping[str, Any] | None = None, filter: Any = None
    ) -> Subscription:
        raise DaemonNotRunning(
            "live subscriptions need the running daemon: start it with 'p2psocial daemon'"
        )

    def unsubscribe(self, sub_id: str) -> bool:
        return False


class LocalCaller:
    """Calls methods on an open store, answering as the daemon's socket would."""

    def __init__(self, home: Home, keys: Keypair, store: Store) -> None:
        try:
            config = load_config(home.path)
        except ConfigError:  # the daemon reports a broken config.toml; blobs use defaults
            config = Config()
        self.app = App(
            home,
            keys,
            InlineGateway(store),
            EventBus(),
            blob_max_size=config.blob_max_size,
            blob_quota=config.blob_quota,
        )
        self.registry = build_registry(self.app)

    def call(self, method: str, /, **params: Any) -> Any:
        """Run ``method``; its JSON result, or RpcError as the socket would answer it."""
        return trio.run(self._call, method, params)

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        outcome: Any = None
        failure: BaseException | None = None
        async with trio.open_nursery() as nursery:
            await nursery.start(self.app.run)
            try:
                outcome = await self.registry.call(method, Params(params), LocalCallContext())
            except Exception as exc:
                failure = exc
            nursery.cancel_scope.cancel()
        if failure is not None:
            error = error_for_exception(failure)
            if error.code == INTERNAL_ERROR:
                raise failure  # a bug: show its traceback rather than hide it
            raise RpcError(error.code, error.message, error.data) from None
        return json.loads(dumps(outcome))
