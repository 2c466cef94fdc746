from __future__ import annotations

import dataclasses
import json

from agent.evaluate import evaluate, evaluate_fleet, judge, not_judged
from agent.model.facts import (
    AreaIssue,
    CollectionArea,
    CollectionStatus,
    DnsCacheEntry,
    EdgeConfigFileFacts,
    EdgeTransportConfigFacts,
    FirewallFacts,
    HostFacts,
    NicSelection,
    XmlSyntaxError,
)
from agent.model.finding_data import SymptomScope
from agent.model.probe import Outcome, Vantage
from agent.rules.registry import RULES
from support.facts_builders import (
    EDGE_CONFIG,
    HOST,
    INTERNAL_DNS,
    NXDOMAIN_ERROR,
    SERVFAIL_ERROR,
    broken,
    connector,
    firewall_rule,
    host,
    internal_queue,
    lookup,
    mapi_nic,
    probe,
    queue,
    replication_nic,
    rounds,
    server_probes,
    transport,
    unreachable,
)


def test_healthy_host_has_no_findings() -> None:
    assert evaluate(host()) == ()


def test_internal_symptom_is_explained_by_the_nic_cause() -> None:
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8")), replication_nic()),
        queues=(internal_queue(),),
    )
    findings = evaluate(facts)
    ids = [f.rule_id for f in findings]
    assert ids == ["queue-dns-failure", "nic-external-dns-server"]
    symptom, cause = findings
    assert symptom.explained_by == (cause.id,)
    assert cause.id == "nic-external-dns-server|ex01.contoso.local|NIC 'Ethernet0' (InterfaceIndex 12)"
    assert cause.explained_by == ()


def test_domain_symptom_links_only_the_matching_domain_cause() -> None:
    queues = (
        queue("EX01\\12", next_hop="fabrikam.com", last_error=SERVFAIL_ERROR),
        queue("EX01\\13", next_hop="tailspintoys.com", status="Ready", messages=0),
    )
    probes = (
        probe(INTERNAL_DNS, "fabrikam.com", "MX", Outcome.ANSWER, ("10 mx1.fabrikam.com.",)),
        probe(INTERNAL_DNS, "mx1.fabrikam.com", "A", Outcome.ANSWER, ("203.0.113.10",)),
        probe(INTERNAL_DNS, "mx1.fabrikam.com", "AAAA", Outcome.SERVFAIL),
    )
    facts = host(
        queues=queues,
        extra_probes=probes,
        edge=EdgeTransportConfigFacts("C:\\x\\Bin\\EdgeTransport.exe.config", "Normal", True),
    )
    findings = evaluate(facts)
    by_rule = {f.rule_id: f for f in findings}
    symptom = by_rule["queue-dns-failure"]
    assert symptom.subject == "fabrikam.com"
    assert symptom.explained_by == (
        by_rule["remote-domain-aaaa-broken"].id,
        by_rule["dns-fault-tolerance"].id,
    )


def test_external_symptom_is_not_explained_by_an_internal_only_cause() -> None:
    queues = (
        queue("EX01\\12", next_hop="fabrikam.com", last_error=SERVFAIL_ERROR),
        queue("EX01\\13", next_hop="tailspintoys.com", last_error=SERVFAIL_ERROR),
    )
    facts = host(
        queues=queues,
        nics=(mapi_nic(ipv4_dns_servers=("10.0.0.11",)),),
        connectors=(connector(use_external=True),),
        transport_facts=transport(internal=lookup(adapter=False, servers=("8.8.8.8",))),
        probes=server_probes("10.0.0.11", public=Outcome.SERVFAIL)
        + server_probes("8.8.8.8", srv=Outcome.NXDOMAIN),
    )
    by_rule = {f.rule_id: f for f in evaluate(facts)}
    assert set(by_rule) == {
        "queue-dns-failure",
        "transport-external-dns-unresolvable",
        "transport-internal-dns-misconfigured",
    }
    assert by_rule["queue-dns-failure"].data.scope is SymptomScope.ALL_EXTERNAL
    assert by_rule["queue-dns-failure"].explained_by == (by_rule["transport-external-dns-unresolvable"].id,)
    assert by_rule["transport-external-dns-unresolvable"].data.candidate_servers == ("8.8.8.8",)
    assert by_rule["transport-internal-dns-misconfigured"].data.candidate_servers == ("10.0.0.11",)


