"""The ``p2psocial`` command line, one module per group of commands.

- ``base.py``: the typer app, the home, errors, output, and the caller every command uses
  (the daemon's socket when it runs, else the same methods in-process on the store);
- ``posts.py``: init, whoami, post, feed, timeline, show, thread;
- ``graph.py``: follow, unfollow, block, unblock;
- ``private.py``: dm send / reply / inbox / thread;
- ``invites.py``: invite create / accept;
- ``names.py``: profile, profile set, name (petnames);
- ``reactions.py``: like, unlike, likes;
- ``node.py``: daemon, connect, peers, status, rpc;
- ``show.py``: how messages read in a terminal (peer text neutralised by
  ``p2psocial/textsafe.py``).
"""

from __future__ import annotations

from p2psocial.cli import graph, invites, names, node, posts, private, reactions
from p2psocial.cli.base import app

__all__ = [
    "app",
    "graph",
    "invites",
    "main",
    "names",
    "node",
    "posts",
    "private",
    "reactions",
]


def main() -> None:
    app()
