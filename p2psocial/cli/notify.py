"""The ``notifications`` command: mentions, replies, reactions, reposts, new followers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from p2psocial.cli.base import JsonFlag, LimitOpt, app, caller, emit_json
from p2psocial.cli.show import indented, name_authors, one_line, when
from p2psocial.textsafe import neutralise

if TYPE_CHECKING:
    from p2psocial.cli.base import Caller


def _short(msg_id: Any) -> str:
    text = one_line(msg_id)
    return text[:10] + "\u2026" if len(text) > 10 else text


def _what(n: dict[str, Any]) -> str:
    """What happened, after the name: "liked your post %abc…"."""
    kind, target = n["kind"], n.get("target")
    yours = f"your post {_short(target)}" if target is not None else "your post"
    if kind == "reply":
        if n.get("in_thread"):
            content = n["message"].get("content")
            root = content.get("root") if isinstance(content, dict) else None
            return f"replied in a thread you replied in {_short(root)}"
        return f"replied to {yours}"
    if kind == "reaction":
        expression = n.get("expression")
        if isinstance(expression, str):
            return f"reacted {one_line(expression)} to {yours}"
        return f"liked {yours}"
    if kind == "repost":
        return f"reposted {yours}"
    if kind == "follow":
        return "started following you"
    if kind == "mention":
        return "mentioned you"
    return one_line(kind)


def format_notification(n: dict[str, Any]) -> str:
    """One notification: ``*`` when unread, the time, who, what; then the text of a reply,
    mention or quote-repost below, indented by four (neutralised)."""
    m = n["message"]
    name = m.get("author_name")
    who = one_line(name if isinstance(name, str) else m["author"])
    head = f"{'  ' if n['read'] else '* '}{when(m['timestamp'])}  {who}  {_what(n)}"
    content = m.get("content")
    body = None
    if isinstance(content, dict):
        if n["kind"] in ("reply", "mention") and isinstance(content.get("text"), str):
            body = content["text"]
        elif n["kind"] == "repost" and isinstance(content.get("comment"), str):
            body = content["comment"]
    # Indented past the read mark's two spaces: no line of it can pass for a head line.
    return head if body is None else head + "\n" + indented(indented(neutralise(body)))


def _mark(call: Caller, shown: list[dict[str, Any]]) -> dict[str, Any]:
    """Mark read everything received up to the newest notification shown."""
    received = [n["message"]["received"] for n in shown]
    if not received:
        return {"marked": 0, "unread": call.call("status")["notifications_unread"]}
    result: dict[str, Any] = call.call("notifications.mark_read", up_to=max(received))
    return result


@app.command()
def notifications(
    ctx: typer.Context,
    unread: Annotated[bool, typer.Option("--unread", help="Only those not read yet.")] = False,
    mark_read: Annotated[
        bool,
        typer.Option(
            "--mark-read",
            help="After showing them, mark read everything received up to the newest shown "
            "(with --json, a last line {marked, unread}).",
        ),
    ] = False,
    limit: LimitOpt = 50,
    before: Annotated[
        int | None,
        typer.Option("--before", help="Only older than this time (ms since 1970, exclusive)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Mentions of you, replies to your posts and threads, likes and reposts of your
    posts, new followers; newest first, unread ones marked '*'."""
    params: dict[str, Any] = {"limit": limit, "unread": unread}
    if before is not None:
        params["before"] = before
    with caller(ctx) as call:
        found: list[dict[str, Any]] = call.call("notifications", **params)
        name_authors(call, [n["message"] for n in found])
        marked = _mark(call, found) if mark_read else None
    if as_json:
        for n in found:
            emit_json(n)
        if marked is not None:
            emit_json(marked)
        return
    if not found:
        typer.echo("no unread notifications" if unread else "no notifications")
    for n in found:
        typer.echo(format_notification(n))
    if marked is not None:
        typer.echo(f"marked {marked['marked']} read; {marked['unread']} unread")
