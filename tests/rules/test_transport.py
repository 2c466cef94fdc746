from __future__ import annotations

from agent.model.facts import TransportNoun
from agent.model.probe import Outcome
from agent.rules import (
    transport_external_dns_unresolvable,
    transport_internal_dns_misconfigured,
    transport_no_dns_configured,
)
from support.facts_builders import (
    AD_SRV,
    INTERNAL_DNS,
    PUBLIC_NAME,
    connector,
    host,
    lookup,
    mapi_nic,
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


def test_adapter_off_and_no_servers_fires_naming_the_side() -> None:
    facts = host(transport_facts=transport(external=lookup(adapter=False, servers=())))
    (finding,) = transport_no_dns_configured.evaluate(facts)
    assert finding.data.sides == ("external",)
    assert finding.summary == (
        "ExternalDNSAdapterEnabled=False and ExternalDNSServers is empty: "
        "transport has no DNS server for external lookups"
    )
    assert finding.evidence[0].source == "Get-TransportService"


def test_both_sides_and_exchange_2010_noun() -> None:
    from support.facts_builders import exchange

    facts = host(
        exchange_facts=exchange(14),
        transport_facts=transport(external=lookup(adapter=False), internal=lookup(adapter=False)),
    )
    (finding,) = transport_no_dns_configured.evaluate(facts)
    assert finding.data.sides == ("external", "internal")
    assert finding.data.transport_noun is TransportNoun.TRANSPORT_SERVER
    assert {e.source for e in finding.evidence} == {"Get-TransportServer"}


def test_servers_configured_is_clean() -> None:
    facts = host(transport_facts=transport(external=lookup(adapter=False, servers=("10.0.0.10",))))
    assert transport_no_dns_configured.evaluate(facts) == ()
    assert transport_no_dns_configured.evaluate(host()) == ()
