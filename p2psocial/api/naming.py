"""Finding a feed by a name you know it by, for the methods that take ``name`` beside
``feed_id`` (``profile``, ``mute``, ``unmute``): resolved as ``post`` resolves ``@NAME``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.api.params import feed_id_param
from p2psocial.errors import InvalidParams
from p2psocial.identity import feed_id
from p2psocial.msgtypes.names import (
    Unresolved,
    display_names,
    names_known,
    resolve_name,
    unresolved_message,
)

if TYPE_CHECKING:
    from p2psocial.api.params import Params
    from p2psocial.app import App
    from p2psocial.store.store import Store

MAX_NAME_PARAM = 200


def feed_by_name(store: Store, me: bytes, name: str) -> bytes:
    """The one feed ``me`` knows by ``name`` (a leading ``@`` is dropped). Raises
    InvalidParams naming ``name``, listing the candidates in the message and in
    ``data.candidates``, when it is ambiguous or unknown."""
    name = name.removeprefix("@")
    data = store.name_data(me)
    found = resolve_name(name, names_known(data))
    if not isinstance(found, Unresolved):
        return found
    shown = display_names(found.candidates, data)
    error = InvalidParams(f"parameter 'name': {unresolved_message([found], shown)}", "name")
    error.data["candidates"] = {
        name: [{"feed_id": feed_id(f), "display_name": shown[f]} for f in found.candidates]
    }
    raise error


async def feed_param(app: App, params: Params, default: bytes | None = None) -> bytes:
    """The feed a call names by ``feed_id`` or by ``name`` (not both); ``default`` when it
    names none (None: one is required)."""
    text = params.optional_str("feed_id")
    name = params.optional_str("name", max_length=MAX_NAME_PARAM)
    if text is not None and name is not None:
        raise InvalidParams("give either 'feed_id' or 'name' (not both)", "feed_id")
    if text is not None:
        return feed_id_param(text, "feed_id")
    if name is not None:
        me = app.keys.public
        return await app.gateway.read(lambda s: feed_by_name(s, me, name))
    if default is None:
        raise InvalidParams("missing required parameter 'feed_id' (or 'name')", "feed_id")
    return default
