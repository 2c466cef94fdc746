"""Hostile values and host-side DNS over real sockets: a scenario whose names carry quotes,
$(), backticks, newlines, Unicode and ANSI escapes is served to unmodified pypsrp intact, and
Resolve-DnsName on a host really queries the lab's DNS responders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pypsrp.powershell import PowerShell, PSInvocationState

from lab._lab_client import connect
from mock_remoting.exchange.scenario import SCENARIO_DIR

pytestmark = pytest.mark.lab

HOSTILE = "Eth'\"$(Remove-Item C:\\)`n;|&\n\x1b[31mÜñï✓𝔘_x0041_"


def test_hostile_names_round_trip_through_pypsrp(lab: Any, tmp_path: Path) -> None:
    data = yaml.safe_load((SCENARIO_DIR / "healthy.yaml").read_text(encoding="utf-8"))
    data["hosts"][0]["nics"][0]["alias"] = HOSTILE
    data["hosts"][0]["queues"].append(
        {
            "next_hop": HOSTILE,
            "delivery_type": "SmtpRelayToDag",
            "target": "nowhere.contoso.local",
            "messages": 3,
        }
    )
    data["send_connectors"].append(
        {
            "name": HOSTILE,
            "address_spaces": ["SMTP:hostile.example;2"],
            "source_transport_servers": ["EX01"],
            "comment": HOSTILE,
        }
    )
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    running = lab(path)
    with connect(running, "EX01") as client:
        (nic,) = client.os_("Get-DnsClient")
        assert nic.adapted_properties["InterfaceAlias"] == HOSTILE
        client.os_("Set-DnsClient", InterfaceAlias=[HOSTILE], RegisterThisConnectionsAddress=False)
        assert running.fleet.host("EX01").state.mapi_nic.register is False
        queues = {q.adapted_properties["NextHopDomain"]: q for q in client.ex("Get-Queue")}
        assert queues[HOSTILE].adapted_properties["Status"] == "Retry"
        assert "NonExistentDomain" in queues[HOSTILE].adapted_properties["LastError"]
        names = [c.adapted_properties["Name"] for c in client.ex("Get-SendConnector")]
        assert HOSTILE in names
        client.ex("Set-SendConnector", Identity=HOSTILE, Comment=HOSTILE + "2")
        ps = PowerShell(client.os)
        ps.add_cmdlet("Get-Content").add_parameter("Path", HOSTILE)
        ps.invoke()
        assert ps.state == PSInvocationState.COMPLETED
        assert HOSTILE in str(ps.streams.error[0])


def test_resolve_dns_name_on_a_host_uses_the_lab_dns(lab: Any) -> None:
    running = lab("nic-external-dns")
    with connect(running, "EX01") as client:
        (mx,) = client.os_(
            "Resolve-DnsName", Name="fabrikam.com", Type="MX", Server=["8.8.8.8"], DnsOnly=True
        )
        assert mx.adapted_properties["NameExchange"] == "mx1.fabrikam.com"
        (a,) = client.os_("Resolve-DnsName", Name="ex02.contoso.local", Type="A", Server=["10.0.0.10"])
        assert a.adapted_properties["IPAddress"] == "10.0.0.22"
        ps = PowerShell(client.os)
        ps.add_cmdlet("Resolve-DnsName").add_parameter("Name", "ex02.contoso.local").add_parameter(
            "Type", "A"
        )
        ps.add_parameter("Server", ["8.8.8.8"])
        assert ps.invoke() == []
        error = ps.streams.error[0]
        assert error.fq_error == "DNS_ERROR_RCODE_NAME_ERROR,Microsoft.DnsClient.Commands.ResolveDnsName"
        assert str(error) == "ex02.contoso.local : DNS name does not exist"
