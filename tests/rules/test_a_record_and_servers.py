"""server-a-record-wrong-nic, and what every rule counts as a configured DNS server (Windows'
placeholders and empty rows are none; a configured IPv6 server is one). Plain data."""

from __future__ import annotations

from agent.model.facts import NicFacts
from agent.model.finding_data import RegisterMapiNic
from agent.model.probe import DnsQueryResult, Outcome, Vantage
from agent.rules import _common as c
from agent.rules import (
    dns_server_unreachable,
    nic_dns_registration_disabled,
    nic_external_dns_server,
    server_a_record_wrong_nic,
    transport_external_dns_unresolvable,
)
from support.facts_builders import (
    AD_SRV,
    HOST,
    INTERNAL_DNS,
    MAPI_ADDRESS,
    connector,
    host,
    lookup,
    mapi_nic,
    probe,
    replication_nic,
    server_probes,
    transport,
    unreachable,
    values,
)

PLACEHOLDERS = ("fec0:0:0:ffff::1", "fec0:0:0:ffff::2", "fec0:0:0:ffff::3")
BACKUP = "192.168.60.21"


def backup_nic(**changes: object) -> NicFacts:
    """A backup NIC that registers itself: no gateway, a DNS server, registration on."""
    base: dict[str, object] = {
        "interface_index": 16,
        "interface_alias": "Backup",
        "register_this_connections_address": True,
        "ipv4_addresses": (BACKUP,),
        "ipv4_dns_servers": (INTERNAL_DNS,),
        "ipv6_dns_servers": PLACEHOLDERS,
    }
    base.update(changes)
    return replication_nic(**base)


def record(*addresses: str, vantage: Vantage = Vantage.HOST) -> tuple[DnsQueryResult, ...]:
    """10.0.0.10 answering everything, the server's own A record holding ``addresses``."""
    probes = server_probes(INTERNAL_DNS, vantage=vantage)
    return tuple(
        probe(INTERNAL_DNS, HOST, "A", Outcome.ANSWER, addresses, vantage) if p.qname == HOST else p
        for p in probes
    )


# --- server-a-record-wrong-nic ------------------------------------------------------------------


def test_registration_on_the_backup_nic_and_off_on_the_mapi_nic() -> None:
    facts = host(
        nics=(mapi_nic(register_this_connections_address=False), backup_nic()),
        probes=record(BACKUP),
    )
    assert facts.mapi is not None and facts.mapi.interface_index == 12  # the gateway decides
    (finding,) = server_a_record_wrong_nic.evaluate(facts)
    assert finding.subject == f"A record of {HOST}"
    assert finding.data == RegisterMapiNic(
        fqdn=HOST, a_record=(BACKUP,), interface_index=12, interface_alias="Ethernet0",
        mapi_addresses=(MAPI_ADDRESS,), other_indexes=(16,), other_aliases=("Backup",),
        decisions=(c.dedicated_network(backup_nic())[1],),
        turn_off=(16,),
    )  # fmt: skip
    text = values(finding)
    # The A record as probed, the NIC that holds it, why the MAPI NIC was chosen.
    assert f"{HOST} resolves to {BACKUP} of NIC 'Backup' (InterfaceIndex 16)" in finding.summary
    assert (
        "not 10.0.0.21 of the MAPI NIC 'Ethernet0' (InterfaceIndex 12) (RegisterThisConnectionsAddress=False)"
        in (finding.summary)
    )
    assert (
        "chosen as MAPI NIC because it is the only NIC with a default gateway (10.0.0.1)" in finding.summary
    )
    record_item = next(e for e in finding.evidence if e.subject == f"A record of {HOST}")
    assert record_item.source == "A record (probed)" and record_item.value("from") == "host"
    assert record_item.value("A") == (BACKUP,) and record_item.value("asked") == (INTERNAL_DNS,)
    assert record_item.value("MAPI NIC's addresses in it") == ()
    holder = next(e for e in finding.evidence if e.subject == "NIC 'Backup' (InterfaceIndex 16)")
    assert holder.value("holds A record value") == (BACKUP,)
    assert "exfix turns its registration off" in str(holder.value("decision"))
    assert "MAPI/primary NIC" in text
    # One cause, one finding: the registration rule leaves it to this one.
    assert nic_dns_registration_disabled.evaluate(facts) == ()


