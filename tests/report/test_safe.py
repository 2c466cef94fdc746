from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from agent.report import safe

HOSTILE = [
    "Ethernet0'; Remove-Item C:\\ -Recurse #",
    'conn "$(Stop-Service MSExchangeTransport)"',
    "back`tick`n and `$env:PATH",
    "two\nlines\r\nthree",
    "\x1b[31mred\x1b[0m \x1b]0;title\x07",
    "rtl \u202e gnp.exe",
    "ünïcødé ✉ 名前",
]


def test_terminal_shows_controls_as_escapes() -> None:
    assert safe.terminal("a\x1b[31mb") == "a\\x1b[31mb"
    assert safe.terminal("x\ny") == "x\\ny"
    assert safe.terminal("rtl\u202e") == "rtl\\u202e"
    assert safe.terminal("ünïcødé ✉ 名前") == "ünïcødé ✉ 名前"


@given(st.text())
def test_terminal_output_is_one_printable_line(value: str) -> None:
    shown = safe.terminal(value)
    assert "\n" not in shown and "\r" not in shown and "\x1b" not in shown
    assert all(ch.isprintable() for ch in shown)


def test_markdown_escapes_table_and_markup() -> None:
    for value in HOSTILE:
        shown = safe.markdown(value)
        assert "\n" not in shown
        # every pipe is escaped, so a cell can never be split
        assert "|" not in shown.replace("\\|", "")
    assert safe.markdown("a|b*c") == "a\\|b\\*c"
    assert safe.markdown("ex01.contoso.local") == "ex01.contoso.local"
    assert safe.markdown("1. item") == "1\\. item"
    assert safe.markdown("- item") == "\\- item"


@given(st.text())
def test_markdown_code_span_cannot_be_closed_early(value: str) -> None:
    span = safe.markdown_code(value)
    fence_len = len(span) - len(span.lstrip("`"))
    inner = span[fence_len:-fence_len]
    assert "`" * fence_len not in inner


# --- the backslash: a literal "\x1b" and a real ESC must read differently -------------------

# Mostly the characters an escape is made of, so that collisions are likely if they exist.
_escape_parts = st.text(alphabet=st.sampled_from("\\x1bunrt0\x1b\n\u202e"), max_size=8)


_SHOWN_ESCAPE = re.compile(r"\\(?:[nrt]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")


def _read_back(shown: str) -> str:
    """What a person reads in ``safe.terminal``'s output, by the rule its docstring states:
    ``\\n`` ``\\r`` ``\\t`` ``\\xHH`` ``\\uHHHH`` ``\\UHHHHHHHH`` are the characters they name
    (``\\x5c`` a backslash), and any other backslash is itself."""
    out: list[str] = []
    pos = 0
    while pos < len(shown):
        match = _SHOWN_ESCAPE.match(shown, pos)
        if match is None:
            out.append(shown[pos])
            pos += 1
            continue
        token = match.group()
        if token[1] in "nrt":
            out.append({"n": "\n", "r": "\r", "t": "\t"}[token[1]])
        else:
            out.append(chr(int(token[2:], 16)))
        pos = match.end()
    return "".join(out)


def test_a_literal_escape_text_and_a_real_escape_read_differently() -> None:
    literal, real = "\\x1b[2J", "\x1b[2J"
    assert safe.terminal(real) == "\\x1b[2J"
    assert safe.terminal(literal) == "\\x5cx1b[2J"
    assert safe.terminal("\\u202e") == "\\x5cu202e" != safe.terminal("\u202e")
    assert safe.terminal("a\\nb") == "a\\x5cnb" != safe.terminal("a\nb")
    assert safe.terminal("\\x5c") == "\\x5cx5c"
    assert safe.terminal("\\U0001F4EC") == "\\x5cU0001F4EC" != safe.terminal("\U0001F4EC")
    # A backslash that cannot start an escape stays as it is: Windows names read as they are.
    assert safe.terminal("EX01\\Submission") == "EX01\\Submission"
    assert safe.terminal("CONTOSO\\user") == "CONTOSO\\user"
    assert safe.terminal("\\\\server\\share") == "\\\\server\\share"
    assert safe.terminal("\\\x1b") == "\\\\x1b"  # a backslash, then a real ESC


@given(st.one_of(st.text(), _escape_parts))
def test_what_terminal_shows_reads_back_as_exactly_the_value(value: str) -> None:
    # A reading back for every value means two different values never show the same.
    assert _read_back(safe.terminal(value)) == value


def test_markdown_and_code_spans_keep_the_difference() -> None:
    literal, real = "\\x1b[2J", "\x1b[2J"
    assert safe.markdown(literal) != safe.markdown(real)
    assert safe.markdown_code(literal) != safe.markdown_code(real)
