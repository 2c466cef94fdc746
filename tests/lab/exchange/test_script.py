"""The OS endpoint's script language: PowerShell quoting with hostile strings, the statement
and pipeline structure, what is refused, and WinRS (run_script) exit codes."""

from __future__ import annotations

import threading

import pytest

from lab.exchange._exchange_support import EX, OS, make_fleet, prop
from mock_remoting.backend import Command
from mock_remoting.exchange.script import ScriptSyntaxError, Switch, parse

HOSTILE = [
    "plain",
    "it's",
    "''",
    "$(Remove-Item C:\\ -Recurse)",
    "`n`t`$x",
    "a;b|c&d",
    "line1\nline2",
    "\x1b[31mred\x1b[0m",
    "Ünïcödé ✓ 𝔘",
    "‘smart’ ‚quotes‛",
    '"double"',
    "# not a comment",
    "-NotAParameter",
    "@(1,2)",
]


def single_quoted(value: str) -> str:
    """How agent/pwsh.py writes a value: single quotes, every single-quote character doubled."""
    return "'" + "".join(ch * 2 if ch in "'\u2018\u2019\u201a\u201b" else ch for ch in value) + "'"


@pytest.mark.parametrize("value", HOSTILE)
def test_single_quoted_round_trip(value: str) -> None:
    (statement,) = parse(
        f"Set-DnsClient -InterfaceAlias {single_quoted(value)} -RegisterThisConnectionsAddress $true"
    )
    (cmd,) = statement
    assert cmd.parameters[0].name == "InterfaceAlias"
    assert cmd.parameters[0].value == value
    assert cmd.parameters[1].value is True


@pytest.mark.parametrize("value", HOSTILE)
def test_char_concatenation_round_trip(value: str) -> None:
    pieces = ["''"]
    for ch in value:
        if ch.isprintable() and ch not in "'\u2018\u2019\u201a\u201b":
            pieces.append(single_quoted(ch))
        else:
            for unit in range(0, len(ch.encode("utf-16-le")), 2):
                code = int.from_bytes(ch.encode("utf-16-le")[unit : unit + 2], "little")
                pieces.append(f"[char]0x{code:04X}")
    (statement,) = parse(f"Get-DnsClient -InterfaceAlias ({' + '.join(pieces)})")
    assert statement[0].parameters[0].value == value


def test_double_quotes_and_backtick_escapes() -> None:
    (statement,) = parse('Get-Service "a`tb`"c""d" `$x')
    values = [p.value for p in statement[0].parameters]
    assert values == ['a\tb"c"d', "$x"]


def test_values_lists_arrays_hashtables_and_switches() -> None:
    statements = parse(
        "Set-TransportService EX01 -ExternalDNSServers "
        "@{Add='8.8.8.8','1.1.1.1'; Remove = \"9.9.9.9\"} -WhatIf\n"
        "Set-DnsClientServerAddress -InterfaceIndex 4 -ServerAddresses 10.0.0.10, 10.0.0.11 -Validate:$false;"
        "Get-Thing -A @('x', 'y') -B 42 -C 0x10 -D $null -E -5 -F 10.0.0.1 # trailing comment\n"
        "<# block\ncomment #> Get-Other `\n  -Continued 'yes'"
    )
    assert len(statements) == 4
    first = statements[0][0].parameters
    assert first[0].value == "EX01"
    assert first[1].value == {"Add": ["8.8.8.8", "1.1.1.1"], "Remove": "9.9.9.9"}
    assert isinstance(first[2].value, Switch)
    second = statements[1][0].parameters
    assert second[1].value == ["10.0.0.10", "10.0.0.11"] and second[2].value is False
    third = {p.name: p.value for p in statements[2][0].parameters}
    assert third == {"A": ["x", "y"], "B": 42, "C": 16, "D": None, "E": -5, "F": "10.0.0.1"}
    assert statements[3][0].parameters[0].value == "yes"


def test_pipelines() -> None:
    (statement,) = parse(
        "Get-DnsClientServerAddress -AddressFamily IPv4 | Select-Object -ExpandProperty ServerAddresses"
    )
    assert [c.name for c in statement] == ["Get-DnsClientServerAddress", "Select-Object"]


