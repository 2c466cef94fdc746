from __future__ import annotations

import dataclasses

from agent.model.facts import HostFacts, QueueFacts, SendConnectorFacts, TransportNoun
from agent.model.probe import Outcome
from agent.rules import (
    dns_server_unreachable,
    transport_external_dns_unresolvable,
    transport_internal_dns_misconfigured,
    transport_no_dns_configured,
)
from support.facts_builders import (
    AD_SRV,
    INTERNAL_DNS,
    PUBLIC_NAME,
    SERVFAIL_ERROR,
    connector,
    host,
    lookup,
    mapi_nic,
    queue,
    server_probes,
    transport,
    unreachable,
)

# --- transport-external-dns-unresolvable --------------------------------------------------

NO_FORWARDERS = "10.0.0.11"


def test_adapter_servers_that_servfail_public_names_fire() -> None:
    # Internal DNS without forwarders on the NIC, adapter lookups on (the default): "Error occurs
    # when you send email to all remote domains", https://learn.microsoft.com/en-us/troubleshoot/exchange/mailflow/dns-query-failed
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=(NO_FORWARDERS,)),),
        probes=server_probes(NO_FORWARDERS, public=Outcome.SERVFAIL),
    )
    (finding,) = transport_external_dns_unresolvable.evaluate(facts)
    assert finding.data.current_servers == (NO_FORWARDERS,)
    assert finding.data.settings_side == "internal"
    assert finding.data.adapter_enabled is True
    assert finding.data.connectors_to_switch == ("Internet",)
    assert finding.data.transport_noun is TransportNoun.TRANSPORT_SERVICE
    assert f"none of them resolves {PUBLIC_NAME}" in finding.summary
    assert f"{NO_FORWARDERS}: SERVFAIL for MX {PUBLIC_NAME} (host)" in finding.summary
    assert "InternalDNSAdapterEnabled=True" in finding.summary
    assert any(
        e.source == "Get-SendConnector" and e.value("UseExternalDNSServersEnabled") is False
        for e in finding.evidence
    )


def test_external_dns_servers_used_when_the_connector_says_so() -> None:
    facts = host(
        transport_facts=transport(external=lookup(adapter=False, servers=("192.0.2.1",))),
        connectors=(connector(use_external=True),),
        probes=server_probes(INTERNAL_DNS)
        + server_probes("192.0.2.1", srv=Outcome.SERVFAIL, public=Outcome.REFUSED),
    )
    (finding,) = transport_external_dns_unresolvable.evaluate(facts)
    assert finding.data.settings_side == "external"
    assert finding.data.current_servers == ("192.0.2.1",)
    assert finding.data.candidate_servers == (INTERNAL_DNS,)
    assert finding.data.connectors_to_switch == ()
    assert "ExternalDNSServers, because ExternalDNSAdapterEnabled=False" in finding.summary
    assert "REFUSED" in finding.summary


def test_external_dns_servers_are_ignored_while_the_adapter_setting_is_on() -> None:
    facts = host(
        transport_facts=transport(external=lookup(adapter=True, servers=("192.0.2.1",))),
        connectors=(connector(use_external=True),),
        probes=server_probes(INTERNAL_DNS) + server_probes("192.0.2.1", public=Outcome.SERVFAIL),
    )
    assert transport_external_dns_unresolvable.evaluate(facts) == ()


def test_one_working_server_is_enough() -> None:
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=(NO_FORWARDERS, INTERNAL_DNS)),),
        probes=server_probes(NO_FORWARDERS, public=Outcome.SERVFAIL) + server_probes(INTERNAL_DNS),
    )
    assert transport_external_dns_unresolvable.evaluate(facts) == ()


def test_only_timeouts_are_not_this_rule() -> None:
    facts = host(nics=(mapi_nic(ipv4_dns_servers=("10.0.0.99",)),), probes=unreachable("10.0.0.99"))
    assert transport_external_dns_unresolvable.evaluate(facts) == ()


def test_timeout_plus_failure_fires() -> None:
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=("10.0.0.99", NO_FORWARDERS)),),
        probes=unreachable("10.0.0.99") + server_probes(NO_FORWARDERS, public=Outcome.NXDOMAIN),
    )
    (finding,) = transport_external_dns_unresolvable.evaluate(facts)
    assert "10.0.0.99: TIMEOUT" in finding.summary and f"{NO_FORWARDERS}: NXDOMAIN" in finding.summary


def test_unprobed_server_means_no_verdict() -> None:
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=(NO_FORWARDERS, "10.0.0.12")),),
        probes=server_probes(NO_FORWARDERS, public=Outcome.SERVFAIL),
    )
    assert transport_external_dns_unresolvable.evaluate(facts) == ()


