"""What the probes ask: the configured DNS servers (agent/model/dns_servers.py), never Windows'
placeholders, empty rows or repeats; configured IPv6 servers like any other. And how the MAPI
NIC is chosen when the A record and the default gateway disagree."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.collect import assemble, host_probe, nics
from agent.collect.dns_probe import probe_domain
from agent.model.probe import Outcome
from mock_remoting.dns.responder import DnsResponders
from support.dns_world import dns_scenario, dns_world
from support.facts_builders import TARGETS, mapi_nic, replication_nic, transport

PLACEHOLDERS = ("fec0:0:0:ffff::1", "fec0:0:0:ffff::2", "fec0:0:0:ffff::3")


def test_the_probes_ask_configured_servers_only() -> None:
    listed = (
        mapi_nic(ipv4_dns_servers=("10.0.0.10", "10.0.0.10", "10.0.0.11"), ipv6_dns_servers=PLACEHOLDERS),
        replication_nic(ipv6_dns_servers=PLACEHOLDERS),
        # The loopback pseudo-interface Get-DnsClientServerAddress lists: no IPv4 server, the trio.
        mapi_nic(interface_index=1, interface_alias="Loopback Pseudo-Interface 1", ipv4_dns_servers=(),
                 ipv6_dns_servers=tuple(f"{p}%1" for p in PLACEHOLDERS), ipv4_addresses=(),
                 ipv4_default_gateways=()),
    )  # fmt: skip
    servers = assemble.configured_dns_servers(listed, transport())
    assert servers == ("10.0.0.10", "10.0.0.11")
    asked = {c.param("Server") for c in host_probe.calls(TARGETS, (*servers, *PLACEHOLDERS, ""))}
    assert asked == {"10.0.0.10", "10.0.0.11"}
    assert {c.param("Server") for c in host_probe.remote_domain_calls("fabrikam.com", PLACEHOLDERS)} == set()
    assert host_probe.mx_host_calls("mx1.fabrikam.com", ("::", "0.0.0.0")) == ()


def test_a_configured_ipv6_server_is_probed_in_canonical_form() -> None:
    listed = (mapi_nic(ipv4_dns_servers=("10.0.0.10",), ipv6_dns_servers=("FD00:10::10",)),)
    servers = assemble.configured_dns_servers(listed, None)
    assert servers == ("10.0.0.10", "fd00:10::10")
    assert [c.param("Server") for c in host_probe.calls(TARGETS, servers)][::3] == list(servers)


@pytest.fixture(scope="module")
def ipv6_lab() -> Iterator[dict[str, str]]:
    scenario = dns_scenario()
    scenario["dns"]["servers"]["fd00:10::10"] = {"kind": "internal", "forward": True}
    with DnsResponders(dns_world(scenario)) as responders:
        yield responders.address_map


def test_the_orchestrator_probe_asks_an_ipv6_server_through_the_address_map(ipv6_lab: dict[str, str]) -> None:
    # The lab maps the IPv6 scenario address to a loopback responder: nothing leaves 127.0.0.1.
    assert ipv6_lab["fd00:10::10"].startswith("127.0.0.1:")
    probe = probe_domain("fabrikam.com", [*PLACEHOLDERS, "fd00:10::10"], address_map=ipv6_lab, timeout=2.0)
    assert probe.servers == ("fd00:10::10",)  # the placeholders are not asked at all
    assert probe.server == "fd00:10::10"
    first = probe.results[0]
    assert (first.server, first.rdtype, first.outcome) == ("fd00:10::10", "MX", Outcome.ANSWER)


# --- the MAPI NIC when the A record points elsewhere ------------------------------------------


def test_the_default_gateway_decides_when_the_a_record_points_at_a_nic_without_one() -> None:
    backup = replication_nic(interface_alias="Backup", ipv4_addresses=("192.168.60.21",),
                             register_this_connections_address=True)  # fmt: skip
    chosen = nics.choose_mapi_nic((mapi_nic(), backup), "ex01.contoso.local", ("192.168.60.21",))
    assert chosen.interface_index == 12
    assert chosen.reason == (
        "it is the only NIC with a default gateway (10.0.0.1); ex01.contoso.local resolves to 192.168.60.21 "
        "on NIC 'Backup' (InterfaceIndex 14), which has no default gateway: the A record follows the NICs "
        "that register in DNS, the gateway follows the network design"
    )


def test_without_any_gateway_the_a_record_decides() -> None:
    first = mapi_nic(ipv4_default_gateways=())
    chosen = nics.choose_mapi_nic((first, replication_nic()), "ex01.contoso.local", ("10.0.0.21",))
    assert chosen.interface_index == 12
    assert chosen.reason.endswith("no NIC has a default gateway")


def test_two_gateways_and_the_record_on_a_third_nic_is_ambiguous() -> None:
    second = mapi_nic(interface_index=15, interface_alias="Ethernet1", ipv4_addresses=("10.0.1.21",),
                      ipv4_default_gateways=("10.0.1.1",))  # fmt: skip
    chosen = nics.choose_mapi_nic((mapi_nic(), second, replication_nic()), "h", ("192.168.50.21",))
    assert chosen.interface_index is None and chosen.reason.startswith("ambiguous")
