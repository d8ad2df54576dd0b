"""``blob add / get / list / rm``, and the ``--attach`` files of ``post`` and ``dm send``.

Files are handed to the daemon by path (it runs as you, on this machine): pictures are
re-encoded without their metadata (EXIF, GPS position, camera serial) unless
``--keep-metadata``, and you are told so on stderr.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from p2psocial.cli.base import JsonFlag, app, caller, emit_json, emit_json_lines, fail
from p2psocial.cli.show import human_size
from p2psocial.msgtypes.blobs import MAX_ATTACHMENTS

if TYPE_CHECKING:
    from p2psocial.cli.base import Caller

blob_app = typer.Typer(
    help="Pictures and files: add, get (fetching from peers), list, remove.",
    no_args_is_help=True,
)
app.add_typer(blob_app, name="blob")

KeepMetadata = Annotated[
    bool,
    typer.Option(
        "--keep-metadata",
        help="Keep pictures exactly as they are, with their EXIF data (GPS position, camera "
        "serial, time taken). By default it is removed and large pictures scaled down.",
    ),
]


AttachOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--attach",
        help="Attach a picture or file (up to 4; repeatable). Pictures lose their metadata "
        "(GPS position, camera) unless --keep-metadata.",
        metavar="FILE",
        dir_okay=False,
    ),
]
AltOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--alt",
        help="Describe an attached picture for people who cannot see it (one per --attach, "
        "in order).",
        metavar="TEXT",
    ),
]


def attachments_for(
    call: Caller,
    attach: list[Path] | None,
    alt: list[str] | None,
    *,
    keep_metadata: bool,
    private: bool = False,
) -> list[dict[str, Any]]:
    """The ``attachments`` param of a post or private message: each ``--attach`` file
    added (``blobs.add``), with its ``--alt``."""
    if not attach:
        if alt:
            fail("--alt describes an attached picture: give --attach FILE too")
        return []
    if len(attach) > MAX_ATTACHMENTS:
        fail(f"{len(attach)} files attached; at most {MAX_ATTACHMENTS} are allowed")
    added = add_files(call, attach, alts=alt, keep_metadata=keep_metadata, private=private)
    return [a["attachment"] for a in added]


def add_files(
    call: Caller,
    files: list[Path],
    *,
    alts: list[str] | None = None,
    keep_metadata: bool = False,
    private: bool = False,
    max_side: int | None = None,
    quiet: bool = False,
    pin: bool = False,
) -> list[dict[str, Any]]:
    """Add each file as a blob; the ``blobs.add`` answers. Tells the user on stderr what
    was done to pictures (metadata removed, scaled). Attachments are not pinned (``pin``):
    they are ours while our post refers to them, and go when it is deleted."""
    alts = alts or []
    if len(alts) > len(files):
        fail(f"{len(alts)} --alt texts for {len(files)} files: give one --alt per --attach")
    answers = []
    for index, file in enumerate(files):
        params: dict[str, Any] = {"path": str(file.expanduser().resolve()), "pin": pin}
        if keep_metadata:
            params["keep_metadata"] = True
        if private:
            params["private"] = True
        if index < len(alts) and alts[index]:
            params["alt"] = alts[index]
        if max_side is not None:
            params["max_side"] = max_side
        answer = call.call("blobs.add", **params)
        answers.append(answer)
        if quiet:
            continue
        notes = []
        if answer.get("metadata_removed"):
            notes.append("removed its metadata (EXIF: GPS position, camera, time taken)")
        if answer.get("name") != file.name:
            notes.append(f"shared as {answer['name']} (file names can tell when it was taken)")
        if answer.get("scaled"):
            notes.append(f"scaled it to {answer['width']}x{answer['height']}")
        if keep_metadata and "width" in answer:
            notes.append("kept it exactly as it is, metadata included (--keep-metadata)")
        if notes:
            typer.echo(f"{file.name}: {'; '.join(notes)}", err=True)
    return answers


@blob_app.command("add")
def add(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The file to add.", dir_okay=False)],
    alt: Annotated[
        str | None, typer.Option("--alt", help="Describe the picture for people who cannot see it.")
    ] = None,
    keep_metadata: KeepMetadata = False,
    private: Annotated[
        bool,
        typer.Option("--private", help="Seal it with a key of its own (for a private message)."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a file as a blob and print its id (&...sha256).

    Example: p2psocial blob add cat.jpg --alt "a cat asleep on a chair"."""
    with caller(ctx) as call:
        (answer,) = add_files(
            call,
            [file],
            alts=[alt] if alt else None,
            keep_metadata=keep_metadata,
            private=private,
            pin=True,
        )
    if as_json:
        emit_json(answer)
        return
    typer.echo(answer["id"])
    thumb = answer.get("thumbnail")
    if thumb:
        typer.echo(f"thumbnail {thumb['link']}", err=True)
    if answer.get("key"):
        typer.echo(f"key {answer['key']} (only for the readers of a private message)", err=True)


