"""How messages read in a terminal."""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from p2psocial.cli.base import emit_json


def when(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp / 1000))


def format_message(m: dict[str, Any]) -> str:
    """A public message: a head line (time, author, seq, id), then its text indented."""
    from p2psocial.msgtypes.registry import describe

    head = f"{when(m['timestamp'])}  {m['author']}  #{m['seq']}  {m['id']}"
    content = m.get("content")
    if m.get("private"):
        body = "(private message)"
    elif content is None:
        body = "(content not held)"
    else:
        text = describe(content)
        if text is None:
            body = json.dumps(content, ensure_ascii=False)
        elif content.get("type") == "post" and isinstance(content.get("root"), str):
            body = f"(reply in {content['root']})\n{text}"
        else:
            body = text
    return head + "\n  " + body.replace("\n", "\n  ")


def print_messages(messages: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for m in messages:
            emit_json(m)
        return
    for m in messages:
        typer.echo(format_message(m))


def print_private(messages: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for m in messages:
            emit_json(m)
        return
    if not messages:
        typer.echo("no private messages")
    for m in messages:
        readers = ", ".join(m["content"].get("recps", []))
        typer.echo(
            f"{when(m['timestamp'])}  {m['author']}  {m['id']}\n  to: {readers}\n"
            f"  {m['content'].get('text')}"
        )
