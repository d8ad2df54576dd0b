"""Commands for private messages: dm send, dm reply, dm inbox, dm thread."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from p2psocial.cli.base import JsonFlag, LimitOpt, app, caller, emit_json
from p2psocial.cli.blobs import AltOpt, AttachOpt, KeepMetadata, attachments_for
from p2psocial.cli.show import name_authors, print_private

dm_app = typer.Typer(help="Private messages, readable only by their recipients.")
app.add_typer(dm_app, name="dm")


@dm_app.command("send")
def dm_send(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to say.")],
    to: Annotated[list[str], typer.Option("--to", help="A recipient's feed id (repeat, up to 6).")],
    reply_to: Annotated[
        str | None, typer.Option("--reply-to", help="Reply in this private thread (root id).")
    ] = None,
    attach: AttachOpt = None,
    alt: AltOpt = None,
    keep_metadata: KeepMetadata = False,
    as_json: JsonFlag = False,
) -> None:
    """Send a private message to up to 6 people (you are always a reader too).

    Attachments are encrypted with a key of their own before they leave this machine; the
    key travels inside the message, so a pub that carries them holds only ciphertext."""
    params: dict[str, Any] = {"to": to, "text": text}
    if reply_to is not None:
        params["root"] = reply_to
    with caller(ctx) as call:
        attached = attachments_for(call, attach, alt, keep_metadata=keep_metadata, private=True)
        if attached:
            params["attachments"] = attached
        result = call.call("private.publish", **params)
    if as_json:
        emit_json(result)
    else:
        typer.echo(result["id"])


@dm_app.command("reply")
def dm_reply(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="The private message replied to (%...sha256).")],
    text: Annotated[str, typer.Argument(help="What to say.")],
    as_json: JsonFlag = False,
) -> None:
    """Reply privately in a private message's thread, to the same readers (its recipients,
    its author among them; you are always a reader too)."""
    with caller(ctx) as call:
        result = call.call("private.reply", id=msg_id, text=text)
    if as_json:
        emit_json(result)
    else:
        typer.echo(result["id"])


@dm_app.command("inbox")
def dm_inbox(ctx: typer.Context, limit: LimitOpt = 20, as_json: JsonFlag = False) -> None:
    """Private messages you can read, newest first."""
    with caller(ctx) as call:
        messages = call.call("private.inbox", limit=limit)
        name_authors(call, messages)
    print_private(messages, as_json)


@dm_app.command("thread")
def dm_thread(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="The private thread's root message id.")],
    as_json: JsonFlag = False,
) -> None:
    """A private thread, oldest first."""
    with caller(ctx) as call:
        messages = call.call("private.thread", root=msg_id)
        name_authors(call, messages)
    print_private(messages, as_json)
