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

# After a backslash, what reads as an escape (the forms terminal() writes, hex in either
# case, as a person would read it): such a backslash is itself written as its escape.
_LOOKS_ESCAPED = re.compile(r"[nrt]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}")
_BACKSLASH = "\\x5c"


def _escape(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal(value: object) -> str:
    """One line with every control or format character shown as an escape (\\x1b, \\u202e).

    The output reads back to exactly ``value`` by one rule: ``\\n``, ``\\r``, ``\\t``,
    ``\\xHH``, ``\\uHHHH`` and ``\\UHHHHHHHH`` are the characters they name, and any other
    backslash is a backslash. So a backslash in the value that this rule would read as the
    start of an escape is shown as ``\\x5c``: the text ``\\x1b[2J`` a host sent shows as
    ``\\x5cx1b[2J``, never as a real ESC does. Other backslashes stay as they are, so
    ``EX01\\Submission`` and ``\\\\server\\share`` read as Windows writes them.
    """
    pieces: list[str] = []
    for ch in str(value):
        if ch in _ESCAPES:
            pieces.append(_ESCAPES[ch])
        elif not ch.isprintable():  # controls, format (bidi) characters, odd spaces
            pieces.append(_escape(ord(ch)))
        else:
            pieces.append(ch)
    # Whether a backslash reads as an escape depends on what is shown after it (at most nine
    # characters, so at most the next nine pieces); a later backslash shown as \x5c starts
    # with a backslash either way, so the order of the replacements does not matter.
    for i, piece in enumerate(pieces):
        if piece == "\\" and _LOOKS_ESCAPED.match("".join(pieces[i + 1 : i + 10])):
            pieces[i] = _BACKSLASH
    return "".join(pieces)


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
