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
from pathlib import Path  # noqa: TC003 (typer reads the annotations at run time)
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from p2psocial.errors import P2PSocialError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from p2psocial.client import Client
    from p2psocial.home import Home
    from p2psocial.identity import Keypair
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
def daemon_client(ctx: typer.Context) -> Iterator[Client | None]:
    """A client of the running daemon of this home, or None when none runs.

    While the daemon runs it owns the store, so every command goes through its socket;
    otherwise commands open the store directly. Output is the same either way."""
    from p2psocial.client import Client
    from p2psocial.errors import DaemonNotRunning

    home = _state(ctx).home
    client = None
    if home.socket_path.exists():
        try:
            client = Client.for_home(home.path)
        except DaemonNotRunning:
            client = None
    try:
        with user_errors():
            yield client
    finally:
        if client is not None:
            client.close()


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
            if not home.socket_path.exists():
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
    reply_to: Annotated[
        str | None, typer.Option("--reply-to", help="Reply in the thread of this message id.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish a public post to your feed."""
    from p2psocial.social import post_content

    with user_errors():
        root = None
        if reply_to is not None:
            root = _thread_root(ctx, reply_to)
        content = post_content(text, root=root, branch=reply_to)
    with daemon_client(ctx) as client:
        if client is not None:
            message = client.call("publish", content=content)
        else:
            with opened(ctx) as (keys, store):
                message = store.publish(keys, content, now_ms()).to_json()
    if as_json:
        emit_json(message)
    else:
        typer.echo(message["id"])


def _thread_root(ctx: typer.Context, msg_id: str) -> str:
    """The root of the thread ``msg_id`` is in (itself if it is a root)."""
    message = _get_message(ctx, msg_id)
    content = message.get("content") or {}
    root = content.get("root") if isinstance(content, dict) else None
    return root if isinstance(root, str) else msg_id


def _get_message(ctx: typer.Context, msg_id: str) -> dict[str, Any]:
    from p2psocial.identity import parse_message_id

    key = parse_message_id(msg_id)
    with daemon_client(ctx) as client:
        if client is not None:
            result: dict[str, Any] = client.call("get", id=msg_id)
            return result
        with opened(ctx) as (_keys, store):
            return store.get(key).to_json()


def _print_messages(messages: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for m in messages:
            emit_json(m)
        return
    for m in messages:
        typer.echo(format_message(m))


def format_message(m: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["timestamp"] / 1000))
    head = f"{when}  {m['author']}  #{m['seq']}  {m['id']}"
    content = m.get("content")
    if m.get("private"):
        body = "(private message)"
    elif content is None:
        body = "(content not held)"
    elif isinstance(content.get("text"), str):
        body = content["text"]
        if isinstance(content.get("root"), str):
            body = f"(reply in {content['root']})\n{body}"
    else:
        body = json.dumps(content, ensure_ascii=False)
    return head + "\n  " + body.replace("\n", "\n  ")


@app.command()
def feed(
    ctx: typer.Context,
    feed_id: Annotated[str | None, typer.Argument(help="Feed id (default: your own).")] = None,
    limit: LimitOpt = 20,
    as_json: JsonFlag = False,
) -> None:
    """Show a feed, newest first."""
    from p2psocial.identity import parse_feed_id

    with user_errors():
        if feed_id is not None:
            parse_feed_id(feed_id)
    forked = False
    with daemon_client(ctx) as client:
        if client is not None:
            who = feed_id or client.call("whoami")["feed_id"]
            messages = client.call("feed", feed_id=who, limit=limit, reverse=True)
            forked = any(f["feed_id"] == who for f in client.call("status")["forked_feeds"])
        else:
            with opened(ctx) as (keys, store):
                author = parse_feed_id(feed_id) if feed_id else keys.public
                who = feed_id or keys.feed_id
                info = store.feed_info(author)
                forked = info is not None and info.forked
                messages = [m.to_json() for m in store.feed(author, limit=limit, reverse=True)]
    if forked:
        warning = f"feed {who} is FORKED: its author signed two histories"
        if as_json:
            typer.echo(f"p2psocial: warning: {warning}", err=True)
        else:
            typer.echo(f"!! {warning}; no new entries are accepted for it")
    if not messages and not as_json:
        typer.echo(f"no entries stored for {who}")
    _print_messages(messages, as_json)


@app.command()
def timeline(ctx: typer.Context, limit: LimitOpt = 20, as_json: JsonFlag = False) -> None:
    """Show recent messages from every stored feed, newest first."""
    with daemon_client(ctx) as client:
        if client is not None:
            messages = client.call("timeline", limit=limit)
        else:
            with opened(ctx) as (_keys, store):
                messages = [m.to_json() for m in store.timeline(limit=limit)]
    _print_messages(messages, as_json)


@app.command()
def show(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="Message id (%...sha256).")],
    as_json: JsonFlag = False,
) -> None:
    """Show one message."""
    with user_errors():
        message = _get_message(ctx, msg_id)
    _print_messages([message], as_json)


