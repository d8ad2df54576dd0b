"""The local app interface: JSON-RPC 2.0 over the daemon's Unix socket (``<home>/rpc.sock``).

- :mod:`p2psocial.proto.jsonrpc`  sans-IO codec: lines in, requests out; responses, errors and
  notifications to bytes; the error code table and the exception-to-code mapping.
- :mod:`p2psocial.api.params`   typed access to a call's named parameters (wrong or missing
  parameters become error -32602 naming the parameter).
- :mod:`p2psocial.api.hub`      subscriptions: bounded per-subscription queues with an overflow
  notice, and the :class:`~p2psocial.api.hub.Hub` the daemon publishes to. Sans-IO.
- :mod:`p2psocial.api.server`   the trio shell: the method registry, the per-connection tasks,
  and :func:`~p2psocial.api.server.serve_unix`.

The client apps use lives in :mod:`p2psocial.client`. ``docs/rpc.md`` describes the wire
rules. This package ``__init__`` imports nothing, so importing the codec never imports trio.
"""

from __future__ import annotations
