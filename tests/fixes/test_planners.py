"""One planner per fix id: a firing finding (from the real rules) -> exactly these actions,
or an advisory saying why not."""

from __future__ import annotations

import dataclasses

from agent.evaluate import evaluate
from agent.fixes import dns_fault_tolerance, nic_dns_servers, nic_registration, smart_host_connector
from agent.fixes import transport_dns as tdns
from agent.fixes._draft import Planned
from agent.fixes.fingerprint import fingerprint_for
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import EdgeTransportConfigFacts, HostFacts
from agent.model.finding_data import SetNicDnsServers
from agent.model.findings import Finding
from agent.model.plan import EXTERNAL_DNS_VARIABLE, AdvisoryKind, Change, HostVars
from agent.model.probe import Outcome
from support.facts_builders import (
    INTERNAL_DNS,
    SERVFAIL_ERROR,
    connector,
    exchange,
    host,
    lookup,
    mapi_nic,
    probe,
    queue,
    replication_nic,
    server_probes,
    transport,
)

CONFIG = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\EdgeTransport.exe.config"


def only(facts: HostFacts, rule_id: str) -> Finding:
    (found,) = [f for f in evaluate(facts) if f.rule_id == rule_id]
    return found


def calls(planned: object) -> list[CmdletCall]:
    return [d.call for d in planned.drafts]  # type: ignore[attr-defined]


# --- enable-nic-dns-registration ----------------------------------------------------------


def test_registration_planner_sets_the_mapi_nic_by_index_then_registers() -> None:
    facts = host(nics=(mapi_nic(register_this_connections_address=False), replication_nic()))
    finding = only(facts, "nic-dns-registration-disabled")
    planned = nic_registration.plan(finding, facts, HostVars())
    assert planned.advisories == ()
    first, second = planned.drafts
    assert first.call == CmdletCall(
        Endpoint.OS, "Set-DnsClient", (("InterfaceIndex", 12), ("RegisterThisConnectionsAddress", True))
    )
    assert first.changes == (Change("RegisterThisConnectionsAddress", False, True),)
    assert first.read_back == CmdletCall(Endpoint.OS, "Get-DnsClient", (("InterfaceIndex", 12),))
    assert first.rollback == (
        CmdletCall(
            Endpoint.OS, "Set-DnsClient", (("InterfaceIndex", 12), ("RegisterThisConnectionsAddress", False))
        ),
    )
    assert first.restart_required and not first.disruptive and not first.manual
    assert second.call == CmdletCall(Endpoint.OS, "Register-DnsClient")
    assert second.rollback == () and not second.disruptive
    assert first.finding_ids == second.finding_ids == (finding.id,)


# --- set-nic-dns-servers ------------------------------------------------------------------


def test_nic_servers_keep_internal_ones_in_order_and_drop_public_and_broken() -> None:
    facts = host(
        nics=(
            mapi_nic(ipv4_dns_servers=("8.8.8.8", INTERNAL_DNS, "10.0.0.11", "10.0.0.12")),
            replication_nic(),
        ),
        probes=server_probes(INTERNAL_DNS)
        + server_probes("10.0.0.11", srv=Outcome.NXDOMAIN)
        + server_probes("10.0.0.12"),
    )
    finding = only(facts, "nic-external-dns-server")
    (draft,) = nic_dns_servers.plan(finding, facts, HostVars()).drafts
    assert draft.call == CmdletCall(
        Endpoint.OS,
        "Set-DnsClientServerAddress",
        (("InterfaceIndex", 12), ("ServerAddresses", (INTERNAL_DNS, "10.0.0.12"))),
    )
    before = ("8.8.8.8", INTERNAL_DNS, "10.0.0.11", "10.0.0.12")
    assert draft.changes == (Change("ServerAddresses", before, (INTERNAL_DNS, "10.0.0.12")),)
    assert draft.rollback == (
        CmdletCall(
            Endpoint.OS, "Set-DnsClientServerAddress", (("InterfaceIndex", 12), ("ServerAddresses", before))
        ),
    )
    assert draft.restart_required


