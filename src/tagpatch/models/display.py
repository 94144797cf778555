"""Untrusted text as a human reads it: tag values (group names), document names, error texts.

A PatchGroup tag value may hold any Unicode: a line break followed by "ACTION REQUIRED: run curl
... | sudo sh" would read as our own words in an e-mail; ESC, NUL, bidi overrides (U+202E) or
zero-width characters would hide or reorder text. Everything that reaches an e-mail, a digest or a
CLI table goes through these functions:

* :func:`one_line`: control, format (bidi, zero-width), separator and unassigned characters and
  every blank but the space become visible escapes (``\\n``, ``\\x1b``, ``\\u202e``), so the text is
  one line whose characters are all visible;
* :func:`quoted`: a name as is when it is plain (``web``, ``prod-db:eu/1``), otherwise in double
  quotes, escaped as above (and ``\\``, ``"``), so where it starts and ends is unambiguous;
* :func:`cell`: a table cell: as is when nothing would be misread, else :func:`quoted`.
"""

from __future__ import annotations

import re
import unicodedata

_PLAIN = re.compile(r"[A-Za-z0-9_.:/=+@-]+\Z")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def one_line(text: str, *, ascii_only: bool = False) -> str:
    """``text`` with every character that is not visible (categories C* and Z* but the space)
    escaped; with ``ascii_only``, every non-ASCII character too (for SNS subjects)."""
    return "".join(
        _escape(char)
        if (char != " " and unicodedata.category(char)[0] in "CZ") or (ascii_only and ord(char) > 126)
        else char
        for char in text
    )


def quoted(name: str, *, ascii_only: bool = False) -> str:
    """``name`` as is when plain (ASCII letters, digits and ``_.:/=+@-``), else ``"..."`` escaped."""
    if _PLAIN.match(name):
        return name
    inner = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{one_line(inner, ascii_only=ascii_only)}"'


def cell(text: str) -> str:
    """A table cell: as is when it is one visible line without edge blanks, else :func:`quoted`."""
    return text if text and text == text.strip() and one_line(text) == text else quoted(text)
