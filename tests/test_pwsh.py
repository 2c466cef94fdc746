"""The quoting filter, proven against an independent reader of PowerShell (tests/support/pwsh_oracle.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent import pwsh
from agent.model.command import SWITCH, CmdletCall, Endpoint, Switch
from support import pwsh_oracle

HOSTILE = [
    "Ethernet0'; Remove-Item C:\\ -Recurse; '",
    "conn $(Stop-Service MSExchangeTransport)",
    "tick`$env:PATH`n",
    "line1\nline2\r\n",
    "\x1b[31mred\x1b[0m",
    "smart \u2018quoted\u2019 \u201alow\u201b",
    "rtl\u202eexe.ps1",
    "emoji ✉️ 📬 and 名前",
    "",
    "'",
    "\x00",
]


def _roundtrip(call: CmdletCall) -> tuple[str, tuple[tuple[str, Any], ...]]:
    line = pwsh.command(call)
    assert "\n" not in line and "\r" not in line
    (statement,) = pwsh_oracle.parse(line)
    params = tuple((n, SWITCH if v is pwsh_oracle.SWITCH else v) for n, v in statement.parameters)
    return statement.cmdlet, params


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_come_back_exactly(value: str) -> None:
    call = CmdletCall(Endpoint.OS, "Set-DnsClient", (("InterfaceAlias", value), ("Register", True)))
    assert _roundtrip(call) == ("Set-DnsClient", call.parameters)


def test_control_characters_are_visible_not_embedded() -> None:
    assert pwsh.literal("a\nb") == "('a' + [char]0x000A + 'b')"
    assert pwsh.literal("\x1b[0m") == "('' + [char]0x001B + '[0m')"
    assert pwsh.literal("it's") == "'it''s'"
    assert pwsh.literal("\u2019") == "'\u2019\u2019'"


def test_scalars_and_lists() -> None:
    assert pwsh.literal(True) == "$true"
    confirm = CmdletCall(Endpoint.OS, "Remove-Item", (("Confirm", False),))
    assert pwsh.command(confirm) == "Remove-Item -Confirm:$false"
    assert pwsh.literal(None) == "$null"
    assert pwsh.literal(12) == "12"
    assert pwsh.literal(("10.0.0.10",)) == "@('10.0.0.10')"
    assert pwsh.command(CmdletCall(Endpoint.OS, "Register-DnsClient")) == "Register-DnsClient"
    assert pwsh.command(CmdletCall(Endpoint.OS, "Restart-Service", (("Name", "x"), ("Force", SWITCH)))) == (
        "Restart-Service -Name 'x' -Force"
    )


@pytest.mark.parametrize("bad", ["Set-DnsClient;rm", "Set DnsClient", "", "set-dnsclient"])
def test_bad_cmdlet_names_are_bugs(bad: str) -> None:
    with pytest.raises(ValueError):
        pwsh.command(CmdletCall(Endpoint.OS, bad))


def test_bad_parameter_names_are_bugs() -> None:
    with pytest.raises(ValueError):
        pwsh.command(CmdletCall(Endpoint.OS, "Get-Queue", (("Server -Force", "x"),)))


def test_switch_has_no_literal() -> None:
    with pytest.raises(TypeError):
        pwsh.literal(Switch())


_scalar = st.one_of(st.text(), st.integers(min_value=0, max_value=2**31), st.booleans(), st.none())
_value = st.one_of(_scalar, st.tuples(st.text()).map(tuple), st.lists(st.text(), max_size=4).map(tuple),
                   st.just(SWITCH))
_names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,15}", fullmatch=True)


@given(st.lists(st.tuples(_names, _value), max_size=6))
def test_any_parameters_round_trip(params: list[tuple[str, Any]]) -> None:
    call = CmdletCall(Endpoint.EXCHANGE, "Set-TransportService", tuple(params))
    assert _roundtrip(call) == ("Set-TransportService", call.parameters)
