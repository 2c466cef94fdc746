"""The shipped scenarios over real sockets: unmodified pypsrp against a running Lab.

For each failure scenario the queues show the documented LastError, Retry-Queue alone
changes nothing, and the documented fix sent as pypsrp cmdlets (add_cmdlet/add_parameter, the
way exfix sends them) drains every queue with no message lost or invented.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from pypsrp.powershell import PowerShell, PSInvocationState

from agent.transport.clixml import from_pypsrp
from lab._lab_client import Client, connect

pytestmark = pytest.mark.lab

DNS_FAILED = "451 4.4.0 DNS query failed. The error was: "


def _state(client: Client) -> dict[str, tuple[Any, ...]]:
    # LRT (last retry time) moves with every attempt, as on a real server: compare the rest.
    return {
        hop: (q["Status"], q["MessageCount"], re.sub(r"\{LRT=[^}]*\}", "{LRT=}", q["LastError"] or ""))
        for hop, q in client.queues().items()
    }


def _check_drained(lab: Any, client: Client, totals: tuple[int, int]) -> None:
    for hop, queue in client.queues().items():
        assert (queue["Status"], queue["MessageCount"], queue["LastError"]) == ("Ready", 0, None), hop
    queued, delivered = lab.fleet.totals()
    assert queued == 0 and delivered == sum(totals)


def _retry_changes_nothing(client: Client) -> None:
    before = _state(client)
    client.retry_all()
    assert _state(client) == before


Fix = Callable[[Client], None]


def _fix_registration(c: Client) -> None:
    c.os_("Set-DnsClient", InterfaceIndex=4, RegisterThisConnectionsAddress=True)
    c.os_("Register-DnsClient")


def _fix_nic_servers(c: Client) -> None:
    c.os_("Set-DnsClientServerAddress", InterfaceIndex=4, ServerAddresses=["10.0.0.10"])
    c.os_("Restart-Service", Name="MSExchangeTransport")


def _fix_external_dns(c: Client) -> None:
    c.ex(
        "Set-TransportService",
        Identity="EX01",
        ExternalDNSServers=["8.8.8.8"],
        ExternalDNSAdapterEnabled=False,
    )
    c.ex("Set-SendConnector", Identity="Internet", UseExternalDNSServersEnabled=True)
    c.os_("Restart-Service", Name="MSExchangeTransport")


def _fix_aaaa(c: Client) -> None:
    c.ex(
        "New-SendConnector",
        Name="wingtiptoys.com smart host",
        AddressSpaces=["SMTP:wingtiptoys.com;1"],
        SmartHosts=["198.51.100.25"],
        DNSRoutingEnabled=False,
        SmartHostAuthMechanism="None",
        SourceTransportServers=["EX01"],
        Usage="Custom",
    )


CASES = [
    (
        "nic-registration-disabled",
        "fabrikam.com",
        "DNS query failed with error ErrorRetry",
        _fix_registration,
    ),
    (
        "nic-external-dns",
        "site:default-first-site-name; version:15",
        "SMTPSEND.DNS.NonExistentDomain; nonexistent domain",
        _fix_nic_servers,
    ),
    (
        "transport-external-dns-unresolvable",
        "fabrikam.com",
        "DNS query failed with error ServerFailure",
        _fix_external_dns,
    ),
    ("remote-domain-aaaa-broken", "wingtiptoys.com", "DNS query failed with error ServerFailure", _fix_aaaa),
    ("dns-server-unreachable", "fabrikam.com", "DNS query failed with error ErrorTimeout", _fix_nic_servers),
]


@pytest.mark.parametrize(("scenario", "hop", "error", "fix"), CASES, ids=[c[0] for c in CASES])
def test_documented_fix_over_pypsrp_drains_the_queues(
    lab: Any, scenario: str, hop: str, error: str, fix: Fix
) -> None:
    running = lab(scenario)
    totals = running.fleet.totals()
    with connect(running, "EX01") as client:
        queue = client.queues()[hop]
        assert queue["Status"] == "Retry"
        assert f"{{LED={DNS_FAILED}{error}}}" in queue["LastError"]
        assert queue["LastError"].startswith("[{LRT=")
        _retry_changes_nothing(client)
        fix(client)
        client.retry_all()
        _check_drained(running, client, totals)


def test_exchange_2010_over_pypsrp(lab: Any) -> None:
    running = lab("exchange-2010")
    totals = running.fleet.totals()
    with connect(running, "EX2010") as client:
        assert (
            client.queues()["fabrikam.com"]["LastError"]
            == DNS_FAILED + "DNS query failed with error ServerFailure"
        )
        (server,) = client.ex("Get-TransportServer")
        assert server.types[-1].endswith("System.Object")
        assert any(t.endswith("SystemConfiguration.TransportServer") for t in server.types)
        ps = PowerShell(client.exchange)
        ps.add_cmdlet("Get-TransportService")
        ps.invoke()
        assert ps.state == PSInvocationState.FAILED
        assert "is not recognized as the name of a cmdlet" in str(ps.streams.error[0])
        _retry_changes_nothing(client)
        client.ex(
            "Set-TransportServer",
            Identity="EX2010",
            ExternalDNSServers=["8.8.8.8"],
            ExternalDNSAdapterEnabled=False,
        )
        client.ex("Set-SendConnector", Identity="Internet Mail", UseExternalDNSServersEnabled=True)
        client.os_("Restart-Service", Name="MSExchangeTransport")
        _check_drained(running, client, totals)


def test_fault_tolerance_is_visible_but_not_fixable_by_cmdlets(lab: Any) -> None:
    running = lab("dns-fault-tolerance-normal")
    with connect(running, "EX01") as client:
        assert "ErrorRetry" in client.queues()["adventure-works.com"]["LastError"]
        (setup,) = client.os_(
            "Get-ItemProperty", Path="HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v15\\Setup"
        )
        install = setup.extended_properties["MsiInstallPath"]
        # The text travels as a string carrying Get-Content's note properties, which pypsrp 0.9
        # keeps only as XML: read it as exfix does.
        (item,) = client.os_("Get-Content", Path=install + "Bin\\EdgeTransport.exe.config", Raw=True)
        (content,) = from_pypsrp(item)
        assert '<add key="DnsFaultTolerance" value="Normal" />' in (content.to_string or "")
        _retry_changes_nothing(client)
        client.os_("Restart-Service", Name="MSExchangeTransport")
        assert client.queues()["adventure-works.com"]["Status"] == "Retry"


def test_mixed_fleet_fixed_host_by_host_over_pypsrp(lab: Any) -> None:
    running = lab("mixed-fleet")
    totals = running.fleet.totals()
    with connect(running, "EX02") as client:
        _fix_registration(client)
        client.retry_all()
    with connect(running, "EX03") as client:
        _fix_nic_servers(client)
    with connect(running, "EX04") as client:
        client.ex(
            "Set-TransportService",
            Identity="EX04",
            ExternalDNSServers={"Add": "8.8.8.8"},
            ExternalDNSAdapterEnabled=False,
        )
        client.ex("Set-SendConnector", Identity="Internet", UseExternalDNSServersEnabled=True)
        client.os_("Restart-Service", Name="MSExchangeTransport")
    with connect(running, "EX05") as client:
        _fix_aaaa_ex05 = dict(
            Name="wingtip",
            AddressSpaces=["SMTP:wingtiptoys.com;1"],
            SmartHosts=["198.51.100.25"],
            DNSRoutingEnabled=False,
            SourceTransportServers=["EX05"],
        )
        client.ex("New-SendConnector", **_fix_aaaa_ex05)
        client.retry_all()
    for host in running.fleet.hosts:
        assert {v.status for v in host.queues} == {"Ready"}, host.name
    assert running.fleet.totals() == (0, sum(totals))


def test_errors_and_whatif_over_pypsrp(lab: Any) -> None:
    running = lab("healthy")
    with connect(running, "EX01") as client:
        before = _state(client)
        client.os_("Set-DnsClientServerAddress", InterfaceIndex=4, ServerAddresses=["8.8.8.8"], WhatIf=True)
        client.ex("Set-SendConnector", Identity="Internet", UseExternalDNSServersEnabled=True, WhatIf=True)
        (address,) = client.os_("Get-DnsClientServerAddress", InterfaceIndex=4, AddressFamily="IPv4")
        assert address.adapted_properties["ServerAddresses"] == ["10.0.0.10"] or address.adapted_properties[
            "ServerAddresses"
        ].property_sets == [["10.0.0.10"]]
        assert address.adapted_properties["AddressFamily"] == 2
        (connector,) = client.ex("Get-SendConnector")
        assert connector.adapted_properties["UseExternalDNSServersEnabled"] is False

        for pool, cmdlet, params, fqid in [
            (
                client.os,
                "Set-DnsClient",
                {"InterfaceIndex": 4, "ConnectionSpecificSuffixSearchList": "x"},
                "NamedParameterNotFound,Set-DnsClient",
            ),
            (
                client.os,
                "Set-DnsClient",
                {"RegisterThisConnectionsAddress": True},
                "MissingMandatoryParameter,Set-DnsClient",
            ),
            (
                client.exchange,
                "New-SendConnector",
                {"Name": "x", "AddressSpaces": ["x.example"], "SmartHosts": ["192.0.2.1"]},
                "DataValidationException",
            ),
        ]:
            ps = PowerShell(pool)
            ps.add_cmdlet(cmdlet)
            for name, value in params.items():
                ps.add_parameter(name, value)
            ps.invoke()
            assert ps.state == PSInvocationState.FAILED
            assert fqid in ps.streams.error[0].fq_error
        ps = PowerShell(client.exchange)
        ps.add_script("Get-Queue | Select-Object Identity")
        ps.invoke()
        assert ps.state == PSInvocationState.FAILED
        assert "no-language mode" in str(ps.streams.error[0])
        assert _state(client) == before
