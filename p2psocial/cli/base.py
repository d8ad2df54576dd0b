"""What every command shares: the typer app, the home, errors, output, and the caller.

Every command that touches the store calls the JSON-RPC methods (docs/rpc.md) through
:func:`caller`: over the daemon's socket when it runs, else in-process on the store
(:class:`~p2psocial.api.local.LocalCaller`). One body per command, one set of limits, one
error text, whichever way it runs.

Heavy modules (crypto, CBOR, SQLite layer, trio) are imported inside the commands that need
them, so ``p2psocial --help`` stays fast. Every P2PSocialError becomes a one-line message on
stderr and exit code 1; usage errors exit 2 (click's convention).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path  # noqa: TC003 (typer reads the annotations at run time)
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Protocol

import typer

from p2psocial.errors import P2PSocialError, RpcError
from p2psocial.textsafe import json_line, neutralise

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from p2psocial.client import Client
    from p2psocial.home import Home

app = typer.Typer(
    help="p2psocial: a peer-to-peer social network. Your feed, signed, on your machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON lines).")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", help="At most N (1 to 1000).")]
FeedArg = Annotated[str, typer.Argument(help="Feed id (@...ed25519).")]
ShowCw = Annotated[bool, typer.Option("--show-cw", help="Unfold posts behind a content warning.")]
BeforeOpt = Annotated[
    int | None,
    typer.Option(
        "--before",
        help="Page back: only what sorts before this time (ms; the last sort_ts shown).",
    ),
]


class Caller(Protocol):
    """Calls a JSON-RPC method: ``p2psocial.client.Client`` or ``LocalCaller``."""

    def call(self, method: str, /, **params: Any) -> Any: ...


@dataclass
class State:
    home_flag: Path | None = None

    @property
    def home(self) -> Home:
        from p2psocial.home import Home, resolve_home

        return Home(resolve_home(self.home_flag))


def fail(message: str) -> NoReturn:
    """Print ``message`` as one line on stderr and exit 1. It may echo what a peer wrote
    (an id or field of their message), so terminal controls in it are made visible."""
    typer.echo(f"p2psocial: error: {neutralise(message, inline=True)}", err=True)
    raise typer.Exit(code=1)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn our errors into a message on stderr and exit code 1 (no traceback). An error
    answer of a method shows its message, the same with or without a daemon."""
    try:
        yield
    except RpcError as exc:
        fail(exc.message)
    except P2PSocialError as exc:
        fail(str(exc))


def emit_json(obj: Any) -> None:
    """One JSON line on stdout; terminal controls and invisible characters inside strings
    are written as ``\\uXXXX`` escapes (``p2psocial/textsafe.py``)."""
    sys.stdout.write(json_line(obj) + "\n")


def emit_json_lines(items: Iterable[Any]) -> None:
    """One JSON line per item (``--json`` of a list)."""
    for item in items:
        emit_json(item)


def emit_rows(
    rows: list[dict[str, Any]], as_json: bool, empty: str, line: Callable[[dict[str, Any]], str]
) -> None:
    """A list answer: JSON lines with ``--json``, else ``line(row)`` for each row, or
    ``empty`` (what to say, and what to do about it) when there is none."""
    if as_json:
        emit_json_lines(rows)
        return
    if not rows:
        typer.echo(empty)
    for row in rows:
        typer.echo(line(row))


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Home folder (default: $P2PSOCIAL_HOME, else $XDG_DATA_HOME/p2psocial, "
            "else ~/.local/share/p2psocial).",
            file_okay=False,
        ),
    ] = None,
) -> None:
    ctx.obj = State(home)


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def home_of(ctx: typer.Context) -> Home:
    return state(ctx).home


def daemon_client(home: Home) -> Client | None:
    """A client of the daemon running on ``home``, or None when none runs."""
    from p2psocial.client import Client
    from p2psocial.errors import DaemonNotRunning

    if not home.socket_path.exists():
        return None
    try:
        return Client.for_home(home.path)
    except DaemonNotRunning:
        return None


@contextmanager
def caller(ctx: typer.Context) -> Iterator[Caller]:
    """The way to call methods for this command: the running daemon's socket, else the
    store of this home, in-process. Errors inside become one line and exit code 1."""
    home = home_of(ctx)
    with user_errors():
        client = daemon_client(home)
        if client is not None:
            try:
                yield client
            finally:
                client.close()
            return
        from p2psocial.api.local import LocalCaller
        from p2psocial.store.store import Store

        keys = home.load_identity()
        store = Store.open(home.store_path, create=False, owner=keys)
        try:
            yield LocalCaller(home, keys, store)
        finally:
            store.close()
