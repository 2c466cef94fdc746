from __future__ import annotations

from agent.model.finding_data import EnableRegistration
from agent.model.probe import Outcome, Vantage
from agent.rules import nic_dns_registration_disabled, nic_external_dns_server
from support.facts_builders import (
    AD_SRV,
    INTERNAL_DNS,
    MAPI_ADDRESS,
    host,
    mapi_nic,
    replication_nic,
    server_probes,
    values,
)

# --- nic-dns-registration-disabled --------------------------------------------------------


def test_registration_off_on_mapi_nic_fires_with_the_reason_for_the_choice() -> None:
    facts = host(nics=(mapi_nic(register_this_connections_address=False), replication_nic()))
    (finding,) = nic_dns_registration_disabled.evaluate(facts)
    assert finding.rule_id == "nic-dns-registration-disabled"
    assert finding.summary == (
        "NIC 'Ethernet0' (InterfaceIndex 12) RegisterThisConnectionsAddress=False; "
        "chosen as MAPI NIC because "
        "it has the default gateway 10.0.0.1 and holds 10.0.0.21, the address ex01.contoso.local resolves to"
    )
    assert finding.data == EnableRegistration(
        interface_index=12, interface_alias="Ethernet0", fqdn="ex01.contoso.local"
    )
    assert finding.fix_id == "enable-nic-dns-registration"
    assert finding.fix_id is not None  # whether it disrupts mail flow is the fix's (test_fixes_registry.py)
    sources = [item.source for item in finding.evidence]
    assert sources == ["Get-DnsClient", "Get-NetIPConfiguration"]
    assert finding.evidence[0].value("RegisterThisConnectionsAddress") is False


def test_registration_on_is_clean() -> None:
    assert nic_dns_registration_disabled.evaluate(host()) == ()


def test_dag_replication_nic_with_registration_off_and_no_gateway_is_correct() -> None:
    # The default host has exactly that replication NIC: no finding.
    facts = host()
    assert facts.mapi is not None and facts.mapi.interface_index == 12
    assert nic_dns_registration_disabled.evaluate(facts) == ()


def test_unknown_registration_state_is_not_judged() -> None:
    facts = host(nics=(mapi_nic(register_this_connections_address=None),))
    assert nic_dns_registration_disabled.evaluate(facts) == ()


def test_mapi_nic_chosen_by_gateway_when_the_a_record_is_missing() -> None:
    # Registration off usually means the A record is gone: the gateway alone decides.
    probes = server_probes(INTERNAL_DNS, internal=Outcome.NXDOMAIN)
    facts = host(nics=(mapi_nic(register_this_connections_address=False), replication_nic()), probes=probes)
    (finding,) = nic_dns_registration_disabled.evaluate(facts)
    assert "only NIC with a default gateway (10.0.0.1)" in finding.summary
    assert "the address ex01.contoso.local resolves to is not known" in finding.summary


def test_ambiguous_mapi_nic_is_not_judged() -> None:
    second = mapi_nic(
        interface_index=15,
        interface_alias="Ethernet1",
        ipv4_addresses=("10.0.1.21",),
        ipv4_default_gateways=("10.0.1.1",),
        register_this_connections_address=False,
    )
    first = mapi_nic(register_this_connections_address=False, ipv4_addresses=("10.0.2.21",))
    facts = host(nics=(first, second))
    assert facts.mapi is None
    assert facts.mapi_nic.reason.startswith("ambiguous")
    assert nic_dns_registration_disabled.evaluate(facts) == ()


# --- nic-external-dns-server --------------------------------------------------------------


def test_public_server_on_mapi_nic_is_flagged_statically() -> None:
    facts = host(nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8")), replication_nic()))
    (finding,) = nic_external_dns_server.evaluate(facts)
    assert finding.data.drop_servers == ("8.8.8.8",)
    assert finding.data.keep_servers == (INTERNAL_DNS,)
    assert finding.data.current_servers == (INTERNAL_DNS, "8.8.8.8")
    assert finding.data.candidate_servers == (INTERNAL_DNS,)
    assert "8.8.8.8: public address" in finding.summary
    flagged = [e for e in finding.evidence if e.subject == "DNS server 8.8.8.8"]
    assert flagged[0].value("why") == "a public (internet) address"
    assert flagged[0].vantage is None  # static: no probe involved


def test_private_server_failing_the_ad_srv_probe_is_flagged_with_its_vantage() -> None:
    probes = server_probes(INTERNAL_DNS) + server_probes(
        "10.0.0.53", srv=Outcome.NXDOMAIN, internal=Outcome.NXDOMAIN
    )
    facts = host(nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "10.0.0.53")),), probes=probes)
    (finding,) = nic_external_dns_server.evaluate(facts)
    assert finding.data.drop_servers == ("10.0.0.53",)
    assert (
        f"10.0.0.53: cannot resolve {AD_SRV} (host probe: NXDOMAIN for SRV {AD_SRV} (host))"
        in finding.summary
    )
    probe_items = [e for e in finding.evidence if e.source == "Resolve-DnsName"]
    assert probe_items and probe_items[0].vantage == "host"
    assert probe_items[0].value("outcome") == "nxdomain"


def test_orchestrator_probe_counts_when_the_host_did_not_probe() -> None:
    probes = server_probes(INTERNAL_DNS) + server_probes(
        "10.0.0.53", srv=Outcome.SERVFAIL, vantage=Vantage.ORCHESTRATOR
    )
    facts = host(nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "10.0.0.53")),), probes=probes)
    (finding,) = nic_external_dns_server.evaluate(facts)
    assert "orchestrator probe" in finding.summary
    assert any(e.source == "dns-probe" and e.vantage == "orchestrator" for e in finding.evidence)


def test_host_view_wins_over_the_orchestrator() -> None:
    probes = (
        server_probes(INTERNAL_DNS)
        + server_probes("10.0.0.53", srv=Outcome.SERVFAIL, vantage=Vantage.ORCHESTRATOR)
        + server_probes("10.0.0.53")
    )
    facts = host(nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "10.0.0.53")),), probes=probes)
    assert nic_external_dns_server.evaluate(facts) == ()


def test_timeouts_are_not_this_rule() -> None:
    probes = server_probes(INTERNAL_DNS) + server_probes("10.0.0.53", srv=Outcome.TIMEOUT)
    facts = host(nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "10.0.0.53")),), probes=probes)
    assert nic_external_dns_server.evaluate(facts) == ()


def test_internal_only_servers_are_clean() -> None:
    assert nic_external_dns_server.evaluate(host()) == ()


def test_ipv6_site_local_placeholders_are_not_public() -> None:
    nic = mapi_nic(ipv6_dns_servers=("fec0:0:0:ffff::1", "fec0:0:0:ffff::2"))
    assert nic_external_dns_server.evaluate(host(nics=(nic,))) == ()


def test_public_server_on_a_non_mapi_nic_is_not_judged() -> None:
    facts = host(nics=(mapi_nic(), replication_nic(ipv4_dns_servers=("8.8.8.8",))))
    assert nic_external_dns_server.evaluate(facts) == ()


def test_evidence_names_exact_values() -> None:
    facts = host(nics=(mapi_nic(ipv4_dns_servers=("8.8.4.4", INTERNAL_DNS)),))
    (finding,) = nic_external_dns_server.evaluate(facts)
    text = values(finding)
    assert "8.8.4.4" in text and "NIC 'Ethernet0' (InterfaceIndex 12)" in text and MAPI_ADDRESS in text
