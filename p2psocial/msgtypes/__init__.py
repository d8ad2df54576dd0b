"""Content types: one module per ``type`` of content, and the registry that finds them.

A content type module holds everything specific to that type: how to build its content,
the rules our own content of that type must keep (:attr:`ContentType.check`), how it reads
for a person (:attr:`ContentType.describe`), and which links it feeds into the ``links``
view (:attr:`ContentType.links`). Modules: ``post``, ``contact``, ``pub`` and ``private``
(the encrypted kind). :mod:`~p2psocial.msgtypes.registry` lists them.

Nothing in ``net/``, ``feed/chain.py`` or the daemon knows a content type: the transport
moves bytes, the chain rules check the generic content shape, and views ask the registry.
"""

from __future__ import annotations