def test_nic_servers_ignore_the_windows_ipv6_placeholders() -> None:
    placeholders = ("fec0:0:0:ffff::1", "fec0:0:0:ffff::2", "fec0:0:0:ffff::3")
    facts = host(
        nics=(
            mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8"), ipv6_dns_servers=placeholders),
            replication_nic(),
        ),
    )
    (draft,) = nic_dns_servers.plan(only(facts, "nic-external-dns-server"), facts, HostVars()).drafts
    assert draft.call.param("ServerAddresses") == (INTERNAL_DNS,)
    assert draft.rollback[0].param("ServerAddresses") == (INTERNAL_DNS, "8.8.8.8")


def test_nic_servers_with_no_internal_server_left_is_an_advisory_and_no_action() -> None:
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=("8.8.8.8", "1.1.1.1")), replication_nic()),
        probes=server_probes(INTERNAL_DNS),
    )
    finding = only(facts, "nic-external-dns-server")
    planned = nic_dns_servers.plan(finding, facts, HostVars())
    assert planned.drafts == ()
    (advisory,) = planned.advisories
    assert advisory.kind is AdvisoryKind.NO_SERVER_LEFT
    assert advisory.finding_ids == (finding.id,)
    assert "no DNS server" in advisory.message and "1.1.1.1, 8.8.8.8" in advisory.message
    assert INTERNAL_DNS in advisory.message  # the probes' candidate, offered but not applied


# --- set-transport-external-dns ------------------------------------------------------------

BROKEN_EXTERNAL = dict(
    transport_facts=transport(external=lookup(adapter=False, servers=(INTERNAL_DNS,))),
    connectors=(
        connector("Internet", use_external=True),
        connector("Partner", spaces=("SMTP:partner.example;1",)),
    ),
    probes=server_probes(INTERNAL_DNS, public=Outcome.SERVFAIL)
    + server_probes("203.0.113.53", srv=Outcome.NXDOMAIN),
)


def test_external_dns_without_the_variable_is_an_advisory_naming_it() -> None:
    facts = host(**BROKEN_EXTERNAL)  # type: ignore[arg-type]
    finding = only(facts, "transport-external-dns-unresolvable")
    planned = tdns.plan_external(finding, facts, HostVars())
    assert planned.drafts == ()
    (advisory,) = planned.advisories
    assert advisory.kind is AdvisoryKind.MISSING_VARIABLE
    assert advisory.variable == EXTERNAL_DNS_VARIABLE == "exfix_external_dns_servers"
    assert EXTERNAL_DNS_VARIABLE in advisory.message and "ex01.contoso.local" in advisory.message


def test_external_dns_uses_exactly_the_admins_servers() -> None:
    facts = host(**BROKEN_EXTERNAL)  # type: ignore[arg-type]
    finding = only(facts, "transport-external-dns-unresolvable")
    planned = tdns.plan_external(finding, facts, HostVars(("203.0.113.53", "198.51.100.53")))
    (draft,) = planned.drafts  # the internet connector already uses the external servers
    assert draft.call == CmdletCall(
        Endpoint.EXCHANGE,
        "Set-TransportService",
        (
            ("Identity", "EX01"),
            ("ExternalDNSServers", ("203.0.113.53", "198.51.100.53")),
            ("ExternalDNSAdapterEnabled", False),
        ),
    )
    assert draft.read_back == CmdletCall(Endpoint.EXCHANGE, "Get-TransportService", (("Identity", "EX01"),))
    assert draft.rollback == (
        CmdletCall(
            Endpoint.EXCHANGE,
            "Set-TransportService",
            (
                ("Identity", "EX01"),
                ("ExternalDNSServers", (INTERNAL_DNS,)),
                ("ExternalDNSAdapterEnabled", False),
            ),
        ),
    )
    assert draft.restart_required


