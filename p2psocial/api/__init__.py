"""The local app interface: JSON-RPC 2.0 methods, served on the daemon's Unix socket
(``<home>/rpc.sock``) and run in-process by the CLI when no daemon runs.

- :mod:`p2psocial.api.registry` the method registry and the ``CallContext`` a method sees.
- :mod:`p2psocial.api.methods`  the methods, over an :class:`~p2psocial.app.App` (with
  ``private_api`` and ``invite_api``), and the live-message subscriber of the hub.
- :mod:`p2psocial.api.params`   typed access to a call's named parameters (wrong or missing
  parameters become error -32602 naming the parameter).
- :mod:`p2psocial.api.hub`      subscriptions: bounded per-subscription queues with an overflow
  notice, and the :class:`~p2psocial.api.hub.Hub` the daemon publishes to. Sans-IO.
- :mod:`p2psocial.api.server`   the trio shell: per-connection tasks and
  :func:`~p2psocial.api.server.serve_unix`.
- :mod:`p2psocial.api.local`    the same methods in-process on the store.

The codec (:mod:`p2psocial.proto.jsonrpc`) is shared with :mod:`p2psocial.client`.
``docs/rpc.md`` describes the wire rules. This package ``__init__`` imports nothing.
"""

from __future__ import annotations