def test_order_is_stable_and_follows_the_registry() -> None:
    facts = host(
        nics=(mapi_nic(register_this_connections_address=False, ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8")),),
        queues=(internal_queue(),),
    )
    first = evaluate(facts)
    assert first == evaluate(facts)
    order = [r.id for r in RULES]
    assert [order.index(f.rule_id) for f in first] == sorted(order.index(f.rule_id) for f in first)
    symptom = first[0]
    assert symptom.explained_by == (first[1].id, first[2].id)


def test_findings_serialise_to_plain_json_without_presentation() -> None:
    facts = host(nics=(mapi_nic(register_this_connections_address=False),), queues=(internal_queue(),))
    for finding in evaluate(facts):
        data = finding.to_dict()
        text = json.dumps(data)
        assert "\x1b[" not in text
        assert set(data) == {
            "id",
            "rule_id",
            "host",
            "subject",
            "severity",
            "title",
            "summary",
            "evidence",
            "fix_id",
            "fix_disrupts_mail_flow",
            "data",
            "explained_by",
            "level",
            "servers",
        }


def test_fleet_keeps_host_order_and_separates_hosts() -> None:
    broken = host(
        name="ex02.contoso.local",
        nics=(mapi_nic(register_this_connections_address=False),),
        queues=(internal_queue("EX02\\3"),),
    )
    results = evaluate_fleet([host(), broken])
    assert [r.host for r in results] == ["ex01.contoso.local", "ex02.contoso.local"]
    assert results[0].findings == ()
    assert {f.host for f in results[1].findings} == {"ex02.contoso.local"}
    symptom = results[1].findings[0]
    assert all(link.split("|")[1] == "ex02.contoso.local" for link in symptom.explained_by)


# --- rules read only the areas they declare; a failed area makes them not judged ---------------


def _blank(facts: HostFacts, area: CollectionArea) -> HostFacts:
    """``facts`` as if ``area`` had not been collected (its part of the facts empty)."""
    if area is CollectionArea.TRANSPORT:
        return dataclasses.replace(facts, transport=None)
    if area is CollectionArea.QUEUES:
        return dataclasses.replace(facts, queues=())
    if area is CollectionArea.SEND_CONNECTORS:
        return dataclasses.replace(facts, org=dataclasses.replace(facts.org, send_connectors=()))
    if area is CollectionArea.NICS:
        return dataclasses.replace(facts, nics=(), mapi_nic=NicSelection(None, "no NIC was collected"))
    if area is CollectionArea.EDGE_CONFIG:
        return dataclasses.replace(facts, edge_config=None)
    if area is CollectionArea.DNS_CACHE:
        return dataclasses.replace(facts, dns_cache=None)
    if area is CollectionArea.FIREWALL:
        return dataclasses.replace(facts, firewall=None)
    return dataclasses.replace(facts, edge_config_file=None)


def _varied_hosts() -> list[HostFacts]:
    """Hosts on which, between them, every rule fires."""
    fabrikam = (
        probe(INTERNAL_DNS, "fabrikam.com", "MX", Outcome.ANSWER, ("10 mx1.fabrikam.com.",)),
        probe(INTERNAL_DNS, "mx1.fabrikam.com", "A", Outcome.ANSWER, ("203.0.113.10",)),
        probe(INTERNAL_DNS, "mx1.fabrikam.com", "AAAA", Outcome.SERVFAIL),
        probe(INTERNAL_DNS, "nowhere.example", "MX", Outcome.NXDOMAIN),
        probe(INTERNAL_DNS, "nowhere.example", "A", Outcome.NXDOMAIN),
    )
    bad_file = EdgeConfigFileFacts(EDGE_CONFIG, XmlSyntaxError(3, 7, "mismatched tag", "</x>"))
    return [
        broken(),
        host(
            queues=(
                queue("EX01\\12", next_hop="fabrikam.com", last_error=SERVFAIL_ERROR),
                queue("EX01\\20", next_hop="nowhere.example", last_error=NXDOMAIN_ERROR),
                queue("EX01\\13", next_hop="tailspintoys.com", status="Ready", messages=0),
                internal_queue(),
            ),
            extra_probes=fabrikam,
            remote_domains=("fabrikam.com", "nowhere.example"),
            edge_file=bad_file,
        ),
        host(
            nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "10.0.0.99")), replication_nic()),
            transport_facts=transport(external=lookup(adapter=False), internal=lookup(adapter=False)),
            probes=server_probes(INTERNAL_DNS, public=Outcome.SERVFAIL) + unreachable("10.0.0.99"),
            connectors=(connector(use_external=True),),
        ),
        host(probes=server_probes(INTERNAL_DNS, public=Outcome.SERVFAIL)),
        # The server's A record holds the backup NIC's address (server-a-record-wrong-nic).
        host(
            nics=(
                mapi_nic(register_this_connections_address=False),
                replication_nic(
                    interface_index=16,
                    interface_alias="Backup",
                    register_this_connections_address=True,
                    ipv4_addresses=("192.168.60.21",),
                    ipv4_dns_servers=(INTERNAL_DNS,),
                ),
            ),
            probes=tuple(
                probe(INTERNAL_DNS, HOST, "A", Outcome.ANSWER, ("192.168.60.21",)) if p.qname == HOST else p
                for p in server_probes(INTERNAL_DNS)
            ),
        ),
        # A stale NotExist for fabrikam.com's MX in the DNS client cache, which 10.0.0.10 answers.
        host(
            queues=(queue("EX01\\12", next_hop="fabrikam.com", last_error=NXDOMAIN_ERROR),),
            extra_probes=fabrikam[:2],
            remote_domains=("fabrikam.com",),
            dns_cache=(DnsCacheEntry("fabrikam.com", "fabrikam.com", 15, 9003, 840),),
        ),
        host(probes=rounds(INTERNAL_DNS, (Outcome.ANSWER, Outcome.SERVFAIL))),  # intermittent
        host(  # the host's firewall drops its DNS to a server that answers exfix
            probes=unreachable(INTERNAL_DNS) + server_probes(INTERNAL_DNS, vantage=Vantage.ORCHESTRATOR),
            firewall=FirewallFacts((firewall_rule(),)),
        ),
    ]