def test_a_dedicated_nic_registering_beside_the_mapi_nic_fires_without_a_mail_symptom() -> None:
    facts = host(
        nics=(mapi_nic(), backup_nic(interface_alias="Replication")), probes=record(MAPI_ADDRESS, BACKUP)
    )
    (finding,) = server_a_record_wrong_nic.evaluate(facts)
    assert finding.data.turn_off == (16,)
    assert f"and {MAPI_ADDRESS} of the MAPI NIC 'Ethernet0'" in finding.summary


def test_a_client_network_registering_beside_the_mapi_nic_is_a_design() -> None:
    second = backup_nic(interface_alias="Clients2", ipv4_default_gateways=())
    facts = host(nics=(mapi_nic(), second), probes=record(MAPI_ADDRESS, BACKUP))
    assert server_a_record_wrong_nic.evaluate(facts) == ()


def test_the_record_on_an_unnamed_nic_without_gateway_is_reported_and_left_as_it_is() -> None:
    lan2 = backup_nic(interface_alias="LAN 2", interface_description="Intel(R) I350")
    facts = host(nics=(mapi_nic(register_this_connections_address=False), lan2), probes=record(BACKUP))
    (finding,) = server_a_record_wrong_nic.evaluate(facts)
    assert finding.data.turn_off == ()
    assert "neither its name nor its description says it is a backup" in finding.data.decisions[0]


def test_a_dedicated_nic_whose_registration_is_already_off_holds_a_stale_record() -> None:
    stale = backup_nic(register_this_connections_address=False)
    facts = host(nics=(mapi_nic(), stale), probes=record(MAPI_ADDRESS, BACKUP))
    (finding,) = server_a_record_wrong_nic.evaluate(facts)
    assert finding.data.turn_off == ()
    assert "delete that record in DNS" in finding.data.decisions[0]


def test_healthy_hosts_and_unknowns_are_silent() -> None:
    assert server_a_record_wrong_nic.evaluate(host()) == ()  # the record holds the MAPI address only
    # No answer for the record: nic-dns-registration-disabled's case, not this one.
    facts = host(nics=(mapi_nic(register_this_connections_address=False), replication_nic()),
                 probes=server_probes(INTERNAL_DNS, internal=Outcome.NXDOMAIN))  # fmt: skip
    assert server_a_record_wrong_nic.evaluate(facts) == ()
    assert [f.rule_id for f in nic_dns_registration_disabled.evaluate(facts)] == [
        "nic-dns-registration-disabled"
    ]
    # A record that no NIC holds (a stale address from elsewhere) names no NIC.
    assert server_a_record_wrong_nic.evaluate(host(probes=record("10.9.9.9"))) == ()


def test_the_loopback_pseudo_interface_is_never_the_wrong_nic() -> None:
    loopback = mapi_nic(
        interface_index=1,
        interface_alias="Loopback Pseudo-Interface 1",
        ipv4_dns_servers=(),
        ipv6_dns_servers=PLACEHOLDERS,
        ipv4_addresses=(),
        ipv4_default_gateways=(),
    )
    facts = host(nics=(mapi_nic(), replication_nic(), loopback))
    assert facts.mapi is not None and facts.mapi.interface_index == 12
    assert server_a_record_wrong_nic.evaluate(facts) == ()
    assert dns_server_unreachable.evaluate(facts) == ()


def test_the_record_is_read_from_the_orchestrator_when_the_host_did_not_probe() -> None:
    facts = host(nics=(mapi_nic(register_this_connections_address=False), backup_nic()),
                 probes=record(BACKUP, vantage=Vantage.ORCHESTRATOR))  # fmt: skip
    (finding,) = server_a_record_wrong_nic.evaluate(facts)
    assert finding.evidence[0].value("from") == "orchestrator"
    assert finding.evidence[1].source == "dns-probe"


def test_the_record_reads_the_same_whatever_order_the_server_answered_in() -> None:
    one = host(
        nics=(mapi_nic(), backup_nic(interface_alias="Replication")), probes=record(BACKUP, MAPI_ADDRESS)
    )
    two = host(
        nics=(mapi_nic(), backup_nic(interface_alias="Replication")), probes=record(MAPI_ADDRESS, BACKUP)
    )
    ((first,), (second,)) = (server_a_record_wrong_nic.evaluate(one), server_a_record_wrong_nic.evaluate(two))
    assert (first.data, first.summary) == (second.data, second.summary)
    assert first.data.a_record == (MAPI_ADDRESS, BACKUP)


