from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from p2psocial.store.store import Store
from tests.e2e.daemons import DaemonProcess
from tests.helpers import BIN


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.sqlite")
    yield s
    s.close()


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the real console script against a fresh home."""
    env = dict(os.environ)
    env["P2PSOCIAL_HOME"] = str(tmp_path / "home")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Factory of real daemon processes, each in a fresh home; all stopped afterwards."""
    started: list[DaemonProcess] = []

    def make(name: str, *extra: str, start: bool = True) -> DaemonProcess:
        d = DaemonProcess(tmp_path / name, *extra)
        started.append(d)
        if start:
            d.cli("init")
            d.start()
        return d

    yield make
    for d in started:
        d.stop()
