"""Commands for channels (#12): channel, channels."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from p2psocial.cli.base import (
    BeforeOpt,
    JsonFlag,
    LimitOpt,
    ShowCw,
    app,
    caller,
    emit_rows,
)
from p2psocial.cli.show import one_line, print_cards, when


@app.command()
def channel(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The channel's name (with or without '#').")],
    limit: LimitOpt = 20,
    before: BeforeOpt = None,
    show_cw: ShowCw = False,
    as_json: JsonFlag = False,
) -> None:
    """Show the posts in a channel, newest first: those naming it as their channel or
    tagging it (#name). Muted feeds are left out."""
    params: dict[str, object] = {"name": name, "limit": limit}
    if before is not None:
        params["before"] = before
    with caller(ctx) as call:
        cards = call.call("channel", **params)
    if not cards and not as_json:
        typer.echo(f"no posts in #{one_line(name.removeprefix('#'))}")
    print_cards(cards, as_json, show_cw)


@app.command()
def channels(ctx: typer.Context, limit: LimitOpt = 50, as_json: JsonFlag = False) -> None:
    """List the channels posts are in, the most used first, with how many posts and the
    latest one's time."""
    with caller(ctx) as call:
        rows = call.call("channels", limit=limit)

    def line(row: dict[str, Any]) -> str:
        posts = f"{row['count']} post{'s' if row['count'] != 1 else ''}"
        return f"#{one_line(row['name'])}  {posts}  latest {when(row['latest'])}"

    emit_rows(
        rows, as_json, "no channels yet: tag a post with #name, or post with --channel NAME", line
    )
