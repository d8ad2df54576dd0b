"""Peer text made safe to show a person: terminal controls and invisible characters made
visible (#11).

Every string a peer wrote (a post's text, a reply's ``root``, the recipients of a private
message, any field of content we cannot describe, an address, an error message echoing one
of these) reaches a terminal only through this module. Sans-IO: strings in, strings out.

The *unsafe* characters, and how each is shown:

- C0 controls U+0000..U+001F and DEL U+007F, which drive a terminal (ESC starts CSI and
  OSC sequences: clearing the screen, moving the cursor, writing the clipboard with OSC 52,
  setting the window title; BEL rings; CR and BS overwrite what is shown): ``\\x1b``,
  ``\\x07``, ``\\x7f``; tab, newline and carriage return as ``\\t``, ``\\n``, ``\\r``.
  :func:`neutralise` keeps newline (the CLI indents the lines that follow, so a peer
  cannot start a line of its own) and tab (it only moves right) unless ``inline``;
- C1 controls U+0080..U+009F (U+009B is an 8-bit CSI to many terminals, U+009D an OSC):
  ``\\u009b``;
- lone surrogates U+D800..U+DFFF (JSON can carry ``"\\ud800"``; they are no text and cannot
  be written as UTF-8): ``\\ud800``;
- invisible format characters (Unicode category Cf), except ZERO WIDTH NON-JOINER U+200C
  and ZERO WIDTH JOINER U+200D, which Persian and Indic scripts and emoji sequences need,
  and the line and paragraph separators U+2028/U+2029: ``<U+202E>``. They are the
  bidirectional controls (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), which
  can make text read in another order than it is stored; the zero width space U+200B, word
  joiner and invisible operators U+2060..U+2064, the byte order mark U+FEFF, the soft
  hyphen U+00AD, the tag characters U+E0001 and U+E0020..U+E007F (invisible text; this
  also spells out the tags of subdivision flag emoji) and the rarer others in
  :data:`FORMAT_RANGES`.

Everything else passes unchanged, so plain text reads as it was written. Backslashes are
not escaped: a peer may write the six characters ``\\x1b`` themselves, which is only text.

For ``--json`` output :func:`json_line` writes the same characters as ``\\uXXXX`` escapes
(``json.dumps`` with ``ensure_ascii=False`` leaves them raw): still valid JSON that
decodes to the very same strings.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "CONTROL_RANGES",
    "FORMAT_RANGES",
    "json_line",
    "neutralise",
    "neutralise_json",
]

CONTROL_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F),  # C0
    (0x007F, 0x009F),  # DEL, C1
    (0xD800, 0xDFFF),  # surrogates (only ever lone ones in a str)
)
"""Code point ranges (inclusive) shown as backslash escapes."""

FORMAT_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x0600, 0x0605),  # Arabic number signs (prepended concatenation marks)
    (0x061C, 0x061C),  # arabic letter mark (bidi)
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),  # Mongolian vowel separator
    (0x200B, 0x200B),  # zero width space
    (0x200E, 0x200F),  # LRM, RLM (bidi)
    (0x2028, 0x202E),  # line and paragraph separators; LRE, RLE, PDF, LRO, RLO (bidi)
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x206F),  # LRI, RLI, FSI, PDI (bidi); deprecated format characters
    (0xFEFF, 0xFEFF),  # byte order mark / zero width no-break space
    (0xFFF9, 0xFFFB),  # interlinear annotation
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),  # Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0001, 0xE0001),  # language tag
    (0xE0020, 0xE007F),  # tag characters
)
"""Code point ranges (inclusive) shown as ``<U+XXXX>``: every format character (Cf) of
Unicode 14 but ZWNJ and ZWJ, and U+2028/U+2029 (tests/test_textsafe.py checks the table
against ``unicodedata``)."""

_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _char_class(ranges: tuple[tuple[int, int], ...], skip: str = "") -> str:
    parts = [f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges]
    if skip:
        # The ranges hold the skipped characters; subtract them with a lookahead.
        return "(?![" + "".join(f"\\U{ord(c):08x}" for c in skip) + "])[" + "".join(parts) + "]"
    return "[" + "".join(parts) + "]"


_ALL = CONTROL_RANGES + FORMAT_RANGES
_UNSAFE = re.compile(_char_class(_ALL))
_UNSAFE_BUT_LINES = re.compile(_char_class(_ALL, skip="\n\t"))


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    named = _NAMED.get(code)
    if named is not None:
        return named
    if code < 0x80:
        return f"\\x{code:02x}"
    if code <= 0x9F or 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return f"<U+{code:04X}>"


def neutralise(text: str, *, inline: bool = False) -> str:
    """``text`` with every unsafe character made visible (see the module's docstring).

    Newline and tab stay as they are, unless ``inline`` (for what must stay on one line:
    ids, recipients, a reply's root, error messages), which escapes them too."""
    pattern = _UNSAFE if inline else _UNSAFE_BUT_LINES
    return pattern.sub(_shown, text)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def neutralise_json(text: str) -> str:
    """A JSON text with every unsafe character written as a ``\\uXXXX`` escape (a surrogate
    pair above U+FFFF). Outside strings JSON is ASCII, so only strings change, and they
    decode to what they were."""
    return _UNSAFE.sub(_json_escape, text)


def json_line(value: Any) -> str:
    """``value`` as compact JSON on one line, non-ASCII text kept readable and every unsafe
    character escaped."""
    return neutralise_json(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
