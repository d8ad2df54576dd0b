"""Commands for names people can read (#12): profile, profile set, name."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from p2psocial.cli.base import JsonFlag, app, caller, emit_json, fail
from p2psocial.cli.show import one_line

AVATAR_SIDE = 512
"""Pixels on the long side an avatar picture is made (at most)."""


def _print_profile(profile: dict[str, Any]) -> None:
    """A profile, every value a peer chose neutralised."""
    typer.echo(f"{one_line(profile['display_name'])}  {one_line(profile['feed_id'])}")
    for key in ("name", "bio", "avatar", "petname"):
        value = profile.get(key)
        if value is not None:
            typer.echo(f"  {key}: {one_line(value)}")


@app.command()
def profile(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(
            help="A feed id (@...ed25519) or a name you know someone by, to show (default: "
            "your own), or 'set' to publish your own profile.",
            metavar="[@FEED | NAME | set]",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="With 'set': your name.")] = None,
    bio: Annotated[str | None, typer.Option("--bio", help="With 'set': your bio.")] = None,
    avatar: Annotated[
        str | None,
        typer.Option(
            "--avatar",
            help="With 'set': a picture file (made at most 512 px, without its metadata) "
            "or a blob id (&...sha256).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a profile (name, bio, avatar, your petname, the name shown), or publish yours:
    'p2psocial profile set --name N [--bio B] [--avatar FILE]'."""
    fields = {"name": name, "bio": bio, "avatar": avatar}
    given = {k: v for k, v in fields.items() if v is not None}
    if target == "set":
        if not given:
            fail("profile set needs --name, --bio or --avatar")
        with caller(ctx) as call:
            if avatar is not None and not avatar.startswith("&"):
                from pathlib import Path

                from p2psocial.cli.blobs import add_files

                (added,) = add_files(call, [Path(avatar)], max_side=AVATAR_SIDE)
                if "width" not in added:
                    call.call("blobs.remove", id=added["id"])
                    fail(f"{avatar} is not a picture: an avatar must be an image")
                given["avatar"] = added["id"]
            result = call.call("profile.set", **given)
        if as_json:
            emit_json(result)
        else:
            typer.echo(f"published {result['message']['id']}")
            _print_profile(result["profile"])
        return
    if given:
        fail("--name, --bio and --avatar go with 'profile set'")
    with caller(ctx) as call:
        shown = call.call("profile", **_feed_or_name(target))
    if as_json:
        emit_json(shown)
    else:
        _print_profile(shown)


@app.command()
def name(
    ctx: typer.Context,
    feed_id: Annotated[str, typer.Argument(help="Feed id (@...ed25519).")],
    petname: Annotated[
        str | None, typer.Argument(help="Your own name for it (kept here, never published).")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Forget your petname for it.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Give a feed a petname of your own, shown instead of the name it gives itself; or
    --clear it. Petnames stay on this machine."""
    if (petname is None) == (not clear):
        fail("give either a PETNAME or --clear")
    with caller(ctx) as call:
        result = call.call("name.set", feed_id=feed_id, petname=petname)
    if as_json:
        emit_json(result)
        return
    if not result["changed"]:
        typer.echo("unchanged")
    _print_profile(result)


def _feed_or_name(target: str | None) -> dict[str, str]:
    """The ``profile`` params for what was typed: a feed id, else a name (None: yours)."""
    from p2psocial.errors import InvalidId
    from p2psocial.identity import parse_feed_id

    if target is None:
        return {}
    try:
        parse_feed_id(target)
    except InvalidId:
        if target.startswith("@") and target.endswith(".ed25519"):
            return {"feed_id": target}  # a malformed id: its error names it
        return {"name": target}
    return {"feed_id": target}
