"""The SQLite store: all SQL lives in this package, and it hands back domain objects.

One :class:`Store` owns one connection. It is not thread-safe: the CLI uses it from one
thread, the daemon from one store thread (``gateway.py``). Writes run in explicit
transactions (``BEGIN IMMEDIATE``), so a batch of entries lands whole or not at all, with
every view's rows; appending to our own feed reads the latest entry and writes the next
inside one transaction, so our own feed can never fork, even with two writers on one file.

The parts: ``db.py`` (opening, migrations, view versions), ``ingest.py`` (writing),
``reads.py`` (reading), ``peers.py`` (peers and invites), ``profiles.py`` (petnames and
profiles), ``views/`` (derived tables).
"""

from __future__ import annotations

from p2psocial.store.blobs import BlobsStore
from p2psocial.store.ingest import BatchResult, Ingest, PreparedBatch
from p2psocial.store.notifications import Notifications
from p2psocial.store.peers import Peers
from p2psocial.store.posts import Posts
from p2psocial.store.profiles import Profiles
from p2psocial.store.search import Search
from p2psocial.store.social import Social

__all__ = ["BatchResult", "PreparedBatch", "Store"]


class Store(Ingest, Posts, Social, Notifications, Search, Peers, Profiles, BlobsStore):
    """A p2psocial store in one SQLite file. Open it with :meth:`open`."""
