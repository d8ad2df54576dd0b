"""Peer text shown to a person: no terminal control or invisible character gets through (#11)."""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2psocial.textsafe import FORMAT_RANGES, json_line, neutralise, neutralise_json
from tests.hostile_text import unsafe  # the rule, restated from unicodedata


def unsafe_in(text: str, *, allowed: str = "") -> list[str]:
    return [c for c in text if unsafe(c) and c not in allowed]


# Any code point, surrogates included (a JSON peer can send a lone "\ud800").
any_char = st.characters(min_codepoint=0, max_codepoint=sys.maxunicode, exclude_categories=())
any_text = st.text(any_char)
plain_text = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Cf", "Zl", "Zp"))
    | st.sampled_from(["\n", "\t", "\u200d", "\u200c"])
)


@given(any_text)
def test_output_never_holds_a_control_or_invisible_character(text: str) -> None:
    shown = neutralise(text)
    assert unsafe_in(shown, allowed="\n\t") == []
    assert unsafe_in(neutralise(text, inline=True)) == []
    shown.encode("utf-8")  # strict: no lone surrogate is left to fail the write


@given(plain_text)
def test_plain_text_passes_unchanged(text: str) -> None:
    assert neutralise(text) == text


@given(any_text)
def test_neutralising_twice_changes_nothing_more(text: str) -> None:
    once = neutralise(text)
    assert neutralise(once) == once


def test_every_code_point_against_unicodedata() -> None:
    """The module's tables are the rule above, for the Unicode of this Python."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        kept = neutralise(char, inline=True) == char
        assert kept is not unsafe(char), f"U+{code:04X} ({unicodedata.category(char)})"


def test_the_bidi_controls_are_in_the_format_table() -> None:
    bidi = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    for code in bidi:
        assert any(lo <= code <= hi for lo, hi in FORMAT_RANGES), f"U+{code:04X}"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("\x1b]52;c;SGVsbG8=\x07", "\\x1b]52;c;SGVsbG8=\\x07"),
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
        ("\x1b[1A\x1b[2K", "\\x1b[1A\\x1b[2K"),
        ("ok\rfake", "ok\\rfake"),
        ("\b\x00\x7f", "\\x08\\x00\\x7f"),
        ("\u009b2J", "\\u009b2J"),
        ("\u0085", "\\u0085"),
        ("abc\u202edcba", "abc<U+202E>dcba"),
        ("\u2066\u2067\u2068\u2069", "<U+2066><U+2067><U+2068><U+2069>"),
        ("\u200e\u200f\u061c", "<U+200E><U+200F><U+061C>"),
        ("zero\u200bwidth\ufeff", "zero<U+200B>width<U+FEFF>"),
        ("\U000e0041\U000e007f", "<U+E0041><U+E007F>"),
        ("\ud800", "\\ud800"),
        ("\u2028", "<U+2028>"),
    ],
)
def test_escaped_forms(raw: str, shown: str) -> None:
    assert neutralise(raw) == shown


def test_newline_and_tab_stay_unless_inline() -> None:
    assert neutralise("a\nb\tc") == "a\nb\tc"
    assert neutralise("a\nb\tc\r", inline=True) == "a\\nb\\tc\\r"


def test_plain_text_of_the_world_is_unchanged() -> None:
    for text in (
        "héllo wörld",
        "日本語のテキスト",
        "سلام",
        "नमस्ते",
        "👨\u200d👩\u200d👧",
        "a\\x1b b",
    ):
        assert neutralise(text) == text
        assert json.loads(json_line(text)) == text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_json_lines_round_trip_and_hold_no_unsafe_character(value: Any) -> None:
    line = json_line(value)
    assert unsafe_in(line) == []
    assert "\n" not in line
    line.encode("utf-8")
    assert json.loads(line) == value


def test_json_escapes_what_ensure_ascii_false_leaves_raw() -> None:
    line = json_line({"text": "\u009b\u202e\x7f\U000e0041 é"})
    assert line == '{"text":"\\u009b\\u202e\\u007f\\udb40\\udc41 é"}'
    assert neutralise_json('"plain é"') == '"plain é"'
