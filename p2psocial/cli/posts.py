"""Commands for your identity and messages: init, whoami, post, feed, timeline, show, thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from p2psocial.cli.base import (
    JsonFlag,
    LimitOpt,
    app,
    caller,
    emit_json,
    home_of,
    user_errors,
)
from p2psocial.cli.show import name_authors, print_messages

if TYPE_CHECKING:
    from p2psocial.cli.base import Caller


@app.command()
def init(ctx: typer.Context) -> None:
    """Create your identity (an Ed25519 key) and an empty store.

    Refuses to make a new identity next to an existing store (restore its secret key), and
    checks an existing store belongs to the identity and is intact."""
    import os

    from p2psocial.store.store import Store

    home = home_of(ctx)
    with user_errors():
        tightened = home.make_private()
        if tightened is not None:
            typer.echo(
                f"p2psocial: {home.path} was mode {tightened:04o}, open to other users: "
                "tightened it to 0700",
                err=True,
            )
        if home.has_identity():
            keys = home.load_identity()
            typer.echo(f"an identity already exists in {home.path}: {keys.feed_id} (unchanged)")
            if not home.socket_path.exists():
                Store.open(home.store_path, owner=keys).close()
            return
        keys = home.create_identity(os.urandom(32))
        Store.open(home.store_path, owner=keys).close()
    typer.echo(f"created identity {keys.feed_id} in {home.path}")


@app.command()
def whoami(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Print your feed id."""
    home = home_of(ctx)
    with user_errors():
        keys = home.load_identity()
    if as_json:
        emit_json({"feed_id": keys.feed_id, "home": str(home.path)})
    else:
        typer.echo(keys.feed_id)


def thread_root(call: Caller, msg_id: str) -> str:
    """The root of the thread ``msg_id`` is in (itself if it is a root, or if the root it
    names is not a message id: a peer's content may hold anything)."""
    from p2psocial.errors import InvalidId
    from p2psocial.identity import parse_message_id

    message = call.call("get", id=msg_id)
    content = message.get("content") or {}
    root = content.get("root") if isinstance(content, dict) else None
    if not isinstance(root, str):
        return msg_id
    try:
        parse_message_id(root)
    except InvalidId:
        return msg_id
    return root


@app.command()
def post(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to say.")],
    reply_to: Annotated[
        str | None,
        typer.Option(
            "--reply-to",
            help="Reply in the thread of this public message id (a private one: 'dm reply').",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish a public post to your feed.

    A reply to a private message is refused (it would show the private thread to everyone):
    use 'p2psocial dm reply'."""
    with caller(ctx) as call:
        params: dict[str, Any] = {"text": text}
        if reply_to is not None:
            params["root"] = thread_root(call, reply_to)
            params["branch"] = reply_to
        message = call.call("post", **params)
    if as_json:
        emit_json(message)
    else:
        typer.echo(message["id"])


@app.command()
def feed(
    ctx: typer.Context,
    feed_id: Annotated[str | None, typer.Argument(help="Feed id (default: your own).")] = None,
    limit: LimitOpt = 20,
    as_json: JsonFlag = False,
) -> None:
    """Show a feed, newest first."""
    from p2psocial.errors import RpcError
    from p2psocial.proto.jsonrpc import NOT_FOUND

    with caller(ctx) as call:
        who = feed_id or call.call("whoami")["feed_id"]
        messages = call.call("feed", feed_id=who, limit=limit, reverse=True)
        name_authors(call, messages)
        try:
            forked = bool(call.call("feed.info", feed_id=who)["forked"])
        except RpcError as exc:
            if exc.code != NOT_FOUND:
                raise
            forked = False
    if forked:
        warning = f"feed {who} is FORKED: its author signed two histories"
        if as_json:
            typer.echo(f"p2psocial: warning: {warning}", err=True)
        else:
            typer.echo(f"!! {warning}; no new entries are accepted for it")
    if not messages and not as_json:
        typer.echo(f"no entries stored for {who}")
    print_messages(messages, as_json)


@app.command()
def timeline(ctx: typer.Context, limit: LimitOpt = 20, as_json: JsonFlag = False) -> None:
    """Show recent messages from every stored feed, newest first."""
    with caller(ctx) as call:
        messages = call.call("timeline", limit=limit)
        name_authors(call, messages)
    print_messages(messages, as_json)


@app.command()
def show(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="Message id (%...sha256).")],
    as_json: JsonFlag = False,
) -> None:
    """Show one message."""
    with caller(ctx) as call:
        message = call.call("get", id=msg_id)
        name_authors(call, [message])
    print_messages([message], as_json)


@app.command()
def thread(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="Any message id of the thread.")],
    as_json: JsonFlag = False,
) -> None:
    """Show a thread: its root and the replies, oldest first."""
    with caller(ctx) as call:
        messages = call.call("thread", root=thread_root(call, msg_id))
        name_authors(call, messages)
    print_messages(messages, as_json)


@app.command()
def delete(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="One of your own messages (%...sha256).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask: for scripts.")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Say why (public).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Take back one of your messages: every peer drops its content for good."""
    import sys

    from p2psocial.cli.base import fail

    if not yes:
        if not sys.stdin.isatty():
            fail("delete asks for confirmation on a terminal; pass --yes to delete from a script")
        if not typer.confirm(f"Delete {msg_id} for good, on every peer that holds it?"):
            fail("nothing deleted")
    params: dict[str, Any] = {"id": msg_id}
    if reason is not None:
        params["reason"] = reason
    with caller(ctx) as call:
        result = call.call("delete", **params)
    if as_json:
        emit_json(result)
    else:
        typer.echo(f"deleted {msg_id}" if result["changed"] else f"{msg_id} was already deleted")
