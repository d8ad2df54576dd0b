"""Commands for your identity and messages: init, whoami, post, feed, timeline, show, thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from p2psocial.cli.base import (
    BeforeOpt,
    JsonFlag,
    LimitOpt,
    ShowCw,
    app,
    caller,
    emit_json,
    fail,
    home_of,
    user_errors,
)
from p2psocial.cli.blobs import AltOpt, AttachOpt, KeepMetadata, attachments_for
from p2psocial.cli.show import name_authors, print_cards, print_messages

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
    text: Annotated[str, typer.Argument(help="What to say; @NAME mentions someone you know.")],
    reply_to: Annotated[
        str | None,
        typer.Option(
            "--reply-to",
            help="Reply in the thread of this public message id (a private one: 'dm reply').",
        ),
    ] = None,
    mention: Annotated[
        list[str] | None,
        typer.Option(
            "--mention",
            help="Mention this feed (@...ed25519) or message (%...sha256); repeatable.",
            metavar="ID",
        ),
    ] = None,
    channel: Annotated[
        str | None, typer.Option("--channel", help="Post in this channel (#tags count too).")
    ] = None,
    cw: Annotated[
        str | None,
        typer.Option("--cw", help="A content warning: readers see it, the text folded behind."),
    ] = None,
    names: Annotated[
        bool,
        typer.Option(
            "--names/--no-names",
            help="Resolve each @NAME in the text to the feed you know by that name (an "
            "unknown or ambiguous one is an error listing the candidates).",
        ),
    ] = True,
    attach: AttachOpt = None,
    alt: AltOpt = None,
    keep_metadata: KeepMetadata = False,
    as_json: JsonFlag = False,
) -> None:
    """Publish a public post to your feed.

    Each @NAME in the text is looked up among the names you know (your petnames, names
    people give themselves, names the people you follow use) and mentioned by feed id;
    feed ids written in the text are mentioned too. A reply to a private message is
    refused (it would show the private thread to everyone): use 'p2psocial dm reply'."""
    with caller(ctx) as call:
        params: dict[str, Any] = {"text": text, "mention_names": names}
        if reply_to is not None:
            params["root"] = thread_root(call, reply_to)
            params["branch"] = reply_to
        if mention:
            params["mentions"] = mention
        if channel is not None:
            params["channel"] = channel
        if cw is not None:
            params["cw"] = cw
        attached = attachments_for(call, attach, alt, keep_metadata=keep_metadata)
        if attached:
            params["attachments"] = attached
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
def timeline(
    ctx: typer.Context,
    limit: LimitOpt = 20,
    before: BeforeOpt = None,
    show_cw: ShowCw = False,
    as_json: JsonFlag = False,
) -> None:
    """Posts and reposts of the feeds you follow (and yours), newest first, with names,
    reply, like and repost counts; posts behind a content warning folded."""
    params: dict[str, Any] = {"limit": limit}
    if before is not None:
        params["before"] = before
    with caller(ctx) as call:
        cards = call.call("timeline", **params)
    if not cards and not as_json:
        typer.echo("nothing in your timeline yet: follow someone ('p2psocial follow @FEED')")
    print_cards(cards, as_json, show_cw)
    if cards and not as_json and len(cards) == limit:
        typer.echo(f"(older: p2psocial timeline --before {cards[-1]['sort_ts']})")


@app.command()
def show(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="Message id (%...sha256).")],
    history: Annotated[
        bool, typer.Option("--history", help="Also show every earlier text of an edited post.")
    ] = False,
    show_cw: ShowCw = False,
    as_json: JsonFlag = False,
) -> None:
    """Show one message (a post with its counts; --history: its texts before each edit)."""
    from p2psocial.cli.show import indented, when
    from p2psocial.textsafe import neutralise

    with caller(ctx) as call:
        message = call.call("get", id=msg_id)
        if message.get("private") or not isinstance(message.get("content"), dict):
            name_authors(call, [message])
            print_messages([message], as_json)
            return
        card = call.call("history", id=msg_id) if history else call.call("cards", ids=[msg_id])[0]
    if as_json:
        emit_json(card)
        return
    print_cards([card], False, show_cw)
    if history:
        typer.echo("history:")
        for version in card.get("history", []):
            label = "edited" if version.get("edit") else "first "
            text = version.get("text")
            body = neutralise(text) if isinstance(text, str) else "(deleted)"
            typer.echo(f"  {label} {when(version.get('timestamp'))}")
            typer.echo("  " + indented(body))


@app.command()
def thread(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="Any message id of the thread.")],
    show_cw: ShowCw = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a thread: its root and the replies, oldest first, each indented under the
    message it answers."""
    with caller(ctx) as call:
        cards = call.call("thread", root=thread_root(call, msg_id))
    print_cards(cards, as_json, show_cw, threaded=True)


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
