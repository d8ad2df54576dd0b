from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2psocial.errors import InvalidId
from p2psocial.identity import (
    Keypair,
    blob_id,
    feed_id,
    message_id,
    parse_blob_id,
    parse_feed_id,
    parse_message_id,
)

KEY = bytes(range(32))


def test_round_trips() -> None:
    assert parse_feed_id(feed_id(KEY)) == KEY
    assert parse_message_id(message_id(KEY)) == KEY
    assert parse_blob_id(blob_id(KEY)) == KEY
    assert feed_id(KEY).startswith("@") and feed_id(KEY).endswith(".ed25519")
    assert message_id(KEY).startswith("%") and blob_id(KEY).startswith("&")


@given(st.binary(min_size=32, max_size=32))
def test_round_trip_any_key(raw: bytes) -> None:
    assert parse_feed_id(feed_id(raw)) == raw


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("x" + feed_id(KEY)[1:], "must start with '@'"),
        (feed_id(KEY)[:-8] + ".sha256", "must end with '.ed25519'"),
        ("@abc.ed25519", "44 base64 characters"),
        ("@" + "!" * 44 + ".ed25519", "not valid base64"),
        ("@" + base64.b64encode(KEY).decode()[:-2] + "B=.ed25519", "not canonical"),
        (message_id(KEY), "must start with '@'"),
    ],
)
def test_bad_feed_ids_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(InvalidId, match=needle):
        parse_feed_id(text)


@pytest.mark.parametrize(
    ("parse", "sigil", "suffix"),
    [
        (parse_feed_id, "@", ".ed25519"),
        (parse_message_id, "%", ".sha256"),
        (parse_blob_id, "&", ".sha256"),
    ],
)
@pytest.mark.parametrize("body", ["A" * 44, base64.b64encode(bytes(range(33))).decode()])
def test_44_characters_without_padding_are_not_an_id(parse, sigil, suffix, body) -> None:
    """Found by scripts/fuzz.py (#11): 44 base64 characters with no '=' are 33 bytes, which
    were taken for a key (a peer's contact entry naming such a feed put a 33-byte key in
    our replication notes, and peers cut us off for it)."""
    with pytest.raises(InvalidId, match="must hold 32 bytes, got 33"):
        parse(sigil + body + suffix)


def test_non_text_rejected() -> None:
    with pytest.raises(InvalidId, match="must be text"):
        parse_message_id(b"%abc")


@given(st.text(max_size=80))
def test_any_text_gives_only_invalid_id(text: str) -> None:
    try:
        parse_feed_id(text)
    except InvalidId:
        pass


def test_keypair_signs_and_hides_secret() -> None:
    keys = Keypair.from_seed(b"\x07" * 32)
    assert len(keys.sign(b"hello")) == 64
    assert "secret" not in repr(keys).lower() or keys.secret.hex() not in repr(keys)
    assert keys.secret.hex() not in repr(keys)
