"""Commands for the follow graph: follow, unfollow, block, unblock."""

from __future__ import annotations

from typing import Annotated

import typer

from p2psocial.cli.base import FeedArg, JsonFlag, app, caller, emit_json


def _contact(ctx: typer.Context, method: str, target: str, as_json: bool, **stance: bool) -> None:
    from p2psocial.identity import parse_feed_id
    from p2psocial.msgtypes.contact import describe_stance

    with caller(ctx) as call:
        result = call.call(method, feed_id=target)
        contact = parse_feed_id(target)
    if as_json:
        emit_json(result)
        return
    state = describe_stance(stance.get("following", False), stance.get("blocking", False), contact)
    typer.echo(f"now {state}" if result["changed"] else f"already {state}: nothing to publish")


@app.command()
def follow(ctx: typer.Context, feed_id: FeedArg, as_json: JsonFlag = False) -> None:
    """Follow a feed: replicate it (and, by default, the feeds it follows)."""
    _contact(ctx, "follow", feed_id, as_json, following=True)


@app.command()
def unfollow(ctx: typer.Context, feed_id: FeedArg, as_json: JsonFlag = False) -> None:
    """Stop following a feed."""
    _contact(ctx, "unfollow", feed_id, as_json, following=False)


@app.command()
def block(ctx: typer.Context, feed_id: FeedArg, as_json: JsonFlag = False) -> None:
    """Block a feed: delete what is stored of it, never fetch it, refuse its connections."""
    _contact(ctx, "block", feed_id, as_json, blocking=True)


@app.command()
def unblock(ctx: typer.Context, feed_id: FeedArg, as_json: JsonFlag = False) -> None:
    """Unblock a feed."""
    _contact(ctx, "unblock", feed_id, as_json, blocking=False)


def _listing(ctx: typer.Context, who: str | None, field: str, as_json: bool) -> None:
    from p2psocial.cli.show import one_line

    with caller(ctx) as call:
        params = {"feed_id": who} if who is not None else {}
        feeds = call.call("contacts", **params)[field]
        names = call.call("names", feed_ids=feeds) if feeds else {}
    if as_json:
        for feed in feeds:
            emit_json({"feed_id": feed, "name": names.get(feed)})
        return
    if not feeds:
        typer.echo(f"no {field} known")
    for feed in feeds:
        name = names.get(feed)
        typer.echo(f"{one_line(name)}  {feed}" if isinstance(name, str) else feed)


OptionalFeed = Annotated[str | None, typer.Argument(help="Feed id (default: your own).")]


@app.command()
def followers(ctx: typer.Context, feed_id: OptionalFeed = None, as_json: JsonFlag = False) -> None:
    """Who follows a feed (of the feeds whose follows you hold)."""
    _listing(ctx, feed_id, "followers", as_json)


@app.command()
def following(ctx: typer.Context, feed_id: OptionalFeed = None, as_json: JsonFlag = False) -> None:
    """Whom a feed follows."""
    _listing(ctx, feed_id, "following", as_json)