def test_no_transport_facts_no_finding() -> None:
    facts = host(
        no_transport=True,
        nics=(mapi_nic(ipv4_dns_servers=(NO_FORWARDERS,)),),
        probes=server_probes(NO_FORWARDERS, public=Outcome.SERVFAIL),
    )
    assert transport_external_dns_unresolvable.evaluate(facts) == ()


def test_nodata_for_the_public_name_still_counts_as_resolving() -> None:
    facts = host(probes=server_probes(INTERNAL_DNS, public=Outcome.NODATA))
    assert transport_external_dns_unresolvable.evaluate(facts) == ()


# --- transport-internal-dns-misconfigured -------------------------------------------------


def test_internal_servers_that_cannot_resolve_ad_fire() -> None:
    facts = host(
        transport_facts=transport(internal=lookup(adapter=False, servers=("8.8.8.8",))),
        probes=server_probes(INTERNAL_DNS) + server_probes("8.8.8.8", srv=Outcome.NXDOMAIN),
    )
    (finding,) = transport_internal_dns_misconfigured.evaluate(facts)
    assert finding.data.current_servers == ("8.8.8.8",)
    assert finding.data.candidate_servers == (INTERNAL_DNS,)
    assert finding.data.adapter_servers == (INTERNAL_DNS,)
    assert finding.summary.startswith(
        "InternalDNSAdapterEnabled=False and InternalDNSServers 8.8.8.8 cannot resolve"
    )
    assert f"8.8.8.8: NXDOMAIN for SRV {AD_SRV} (host)" in finding.summary
    assert finding.evidence[0].value("InternalDNSAdapterEnabled") is False
    assert finding.evidence[0].value("InternalDNSServers") == ("8.8.8.8",)


def test_nodata_for_the_srv_record_fails_too() -> None:
    facts = host(
        transport_facts=transport(internal=lookup(adapter=False, servers=("10.0.5.5",))),
        probes=server_probes(INTERNAL_DNS) + server_probes("10.0.5.5", srv=Outcome.NODATA),
    )
    assert len(transport_internal_dns_misconfigured.evaluate(facts)) == 1


def test_internal_servers_that_resolve_ad_are_clean() -> None:
    facts = host(transport_facts=transport(internal=lookup(adapter=False, servers=(INTERNAL_DNS,))))
    assert transport_internal_dns_misconfigured.evaluate(facts) == ()


def test_adapter_enabled_internal_is_clean() -> None:
    facts = host(
        transport_facts=transport(internal=lookup(adapter=True, servers=("8.8.8.8",))),
        probes=server_probes(INTERNAL_DNS) + server_probes("8.8.8.8", srv=Outcome.NXDOMAIN),
    )
    assert transport_internal_dns_misconfigured.evaluate(facts) == ()


# --- transport-no-dns-configured ----------------------------------------------------------


def test_adapter_off_and_no_servers_fires_naming_the_side_and_the_connector() -> None:
    facts = host(
        transport_facts=transport(external=lookup(adapter=False, servers=())),
        connectors=(connector(use_external=True),),
    )
    (finding,) = transport_no_dns_configured.evaluate(facts)
    assert finding.data.sides == ("external",)
    assert finding.summary == (
        "ExternalDNSAdapterEnabled=False and ExternalDNSServers is empty (used by send connector "
        "'Internet'): transport has no DNS server for external lookups"
    )
    assert finding.evidence[0].source == "Get-TransportService"
    (path,) = [e for e in finding.evidence if e.source == "mail path"]
    assert path.subject == "send connector 'Internet'"
    assert path.value("why") == "send connector 'Internet' has UseExternalDNSServersEnabled=True"


def test_an_empty_external_group_no_connector_uses_is_no_fault() -> None:
    # UseExternalDNSServersEnabled defaults to $false (Set-SendConnector docs): the External*
    # settings are then on no route, whatever they hold.
    facts = host(transport_facts=transport(external=lookup(adapter=False, servers=())))
    assert transport_no_dns_configured.evaluate(facts) == ()


def test_both_sides_and_exchange_2010_noun() -> None:
    from support.facts_builders import exchange

    facts = host(
        exchange_facts=exchange(14),
        transport_facts=transport(external=lookup(adapter=False), internal=lookup(adapter=False)),
        connectors=(connector(use_external=True),),
    )
    (finding,) = transport_no_dns_configured.evaluate(facts)
    assert finding.data.sides == ("external", "internal")
    assert finding.data.transport_noun is TransportNoun.TRANSPORT_SERVER
    assert {e.source for e in finding.evidence} == {"Get-TransportServer", "mail path"}
    assert "InternalDNSServers is empty (used by internal next hops)" in finding.summary


