from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from p2psocial.api.local import LocalCaller
from p2psocial.home import Home
from p2psocial.store.store import Store


@pytest.fixture
def caller(tmp_path: Path) -> Iterator[LocalCaller]:
    """The methods in-process on a fresh home's store (what the CLI uses without a daemon)."""
    home = Home(tmp_path / "home")
    keys = home.create_identity(b"\x07" * 32)
    store = Store.open(home.store_path, owner=keys)
    yield LocalCaller(home, keys, store)
    store.close()