def test_external_dns_switches_the_internet_connector_and_clears_an_empty_list_with_null() -> None:
    # Adapter lookups through an internal server without forwarders; the connector uses the
    # internal settings, so it must be switched too.
    facts = host(
        connectors=(connector("Internet"),),
        probes=server_probes(INTERNAL_DNS, public=Outcome.SERVFAIL),
    )
    finding = only(facts, "transport-external-dns-unresolvable")
    transport_draft, connector_draft = tdns.plan_external(finding, facts, HostVars(("203.0.113.53",))).drafts
    assert transport_draft.rollback[0].param("ExternalDNSServers") is None
    assert transport_draft.rollback[0].param("ExternalDNSAdapterEnabled") is True
    assert connector_draft.call == CmdletCall(
        Endpoint.EXCHANGE,
        "Set-SendConnector",
        (("Identity", "Internet"), ("UseExternalDNSServersEnabled", True)),
    )
    assert connector_draft.rollback == (
        CmdletCall(
            Endpoint.EXCHANGE,
            "Set-SendConnector",
            (("Identity", "Internet"), ("UseExternalDNSServersEnabled", False)),
        ),
    )
    assert not connector_draft.restart_required


def test_exchange_2010_uses_set_transportserver() -> None:
    facts = host(exchange_facts=exchange(14), **BROKEN_EXTERNAL)  # type: ignore[arg-type]
    finding = only(facts, "transport-external-dns-unresolvable")
    (draft,) = tdns.plan_external(finding, facts, HostVars(("203.0.113.53",))).drafts
    assert draft.call.cmdlet == "Set-TransportServer"
    assert draft.read_back is not None and draft.read_back.cmdlet == "Get-TransportServer"
    assert draft.rollback[0].cmdlet == "Set-TransportServer"


def test_external_dns_refuses_a_chosen_server_the_probes_saw_fail() -> None:
    facts = host(**BROKEN_EXTERNAL)  # type: ignore[arg-type]
    finding = only(facts, "transport-external-dns-unresolvable")
    planned = tdns.plan_external(finding, facts, HostVars((INTERNAL_DNS,)))
    assert planned.drafts == ()
    assert planned.advisories[0].kind is AdvisoryKind.CANNOT_PLAN
    assert INTERNAL_DNS in planned.advisories[0].message


def test_no_dns_configured_external_side_uses_the_same_fix() -> None:
    # The External* group is on the path only through a connector that already uses it: the
    # fix fills the list and switches no connector.
    facts = host(
        transport_facts=transport(external=lookup(adapter=False)),
        connectors=(connector("Internet", use_external=True),),
    )
    finding = only(facts, "transport-no-dns-configured")
    assert finding.fix_id == "set-transport-external-dns"
    assert tdns.plan_external(finding, facts, HostVars()).advisories[0].variable == EXTERNAL_DNS_VARIABLE
    drafts = tdns.plan_external(finding, facts, HostVars(("203.0.113.53",))).drafts
    assert [d.kind for d in drafts] == ["set-transport-external-dns"]


def test_no_dns_configured_internal_side_turns_the_adapter_back_on() -> None:
    facts = host(transport_facts=transport(internal=lookup(adapter=False)))
    finding = only(facts, "transport-no-dns-configured")
    (draft,) = tdns.plan_external(finding, facts, HostVars()).drafts
    assert draft.call == CmdletCall(
        Endpoint.EXCHANGE, "Set-TransportService", (("Identity", "EX01"), ("InternalDNSAdapterEnabled", True))
    )
    assert draft.kind == "enable-transport-internal-dns-adapter"


# --- set-transport-internal-dns -------------------------------------------------------------


