"""Private messages between real daemons: only recipients read them."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from p2psocial.config import parse_address
from p2psocial.feed.content import encode_content
from p2psocial.feed.entry import create_entry
from p2psocial.identity import feed_id, parse_feed_id
from p2psocial.net.connection import connect
from p2psocial.proto.handshake import NETWORK_KEY
from p2psocial.proto.privatebox import seal_content
from tests.e2e.daemons import DaemonProcess, mesh, wait_for
from tests.helpers import make_keys

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]


def test_only_the_recipient_reads(daemons: Daemons) -> None:
    a, b, c = daemons("a"), daemons("b"), daemons("c")
    mesh(a, b, c)
    sent = a.call("private.publish", to=[b.feed_id], text="for b only")
    assert sent["content"]["recps"] == [a.feed_id, b.feed_id]
    wait_for(lambda: b.call("private.inbox"), what="the message in b's inbox")
    inbox = b.call("private.inbox")
    assert [m["content"]["text"] for m in inbox] == ["for b only"]
    assert inbox[0]["author"] == a.feed_id
    # c replicates a's feed, so it holds the entry, but cannot read it.
    wait_for(lambda: c.count(a.feed_id) >= 3, what="a's private entry at c")
    held = c.call("get", id=sent["id"])
    assert held["private"] is True
    assert held["content"] is None
    assert c.call("private.inbox") == []
    # The author reads their own message.
    assert [m["id"] for m in a.call("private.inbox")] == [sent["id"]]
    # A reply in the thread, read on both sides; the CLI shows the same.
    reply = b.call("private.publish", to=[a.feed_id], text="got it", root=sent["id"])
    wait_for(lambda: len(a.call("private.thread", root=sent["id"])) == 2, what="the reply")
    thread = a.cli("dm", "thread", sent["id"], "--json").stdout.splitlines()
    assert len(thread) == 2
    assert reply["id"] in thread[1]
    assert "for b only" in b.cli("dm", "inbox").stdout


def test_private_subscription(daemons: Daemons) -> None:
    a, b = daemons("a"), daemons("b")
    mesh(a, b)
    with b.client() as client:
        sub = client.subscribe("subscribe", filter="private")
        sent = a.call("private.publish", to=[b.feed_id], text="live and private")
        message = next(iter(sub))
        assert message["id"] == sent["id"]
        assert message["content"]["text"] == "live and private"


def test_bad_recipients_publish_nothing(daemons: Daemons) -> None:
    a = daemons("a")
    before = a.count()
    others = [make_keys(100 + i).feed_id for i in range(7)]
    too_many = a.cli("dm", "send", *[x for o in others for x in ("--to", o)], "hi", check=False)
    assert too_many.returncode == 1
    assert "at most 7" in too_many.stderr
    malformed = a.cli("dm", "send", "--to", "@nope", "hi", check=False)
    assert malformed.returncode == 1
    assert "feed id" in malformed.stderr
    assert a.count() == before


async def send_tampered(address: str, key: bytes, victim: bytes) -> None:
    evil = make_keys(777)
    cipher = bytearray(
        seal_content({"type": "post", "text": "x"}, [evil.public, victim], rng_bytes=os.urandom)
    )
    cipher[-1] ^= 1  # the body no longer authenticates; the slots still open
    content = encode_content(bytes(cipher))
    entry = create_entry(evil, 1, None, 1, content)
    host, port = parse_address(address)
    async with connect(host, port, key, keys=evil, network_key=NETWORK_KEY) as conn:
        async with conn.stream("replicate.ebt", {"version": 1}) as stream:
            await stream.receive()
            await stream.send({"entries": [[entry.raw, content]]})
            with trio.move_on_after(5):
                async for _ in stream:
                    pass


def test_tampered_ciphertext_is_rejected_without_crashing(daemons: Daemons) -> None:
    b = daemons("b")
    evil = make_keys(777)
    b.call("follow", feed_id=evil.feed_id)
    trio.run(send_tampered, b.info["listen"], parse_feed_id(b.feed_id), parse_feed_id(b.feed_id))
    wait_for(lambda: "does not open" in b.log(), what="the rejection in b's log")
    assert b.call("private.inbox") == []
    assert b.count(evil.feed_id) == 1  # a valid entry; only its content is unreadable
    b.call("post", text="still fine")


def _private_held_and_filed(db: Path) -> tuple[int, int]:
    """(private entries the store holds, inbox rows), read from the file itself."""
    with sqlite3.connect(db) as conn:
        held = conn.execute(
            "SELECT count(*) FROM entries WHERE ctype IS NULL AND content IS NOT NULL"
        ).fetchone()[0]
        filed = conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
    return int(held), int(filed)


def _write_private_feed(d: DaemonProcess, to: bytes, count: int) -> None:
    """``count`` private messages from ``d`` to ``to``, written into d's store directly."""
    from p2psocial.home import Home
    from p2psocial.store.store import Store

    keys = Home(d.home).load_identity()
    items, previous = [], None
    for seq in range(1, count + 1):
        inner = {
            "type": "post",
            "text": f"for you {seq}",
            "recps": [keys.feed_id, feed_id(to)],
        }
        content = encode_content(seal_content(inner, [keys.public, to], rng_bytes=os.urandom))
        entry = create_entry(keys, seq, previous, 1_000 + seq, content)
        previous = entry.id
        items.append((entry.raw, content))
    with Store.open(d.home / "store.sqlite", owner=keys) as store:
        assert not store.append_batch(items, 2_000_000_000_000).errors


def test_killed_mid_sync_no_private_message_is_left_unfiled(daemons: Daemons) -> None:
    """Each private entry is filed in the transaction that stores it: a SIGKILL at any
    point during ingest leaves none stored but unfiled."""
    total = 10_000
    b = daemons("b")
    a = daemons("a", start=False)
    a.cli("init")
    _write_private_feed(a, parse_feed_id(b.feed_id), total)
    a.start()
    b.call("follow", feed_id=a.feed_id)
    b.cli("connect", a.address)
    db = b.home / "store.sqlite"
    kills = []
    for at_least in (1, total // 3, 2 * total // 3):
        wait_for(
            lambda n=at_least: _private_held_and_filed(db)[0] >= n,  # type: ignore[misc]
            what="ingest to go on",
        )
        b.kill()
        held, filed = _private_held_and_filed(db)
        kills.append(held)
        assert filed == held  # every private entry for b that is stored is filed
        b.start()
    assert any(0 < held < total for held in kills), kills  # a kill landed mid-ingest
    wait_for(lambda: b.count() >= total, what="all of a's feed at b", timeout=90)
    assert len(b.call("private.inbox", limit=1000)) == 1000
    b.stop()
    assert _private_held_and_filed(db) == (total, total)
