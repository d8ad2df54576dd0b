"""The sans-IO protocol core of p2psocial.

Everything in this package is synchronous and pure: it never touches sockets, trio, the
clock or the random generator. Bytes go in with ``receive_data()``, events come out of
``next_event()``, and bytes to put on the wire come out of the machines' send methods.
Keys, nonces and the current time are passed in by the caller (the ``net/`` shell).

Modules:

- :mod:`p2psocial.proto.handshake`: the secret handshake (shs1), one machine per role.
- :mod:`p2psocial.proto.boxstream`: the encrypted, framed stream that follows it.
- :mod:`p2psocial.proto.secretbox`: low-overhead libsodium secretbox calls.
- :mod:`p2psocial.proto.packets`: packet-stream framing (muxrpc).
- :mod:`p2psocial.proto.codec`: RPC body codecs (msgpack, JSON).
- :mod:`p2psocial.proto.replication`: per-feed clocks, replication messages and decisions.
- :mod:`p2psocial.proto.privatebox`: multi-recipient encryption.
- :mod:`p2psocial.proto.lan`: LAN discovery decisions (TXT records, the peer directory).
- :mod:`p2psocial.proto.jsonrpc`: the JSON-RPC codec shared by the client and the server.
- :mod:`p2psocial.proto.dropqueue`: the bounded queue that drops and reports the gap.
"""

from __future__ import annotations
