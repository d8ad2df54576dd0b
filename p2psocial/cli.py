"""The ``p2psocial`` command line.

Heavy modules (crypto, CBOR, SQLite layer, trio) are imported inside the commands that need
them, so ``p2psocial --help`` stays fast. Every P2PSocialError becomes a one-line message on
stderr and exit code 1; usage errors exit 2 (click's convention).
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path  # noqa: TC003 (typer reads annotations at run time)
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from p2psocial.errors import P2PSocialError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from p2psocial.home import Home
    from p2psocial.identity import Keypair
    from p2psocial.model import Message
    from p2psocial.store.store import Store

app = typer.Typer(
    help="p2psocial: a peer-to-peer social network. Your feed, signed, on your machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON lines).")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, max=10000, help="At most N.")]


@dataclass
class State:
    home_flag: Path | None = None

    @property
    def home(self) -> Home:
        from p2psocial.home import Home, resolve_home

        return Home(resolve_home(self.home_flag))


def fail(message: str) -> NoReturn:
    typer.echo(f"p2psocial: error: {message}", err=True)
    raise typer.Exit(code=1)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn our errors into a message on stderr and exit code 1 (no traceback)."""
    try:
        yield
    except P2PSocialError as exc:
        fail(str(exc))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")


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


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


@contextmanager
def opened(ctx: typer.Context) -> Iterator[tuple[Keypair, Store]]:
    """The identity and the store of the selected home, closed afterwards."""
    from p2psocial.store.store import Store

    home = _state(ctx).home
    with user_errors():
        keys = home.load_identity()
        store = Store.open(home.store_path, create=False)
    try:
        with user_errors():
            yield keys, store
    finally:
        store.close()


# ---------------------------------------------------------------------------- commands


@app.command()
def init(ctx: typer.Context) -> None:
    """Create your identity (an Ed25519 key) and an empty store."""
    import os

    from p2psocial.store.store import Store

    home = _state(ctx).home
    with user_errors():
        if home.has_identity():
            keys = home.load_identity()
            typer.echo(f"an identity already exists in {home.path}: {keys.feed_id} (unchanged)")
            Store.open(home.store_path).close()
            return
        keys = home.create_identity(os.urandom(32))
        Store.open(home.store_path).close()
    typer.echo(f"created identity {keys.feed_id} in {home.path}")


@app.command()
def whoami(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Print your feed id."""
    home = _state(ctx).home
    with user_errors():
        keys = home.load_identity()
    if as_json:
        emit_json({"feed_id": keys.feed_id, "home": str(home.path)})
    else:
        typer.echo(keys.feed_id)


@app.command()
def post(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to say.")],
    as_json: JsonFlag = False,
) -> None:
    """Publish a public post to your feed."""
    if not text.strip():
        fail("a post needs some text")
    with opened(ctx) as (keys, store):
        message = store.publish(keys, {"type": "post", "text": text}, now_ms())
    if as_json:
        emit_json(message.to_json())
    else:
        typer.echo(message.key)


def _print_messages(messages: list[Message], as_json: bool) -> None:
    if as_json:
        for m in messages:
            emit_json(m.to_json())
        return
    for m in messages:
        typer.echo(format_message(m))


def format_message(m: Message) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.timestamp / 1000))
    head = f"{when}  {m.author_id}  #{m.seq}  {m.key}"
    content = m.content
    if content is None:
        body = "(content not held)"
    elif isinstance(content, bytes):
        body = "(private message)"
    elif m.text is not None:
        body = m.text
    else:
        body = json.dumps(_json_content(content), ensure_ascii=False)
    return head + "\n  " + body.replace("\n", "\n  ")


def _json_content(content: dict[str, Any]) -> Any:
    from p2psocial.model import json_safe

    return json_safe(content)


@app.command()
def feed(
    ctx: typer.Context,
    feed_id: Annotated[str | None, typer.Argument(help="Feed id (default: your own).")] = None,
    limit: LimitOpt = 20,
    as_json: JsonFlag = False,
) -> None:
    """Show a feed, newest first."""
    from p2psocial.identity import feed_id as format_feed_id
    from p2psocial.identity import parse_feed_id

    with opened(ctx) as (keys, store):
        author = parse_feed_id(feed_id) if feed_id else keys.public
        info = store.feed_info(author)
        messages = store.feed(author, limit=limit, reverse=True)
    if info is not None and info.forked:
        warning = f"feed {format_feed_id(author)} is FORKED: its author signed two histories"
        if as_json:
            typer.echo(f"p2psocial: warning: {warning}", err=True)
        else:
            typer.echo(f"!! {warning}; no new entries are accepted for it")
    if info is None and not as_json:
        typer.echo(f"no entries stored for {format_feed_id(author)}")
    _print_messages(messages, as_json)


@app.command()
def timeline(ctx: typer.Context, limit: LimitOpt = 20, as_json: JsonFlag = False) -> None:
    """Show recent messages from every stored feed, newest first."""
    with opened(ctx) as (_keys, store):
        messages = store.timeline(limit=limit)
    _print_messages(messages, as_json)


@app.command()
def show(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="Message id (%...sha256).")],
    as_json: JsonFlag = False,
) -> None:
    """Show one message."""
    from p2psocial.identity import parse_message_id

    with opened(ctx) as (_keys, store):
        message = store.get(parse_message_id(msg_id))
    _print_messages([message], as_json)


def main() -> None:
    app()
