from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from p2psocial.api.local import LocalCaller
from p2psocial.home import Home
from p2psocial.identity import Keypair
from p2psocial.store.gateway import InlineGateway
from p2psocial.store.store import Store
from tests.helpers import Feeds


@pytest.fixture
def caller(tmp_path: Path) -> Iterator[LocalCaller]:
    """The methods in-process on a fresh home's store (what the CLI uses without a daemon)."""
    home = Home(tmp_path / "home")
    keys = home.create_identity(b"\x07" * 32)
    store = Store.open(home.store_path, owner=keys)
    yield LocalCaller(home, keys, store)
    store.close()


@pytest.fixture
def store_of(caller: LocalCaller) -> Store:
    """The store under ``caller``, to add peers' entries to (``append_batch``)."""
    gateway = caller.app.gateway
    assert isinstance(gateway, InlineGateway)
    return gateway.store


@pytest.fixture
def world(caller: LocalCaller, store_of: Store) -> tuple[LocalCaller, Feeds]:
    """The methods in-process, and a way to add other people's real feeds to the store."""
    return caller, Feeds(store_of)


@pytest.fixture
def home_store(tmp_path: Path) -> Iterator[tuple[Home, Keypair, Store]]:
    """A fresh home, its identity and its store, for tests that make their own caller."""
    home = Home(tmp_path / "home")
    keys = home.create_identity(b"\x07" * 32)
    s = Store.open(home.store_path, owner=keys)
    yield home, keys, s
    s.close()
