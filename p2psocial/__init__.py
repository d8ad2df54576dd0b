"""p2psocial: a peer-to-peer social network daemon.

The package is laid out as a sans-IO protocol core (``proto/``, ``feed/``), storage behind
one layer (``store/``), a thin trio shell (``net/``), the local app interface (``api/``)
and a typer CLI (``cli.py``). See ``docs/architecture.md``.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"
