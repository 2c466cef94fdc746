from __future__ import annotations

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