@app.command()
def thread(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="Any message id of the thread.")],
    as_json: JsonFlag = False,
) -> None:
    """Show a thread: its root and the replies, oldest first."""
    from p2psocial.identity import parse_message_id

    with user_errors():
        root = _thread_root(ctx, msg_id)
    with daemon_client(ctx) as client:
        if client is not None:
            messages = client.call("thread", root=root)
        else:
            with opened(ctx) as (_keys, store):
                messages = [m.to_json() for m in store.thread(parse_message_id(root))]
    _print_messages(messages, as_json)


# ---------------------------------------------------------------------------- the graph


def _contact(ctx: typer.Context, method: str, target: str, as_json: bool, **stance: bool) -> None:
    from p2psocial.identity import parse_feed_id
    from p2psocial.social import describe_contact, set_contact

    with user_errors():
        contact = parse_feed_id(target)
    with daemon_client(ctx) as client:
        if client is not None:
            result = client.call(method, feed_id=target)
        else:
            with opened(ctx) as (keys, store):
                message = set_contact(store, keys, contact, now_ms(), **stance)
                result = {"changed": message is not None, "message": message and message.to_json()}
    if as_json:
        emit_json(result)
        return
    following = stance.get("following", False)
    blocking = stance.get("blocking", False)
    state = describe_contact(following, blocking, contact)
    typer.echo(f"now {state}" if result["changed"] else f"already {state}: nothing to publish")


FeedArg = Annotated[str, typer.Argument(help="Feed id (@...ed25519).")]


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


# ---------------------------------------------------------------------------- the daemon


@app.command()
def daemon(
    ctx: typer.Context,
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="HOST:PORT for peers (default 0.0.0.0:8018; port 0: any)."),
    ] = None,
    hops: Annotated[
        int | None, typer.Option("--hops", min=0, max=6, help="Replicate within N follows.")
    ] = None,
    network_key: Annotated[
        str | None, typer.Option("--network-key", help="64 hex digits: a private network.")
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
    no_lan: Annotated[
        bool, typer.Option("--no-lan", help="Do not announce or look for peers on the LAN.")
    ] = False,
    lan_interface: Annotated[
        list[str] | None,
        typer.Option("--lan-interface", help="Use only this interface for LAN discovery (repeat)."),
    ] = None,
    pub: Annotated[
        bool, typer.Option("--pub", help="Run as a pub: follow whoever redeems our invites.")
    ] = False,
    public_address: Annotated[
        str | None,
        typer.Option("--public-address", help="HOST:PORT that invite codes point to (pubs)."),
    ] = None,
) -> None:
    """Run the daemon in the foreground: replicate with peers, serve apps on rpc.sock."""
    import logging

    from p2psocial.config import load_config, parse_address, parse_network_key

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        fail(f"unknown log level {log_level!r}")
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    home = _state(ctx).home
    with user_errors():
        config = load_config(home.path)
        if listen is not None:
            parse_address(listen, "--listen")
        if public_address is not None:
            parse_address(public_address, "--public-address")
        key = parse_network_key(network_key) if network_key else None
        config = config.with_overrides(
            listen=listen,
            hops=hops,
            network_key=key,
            lan=False if no_lan else None,
            interfaces=tuple(lan_interface) if lan_interface else None,
            pub=True if pub else None,
            public_address=public_address,
        )
    _run_daemon(home, config)


def _run_daemon(home: Home, config: Any) -> None:
    import signal

    import trio

    from p2psocial.daemon import run_daemon

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                await nursery.start(
                    lambda task_status: run_daemon(home, config, task_status=task_status)
                )
                async for signum in signals:
                    typer.echo(
                        f"p2psocial: received {signal.Signals(signum).name}, stopping", err=True
                    )
                    break
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except BaseException as exc:  # trio wraps errors in groups; report ours plainly
        cause = _first_error(exc)
        if isinstance(cause, P2PSocialError):
            fail(str(cause))
        if isinstance(cause, OSError):
            fail(f"cannot start the daemon: {cause.strerror or cause}")
        raise


