"""JSON-RPC method ``search``: full-text search of the public posts stored here.

The query language is :mod:`p2psocial.searchtext`'s (words, ``"phrases"``, ``prefix*``,
``OR``, ``-word``); the ranking and its window are ``store/search.py``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2psocial.api.cards import cards
from p2psocial.searchtext import MAX_QUERY

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.api.registry import CallContext, MethodRegistry
    from p2psocial.app import App
    from p2psocial.store.store import Store

MAX_LIMIT = 1000


def register_search_methods(registry: MethodRegistry, app: App) -> None:
    me = app.keys.public

    @registry.method("search")
    async def search(params: Params, ctx: CallContext) -> Any:
        query = params.require_str("query", max_length=MAX_QUERY)
        limit = params.optional_int("limit", 20, min_value=1, max_value=MAX_LIMIT)
        before = params.optional_int("before", min_value=0)
        params.reject_unknown()

        def read(store: Store) -> list[dict[str, Any]]:
            """The hits as cards (the post's text now, names, counts), each with its
            ``rank`` (bm25: lower is better)."""
            hits = store.search(query, limit=limit, before=before)
            found = cards(store, me, [h.message for h in hits], [h.sort_ts for h in hits])
            for card, hit in zip(found, hits, strict=True):
                card["rank"] = hit.rank
            return found

        return await app.gateway.read(read)
