"""The signed append-only feed format: encode, sign, verify, chain rules, forks.

The native format (version 1) lives in ``entry.py``; every entry names its version first,
and :func:`~p2psocial.feed.entry.decode_entry` rejects versions it does not know with
``UnknownFormat``. A second format (the classic Scuttlebutt bridge) plugs in there, as
another decoder producing the same :class:`~p2psocial.feed.entry.Entry`, so the chain rules,
the store and replication stay as they are.
"""

from __future__ import annotations
