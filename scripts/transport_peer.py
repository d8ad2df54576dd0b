#!/usr/bin/env python3
"""A minimal p2psocial transport peer, for the transport benchmark and end-to-end tests.

Listens on 127.0.0.1 (a free port), prints one JSON line ``{"port": P, "feed_id": F}``,
then serves until stdin closes. Methods: ``bench.echo`` (async: returns its args),
``bench.pipe`` (duplex: echoes every item), ``bench.source`` (duplex: sends ``bytes`` bytes
in ``chunk``-sized items, then ends), ``bench.sink`` (duplex: counts what it receives and
answers the count when the other side ends).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio

from p2psocial.identity import Keypair
from p2psocial.net.connection import Connection, Handlers, RpcStream, serve, stream_handler
from p2psocial.proto.handshake import NETWORK_KEY


async def echo(conn: Connection, args: Any) -> Any:
    return args


async def pipe(conn: Connection, args: Any, stream: RpcStream) -> None:
    async for item in stream:
        await stream.send(item)


async def source(conn: Connection, args: Any, stream: RpcStream) -> None:
    total, chunk = int(args["bytes"]), int(args["chunk"])
    block = os.urandom(chunk)
    sent = 0
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        await stream.send(piece)
        sent += len(piece)


async def sink(conn: Connection, args: Any, stream: RpcStream) -> None:
    count = 0
    async for item in stream:
        count += len(item)
    await stream.send(count)


HANDLERS: Handlers = {
    "bench.echo": echo,
    "bench.pipe": stream_handler(pipe),
    "bench.source": stream_handler(source),
    "bench.sink": stream_handler(sink),
}


async def main() -> None:
    keys = Keypair.from_seed(bytes.fromhex(sys.argv[1]) if len(sys.argv) > 1 else os.urandom(32))

    async def hold(conn: Connection) -> None:
        await conn.wait_closed()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            lambda task_status: serve(
                "127.0.0.1",
                0,
                keys=keys,
                network_key=NETWORK_KEY,
                on_connection=hold,
                handlers=HANDLERS,
                task_status=task_status,
            )
        )
        port = listeners[0].socket.getsockname()[1]
        print(json.dumps({"port": port, "feed_id": keys.feed_id}), flush=True)
        await trio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
