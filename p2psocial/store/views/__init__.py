"""Views: tables derived from the stored entries, kept up to date as entries are stored.

Theory of operation
-------------------
The entries are the truth; every other table that follows from them is a *view*. A view
is a plug-in with a name and a version (:class:`View`):

- :meth:`View.create` makes its tables; :meth:`View.drop` removes them;
- :meth:`View.index` is called with every batch of accepted entries *inside the ingest
  transaction* (and for our own publishes), so a view can never lag behind or miss an
  entry, whatever crashes when;
- :meth:`View.purge` removes what a feed contributed (when we block it);
- :func:`rebuild_views` replays every stored entry in receive order into fresh copies of
  some views, decoding each entry once for all of them.

The ``views`` table records the version each view's tables were built by. When a view's
code changes what it stores, its version goes up, and the next opening of the store
rebuilds it (``db.py``). Indexing one batch, many batches, or a rebuild give the same rows
(tests/store/test_views.py).

To add a view: a module here with a :class:`View` subclass, listed in
:func:`default_views`. Its ``index`` reads the decoded content from the
:class:`~p2psocial.feed.chain.Accepted` items (``value``, ``private_value``) and asks the
content-type modules (``p2psocial.msgtypes``) what the content means: no view decodes
bytes.
"""

from __future__ import annotations

from p2psocial.store.views.base import View, open_private, rebuild_views
from p2psocial.store.views.blobrefs import BlobRefsView
from p2psocial.store.views.channels import ChannelsView
from p2psocial.store.views.contacts import ContactsView
from p2psocial.store.views.deletions import DeletionsView
from p2psocial.store.views.inbox import InboxView
from p2psocial.store.views.links import LinksView
from p2psocial.store.views.notifications import NotificationsView
from p2psocial.store.views.posts import PostsView
from p2psocial.store.views.profiles import ProfilesView
from p2psocial.store.views.search import SearchView
from p2psocial.store.views.votes import VotesView

__all__ = ["View", "default_views", "open_private", "rebuild_views"]


def default_views(*, owner: bytes | None) -> list[View]:
    """The views a store keeps; ``owner``: the public key of the store's owner, whose
    views (the inbox: it needs the owner's key) are kept only when the owner opens it."""
    views: list[View] = [
        ContactsView(),
        LinksView(),
        VotesView(),
        DeletionsView(),
        ProfilesView(),
        PostsView(),
        ChannelsView(),
        SearchView(),
    ]
    if owner is not None:
        views.append(InboxView())
        views.append(NotificationsView(owner))
        views.append(BlobRefsView())
    return views
