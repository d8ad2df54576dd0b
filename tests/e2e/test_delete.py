"""Deletion end to end with three daemons: A deletes; B drops the content; C, which syncs
from B only, receives the entry without content and shows it deleted."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.e2e.daemons import DaemonProcess, texts, wait_for

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]


def test_a_delete_travels_and_the_content_is_gone_everywhere(daemons: Daemons) -> None:
    a, b, c = daemons("a"), daemons("b"), daemons("c")
    post = a.call("post", text="I take this back")["id"]
    keep = a.call("post", text="this stays")["id"]
    b.call("follow", feed_id=a.feed_id)
    b.cli("connect", a.address)
    wait_for(lambda: texts(b, a.feed_id) == ["I take this back", "this stays"], what="at b")
    # A deletes; the delete reaches B, which drops the content.
    shown = a.cli("delete", post, "--yes").stdout
    assert shown.strip() == f"deleted {post}"
    wait_for(lambda: b.call("get", id=post)["deleted"], what="the delete at b")
    assert b.call("get", id=post)["content"] is None
    assert "(deleted by its author)" in b.cli("show", post).stdout
    # C syncs from B only (A is never dialled by C).
    c.call("follow", feed_id=a.feed_id)
    c.cli("connect", b.address)
    wait_for(lambda: c.count(a.feed_id) == 3, what="a's three entries at c, through b")
    held = c.call("get", id=post)
    assert held["deleted"] and held["content"] is None
    assert c.call("get", id=keep)["content"]["text"] == "this stays"
    assert json.loads(c.cli("show", post, "--json").stdout)["deleted"] is True


def test_deleting_someone_else_s_message_is_refused(daemons: Daemons) -> None:
    a, b = daemons("a"), daemons("b")
    post = a.call("post", text="mine")["id"]
    b.call("follow", feed_id=a.feed_id)
    b.cli("connect", a.address)
    wait_for(lambda: b.call("get", id=post), what="a's post at b")
    refused = b.cli("delete", post, "--yes", check=False)
    assert refused.returncode == 1 and "not yours" in refused.stderr
    unattended = a.cli("delete", post, check=False)  # no terminal, no --yes
    assert unattended.returncode == 1 and "--yes" in unattended.stderr
    assert a.call("get", id=post)["deleted"] is False
