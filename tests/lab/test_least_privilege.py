"""The lab's least-privilege account (Lab(account=...)): over real sockets with pypsrp, the
Exchange endpoint holds only the RBAC role entries `exfix rbac` writes, the OS endpoint is
the JEA configuration, and anything outside them fails as Exchange and JEA fail."""

from __future__ import annotations

from typing import Any

import pytest
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool

from lab._lab_client import EXCHANGE, _wsman
from mock_remoting.lab import Lab

pytestmark = pytest.mark.lab


def run(pool: RunspacePool, cmdlet: str, **params: Any) -> tuple[list[Any], PowerShell]:
    ps = PowerShell(pool)
    ps.add_cmdlet(cmdlet)
    for name, value in params.items():
        ps.add_parameter(name, value)
    return ps.invoke(), ps


def error_of(ps: PowerShell) -> tuple[str, str]:
    assert ps.had_errors or ps.streams.error, "the command should have failed"
    record = ps.streams.error[0]
    return str(record), str(record.fq_error)


@pytest.fixture
def scan_lab(lab: Any) -> Lab:
    started: Lab = lab("healthy", account="scan")
    return started


def test_the_restricted_account_may_not_open_microsoft_powershell(scan_lab: Lab) -> None:
    port = scan_lab.endpoint("ex01").port
    with pytest.raises(WSManFaultError) as caught, RunspacePool(_wsman(port, "wsman")):
        pass
    assert "Access is denied" in str(caught.value)


def test_the_jea_endpoint_shows_only_the_roles_cmdlets_and_parameters(scan_lab: Lab) -> None:
    port = scan_lab.endpoint("ex01").port
    name = scan_lab.grant.configuration_name
    with RunspacePool(_wsman(port, "wsman"), configuration_name=name) as pool:
        output, ps = run(pool, "Get-DnsClient")
        assert output and not ps.streams.error
        # A cmdlet of the remediation role is not there for the scanning account.
        _, ps = run(pool, "Set-DnsClient", InterfaceIndex=1, RegisterThisConnectionsAddress=True)
        message, fqid = error_of(ps)
        assert "The term 'Set-DnsClient' is not recognized" in message
        assert fqid == "CommandNotFoundException"
        # A parameter the role does not list is not on the cmdlet.
        _, ps = run(pool, "Get-DnsClientCache", Name="contoso.com")
        message, fqid = error_of(ps)
        assert "A parameter cannot be found that matches parameter name 'Name'." in message
        assert fqid.startswith("NamedParameterNotFound")
        # ValidateSet: exfix only ever reads MSExchangeTransport.
        _, ps = run(pool, "Get-Service", Name="Spooler")
        message, fqid = error_of(ps)
        assert 'does not belong to the set "MSExchangeTransport"' in message
        assert fqid == "ParameterArgumentValidationError,Get-Service"
        # ValidatePattern: Get-Content reads only the two files exfix reads.
        _, ps = run(pool, "Get-Content", LiteralPath="C:\\Windows\\System32\\config\\SAM")
        message, fqid = error_of(ps)
        assert "does not match the" in message and fqid.startswith("ParameterArgumentValidationError")
        # NoLanguage, as the recorded JEA endpoint answers a script.
        script = PowerShell(pool)
        script.add_script("Get-DnsClient; Get-Process")
        script.invoke()
        assert "no-language mode" in str(script.streams.error[0])


def test_the_exchange_session_holds_only_the_role_entries(scan_lab: Lab) -> None:
    port = scan_lab.endpoint("ex01").port
    with RunspacePool(_wsman(port, "PowerShell"), configuration_name=EXCHANGE) as pool:
        _, ps = run(pool, "Get-Queue", Server="EX01")
        assert not ps.streams.error
        _, ps = run(pool, "Set-TransportService", Identity="EX01", ExternalDNSAdapterEnabled=False)
        message, fqid = error_of(ps)
        assert "The term 'Set-TransportService' is not recognized" in message
        assert fqid == "CommandNotFoundException"
        # Get-Queue's role entry keeps -Server only.
        _, ps = run(pool, "Get-Queue", Identity="EX01\\1")
        message, fqid = error_of(ps)
        assert "A parameter cannot be found that matches parameter name 'Identity'." in message


def test_the_remediating_account_gets_the_change_cmdlets_too(lab: Any) -> None:
    started = lab("healthy", account="remediate")
    port = started.endpoint("ex01").port
    with RunspacePool(_wsman(port, "wsman"), configuration_name=started.grant.configuration_name) as pool:
        _, ps = run(pool, "Restart-Service", Name="Spooler")
        message, _ = error_of(ps)
        assert 'does not belong to the set "MSExchangeTransport"' in message
        _, ps = run(pool, "Get-DnsClient")
        assert not ps.streams.error


def test_an_unknown_account_is_a_usage_error() -> None:
    from agent.errors import UsageError

    with pytest.raises(UsageError, match="lab account must be one of"):
        Lab("healthy", account="root")
