"""Commands for whom you see (#12): mute, unmute, mutes, suggest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from p2psocial.cli.base import JsonFlag, LimitOpt, app, caller, emit_json, emit_rows
from p2psocial.cli.show import one_line

if TYPE_CHECKING:
    from p2psocial.cli.base import Caller

WhoArg = Annotated[
    str,
    typer.Argument(help="A feed id (@...ed25519), or a name you know it by.", metavar="@FEED|NAME"),
]


def _target(who: str) -> dict[str, str]:
    """The params naming ``who``: a feed id as such, anything else as a name."""
    from p2psocial.errors import InvalidId
    from p2psocial.identity import parse_feed_id

    try:
        parse_feed_id(who)
    except InvalidId:
        return {"name": who}
    return {"feed_id": who}


def _names(call: Caller, feeds: list[str]) -> dict[str, str]:
    return call.call("names", feed_ids=feeds) if feeds else {}


def _report(call: Caller, result: dict[str, Any], as_json: bool, done: str, already: str) -> None:
    if as_json:
        emit_json(result)
        return
    who = result["feed_id"]
    shown = _names(call, [who]).get(who, who)
    state = done if result["changed"] else already
    typer.echo(f"{state} {one_line(shown)}  {one_line(who)}")


@app.command()
def mute(ctx: typer.Context, who: WhoArg, as_json: JsonFlag = False) -> None:
    """Hide a feed from your views (timeline, channels, suggestions). Unlike a block, it
    is still replicated, and nothing is published: the mute stays on this machine."""
    with caller(ctx) as call:
        result = call.call("mute", **_target(who))
        _report(call, result, as_json, "muted", "already muted:")


@app.command()
def unmute(ctx: typer.Context, who: WhoArg, as_json: JsonFlag = False) -> None:
    """Show a muted feed again."""
    with caller(ctx) as call:
        result = call.call("unmute", **_target(who))
        _report(call, result, as_json, "unmuted", "was not muted:")


@app.command()
def mutes(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the feeds you muted."""
    with caller(ctx) as call:
        rows = call.call("mutes")
    emit_rows(
        rows,
        as_json,
        "no feed is muted",
        lambda row: f"{one_line(row['display_name'])}  {one_line(row['feed_id'])}",
    )


@app.command()
def suggest(ctx: typer.Context, limit: LimitOpt = 20, as_json: JsonFlag = False) -> None:
    """Suggest feeds to follow: those the feeds you follow follow, the most followed
    first (not those you follow, block or mute)."""
    with caller(ctx) as call:
        rows = call.call("suggest", limit=limit)
    emit_rows(
        rows,
        as_json,
        "no suggestions: follow some feeds first",
        lambda row: (
            f"{one_line(row['display_name'])}  {one_line(row['feed_id'])}  "
            f"followed by {row['followed_by']} you follow"
        ),
    )
