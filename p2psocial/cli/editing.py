"""Commands that change or share posts: edit, repost."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from p2psocial.cli.base import JsonFlag, app, caller, emit_json
from p2psocial.cli.show import print_cards


@app.command()
def edit(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="One of your own posts (%...sha256).")],
    text: Annotated[str, typer.Argument(help="Its new text.")],
    as_json: JsonFlag = False,
) -> None:
    """Give one of your posts new text. Everyone sees the latest text marked edited; the
    earlier texts stay visible with 'p2psocial show %MSG --history'."""
    with caller(ctx) as call:
        result = call.call("edit", id=msg_id, text=text)
    if as_json:
        emit_json(result)
    else:
        typer.echo(f"edited {msg_id} ({result['message']['id']})")


@app.command()
def repost(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="The public message to share (%...sha256).")],
    comment: Annotated[
        str | None, typer.Option("--comment", "-c", help="Say something about it (a quote).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Share a message with your followers. It carries the original's signed entry when it
    fits, so followers who do not follow its author can still read and verify it."""
    params: dict[str, Any] = {"id": msg_id}
    if comment is not None:
        params["comment"] = comment
    with caller(ctx) as call:
        card = call.call("repost", **params)
    if as_json:
        emit_json(card)
    else:
        print_cards([card], False)