def test_internal_dns_prefers_the_adapter_when_all_nic_servers_resolve_ad() -> None:
    facts = host(
        transport_facts=transport(internal=lookup(adapter=False, servers=("10.9.9.9",))),
        probes=server_probes(INTERNAL_DNS) + server_probes("10.9.9.9", srv=Outcome.SERVFAIL),
    )
    finding = only(facts, "transport-internal-dns-misconfigured")
    (draft,) = tdns.plan_internal(finding, facts, HostVars()).drafts
    assert draft.call == CmdletCall(
        Endpoint.EXCHANGE, "Set-TransportService", (("Identity", "EX01"), ("InternalDNSAdapterEnabled", True))
    )
    assert draft.rollback[0].param("InternalDNSAdapterEnabled") is False


def test_internal_dns_lists_the_good_servers_when_the_nic_is_not_clean() -> None:
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8")), replication_nic()),
        transport_facts=transport(internal=lookup(adapter=False, servers=("10.9.9.9",))),
        probes=server_probes(INTERNAL_DNS) + server_probes("10.9.9.9", srv=Outcome.SERVFAIL),
    )
    finding = only(facts, "transport-internal-dns-misconfigured")
    (draft,) = tdns.plan_internal(finding, facts, HostVars()).drafts
    assert draft.call.param("InternalDNSServers") == (INTERNAL_DNS,)
    assert draft.rollback[0].param("InternalDNSServers") == ("10.9.9.9",)


def test_internal_dns_without_any_good_server_is_an_advisory() -> None:
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=("8.8.8.8",)), replication_nic()),
        transport_facts=transport(internal=lookup(adapter=False, servers=("10.9.9.9",))),
        probes=server_probes("10.9.9.9", srv=Outcome.SERVFAIL),
    )
    planned = tdns.plan_internal(only(facts, "transport-internal-dns-misconfigured"), facts, HostVars())
    assert planned.drafts == () and planned.advisories[0].kind is AdvisoryKind.NO_CANDIDATE


# --- add-smarthost-send-connector -------------------------------------------------------------


def fabrikam(*extra_connectors: object, a: tuple[str, ...] = ("203.0.113.10",)) -> HostFacts:
    return host(
        queues=(
            queue("EX01\\12", next_hop="fabrikam.com", last_error=SERVFAIL_ERROR),
            queue("EX01\\13", next_hop="tailspintoys.com", status="Ready", messages=0),
        ),
        connectors=(connector(), *extra_connectors),  # type: ignore[arg-type]
        extra_probes=(
            probe(
                INTERNAL_DNS,
                "fabrikam.com",
                "MX",
                Outcome.ANSWER,
                ("20 mx2.fabrikam.com.", "10 mx1.fabrikam.com."),
            ),
            probe(INTERNAL_DNS, "mx1.fabrikam.com", "A", Outcome.ANSWER, a),
            probe(INTERNAL_DNS, "mx1.fabrikam.com", "AAAA", Outcome.SERVFAIL),
            probe(INTERNAL_DNS, "mx2.fabrikam.com", "A", Outcome.ANSWER, ("198.51.100.20",)),
            probe(INTERNAL_DNS, "mx2.fabrikam.com", "AAAA", Outcome.SERVFAIL),
        ),
        remote_domains=("fabrikam.com",),
    )


def test_smart_host_connector_points_at_the_lowest_preference_mx_ipv4() -> None:
    facts = fabrikam(a=("203.0.113.11", "203.0.113.10"))
    finding = only(facts, "remote-domain-aaaa-broken")
    (draft,) = smart_host_connector.plan(finding, facts, HostVars()).drafts
    name = "exfix smart host fabrikam.com"
    assert draft.call == CmdletCall(
        Endpoint.EXCHANGE,
        "New-SendConnector",
        (
            ("Name", name),
            ("AddressSpaces", ("SMTP:fabrikam.com;1",)),
            ("SmartHosts", ("203.0.113.10", "203.0.113.11")),
            ("DNSRoutingEnabled", False),
            ("SmartHostAuthMechanism", "None"),
            ("SourceTransportServers", ("EX01",)),
            ("Usage", "Custom"),
        ),
    )
    assert draft.rollback == (
        CmdletCall(Endpoint.EXCHANGE, "Remove-SendConnector", (("Identity", name), ("Confirm", False))),
    )
    assert not draft.restart_required and not draft.disruptive


