"""The Stored event bus: every subscriber gets each event; a broken one harms nobody."""

from __future__ import annotations

import logging

import pytest

from p2psocial.events import EventBus, Stored


def test_every_subscriber_gets_the_event_in_order_and_can_leave() -> None:
    bus = EventBus()
    seen: list[tuple[str, Stored]] = []
    bus.subscribe(lambda e: seen.append(("first", e)))
    remove = bus.subscribe(lambda e: seen.append(("second", e)))
    event = Stored([], local=True)
    bus.emit(event)
    assert seen == [("first", event), ("second", event)]
    remove()
    remove()  # twice is harmless
    bus.emit(event)
    assert [name for name, _ in seen] == ["first", "second", "first"]


def test_a_failing_subscriber_is_logged_and_the_rest_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    heard: list[Stored] = []

    def broken(event: Stored) -> None:
        raise RuntimeError("a bug")

    bus.subscribe(broken)
    bus.subscribe(heard.append)
    with caplog.at_level(logging.ERROR, logger="p2psocial.events"):
        bus.emit(Stored([], local=False))
    assert len(heard) == 1
    assert "a subscriber to stored entries failed" in caplog.text
