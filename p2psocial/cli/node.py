"""Commands for the daemon and its peers: daemon, check, connect, peers, status, rpc."""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated, Any

import typer

from p2psocial.cli.base import JsonFlag, app, caller, emit_json, fail, home_of, user_errors
from p2psocial.cli.show import one_line
from p2psocial.errors import P2PSocialError


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
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            help="Serve feeds to 'everyone' (default) or only 'follows': the feeds of "
            "people you follow, to them and your pubs.",
        ),
    ] = None,
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

    from p2psocial.config import load_config, parse_address, parse_network_key, parse_serve

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        fail(f"unknown log level {log_level!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    home = home_of(ctx)
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
            serve=parse_serve(serve) if serve is not None else None,
            interfaces=tuple(lan_interface) if lan_interface else None,
            pub=True if pub else None,
            public_address=public_address,
        )
    _run_daemon(home, config)


def _run_daemon(home: Any, config: Any) -> None:
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
def check(ctx: typer.Context) -> None:
    """Check the store and identity thoroughly (SQLite's integrity_check); changes nothing.

    Works with the daemon running too (it checks the live store as it is now). Exits 1
    and says what to do when something is wrong."""
    import os
    import stat

    from p2psocial.identity import feed_id
    from p2psocial.store.db import inspect_store

    home = home_of(ctx)
    if not home.path.is_dir():
        fail(f"no home folder at {home.path}: run 'p2psocial init'")
    problems: list[str] = []
    mode = stat.S_IMODE(home.path.stat().st_mode)
    if mode & 0o077:
        typer.echo(
            f"warning   {home.path} is mode {mode:04o}, open to other users (the daemon and "
            "'p2psocial init' tighten it to 0700)"
        )
    keys = None
    try:
        keys = home.load_identity()
        typer.echo(f"identity  {keys.feed_id} ({home.secret_path}: ok)")
    except P2PSocialError as exc:
        problems.append(str(exc))
    with user_errors(), home.try_lock() as free:
        if os.path.lexists(home.store_path) or home.has_store():
            try:
                facts = inspect_store(home.store_path, owner=keys, full=True)
            except P2PSocialError as exc:
                problems.append(str(exc))
            else:
                counts = f"{facts.entries} entries in {facts.feeds} feeds, " if facts.full else ""
                typer.echo(
                    f"store     {home.store_path}: ok (integrity_check of {facts.pages} pages, "
                    f"{counts}schema {facts.schema}, {facts.seconds:.2f} s)"
                )
                if facts.owner is not None:
                    whose = " (matches the identity)" if keys and keys.public == facts.owner else ""
                    typer.echo(f"owner     {feed_id(facts.owner)}{whose}")
                elif keys is not None:
                    typer.echo(
                        f"owner     none recorded yet: {keys.feed_id} takes it when next opened"
                    )
        elif keys is not None:
            typer.echo(
                f"store     none yet at {home.store_path} (the daemon or 'p2psocial init' makes it)"
            )
        if not free:
            typer.echo("daemon    running: the store was checked as it is now, read-only")
        elif not problems and home.unclean_stop() is not None:
            home.clear_running()
            typer.echo(
                "daemon    the last one did not stop cleanly; the store is intact, so the "
                "next start skips its full check"
            )
    for problem in problems:
        typer.echo(f"p2psocial: error: {problem}", err=True)
    if problems:
        raise typer.Exit(code=1)


class SafeFormatter(logging.Formatter):
    """Log lines with peer-supplied text neutralised (control and bidi characters shown
    escaped, p2psocial.textsafe): a peer's error message or address cannot drive the
    terminal or journal viewer the log is read in, nor forge extra log lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from p2psocial.textsafe import neutralise

        return neutralise(super().formatMessage(record), inline=True)


@app.command()
def connect(
    ctx: typer.Context,
    peer: Annotated[str, typer.Argument(help="HOST:PORT:FEED_ID of the peer.")],
) -> None:
    """Connect to a peer now, and remember it (the daemon reconnects after restarts)."""
    from p2psocial.config import parse_address
    from p2psocial.errors import ConfigError

    with user_errors():
        address, sep, target = peer.partition(":@")
        if not sep:
            raise ConfigError(f"peer must be HOST:PORT:FEED_ID, got {peer!r}")
        target = "@" + target
        parse_address(address, "peer address")
    with caller(ctx) as call:
        result = call.call("peers.connect", address=address, feed_id=target)
    if result["dialling"]:
        typer.echo(f"connecting to {target} at {address} (remembered)")
    else:
        typer.echo(
            f"the daemon is not running: remembered {target} at {address} for when it starts"
        )


@app.command()
def peers(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List peer connections with their replication progress."""
    with caller(ctx) as call:
        report = call.call("peers.list")
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
            f"{p['feed_id']}  {p['direction']} {one_line(p['address'] or '')}"
            f"  received {p['entries_received']}  sent {p['entries_sent']}"
            f"  to receive {p['entries_to_receive']}"
        )
    for p in report["known"]:
        if not p["connected"]:
            extra = f"  failures {p.get('failures', 0)}" if p.get("failures") else ""
            # A pub's address may come from a peer's announcement: shown escaped.
            typer.echo(f"{p['feed_id']}  not connected  {one_line(p['address'])}{extra}")


@app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show your feed, what is stored, replication progress and forks."""
    with caller(ctx) as call:
        info = call.call("status")
    if as_json:
        emit_json(info)
        return
    typer.echo(f"feed      {info['feed_id']}")
    typer.echo(f"daemon    {'running on ' + info['listen'] if info['running'] else 'not running'}")
    typer.echo(f"stored    {info['entries']} entries in {info['feeds']} feeds")
    blobs = info.get("blobs")
    if isinstance(blobs, dict):
        from p2psocial.cli.show import human_size

        typer.echo(
            f"blobs     {blobs['count']} ({human_size(blobs['bytes'])} of "
            f"{human_size(blobs['quota'])} quota)"
        )
    if info.get("replication"):
        r = info["replication"]
        typer.echo(
            f"replicate {r['feeds_held']}/{r['feeds_wanted']} feeds held, "
            f"{r['entries_behind']} entries behind, {info['peers']} peers connected"
        )
        if r.get("paused"):
            typer.echo(f"PAUSED    {r['paused']}")
    for f in info["forked_feeds"]:
        typer.echo(f"FORKED    {f['feed_id']} at seq {f['seq']}")
    typer.echo(f"notifications: {info['notifications_unread']} unread")


@app.command()
def rpc(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(help="Method name, e.g. timeline.")],
    params: Annotated[str | None, typer.Argument(help="Named params as a JSON object.")] = None,
) -> None:
    """Call a method (of the running daemon, else on the store) and print its JSON result."""
    try:
        parsed = json.loads(params) if params else {}
    except ValueError as exc:
        fail(f"params are not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        fail("params must be a JSON object of named parameters")
    with caller(ctx) as call:
        result = call.call(method, **parsed)
    emit_json(result)