def test_every_rule_reads_only_the_areas_it_declares() -> None:
    """Blanking any area a rule does not declare never changes what it finds: ``reads`` is the
    whole of what each rule looks at, so "not judged" is said exactly where it must be."""
    hosts = _varied_hosts()
    fired = {f.rule_id for facts in hosts for f in evaluate(facts)}
    assert fired == {rule.id for rule in RULES}  # each rule has something to lose
    for rule in RULES:
        for facts in hosts:
            found = rule.evaluate(facts)
            optional = set(rule.metadata.reads_if_collected)
            for area in set(CollectionArea) - set(rule.metadata.reads) - optional:
                assert rule.evaluate(_blank(facts, area)) == found, (rule.id, area.value)
            # An area used only where collected changes the evidence, never what is found.
            for area in optional:
                assert [f.id for f in rule.evaluate(_blank(facts, area))] == [f.id for f in found]


def test_a_failed_area_makes_exactly_its_readers_not_judged() -> None:
    facts = broken()
    for area in CollectionArea:
        failed = dataclasses.replace(
            facts, status=CollectionStatus(facts.status.transport_noun, (AreaIssue(area, "Get-X: denied"),))
        )
        judged = judge(failed)
        # A rule reads the area, or an area read from it (the settings from the file).
        readers = {r.id for r in RULES if any(area in (a, *a.needs) for a in r.metadata.reads)}
        assert {j.rule_id for j in judged.not_judged} == readers, area
        assert not readers & {f.rule_id for f in judged.findings}
        assert all("Get-X: denied" in j.reason for j in judged.not_judged)
        assert evaluate(failed) == judged.findings


def test_without_failed_areas_every_rule_is_judged() -> None:
    assert judge(broken()).not_judged == () and not_judged(host()) == ()
