"""The lab's NIC model: the A record follows the NICs that register (registration on and a DNS
server to send the update through), Windows' IPv6 placeholders on the IPv6 row, and IPv6 DNS
servers that take part in resolution. In process, no sockets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.errors import ScenarioError
from lab.exchange._exchange_support import EX, OS, make_fleet, ok, prop
from mock_remoting.exchange.scenario import SCENARIO_DIR

PLACEHOLDERS = ["fec0:0:0:ffff::1", "fec0:0:0:ffff::2", "fec0:0:0:ffff::3"]


def test_the_a_record_follows_the_nics_that_register() -> None:
    fleet = make_fleet("server-a-record-wrong-nic")
    world = fleet.world
    # EX01: the MAPI NIC's registration is off, the backup NIC's on: the name is the backup's.
    assert world.registered("ex01.contoso.local") == ("192.168.60.21",)
    # EX02: both NICs register.
    assert world.registered("ex02.contoso.local") == ("10.0.0.22", "192.168.50.22")
    ex01 = fleet.host("EX01")
    assert {q.status for q in ex01.queues} == {"Retry"}
    assert all("ErrorRetry" in (q.last_error or "") for q in ex01.queues)
    # EX02 still delivers: its name holds the MAPI address.
    assert {q.status for q in fleet.host("EX02").queues} == {"Ready"}


def test_register_dns_client_replaces_the_record_with_what_registers_now() -> None:
    fleet = make_fleet("server-a-record-wrong-nic")
    ex01 = fleet.host("EX01")
    ok(ex01, OS, "Set-DnsClient", ("InterfaceIndex", 4), ("RegisterThisConnectionsAddress", True))
    assert fleet.world.registered("ex01.contoso.local") == ("192.168.60.21",)  # nothing until registered
    ok(ex01, OS, "Register-DnsClient")
    assert fleet.world.registered("ex01.contoso.local") == ("10.0.0.21", "192.168.60.21")
    ok(ex01, OS, "Set-DnsClient", ("InterfaceIndex", 6), ("RegisterThisConnectionsAddress", False))
    ok(ex01, OS, "Register-DnsClient")
    assert fleet.world.registered("ex01.contoso.local") == ("10.0.0.21",)
    ok(ex01, EX, "Retry-Queue", ("Identity", "EX01\\1"))
    assert ex01.queue("fabrikam.com").status == "Ready"


def test_a_nic_without_a_dns_server_registers_nothing() -> None:
    # healthy-multi-nic EX03: the replication NIC's registration is on, but it has no server.
    fleet = make_fleet("healthy-multi-nic")
    assert fleet.world.registered("ex03.contoso.local") == ("10.0.0.23",)
    assert fleet.world.registered("ex01.contoso.local") == ("10.0.0.21",)


def test_the_ipv6_row_shows_windows_placeholders_unless_told_otherwise() -> None:
    fleet = make_fleet("healthy-multi-nic")
    rows = ok(fleet.host("EX01"), OS, "Get-DnsClientServerAddress", ("AddressFamily", "IPv6"))
    assert [list(prop(r, "ServerAddresses")) for r in rows] == [PLACEHOLDERS, PLACEHOLDERS]
    ex02 = fleet.host("EX02")
    rows = ok(ex02, OS, "Get-DnsClientServerAddress", ("AddressFamily", "IPv6"))
    shown = {int(prop(r, "InterfaceIndex")): list(prop(r, "ServerAddresses")) for r in rows}
    # A configured IPv6 server replaces the placeholders; ipv6_dns_placeholders: false is an
    # empty row, as the Exchange 2016 capture shows; the default is the trio.
    assert shown == {4: ["fd00:10::10"], 7: [], 9: PLACEHOLDERS}
    rows = ok(fleet.host("EX01"), OS, "Get-DnsClientServerAddress", ("AddressFamily", "IPv4"))
    assert list(prop(rows[0], "ServerAddresses")) == ["10.0.0.10", "10.0.0.11", "10.0.0.10"]  # as listed


def test_an_ipv6_dns_server_takes_part_in_mail_flow() -> None:
    # Transport reads the MAPI NIC's servers of both families at start; with only the IPv6 AD
    # DNS server left on the NIC, mail still flows through it.
    fleet = make_fleet("healthy-multi-nic")
    state = fleet.host("EX02").state
    assert state.cache.adapter_dns_servers == ("10.0.0.10", "fd00:10::10")
    ex02 = fleet.host("EX02")
    ok(ex02, OS, "Set-DnsClientServerAddress", ("InterfaceIndex", 4), ("ServerAddresses", ["fd00:10::10"]))
    ok(ex02, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    assert state.cache.adapter_dns_servers == ("fd00:10::10",)
    assert {q.status for q in ex02.queues} == {"Ready"}


def _scenario_with(tmp_path: Path, **nic: object) -> Path:
    data = yaml.safe_load((SCENARIO_DIR / "healthy.yaml").read_text(encoding="utf-8"))
    data["hosts"][0]["nics"][0].update(nic)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_an_ipv6_dns_server_must_be_listed_like_an_ipv4_one(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"ipv6_dns_servers\.0.*fd00::53 is not listed in dns\.servers"):
        make_fleet(_scenario_with(tmp_path, ipv6_dns_servers=["fd00::53"]))


def test_placeholders_are_shown_only(tmp_path: Path) -> None:
    fleet = make_fleet(_scenario_with(tmp_path))
    state = fleet.host("EX01").state
    assert state.mapi_nic.shown_ipv6_dns_servers == PLACEHOLDERS
    # Nothing answers there, and no lab lookup asks them.
    assert state.cache.adapter_dns_servers == ("10.0.0.10",)
