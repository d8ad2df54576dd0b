"""How messages read in a terminal.

Everything a peer wrote goes through :func:`p2psocial.textsafe.neutralise` before it is
printed (#11): terminal controls (ESC sequences, BEL, CR, the 8-bit CSI U+009B, ...) and
invisible or bidirectional format characters show as visible escapes. A message's text
keeps its newlines and tabs; each line after the first is indented, so a peer cannot print
a line that looks like a head line. One-line fields (ids, a reply's root, recipients) are
escaped whole (``inline``). ``--json`` output escapes the same characters as ``\\uXXXX``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import typer

from p2psocial.cli.base import emit_json_lines
from p2psocial.textsafe import neutralise

if TYPE_CHECKING:
    from p2psocial.cli.base import Caller


def when(timestamp: Any) -> str:
    """The local time of a message's timestamp (ms); a peer's absurd one as its number."""
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp / 1000))
    except (TypeError, ValueError, OverflowError, OSError):
        return neutralise(str(timestamp), inline=True)


def one_line(value: Any) -> str:
    """A peer-supplied value on one line: a string escaped whole, anything else as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return neutralise(text, inline=True)


def indented(body: str) -> str:
    """A (neutralised) body under its head line, every line indented."""
    return "  " + body.replace("\n", "\n  ")


def name_authors(call: Caller, messages: list[dict[str, Any]]) -> None:
    """Add each message's ``author_name``: the display name of its author (``names``)."""
    authors = sorted({m["author"] for m in messages if isinstance(m.get("author"), str)})
    if not authors:
        return
    shown = call.call("names", feed_ids=authors)
    for m in messages:
        name = shown.get(m.get("author"))
        if isinstance(name, str):
            m["author_name"] = name


def author(m: dict[str, Any]) -> str:
    """Who wrote a message, on its head line: the display name (neutralised) beside the
    key, or the key alone when no name is known (its display name is then its short key)."""
    key = m["author"]
    name = m.get("author_name")
    if not isinstance(name, str) or (isinstance(key, str) and name == key[:9] + "\u2026"):
        return one_line(key)
    return f"{one_line(name)}  {one_line(key)}"


def missing_body(m: dict[str, Any]) -> str | None:
    """What stands in for a message's text when its content is not shown: taken back by
    its author, private, or not held here. None: it has content to show."""
    if m.get("deleted"):
        return "(deleted by its author)"
    if m.get("private"):
        return "(private message)"
    if m.get("content") is None:
        return "(content not held)"
    return None


def format_message(m: dict[str, Any]) -> str:
    """A public message: a head line (time, author's name and key, seq, id), then its text
    indented."""
    from p2psocial.msgtypes.registry import describe

    head = f"{when(m['timestamp'])}  {author(m)}  #{m['seq']}  {one_line(m['id'])}"
    stand_in = missing_body(m)
    if stand_in is not None:
        body = stand_in
    else:
        content = m["content"]
        text = describe(content)
        if text is None:
            body = one_line(content)
        elif content.get("type") == "post" and isinstance(content.get("root"), str):
            body = f"(reply in {one_line(content['root'])})\n{neutralise(text)}"
        else:
            body = neutralise(text)
    return head + "\n" + indented(body)


