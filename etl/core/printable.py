"""Names from outside (a file's name is anyone's choice) made safe to print on one line."""

from __future__ import annotations

import unicodedata

# Bidirectional overrides and isolates reorder what follows them on screen.
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with control characters written as a Python string literal writes them
    (``\\x1b``, ``\\n``, ``\\u2028``): a name cannot colour the terminal, move its cursor, or
    start a line of its own that reads like the tool's."""
    if text.isprintable():
        return text
    return "".join(_escaped(c) for c in text)


def _escaped(char: str) -> str:
    if char in NAMED:
        return NAMED[char]
    if unicodedata.category(char) not in ("Cc", "Zl", "Zp") and char not in BIDI:
        return char  # other spaces and format characters (a joiner inside a word) are text
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
