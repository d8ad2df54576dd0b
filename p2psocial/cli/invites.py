"""Commands for pub invites: invite create (on a pub), invite accept."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from p2psocial.cli.base import app, caller
from p2psocial.cli.show import one_line

invite_app = typer.Typer(help="Pub invites: create them (on a pub) and accept them.")
app.add_typer(invite_app, name="invite")


@invite_app.command("create")
def invite_create(
    ctx: typer.Context,
    uses: Annotated[int, typer.Option("--uses", help="How many people may use it.")] = 1,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Valid for this long: 30m, 12h, 7d.")
    ] = None,
) -> None:
    """Create an invite code (the pub's daemon must be running with --pub)."""
    params: dict[str, Any] = {"uses": uses}
    if expires is not None:
        params["expires"] = expires
    with caller(ctx) as call:
        typer.echo(call.call("invite.create", **params)["code"])


@invite_app.command("accept")
def invite_accept(
    ctx: typer.Context, code: Annotated[str, typer.Argument(help="The invite code.")]
) -> None:
    """Redeem an invite: the pub follows you, you follow it and stay connected to it."""
    with caller(ctx) as call:
        result = call.call("invite.accept", code=code)
    typer.echo(f"joined pub {result['pub']} at {one_line(result['address'])}")
