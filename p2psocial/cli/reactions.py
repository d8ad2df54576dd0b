"""Commands for reactions: like, unlike, likes."""

from __future__ import annotations

from typing import Annotated

import typer

from p2psocial.cli.base import JsonFlag, app, caller, emit_json

MsgArg = Annotated[str, typer.Argument(help="Message id (%...sha256).")]


@app.command()
def like(
    ctx: typer.Context,
    msg_id: MsgArg,
    emoji: Annotated[str | None, typer.Option("--emoji", help="React with this emoji.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Like a message (publicly: a vote in your feed)."""
    params = {"id": msg_id} if emoji is None else {"id": msg_id, "emoji": emoji}
    with caller(ctx) as call:
        result = call.call("like", **params)
    _report(result, as_json, "liked", "already liked")


@app.command()
def unlike(ctx: typer.Context, msg_id: MsgArg, as_json: JsonFlag = False) -> None:
    """Take back your like of a message."""
    with caller(ctx) as call:
        result = call.call("unlike", id=msg_id)
    _report(result, as_json, "no longer liked", "not liked")


@app.command()
def likes(ctx: typer.Context, msg_id: MsgArg, as_json: JsonFlag = False) -> None:
    """Who likes a message."""
    from p2psocial.textsafe import neutralise

    with caller(ctx) as call:
        result = call.call("likes", id=msg_id)
    if as_json:
        emit_json(result)
        return
    typer.echo(f"{result['likes']} like{'s' if result['likes'] != 1 else ''}")
    for vote in result["by"]:
        expression = (
            f"  {neutralise(vote['expression'], inline=True)}" if vote["expression"] else ""
        )
        typer.echo(f"  {vote['feed_id']}{expression}")


def _report(result: dict[str, object], as_json: bool, done: str, already: str) -> None:
    if as_json:
        emit_json(result)
        return
    state = done if result["changed"] else f"{already}: nothing to publish"
    typer.echo(f"{state} ({result['likes']} in all)")
