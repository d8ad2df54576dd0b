"""The store gateway's two paths (#11): writes on the store's own connection, one at a time;
pure reads on a read-only connection beside it, taking turns client by client."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import trio

from p2psocial.errors import StorageError
from p2psocial.model import Message
from p2psocial.store.gateway import READ_CLIENT, InlineGateway, StoreGateway
from p2psocial.store.store import Store
from tests.helpers import make_keys

A = make_keys(1)


def post(store: Store, text: str) -> None:
    store.publish(A, {"type": "post", "text": text}, 10)


def newest(store: Store) -> list[Message]:
    return store.feed(A.public, reverse=True)


def test_a_read_only_connection_sees_commits_and_cannot_write(store: Store) -> None:
    post(store, "one")
    reader = Store.open_read_only(store.path)
    try:
        assert [m.text for m in newest(reader)] == ["one"]
        post(store, "two")  # committed by the writer: the next read sees it
        assert [m.text for m in newest(reader)] == ["two", "one"]
        with pytest.raises(StorageError, match="readonly"):
            post(reader, "three")
        assert store.counts()["entries"] == 2
    finally:
        reader.close()


def test_a_read_only_connection_needs_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "rollback.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StorageError, match="not in WAL mode"):
        Store.open_read_only(path)
    with pytest.raises(StorageError):
        Store.open_read_only(tmp_path / "missing.sqlite")


@pytest.mark.trio
async def test_reads_run_beside_a_writer_that_is_busy(store: Store) -> None:
    post(store, "before")
    release = threading.Event()
    with StoreGateway.with_readers(store) as gateway:
        assert gateway.reader_count == 1

        def long_write(s: Store) -> None:
            s.publish(A, {"type": "post", "text": "slow"}, 20)
            release.wait(10)  # the writer's turn lasts until the test says

        async with trio.open_nursery() as nursery:
            nursery.start_soon(gateway.run, long_write)
            await trio.sleep(0.05)
            with trio.fail_after(5):  # the writer is held: a read does not wait for it
                texts = await gateway.read(lambda s: [m.text for m in newest(s)])
            assert "before" in texts
            release.set()
        assert (await gateway.read(lambda s: newest(s)))[0].text == "slow"
    assert gateway.reader_count == 0  # closed with the gateway; the store stays open
    assert await gateway.read(lambda s: s.counts()["entries"]) == 2  # on the writer now


@pytest.mark.trio
async def test_reads_take_turns_client_by_client(store: Store) -> None:
    order: list[str] = []
    gate = threading.Event()
    with StoreGateway.with_readers(store) as gateway:

        def read(name: str) -> None:
            if name == "first":
                gate.wait(10)
            order.append(name)

        async def client(name: str, reads: int) -> None:
            READ_CLIENT.set(name)
            for n in range(reads):
                nursery.start_soon(gateway.read, lambda s, n=n: read(f"{name}{n}"))
                await trio.sleep(0.01)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(gateway.read, lambda s: read("first"))
            await trio.sleep(0.05)  # the one reader is busy: the rest queue up
            await client("greedy", 5)
            await client("polite", 1)
            gate.set()
    assert order[0] == "first"
    assert order.index("polite0") <= 2  # behind one of greedy's five, not all of them
    assert sorted(order[1:]) == sorted([f"greedy{n}" for n in range(5)] + ["polite0"])


@pytest.mark.trio
async def test_a_cancelled_wait_gives_its_turn_back(store: Store) -> None:
    gate = threading.Event()
    with StoreGateway.with_readers(store) as gateway:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(gateway.read, lambda s: gate.wait(10))
            await trio.sleep(0.05)
            with trio.move_on_after(0.05):
                await gateway.read(lambda s: None)  # waits for a turn, then gives up
            gate.set()
        with trio.fail_after(5):
            assert await gateway.read(lambda s: s.counts()["entries"]) == 0


@pytest.mark.trio
async def test_inline_reads_for_the_cli(store: Store) -> None:
    post(store, "inline")
    gateway = InlineGateway(store)
    assert [m.text for m in await gateway.read(lambda s: newest(s))] == ["inline"]
