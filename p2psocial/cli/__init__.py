"""The ``p2psocial`` command line, one module per group of commands.

- ``base.py``: the typer app, the home, errors, output, and the caller every command uses
  (the daemon's socket when it runs, else the same methods in-process on the store);
- ``posts.py``: init, whoami, post, feed, timeline, show, thread;
- ``editing.py``: edit, repost;
- ``graph.py``: follow, unfollow, block, unblock;
- ``private.py``: dm send / reply / inbox / thread;
- ``invites.py``: invite create / accept;
- ``names.py``: profile, profile set, name (petnames);
- ``reactions.py``: like, unlike, likes;
- ``channels.py``: channel, channels;
- ``mutes.py``: mute, unmute, mutes, suggest;
- ``notify.py``: notifications;
- ``search.py``: search;
- ``blobs.py``: blob add / get / list / rm, and the files ``--attach`` adds;
- ``node.py``: daemon, connect, peers, status, rpc;
- ``show.py``: how messages read in a terminal (peer text neutralised by
  ``p2psocial/textsafe.py``).
"""

from __future__ import annotations

from p2psocial.cli import (
    blobs,
    channels,
    editing,
    graph,
    invites,
    mutes,
    names,
    node,
    notify,
    posts,
    private,
    reactions,
    search,
)
from p2psocial.cli.base import app

__all__ = [
    "app",
    "blobs",
    "channels",
    "editing",
    "graph",
    "invites",
    "main",
    "mutes",
    "names",
    "node",
    "notify",
    "posts",
    "private",
    "reactions",
    "search",
]


def main() -> None:
    app()