def _fetch_with_progress(call: Caller, blob: str, wait: float) -> None:
    """Ask the daemon to fetch ``blob`` and show a progress bar until it is held."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    call.call("blobs.want", id=blob)
    deadline = time.monotonic() + wait
    with Progress(
        TextColumn("fetching"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("blob", total=None)
        while time.monotonic() < deadline:
            state = call.call("blobs.has", id=blob)
            if state["held"]:
                bar.update(task, completed=state["size"], total=state["size"])
                return
            bar.update(task, completed=state["partial"])
            time.sleep(0.2)


@blob_app.command("get")
def get(
    ctx: typer.Context,
    blob: Annotated[str, typer.Argument(help="The blob id (&...sha256).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write it to this file (default: stdout).", dir_okay=False
        ),
    ] = None,
    wait: Annotated[
        float,
        typer.Option("--wait", help="Seconds to wait for it to arrive from peers (0: don't)."),
    ] = 60.0,
    raw: Annotated[
        bool, typer.Option("--raw", help="A private blob as stored: its ciphertext.")
    ] = False,
) -> None:
    """Write a blob out, fetching it from peers if it is missing and the daemon runs.

    A private attachment is decrypted when a private message to you carries its key.
    Example: p2psocial blob get '&...sha256' -o cat.jpg"""
    if output is None and sys.stdout.isatty():
        fail("a blob is bytes, not text: write it to a file with -o FILE (or pipe it)")
    if wait < 0:
        fail("--wait must be 0 or more seconds")
    with caller(ctx) as call:
        state = call.call("blobs.has", id=blob)
        if not state["held"] and wait > 0 and sys.stderr.isatty():
            from p2psocial.client import Client

            if isinstance(call, Client):
                _fetch_with_progress(call, blob, wait)
        answer = call.call("blobs.get", id=blob, wait=wait, raw=raw)
    data = base64.b64decode(answer["data"])
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"cannot write {output}: {exc.strerror or exc}")
    typer.echo(f"wrote {human_size(len(data))} to {output}", err=True)


@blob_app.command("list")
def list_(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most N.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """The blobs held here, newest first, and how much of the quota they use."""
    with caller(ctx) as call:
        answer = call.call("blobs.list", limit=limit)
    if as_json:
        emit_json_lines(answer["blobs"])
        return
    for item in answer["blobs"]:
        marks = []
        if item["pinned"]:
            marks.append("yours")
        if item["relay"]:
            marks.append("for peers")
        if not item["referenced"] and not item["pinned"]:
            marks.append("unreferenced")
        shown = f" ({', '.join(marks)})" if marks else ""
        typer.echo(f"{item['id']}  {human_size(item['size'])}{shown}")
    typer.echo(
        f"{answer['count']} blobs, {human_size(answer['bytes'])} of {human_size(answer['quota'])}",
        err=True,
    )


@blob_app.command("rm")
def rm(
    ctx: typer.Context,
    blob: Annotated[str, typer.Argument(help="The blob id (&...sha256).")],
) -> None:
    """Remove a blob from this machine (posts referring to it stay; it may be fetched again
    if someone you follow refers to it)."""
    with caller(ctx) as call:
        call.call("blobs.remove", id=blob)
    typer.echo(f"removed {blob}")


__all__ = ["AltOpt", "AttachOpt", "KeepMetadata", "add_files", "attachments_for", "blob_app"]