def test_the_internal_group_is_always_on_the_path() -> None:
    facts = host(transport_facts=transport(internal=lookup(adapter=False)))
    (finding,) = transport_no_dns_configured.evaluate(facts)
    assert finding.data.sides == ("internal",)
    assert "(used by internal next hops and send connector 'Internet')" in finding.summary


def test_servers_configured_is_clean() -> None:
    facts = host(transport_facts=transport(external=lookup(adapter=False, servers=("10.0.0.10",))))
    assert transport_no_dns_configured.evaluate(facts) == ()
    assert transport_no_dns_configured.evaluate(host()) == ()


# --- which settings are on the mail path (issue 9, class 3) -------------------------------

BROKEN_EXTERNAL = "192.0.2.1"


def broken_external(
    connectors: tuple[SendConnectorFacts, ...] | None = None, queues: tuple[QueueFacts, ...] = ()
) -> HostFacts:
    """External* settings whose one server resolves nothing; the NIC's server is fine."""
    return host(
        transport_facts=transport(external=lookup(adapter=False, servers=(BROKEN_EXTERNAL,))),
        connectors=connectors,
        queues=queues,
        probes=server_probes(INTERNAL_DNS)
        + server_probes(BROKEN_EXTERNAL, srv=Outcome.SERVFAIL, public=Outcome.SERVFAIL),
    )


def test_external_settings_no_connector_uses_are_not_judged() -> None:
    facts = broken_external()
    assert transport_external_dns_unresolvable.evaluate(facts) == ()


def test_external_settings_a_connector_uses_are_judged_and_the_connector_named() -> None:
    facts = broken_external(connectors=(connector(use_external=True),))
    (finding,) = transport_external_dns_unresolvable.evaluate(facts)
    assert finding.data.settings_side == "external"
    assert finding.summary.startswith("for send connector 'Internet', transport resolves internet names")
    (path,) = [e for e in finding.evidence if e.source == "mail path"]
    assert path.subject == "send connector 'Internet'" and path.value("settings used") == "ExternalDNS*"


def test_a_connector_of_another_server_puts_nothing_on_this_ones_path() -> None:
    theirs = dataclasses.replace(connector(use_external=True), source_transport_servers=("EX02",))
    mine = connector("Internet EX01", use_external=False)
    facts = broken_external(connectors=(theirs, mine))
    assert transport_external_dns_unresolvable.evaluate(facts) == ()
    # ... and a server only on that unused list is not reported unreachable either.
    facts = host(
        transport_facts=transport(external=lookup(adapter=False, servers=("10.0.0.99",))),
        connectors=(theirs, mine),
        probes=server_probes(INTERNAL_DNS) + unreachable("10.0.0.99"),
    )
    assert dns_server_unreachable.evaluate(facts) == ()


def test_smart_host_and_front_end_proxy_connectors_are_not_judged_by_transport_settings() -> None:
    smart = connector(use_external=True, dns_routing=False, smart_hosts=("[203.0.113.5]",))
    proxied = dataclasses.replace(connector(use_external=True), frontend_proxy_enabled=True)
    for internet in (smart, proxied):
        facts = broken_external(connectors=(internet,))
        assert transport_external_dns_unresolvable.evaluate(facts) == ()
        facts = host(
            transport_facts=transport(external=lookup(adapter=False, servers=())), connectors=(internet,)
        )
        assert transport_no_dns_configured.evaluate(facts) == ()


def test_the_cheapest_internet_connector_is_the_route() -> None:
    cheap = connector("Internet", use_external=True, spaces=("SMTP:*;1",))
    dear = connector("Backup", use_external=False, spaces=("SMTP:*;10",))
    facts = broken_external(connectors=(dear, cheap))
    (finding,) = transport_external_dns_unresolvable.evaluate(facts)
    assert "send connector 'Internet'" in finding.summary and "Backup" not in finding.summary


def test_a_domain_connector_that_uses_the_broken_settings_is_named_with_its_queues() -> None:
    partner = connector("Partner", use_external=True, spaces=("SMTP:partner.example;1",))
    failing = queue("EX01\\9", next_hop="partner.example", last_error=SERVFAIL_ERROR)
    facts = broken_external(connectors=(connector(), partner), queues=(failing,))
    (finding,) = transport_external_dns_unresolvable.evaluate(facts)
    assert finding.data.settings_side == "external" and finding.data.connectors_to_switch == ()
    (path,) = [e for e in finding.evidence if e.source == "mail path"]
    assert path.subject == "send connector 'Partner'"
    assert path.value("failing queues") == ("EX01\\9",)