def print_messages(messages: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json_lines(messages)
        return
    for m in messages:
        typer.echo(format_message(m))


def print_private(messages: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json_lines(messages)
        return
    if not messages:
        typer.echo("no private messages")
    for m in messages:
        typer.echo(format_private(m))


def format_private(m: dict[str, Any]) -> str:
    """A private message: head line, its readers, the thread it replies in, its text."""
    content = m.get("content")
    content = content if isinstance(content, dict) else {}
    recps = content.get("recps")
    readers = ", ".join(one_line(r) for r in recps) if isinstance(recps, list) else "?"
    lines = [f"{when(m['timestamp'])}  {author(m)}  {one_line(m['id'])}"]
    lines.append(f"  to: {readers}")
    if isinstance(content.get("root"), str):
        lines.append(f"  (reply in {one_line(content['root'])})")
    text = content.get("text")
    lines.append(indented(neutralise(text) if isinstance(text, str) else one_line(content)))
    from p2psocial.msgtypes.blobs import attachments

    lines += attachment_lines(attachments(content))
    return "\n".join(lines)


def human_size(size: object) -> str:
    if not isinstance(size, int):
        return "? bytes"
    value = float(size)
    for unit in ("bytes", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def attachment_lines(items: object) -> list[str]:
    """One line per attachment: name, type, picture size, bytes, held or not, alt text,
    and its id (every peer-written value neutralised)."""
    if not isinstance(items, list):
        return []
    lines = []
    for item in items:
        if not isinstance(item, dict):
            continue
        parts = [one_line(item.get("name")), one_line(item.get("type"))]
        if isinstance(item.get("width"), int) and isinstance(item.get("height"), int):
            parts.append(f"{item['width']}x{item['height']}")
        parts.append(human_size(item.get("size")))
        if "held" in item:
            parts.append("held here" if item["held"] else "not here yet")
        if item.get("private") or "key" in item:
            parts.append("private")
        line = f"  [attached] {', '.join(parts)}  {one_line(item.get('id', item.get('link')))}"
        lines.append(line)
        alt = item.get("alt")
        if isinstance(alt, str):
            lines.append(f"    alt: {one_line(alt)}")
    return lines


def _plural(count: int, word: str, words: str) -> str:
    return f"{count} {word if count == 1 else words}"


def counts_line(card: dict[str, Any]) -> str | None:
    """``2 replies · 3 likes · 1 repost · edited``: what happened to a post since (None:
    nothing did)."""
    counts = card.get("counts") or {}
    parts = [
        _plural(n, word, words)
        for word, words, n in (
            ("reply", "replies", counts.get("replies", 0)),
            ("like", "likes", counts.get("likes", 0)),
            ("repost", "reposts", counts.get("reposts", 0)),
        )
        if isinstance(n, int) and n > 0
    ]
    if card.get("edited"):
        parts.append("edited")
    return " \u00b7 ".join(parts) if parts else None


def card_body(card: dict[str, Any], show_cw: bool) -> str:
    """A card's text as read (neutralised): its current text, folded behind its content
    warning unless ``show_cw``; or what stands in for content not shown."""
    stand_in = missing_body(card)
    if stand_in is not None:
        return stand_in
    content = card["content"]
    text = card.get("text")
    if not isinstance(text, str):
        from p2psocial.msgtypes.registry import describe

        described = describe(content)
        return neutralise(described) if described is not None else one_line(content)
    body = neutralise(text)
    cw = card.get("cw")
    if isinstance(cw, str):
        if not show_cw:
            return f"[CW: {one_line(cw)}] (folded; --show-cw unfolds it)"
        body = f"[CW: {one_line(cw)}]\n{body}"
    if isinstance(content, dict) and isinstance(content.get("root"), str) and "depth" not in card:
        body = f"(reply in {one_line(content['root'])})\n{body}"
    return body


def format_card(card: dict[str, Any], show_cw: bool = False, depth: int = 0) -> str:
    """A post card (``timeline``, ``thread``, ``show``): head line, text, counts; a repost
    with the card it shares quoted under it. ``depth`` indents a thread's replies."""
    pad = "    " * depth
    repost = card.get("repost")
    what = "  reposted" if isinstance(repost, dict) else ""
    head = f"{when(card['timestamp'])}  {author(card)}  #{card['seq']}{what}"
    head += f"  {one_line(card['id'])}"
    lines = [head]
    if isinstance(repost, dict):
        if isinstance(repost.get("comment"), str):
            lines.append(indented(neutralise(repost["comment"])))
        inner = repost.get("message")
        if isinstance(inner, dict):
            quoted = format_card(inner, show_cw)
        else:
            quoted = f"{one_line(repost.get('id'))}\n  (not held here yet)"
        lines.append("\n".join("  | " + line for line in quoted.split("\n")))
    else:
        lines.append(indented(card_body(card, show_cw)))
        if not (isinstance(card.get("cw"), str) and not show_cw):
            lines += attachment_lines(card.get("attachments"))
    extra = counts_line(card)
    if extra is not None:
        lines.append(f"  ({extra})")
    return "\n".join(pad + line for line in "\n".join(lines).split("\n"))


def print_cards(
    cards: list[dict[str, Any]], as_json: bool, show_cw: bool = False, threaded: bool = False
) -> None:
    if as_json:
        emit_json_lines(cards)
        return
    for card in cards:
        depth = card.get("depth", 0) if threaded else 0
        typer.echo(format_card(card, show_cw, depth if isinstance(depth, int) else 0))
