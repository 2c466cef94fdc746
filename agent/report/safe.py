"""Making values that came from a host safe to show.

Everything a host returns is untrusted: a NIC alias, a connector name or a queue's LastError
can hold quotes, ``$()``, backticks, newlines, ANSI escape sequences or any Unicode. JSON is
safe through ``json.dumps``. Text and markdown need the two functions here: a terminal must
never interpret an escape sequence a host sent, and a markdown table must not be broken or
turned into markup by a value.
"""

from __future__ import annotations

import re

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal(value: object) -> str:
    """One line with every control or format character shown as an escape (\\x1b, \\u202e)."""
    out: list[str] = []
    for ch in str(value):
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif not ch.isprintable():  # controls, format (bidi) characters, odd spaces
            out.append(_escape(ord(ch)))
        else:
            out.append(ch)
    return "".join(out)


# Characters that make markup anywhere in a line. ".", "-", "+", "#", "(" and ")" only make
# markup at the start of a line or right after "]", so escaping them everywhere would only
# clutter the raw text a ticket shows (a backslash before every dot of a host name); a value that starts with
# one of them gets its first character escaped instead.
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]<>|~")
_MARKDOWN_LINE_START = frozenset("#-+.!()=")


def markdown(value: object) -> str:
    """Safe inside markdown text and table cells: one line, markup characters escaped."""
    text = terminal(value)
    out = "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in text)
    if out[:1] in _MARKDOWN_LINE_START:
        return "\\" + out
    # "1. x" or "1) x" at the start of a line would begin an ordered list.
    return re.sub(r"^(\d+)([.)])(?=\s|$)", r"\1\\\2", out)


def markdown_code(value: object) -> str:
    """Safe inside an inline code span: picks a fence longer than any backtick run in the value."""
    text = terminal(value)
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"
