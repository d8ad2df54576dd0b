"""The example apps in examples/, run as a user runs them, against real daemons.

Two daemons follow each other and are connected: ``bot`` (where the examples run) and
``friend`` (whose messages reach ``bot`` by replication, as other people's do).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from tests.e2e.daemons import DaemonProcess, wait_for
from tests.helpers import REPO

pytestmark = pytest.mark.e2e

Pair = tuple[DaemonProcess, DaemonProcess]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("examples")
    with ExitStack() as stack:
        daemons = []
        for name in ("bot", "friend"):
            d = DaemonProcess(root / name, "--no-lan")
            stack.callback(d.stop)
            d.cli("init")
            d.start()
            daemons.append(d)
        bot, friend = daemons
        bot.call("follow", feed_id=friend.feed_id)
        friend.call("follow", feed_id=bot.feed_id)
        bot.cli("connect", friend.address)
        wait_for(lambda: bot.call("peers.list")["connected"], what="bot connected to friend")
        yield bot, friend


def subscriptions(d: DaemonProcess) -> int:
    return int(d.call("status")["rpc"]["subscriptions"])


@contextmanager
def example(name: str, d: DaemonProcess, *args: str) -> Iterator[subprocess.Popen[str]]:
    """Run examples/``name`` on ``d``'s home; yield once it has subscribed."""
    before = subscriptions(d)
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / name), "--home", str(d.home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def subscribed() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited early: {proc.communicate()[1]}")
            return subscriptions(d) > before

        wait_for(subscribed, what=f"{name} to subscribe")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out


def text_of(message: dict[str, Any]) -> str:
    return str(message["content"]["text"])


def test_live_timeline_prints_history_then_new_messages(pair: Pair) -> None:
    bot, friend = pair
    old = [bot.call("post", text=f"old {i}") for i in range(2)]
    with example("live_timeline.py", bot, "--last", "2", "--count", "3", "--json") as proc:
        bot.call("post", text="new 1")
        friend.call("post", text="from a friend")  # arrives by replication
        bot.call("post", text="new 2")
        lines = [json.loads(line) for line in finish(proc).splitlines()]
    assert [m["id"] for m in lines[:2]] == [m["id"] for m in old]  # oldest first
    live = [text_of(m) for m in lines[2:]]
    assert sorted(live) == ["from a friend", "new 1", "new 2"]
    assert live.index("new 1") < live.index("new 2")


def test_live_timeline_human_output(pair: Pair) -> None:
    bot, _friend = pair
    with example("live_timeline.py", bot, "--last", "0", "--count", "1") as proc:
        bot.call("post", text="shown to a human")
        out = finish(proc)
    assert out.count("\n") == 1 and out.rstrip().endswith("shown to a human")
    assert bot.feed_id[:9] in out


def test_echo_bot_answers_mentions_in_the_thread(pair: Pair) -> None:
    bot, friend = pair
    with example("echo_bot.py", bot, "--count", "1") as proc:
        friend.call("post", text="nothing for the bot here")
        bot.call("post", text=f"the bot naming itself: {bot.feed_id}")  # not a mention
        root = friend.call("post", text="a thread about echoes")
        mention = friend.call("post", text=f"hey {bot.feed_id}, echo this", root=root["id"])
        out = finish(proc)  # it stops after one answer: the right one, or the test fails
    assert f"answered {mention['id']} with" in out

    def thread() -> list[dict[str, Any]]:
        return list(friend.call("thread", root=root["id"]))

    wait_for(lambda: len(thread()) == 3, what="the bot's answer at friend")
    answer = thread()[-1]
    assert answer["author"] == bot.feed_id
    assert answer["content"] == {
        "type": "post",
        "text": f"echo: hey {bot.feed_id}, echo this",
        "root": root["id"],
        "branch": mention["id"],
        "mentions": [friend.feed_id],
    }