def _first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@app.command()
def connect(
    ctx: typer.Context,
    peer: Annotated[str, typer.Argument(help="HOST:PORT:FEED_ID of the peer.")],
) -> None:
    """Connect to a peer now, and remember it (the daemon reconnects after restarts)."""
    from p2psocial.config import parse_address
    from p2psocial.errors import ConfigError
    from p2psocial.identity import parse_feed_id

    with user_errors():
        address, sep, target = peer.partition(":@")
        if not sep:
            raise ConfigError(f"peer must be HOST:PORT:FEED_ID, got {peer!r}")
        target = "@" + target
        parse_address(address, "peer address")
        key = parse_feed_id(target)
    with daemon_client(ctx) as client:
        if client is not None:
            client.call("peers.connect", address=address, feed_id=target)
            typer.echo(f"connecting to {target} at {address} (remembered)")
            return
        with opened(ctx) as (_keys, store):
            store.remember_peer(address, key, "manual", now_ms())
    typer.echo(f"the daemon is not running: remembered {target} at {address} for when it starts")


@app.command()
def peers(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List peer connections with their replication progress."""
    from p2psocial.identity import feed_id as format_feed_id

    with daemon_client(ctx) as client:
        if client is not None:
            report = client.call("peers.list")
        else:
            with opened(ctx) as (_keys, store):
                report = {
                    "connected": [],
                    "known": [
                        {"address": a, "feed_id": format_feed_id(k), "connected": False}
                        for a, k, _src in store.known_peers()
                    ],
                }
    if as_json:
        for p in report["connected"]:
            emit_json({"connected": True, **p})
        connected = {p["feed_id"] for p in report["connected"]}
        for p in report["known"]:
            if p["feed_id"] not in connected:
                emit_json({"connected": False, **p})
        return
    if not report["connected"] and not report["known"]:
        typer.echo("no peers (use 'p2psocial connect HOST:PORT:FEED_ID')")
    for p in report["connected"]:
        typer.echo(
            f"{p['feed_id']}  {p['direction']} {p['address'] or ''}"
            f"  received {p['entries_received']}  sent {p['entries_sent']}"
            f"  to receive {p['entries_to_receive']}"
        )
    for p in report["known"]:
        if not p["connected"]:
            extra = f"  failures {p.get('failures', 0)}" if p.get("failures") else ""
            typer.echo(f"{p['feed_id']}  not connected  {p['address']}{extra}")


@app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show your feed, what is stored, replication progress and forks."""
    from p2psocial.identity import feed_id as format_feed_id

    with daemon_client(ctx) as client:
        if client is not None:
            info = client.call("status")
        else:
            with opened(ctx) as (keys, store):
                counts = store.counts()
                info = {
                    "feed_id": keys.feed_id,
                    "home": str(_state(ctx).home.path),
                    "running": False,
                    "feeds": counts["feeds"],
                    "entries": counts["entries"],
                    "forked_feeds": [
                        {"feed_id": format_feed_id(f.author), "seq": f.seq, "detected": f.detected}
                        for f in store.forks()
                    ],
                }
    if as_json:
        emit_json(info)
        return
    typer.echo(f"feed      {info['feed_id']}")
    typer.echo(f"daemon    {'running on ' + info['listen'] if info['running'] else 'not running'}")
    typer.echo(f"stored    {info['entries']} entries in {info['feeds']} feeds")
    if info.get("replication"):
        r = info["replication"]
        typer.echo(
            f"replicate {r['feeds_held']}/{r['feeds_wanted']} feeds held, "
            f"{r['entries_behind']} entries behind, {info['peers']} peers connected"
        )
    for f in info["forked_feeds"]:
        typer.echo(f"FORKED    {f['feed_id']} at seq {f['seq']}")


@app.command()
def rpc(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(help="Method name, e.g. timeline.")],
    params: Annotated[str | None, typer.Argument(help="Named params as a JSON object.")] = None,
) -> None:
    """Call a method of the running daemon and print its JSON result."""
    from p2psocial.errors import DaemonNotRunning

    try:
        parsed = json.loads(params) if params else {}
    except ValueError as exc:
        fail(f"params are not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        fail("params must be a JSON object of named parameters")
    with daemon_client(ctx) as client:
        if client is None:
            raise DaemonNotRunning(f"no daemon answers on {_state(ctx).home.socket_path}")
        result = client.call(method, **parsed)
    emit_json(result)


dm_app = typer.Typer(help="Private messages, readable only by their recipients.")
app.add_typer(dm_app, name="dm")


@dm_app.command("send")
def dm_send(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to say.")],
    to: Annotated[list[str], typer.Option("--to", help="A recipient's feed id (repeat, up to 6).")],
    reply_to: Annotated[
        str | None, typer.Option("--reply-to", help="Reply in this private thread (root id).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Send a private message to up to 6 people (you are always a reader too)."""
    from p2psocial.identity import parse_feed_id, parse_message_id
    from p2psocial.private import private_json, publish_private, recipients_with_author

    with user_errors():
        keys = _state(ctx).home.load_identity()
        recipients = [parse_feed_id(x) for x in to]
        recipients_with_author(keys.public, recipients)  # check before anything is sent
        if reply_to is not None:
            parse_message_id(reply_to)
    with daemon_client(ctx) as client:
        if client is not None:
            params: dict[str, Any] = {"to": to, "text": text}
            if reply_to is not None:
                params["root"] = reply_to
            result = client.call("private.publish", **params)
        else:
            with opened(ctx) as (keys, store):
                message, plaintext = publish_private(
                    store, keys, text, recipients, now_ms(), root=reply_to
                )
                result = private_json(message, plaintext)
    if as_json:
        emit_json(result)
    else:
        typer.echo(result["id"])


@dm_app.command("inbox")
def dm_inbox(ctx: typer.Context, limit: LimitOpt = 20, as_json: JsonFlag = False) -> None:
    """Private messages you can read, newest first."""
    from p2psocial.private import private_json

    with daemon_client(ctx) as client:
        if client is not None:
            messages = client.call("private.inbox", limit=limit)
        else:
            with opened(ctx) as (_keys, store):
                messages = [private_json(m, p) for m, p in store.inbox(limit=limit)]
    _print_private(messages, as_json)


@dm_app.command("thread")
def dm_thread(
    ctx: typer.Context,
    msg_id: Annotated[str, typer.Argument(help="The private thread's root message id.")],
    as_json: JsonFlag = False,
) -> None:
    """A private thread, oldest first."""
    from p2psocial.identity import parse_message_id
    from p2psocial.private import private_json

    with user_errors():
        root = parse_message_id(msg_id)
    with daemon_client(ctx) as client:
        if client is not None:
            messages = client.call("private.thread", root=msg_id)
        else:
            with opened(ctx) as (_keys, store):
                messages = [private_json(m, p) for m, p in store.private_thread(root)]
    _print_private(messages, as_json)


def _print_private(messages: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for m in messages:
            emit_json(m)
        return
    if not messages:
        typer.echo("no private messages")
    for m in messages:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["timestamp"] / 1000))
        readers = ", ".join(m["content"].get("recps", []))
        typer.echo(
            f"{when}  {m['author']}  {m['id']}\n  to: {readers}\n  {m['content'].get('text')}"
        )


invite_app = typer.Typer(help="Pub invites: create them (on a pub) and accept them.")
app.add_typer(invite_app, name="invite")


@invite_app.command("create")
def invite_create(
    ctx: typer.Context,
    uses: Annotated[int, typer.Option("--uses", min=1, help="How many people may use it.")] = 1,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Valid for this long: 30m, 12h, 7d.")
    ] = None,
) -> None:
    """Create an invite code (the pub's daemon must be running with --pub)."""
    from p2psocial.errors import DaemonNotRunning
    from p2psocial.invite import parse_duration

    with user_errors():
        if expires is not None:
            parse_duration(expires)
    with daemon_client(ctx) as client:
        if client is None:
            raise DaemonNotRunning(
                "invite create needs the pub's daemon running ('p2psocial daemon --pub')"
            )
        params: dict[str, Any] = {"uses": uses}
        if expires is not None:
            params["expires"] = expires
        typer.echo(client.call("invite.create", **params)["code"])


@invite_app.command("accept")
def invite_accept(
    ctx: typer.Context, code: Annotated[str, typer.Argument(help="The invite code.")]
) -> None:
    """Redeem an invite: the pub follows you, you follow it and stay connected to it."""
    from p2psocial.invite import parse_invite

    with user_errors():
        parse_invite(code)
    with daemon_client(ctx) as client:
        if client is not None:
            result = client.call("invite.accept", code=code)
        else:
            result = _accept_offline(ctx, code)
    typer.echo(f"joined pub {result['pub']} at {result['address']}")


def _accept_offline(ctx: typer.Context, code: str) -> dict[str, Any]:
    """Redeem without a daemon: talk to the pub from here, then record it in the store."""
    import trio

    from p2psocial.config import load_config
    from p2psocial.invite import parse_invite
    from p2psocial.net.pubs import pub_content, redeem
    from p2psocial.social import set_contact

    invite = parse_invite(code)
    home = _state(ctx).home
    config = load_config(home.path)
    with opened(ctx) as (keys, store):
        trio.run(redeem, invite, keys, config.network_key)
        set_contact(store, keys, invite.pub_key, now_ms(), following=True)
        store.publish(keys, pub_content(invite.host, invite.port, invite.pub_key), now_ms())
        store.remember_peer(invite.address, invite.pub_key, "pub", now_ms())
    from p2psocial.identity import feed_id as format_feed_id

    return {"pub": format_feed_id(invite.pub_key), "address": invite.address}


def main() -> None:
    app()