def test_smart_host_connector_is_not_added_twice() -> None:
    facts = fabrikam(
        connector("exfix smart host fabrikam.com", spaces=("SMTP:fabrikam.com;1",), dns_routing=False)
    )
    planned = smart_host_connector.plan(only(facts, "remote-domain-aaaa-broken"), facts, HostVars())
    assert planned.drafts == () and "already routes fabrikam.com" in planned.advisories[0].message


# --- set-dns-fault-tolerance ----------------------------------------------------------------


def test_dns_fault_tolerance_is_a_manual_backup_and_set() -> None:
    facts = host(edge=EdgeTransportConfigFacts(CONFIG, "Normal", True))
    finding = only(facts, "dns-fault-tolerance")
    backup, setting = dns_fault_tolerance.plan(finding, facts, HostVars()).drafts
    assert backup.manual and setting.manual
    expected_backup = f"{CONFIG}.exfix-{fingerprint_for(backup.depends_on, facts)[:12]}.bak"
    assert backup.call == CmdletCall(
        Endpoint.OS, "Copy-Item", (("LiteralPath", CONFIG), ("Destination", expected_backup))
    )
    assert setting.call == CmdletCall(
        Endpoint.OS,
        "Set-ExfixAppSetting",
        (("LiteralPath", CONFIG), ("Key", "DnsFaultTolerance"), ("Value", "Lenient")),
    )
    assert setting.rollback[0].param("Value") == "Normal"
    assert setting.changes == (Change("DnsFaultTolerance", "Normal", "Lenient"),)
    assert setting.restart_required


# --- the typed request ----------------------------------------------------------------------


def test_a_planner_acts_on_the_typed_request_it_is_handed() -> None:
    # The request, not the facts, says which servers to drop: a request that drops nothing
    # plans nothing, even though the facts hold a public server.
    facts = host(nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8")), replication_nic()))
    finding = only(facts, "nic-external-dns-server")
    assert isinstance(finding.data, SetNicDnsServers) and finding.data.drop_servers == ("8.8.8.8",)
    keep_all = dataclasses.replace(finding, data=dataclasses.replace(finding.data, drop_servers=()))
    assert nic_dns_servers.plan(keep_all, facts, HostVars()) == Planned()


def test_a_finding_without_its_request_is_not_planned() -> None:
    nic_facts = host(
        nics=(mapi_nic(register_this_connections_address=False, ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8")),),
    )
    transport_facts = host(
        transport_facts=transport(internal=lookup(adapter=False, servers=("8.8.8.8",))),
        probes=server_probes(INTERNAL_DNS) + server_probes("8.8.8.8", srv=Outcome.NXDOMAIN),
    )
    cases = [
        (nic_registration.plan, nic_facts, "nic-dns-registration-disabled"),
        (nic_dns_servers.plan, nic_facts, "nic-external-dns-server"),
        (tdns.plan_internal, transport_facts, "transport-internal-dns-misconfigured"),
        (tdns.plan_external, host(**BROKEN_EXTERNAL), "transport-external-dns-unresolvable"),  # type: ignore[arg-type]
        (smart_host_connector.plan, fabrikam(), "remote-domain-aaaa-broken"),
    ]
    for planner, facts, rule_id in cases:
        bare = dataclasses.replace(only(facts, rule_id), data=None)
        planned = planner(bare, facts, HostVars(("203.0.113.53",)))
        assert planned.drafts == (), rule_id
        (advisory,) = planned.advisories
        assert advisory.kind is AdvisoryKind.CANNOT_PLAN and advisory.finding_ids == (bare.id,)