@pytest.mark.parametrize(
    "script, fqid",
    [
        ("Get-Service 'unterminated", "TerminatorExpectedAtEndOfString"),
        ('Get-Service "unterminated', "TerminatorExpectedAtEndOfString"),
        ("Get-Service $env:COMPUTERNAME", "NotSupportedByLab"),
        ('Get-Service "$(Remove-Item x)"', "NotSupportedByLab"),
        ('Get-Service "name$x"', "NotSupportedByLab"),
        ("Get-Service (Get-Date)", "NotSupportedByLab"),
        ("Get-Service { 1 }", "NotSupportedByLab"),
        ("Get-Service > out.txt", "NotSupportedByLab"),
        ("Get-Service && Get-Service", "NotSupportedByLab"),
        ("Get-Service |", "EmptyPipeElement"),
        ("& 'Get-Service'", "NotSupportedByLab"),
        ("$x = 1", "NotSupportedByLab"),
        ("Get-Service @('a'", "MissingEndParenthesisInSubexpression"),
        ("Get-Service @{a=1", "MissingEndCurlyBrace"),
        ("Get-Service ('a' + $x)", "NotSupportedByLab"),
        ("Get-Service ([char]0x110000)", "NotSupportedByLab"),
    ],
)
def test_refused_syntax(script: str, fqid: str) -> None:
    with pytest.raises(ScriptSyntaxError) as caught:
        parse(script)
    assert caught.value.fqid == fqid
    assert caught.value.message.startswith("At line:1 char:")


def test_run_script_output_errors_and_exit_codes() -> None:
    host = make_fleet("healthy").host("EX01")
    cancel = threading.Event()
    result = host.run_script(
        "Get-DnsClientServerAddress -InterfaceIndex 4 -AddressFamily IPv4 | "
        "Select-Object -ExpandProperty ServerAddresses",
        cancel,
    )
    assert result.output == ["10.0.0.10"] and result.exit_code == 0 and result.failure is None
    # a failing statement is reported and the script goes on; the exit code follows the last one
    result = host.run_script("Get-Queue; Get-Service MSExchangeTransport", cancel)
    assert result.errors[0].FullyQualifiedErrorId == "CommandNotFoundException"
    assert len(result.output) == 1 and result.exit_code == 0
    result = host.run_script("Get-Service MSExchangeTransport; Get-Service Nope", cancel)
    assert result.exit_code == 1 and len(result.output) == 1
    result = host.run_script("Get-Service 'oops", cancel)
    assert result.exit_code == 1 and result.failure is not None
    assert result.failure.FullyQualifiedErrorId == "TerminatorExpectedAtEndOfString"


def test_run_script_changes_state_with_hostile_alias() -> None:
    host = make_fleet("healthy").host("EX01")
    result = host.run_script(
        "Set-DnsClient -InterfaceAlias 'Ethernet' -RegisterThisConnectionsAddress $false;"
        "Set-DnsClient -InterfaceAlias '$(calc)' -RegisterThisConnectionsAddress $false",
        threading.Event(),
    )
    assert host.state.nic_by_index(4).register is False
    assert (
        result.errors[0].FullyQualifiedErrorId == "CmdletizationQuery_NotFound_InterfaceAlias,Set-DnsClient"
    )
    assert result.exit_code == 1


def test_os_endpoint_accepts_scripts_and_exchange_does_not() -> None:
    host = make_fleet("healthy").host("EX01")
    result = host.invoke(OS, [Command("Get-DnsClient -InterfaceIndex 4", is_script=True)], threading.Event())
    assert result.failure is None and prop(result.output[0], "InterfaceAlias") == "Ethernet"
    result = host.invoke(EX, [Command("Get-Queue", is_script=True)], threading.Event())
    assert result.failure is not None and result.failure.FullyQualifiedErrorId == "ScriptsNotAllowed"
    result = host.invoke(OS, [Command("Get-DnsClient 'x", is_script=True)], threading.Event())
    assert result.failure.FullyQualifiedErrorId == "TerminatorExpectedAtEndOfString"
