"""The sans-IO protocol core of p2psocial.

Everything in this package is synchronous and pure: it never touches sockets, trio, the
clock or the random generator. Bytes go in with ``receive_data()``, events come out of
``next_event()``, and bytes to put on the wire come out of the machines' send methods.
Keys, nonces and the current time are passed in by the caller (the ``net/`` shell).

Modules:

- :mod:`p2psocial.proto.handshake`: the secret handshake (shs1), one machine per role.
- :mod:`p2psocial.proto.boxstream`: the encrypted, framed stream that follows it.
"""

from __future__ import annotations