def test_dedicated_network_needs_no_gateway_and_a_name_that_says_so() -> None:
    assert c.dedicated_network(backup_nic())[0]
    assert c.dedicated_network(backup_nic(interface_alias="NIC2", interface_description="iSCSI storage"))[0]
    assert not c.dedicated_network(backup_nic(ipv4_default_gateways=("192.168.60.1",)))[0]
    assert not c.dedicated_network(backup_nic(interface_alias="Backbone"))[0]


# --- a configured DNS server, in every rule ---------------------------------------------------


def test_placeholders_beside_a_public_server_are_neither_judged_nor_kept() -> None:
    nic = mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8"), ipv6_dns_servers=PLACEHOLDERS)
    facts = host(
        nics=(nic,), probes=server_probes(INTERNAL_DNS) + server_probes("8.8.8.8", srv=Outcome.NXDOMAIN)
    )
    (finding,) = nic_external_dns_server.evaluate(facts)
    assert finding.data.current_servers == (INTERNAL_DNS, "8.8.8.8")
    assert finding.data.keep_servers == (INTERNAL_DNS,) and finding.data.drop_servers == ("8.8.8.8",)
    listed = finding.evidence[0]
    assert listed.value("ServerAddresses") == (INTERNAL_DNS, "8.8.8.8")
    assert listed.value("not DNS servers") == tuple(
        f"{p} (Windows' IPv6 placeholder (fec0:0:0:ffff::1-3: no IPv6 DNS server is configured))"
        for p in PLACEHOLDERS
    )


def test_a_public_ipv6_server_on_the_mapi_nic_is_flagged() -> None:
    nic = mapi_nic(ipv6_dns_servers=("2001:4860:4860::8888",))
    (finding,) = nic_external_dns_server.evaluate(host(nics=(nic,)))
    assert finding.data.drop_servers == ("2001:4860:4860::8888",)
    assert finding.data.keep_servers == (INTERNAL_DNS,)


def test_an_internal_ipv6_server_that_cannot_resolve_the_ad_domain_is_flagged_by_its_probes() -> None:
    nic = mapi_nic(ipv6_dns_servers=("fd00:10::53",))
    facts = host(
        nics=(nic,), probes=server_probes(INTERNAL_DNS) + server_probes("fd00:10::53", srv=Outcome.NXDOMAIN)
    )
    (finding,) = nic_external_dns_server.evaluate(facts)
    assert finding.data.drop_servers == ("fd00:10::53",)
    assert f"cannot resolve {AD_SRV}" in finding.summary


def test_placeholders_that_timed_out_in_an_old_snapshot_are_no_unreachable_server() -> None:
    # Facts from before the one definition (or any tool) may hold probes of the placeholders;
    # they are still no configured server.
    nic = mapi_nic(ipv6_dns_servers=PLACEHOLDERS)
    probes = server_probes(INTERNAL_DNS) + tuple(p for s in PLACEHOLDERS for p in unreachable(s))
    assert dns_server_unreachable.evaluate(host(nics=(nic,), probes=probes)) == ()


def test_a_configured_ipv6_server_that_never_answers_is_unreachable() -> None:
    nic = mapi_nic(ipv6_dns_servers=("fd00:10::10",))
    probes = server_probes(INTERNAL_DNS) + unreachable("fd00:10::10")
    (finding,) = dns_server_unreachable.evaluate(host(nics=(nic,), probes=probes))
    assert finding.data.server == "fd00:10::10"


def test_an_ipv6_adapter_server_takes_part_in_external_lookups() -> None:
    # Only the IPv6 server forwards: internet names resolve, nothing is reported.
    nic = mapi_nic(ipv4_dns_servers=("10.0.0.11",), ipv6_dns_servers=("fd00:10::10",))
    probes = server_probes("10.0.0.11", public=Outcome.SERVFAIL) + server_probes("fd00:10::10")
    facts = host(nics=(nic,), probes=probes)
    lookup_servers = c.external_lookup(facts)
    assert lookup_servers is not None and lookup_servers.servers == ("10.0.0.11", "fd00:10::10")
    assert not c.external_resolution_broken(facts)
    assert transport_external_dns_unresolvable.evaluate(facts) == ()


def test_external_dns_servers_are_configured_servers_too() -> None:
    settings = lookup(adapter=False, servers=("8.8.8.8", "", "8.8.8.8"))
    facts = host(transport_facts=transport(external=settings), connectors=(connector(use_external=True),))
    lookup_servers = c.external_lookup(facts)
    assert lookup_servers is not None and lookup_servers.servers == ("8.8.8.8",)
    assert "8.8.8.8" in c.all_configured_servers(facts) and "" not in c.all_configured_servers(facts)
