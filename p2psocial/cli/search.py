"""The ``search`` command: full-text search of the public posts stored here (#12)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from p2psocial.cli.base import BeforeOpt, JsonFlag, LimitOpt, ShowCw, app, caller
from p2psocial.cli.show import print_cards

QUERY_HELP = (
    'Words to find (all of them); "a phrase"; a prefix*; OR between two parts; -word to '
    "leave out. Accents and case do not matter; emoji and CJK words are found."
)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help=QUERY_HELP, metavar="TEXT")],
    limit: LimitOpt = 20,
    before: BeforeOpt = None,
    show_cw: ShowCw = False,
    as_json: JsonFlag = False,
) -> None:
    """Search the public posts stored here, best match first. An edited post is found by
    its latest text; deleted posts, blocked and muted feeds are left out."""
    params: dict[str, Any] = {"query": query, "limit": limit}
    if before is not None:
        params["before"] = before
    with caller(ctx) as call:
        hits = call.call("search", **params)
    if not hits and not as_json:
        typer.echo("no posts match")
    print_cards(hits, as_json, show_cw)
