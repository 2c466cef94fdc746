"""exfix's transport against the full lab: the scenario's emulated Exchange hosts, reached
through the inventory the lab writes, over sockets with unmodified pypsrp and pywinrm."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from agent.errors import AuthenticationError, CmdletError, HostTimeoutError, UnreachableError
from agent.inventory import Inventory, load_inventory
from agent.model.command import CmdletCall, Endpoint
from agent.model.target import CertValidation, HostTarget, OsTransport
from agent.transport import HostConnection, HostDeadline, RetryPolicy, connect
from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME

pytestmark = pytest.mark.lab

GET_SERVER = CmdletCall(Endpoint.EXCHANGE, "Get-ExchangeServer")
GET_QUEUE = CmdletCall(Endpoint.EXCHANGE, "Get-Queue")
GET_DNS_CLIENT = CmdletCall(Endpoint.OS, "Get-DnsClient")
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


def lab_inventory(lab: Any, tmp_path: Path) -> Inventory:
    return load_inventory(lab.write_inventory(tmp_path / "inventory.yaml"))


def open_host(
    inventory: Inventory, target: HostTarget, *, seconds: float = 60, sleeps: list[float] | None = None
) -> HostConnection:
    credential = inventory.credentials().resolve(target)
    record = sleeps if sleeps is not None else []
    return HostConnection(
        target, credential, HostDeadline(target.name, seconds), retry=FAST_RETRY, sleep=record.append
    )


def test_exchange_objects_through_the_lab_inventory(lab: Any, tmp_path: Path) -> None:
    running = lab("healthy")
    inventory = lab_inventory(running, tmp_path)
    assert [t.name for t in inventory.hosts] == ["ex01.contoso.local", "ex02.contoso.local"]
    for target in inventory.hosts:
        with connect(target, inventory.credentials().resolve(target)) as conn:
            servers = conn.exchange.run(GET_SERVER)
            queues = conn.exchange.run(GET_QUEUE)
        assert {s.get("Fqdn") for s in servers} == {"ex01.contoso.local", "ex02.contoso.local"}
        for server in servers:
            assert server.is_a("Microsoft.Exchange.Data.Directory.Management.ExchangeServer")
            assert "15.2" in str(server.get("AdminDisplayVersion"))
        assert queues
        for queue in queues:
            assert queue.is_a("Deserialized.Microsoft.Exchange.Data.QueueViewer.PropertyBagBasedQueueInfo")
            assert str(queue.get("Identity")).lower().startswith(target.name.split(".")[0].lower() + "\\")
            assert queue.get("Status") in {"Active", "Connecting", "Ready", "Retry", "Suspended"}
            assert isinstance(queue.get("MessageCount"), int)
        assert "fabrikam.com" in {q.get("NextHopDomain") for q in queues}
    assert running.counters.get("ex01.contoso.local", "exchange", "Create") == 1


def test_transport_service_lists_and_enums(lab: Any, tmp_path: Path) -> None:
    running = lab("healthy")
    inventory = lab_inventory(running, tmp_path)
    target = inventory.hosts[0]
    with open_host(inventory, target) as conn:
        services = conn.exchange.run(
            CmdletCall(Endpoint.EXCHANGE, "Get-TransportService", (("Identity", "EX01"),))
        )
    (service,) = services
    assert service.get("ExternalDNSServers") == ()
    assert service.get("ExternalDNSAdapterEnabled") is True
    assert service.get("ExternalDNSProtocolOption") == "Any"


def test_get_dnsclient_is_the_same_over_psrp_and_winrm(lab: Any, tmp_path: Path) -> None:
    running = lab("nic-registration-disabled")
    inventory = lab_inventory(running, tmp_path)
    for target in inventory.hosts:
        winrm_target = dataclasses.replace(target, os_transport=OsTransport.WINRM)
        with open_host(inventory, target) as conn:
            via_psrp = conn.os.run(GET_DNS_CLIENT)
        with open_host(inventory, winrm_target) as conn:
            via_winrm = conn.os.run(GET_DNS_CLIENT)
        assert via_psrp and via_psrp == via_winrm
        assert all(
            c.is_a("Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_DNSClient")
            for c in via_psrp
        )
        assert all(isinstance(c.get("RegisterThisConnectionsAddress"), bool) for c in via_psrp)
        assert running.counters.get(target.name, "winrs", "Command") == 1


def test_the_session_never_trips_no_language_mode(lab: Any, tmp_path: Path) -> None:
    running = lab("healthy")
    inventory = lab_inventory(running, tmp_path)
    target = inventory.hosts[0]
    # The endpoint does refuse scripts: a script sent with plain pypsrp fails...
    wsman = WSMan(
        "127.0.0.1",
        port=target.exchange.port,
        path="PowerShell",
        ssl=False,
        auth="ntlm",
        username=LAB_USERNAME,
        password=LAB_PASSWORD,
        cert_validation=False,
    )
    with wsman, RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-Queue")
        ps.invoke()
        assert ps.had_errors
        assert "no-language mode" in str(ps.streams.error[0])
    # ...and exfix's session, given hostile values, only ever sends cmdlets.
    hostile = ["EX01\\fabrikam.com'; Get-Process; '", "$(Stop-Service MSExchangeTransport)", "`n\n\x1b[31m"]
    with open_host(inventory, target) as conn:
        for value in hostile:
            result = conn.exchange.invoke(CmdletCall(Endpoint.EXCHANGE, "Get-Queue", (("Identity", value),)))
            assert all("no-language" not in e.message.lower() for e in result.errors)
            assert all(e.fully_qualified_error_id != "ScriptsNotAllowed" for e in result.errors)


def test_unknown_parameter_carries_the_fully_qualified_error_id(lab: Any, tmp_path: Path) -> None:
    inventory = lab_inventory(lab("healthy"), tmp_path)
    with open_host(inventory, inventory.hosts[0]) as conn, pytest.raises(CmdletError) as caught:
        conn.exchange.run(CmdletCall(Endpoint.EXCHANGE, "Get-Queue", (("Bogus", 1),)))
    error = caught.value
    assert error.fully_qualified_error_id is not None
    assert error.fully_qualified_error_id.startswith("NamedParameterNotFound")
    assert error.category == "InvalidArgument"
    assert "Bogus" in error.message


def test_401_is_an_authentication_error_and_not_retried(lab: Any, tmp_path: Path) -> None:
    running = lab("healthy")
    inventory = lab_inventory(running, tmp_path)
    target = inventory.hosts[0]
    running.inject(target.name, {"fail": {"kind": "http-401", "on": "Create", "endpoint": "exchange"}})
    sleeps: list[float] = []
    with open_host(inventory, target, sleeps=sleeps) as conn, pytest.raises(AuthenticationError):
        conn.exchange.run(GET_SERVER)
    assert sleeps == []
    assert running.counters.get(target.name, "exchange", "Create") == 1


def test_a_dropped_connection_is_retried_and_succeeds(lab: Any, tmp_path: Path) -> None:
    running = lab("healthy")
    inventory = lab_inventory(running, tmp_path)
    target = inventory.hosts[0]
    running.inject(
        target.name,
        {"fail": {"kind": "drop", "on": "Receive", "endpoint": "exchange", "after": 2, "times": 1}},
    )
    sleeps: list[float] = []
    with open_host(inventory, target, sleeps=sleeps) as conn:
        queues = conn.exchange.run(GET_QUEUE)
    assert queues and len(sleeps) == 1
    assert running.counters.get(target.name, "exchange", "Command") == 2


def test_a_hung_host_times_out_within_its_deadline(lab: Any, tmp_path: Path) -> None:
    running = lab("healthy")
    inventory = lab_inventory(running, tmp_path)
    target = inventory.hosts[0]
    running.inject(target.name, {"fail": {"kind": "hang", "on": "Command", "endpoint": "exchange"}})
    with open_host(inventory, target, seconds=2) as conn:
        started = time.monotonic()
        with pytest.raises(HostTimeoutError):
            conn.exchange.run(GET_QUEUE)
        assert time.monotonic() - started < 2 + 3


def test_https_certificate_validation(lab: Any, tmp_path: Path) -> None:
    running = lab("healthy", https=True)
    inventory = lab_inventory(running, tmp_path)
    target = inventory.hosts[0]
    assert target.exchange.scheme == "https" and target.cert_validation.verify is False
    with open_host(inventory, target) as conn:
        assert conn.exchange.run(GET_SERVER)
        assert conn.os.run(GET_DNS_CLIENT)
    strict = dataclasses.replace(target, cert_validation=CertValidation(verify=True))
    sleeps: list[float] = []
    with (
        open_host(inventory, strict, sleeps=sleeps) as conn,
        pytest.raises(UnreachableError, match="certificate"),
    ):
        conn.exchange.run(GET_SERVER)
    assert sleeps == []


def test_basic_auth_lab(lab: Any, tmp_path: Path) -> None:
    running = lab("healthy", auth="basic")
    inventory = lab_inventory(running, tmp_path)
    target = inventory.hosts[0]
    assert target.allow_insecure_basic and target.exchange.auth == "basic"
    with open_host(inventory, target) as conn:
        assert conn.exchange.run(GET_SERVER)
        assert conn.os.run(GET_DNS_CLIENT)
