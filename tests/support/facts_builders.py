"""Small builders of plain facts for the rule and evaluation tests.

The default host is healthy: ex01.contoso.local (Exchange 2019), MAPI NIC 'Ethernet0'
(InterfaceIndex 12, 10.0.0.21, gateway 10.0.0.1, DNS 10.0.0.10) with registration on, a DAG
replication NIC 'Replication' (InterfaceIndex 14, no gateway, registration off, no DNS), adapter
DNS for transport, one internet send connector, DnsFaultTolerance absent, and host-side probes
in which 10.0.0.10 answers everything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from agent.collect import assemble
from agent.collect.queues import parse_last_error
from agent.model.facts import (
    ZERO_GUID,
    AreaIssue,
    DnsCacheEntry,
    DnsLookupSettings,
    EdgeConfigFileFacts,
    EdgeTransportConfigFacts,
    ExchangeServerFacts,
    FirewallFacts,
    FirewallProfileFacts,
    FirewallRuleFacts,
    HostFacts,
    NicFacts,
    OrgFacts,
    ProbeTargets,
    QueueFacts,
    SendConnectorFacts,
    TransportDnsFacts,
    TransportNoun,
)
from agent.model.probe import DnsQueryResult, Outcome, Vantage

HOST = "ex01.contoso.local"
AD_DOMAIN = "contoso.local"
AD_SRV = "_ldap._tcp.dc._msdcs.contoso.local"
PUBLIC_NAME = "microsoft.com"
INTERNAL_DNS = "10.0.0.10"
MAPI_ADDRESS = "10.0.0.21"
ORGANIZATION = "Contoso@contoso.local"
EDGE_CONFIG = "C:\\Exchange\\Bin\\EdgeTransport.exe.config"

TARGETS = ProbeTargets.for_domain(AD_DOMAIN, HOST, PUBLIC_NAME)


def exchange(major: int = 15, **changes: Any) -> ExchangeServerFacts:
    base = ExchangeServerFacts(
        name="EX01",
        fqdn=HOST,
        domain=AD_DOMAIN,
        ad_site="Default-First-Site-Name",
        version=f"{major}.2.1118.7",
        major=major,
        minor=2,
        build=1118,
        revision=7,
        admin_display_version=f"Version {major}.2 (Build 1118.7)",
        roles=("Mailbox",),
        transport_noun=TransportNoun.TRANSPORT_SERVER if major == 14 else TransportNoun.TRANSPORT_SERVICE,
        organization=ORGANIZATION,
    )
    return dataclasses.replace(base, **changes)


def mapi_nic(**changes: Any) -> NicFacts:
    base = NicFacts(
        interface_index=12,
        interface_alias="Ethernet0",
        register_this_connections_address=True,
        use_suffix_when_registering=False,
        ipv4_dns_servers=(INTERNAL_DNS,),
        ipv4_addresses=(MAPI_ADDRESS,),
        ipv4_default_gateways=("10.0.0.1",),
        interface_guid="11111111-2222-3333-4444-555555555555",
    )
    return dataclasses.replace(base, **changes)


def replication_nic(**changes: Any) -> NicFacts:
    base = NicFacts(
        interface_index=14,
        interface_alias="Replication",
        register_this_connections_address=False,
        ipv4_addresses=("192.168.50.21",),
    )
    return dataclasses.replace(base, **changes)


def lookup(adapter: bool = True, servers: tuple[str, ...] = (), guid: str = ZERO_GUID) -> DnsLookupSettings:
    return DnsLookupSettings(
        adapter_enabled=adapter, servers=servers, adapter_guid=guid, protocol_option="Any"
    )


def transport(
    external: DnsLookupSettings | None = None, internal: DnsLookupSettings | None = None
) -> TransportDnsFacts:
    return TransportDnsFacts(external=external or lookup(), internal=internal or lookup())


def connector(
    name: str = "Internet",
    *,
    spaces: tuple[str, ...] = ("SMTP:*;1",),
    use_external: bool = False,
    dns_routing: bool = True,
    smart_hosts: tuple[str, ...] = (),
    enabled: bool = True,
) -> SendConnectorFacts:
    return SendConnectorFacts(
        name=name,
        address_spaces=spaces,
        smart_hosts=smart_hosts,
        dns_routing_enabled=dns_routing,
        use_external_dns_servers_enabled=use_external,
        source_transport_servers=("EX01",),
        enabled=enabled,
        cost=1,
    )


def probe(
    server: str,
    qname: str,
    rdtype: str,
    outcome: Outcome = Outcome.ANSWER,
    records: tuple[str, ...] = (),
    vantage: Vantage = Vantage.HOST,
) -> DnsQueryResult:
    queried = server if vantage is Vantage.HOST else "127.0.0.1:53001"
    return DnsQueryResult(
        vantage=vantage,
        server=server,
        queried=queried,
        qname=qname,
        rdtype=rdtype,
        outcome=outcome,
        records=records,
    )


def server_probes(
    server: str,
    *,
    srv: Outcome = Outcome.ANSWER,
    internal: Outcome = Outcome.ANSWER,
    public: Outcome = Outcome.ANSWER,
    vantage: Vantage = Vantage.HOST,
) -> tuple[DnsQueryResult, ...]:
    """The three standard questions to one server, with the given outcomes."""
    return (
        probe(
            server,
            AD_SRV,
            "SRV",
            srv,
            ("0 100 389 dc01.contoso.local.",) if srv is Outcome.ANSWER else (),
            vantage,
        ),
        probe(server, HOST, "A", internal, (MAPI_ADDRESS,) if internal is Outcome.ANSWER else (), vantage),
        probe(
            server,
            PUBLIC_NAME,
            "MX",
            public,
            ("10 microsoft-com.mail.protection.outlook.com.",) if public is Outcome.ANSWER else (),
            vantage,
        ),
    )


def unreachable(server: str, vantage: Vantage = Vantage.HOST) -> tuple[DnsQueryResult, ...]:
    return server_probes(
        server, srv=Outcome.TIMEOUT, internal=Outcome.TIMEOUT, public=Outcome.TIMEOUT, vantage=vantage
    )


def queue(
    identity: str,
    *,
    next_hop: str,
    delivery_type: str = "DnsConnectorDelivery",
    category: str = "External",
    status: str = "Retry",
    last_error: str = "",
    messages: int = 3,
    rates: tuple[float | None, float | None, float | None] = (None, None, None),
) -> QueueFacts:
    """``rates``: IncomingRate, OutgoingRate, Velocity (None: not shown, as on Exchange 2010)."""
    return QueueFacts(
        identity=identity,
        delivery_type=delivery_type,
        status=status,
        message_count=messages,
        next_hop_domain=next_hop,
        next_hop_category=category,
        next_hop_connector="Internet",
        last_error=parse_last_error(last_error),
        incoming_rate=rates[0],
        outgoing_rate=rates[1],
        velocity=rates[2],
    )


NXDOMAIN_ERROR = (
    "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
)
SERVFAIL_ERROR = "451 4.4.0 DNS query failed. The error was: DNS query failed with error ServerFailure"
ERRORRETRY_ERROR = "451 4.4.0 DNS query failed. The error was: DNS query failed with error ErrorRetry"


def internal_queue(identity: str = "EX01\\7", last_error: str = NXDOMAIN_ERROR, **kw: Any) -> QueueFacts:
    return queue(
        identity,
        next_hop="site-b",
        delivery_type="SmtpRelayToRemoteAdSite",
        category="Internal",
        last_error=last_error,
        **kw,
    )


def host(
    *,
    nics: Iterable[NicFacts] | None = None,
    transport_facts: TransportDnsFacts | None = None,
    no_transport: bool = False,
    connectors: Iterable[SendConnectorFacts] | None = None,
    queues: Iterable[QueueFacts] = (),
    probes: Iterable[DnsQueryResult] | None = None,
    extra_probes: Iterable[DnsQueryResult] = (),
    edge: EdgeTransportConfigFacts | None = None,
    remote_domains: Iterable[str] = (),
    exchange_facts: ExchangeServerFacts | None = None,
    name: str = HOST,
    edge_file: EdgeConfigFileFacts | None = None,
    issues: Iterable[AreaIssue] = (),
    dns_cache: Iterable[DnsCacheEntry] | None = None,
    firewall: FirewallFacts | None = None,
) -> HostFacts:
    all_probes = tuple(server_probes(INTERNAL_DNS) if probes is None else probes) + tuple(extra_probes)
    return assemble.host_facts(
        name,
        exchange_facts or exchange(),
        transport=None if no_transport else (transport_facts or transport()),
        queues=tuple(queues),
        org=OrgFacts(ORGANIZATION, tuple(connectors if connectors is not None else (connector(),)), name),
        nics=tuple(nics if nics is not None else (mapi_nic(), replication_nic())),
        edge_config=edge,
        probe_targets=TARGETS,
        probes=all_probes,
        remote_domains=remote_domains,
        issues=issues,
        edge_config_file=edge_file,
        dns_cache=None if dns_cache is None else tuple(dns_cache),
        firewall=firewall,
    )


def firewall_rule(name: str = "Block-DNS-Out", **changes: Any) -> FirewallRuleFacts:
    """An enabled outbound block rule for UDP 53 to any address, as Get-NetFirewallRule and its
    filters show one; ``changes`` override fields."""
    values: dict[str, Any] = {
        "name": name,
        "display_name": f"{name} (display)",
        "direction": "Outbound",
        "action": "Block",
        "enabled": True,
        "profile": ("Any",),
        "protocol": "UDP",
        "remote_port": ("53",),
        "remote_address": ("Any",),
    }
    values.update(changes)
    return FirewallRuleFacts(**values)


def firewall_profiles(
    domain: str = "Block", *, enabled: bool = True, allow_local_rules: bool = True
) -> tuple[FirewallProfileFacts, ...]:
    """Get-NetFirewallProfile's three profiles: the Domain one (which decides the host's traffic)
    with DefaultOutboundAction ``domain``, the others NotConfigured."""
    return (
        FirewallProfileFacts("Domain", enabled, domain, allow_local_rules),
        FirewallProfileFacts("Private", True, "NotConfigured"),
        FirewallProfileFacts("Public", True, "NotConfigured"),
    )


def broken(name: str = "ex01.contoso.local", alias: str = "Ethernet0") -> HostFacts:
    """Registration off, a public DNS server on the NIC, transport internal DNS broken,
    DnsFaultTolerance Normal."""
    return host(
        name=name,
        nics=(
            mapi_nic(register_this_connections_address=False, interface_alias=alias,
                     ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8")),
            replication_nic(),
        ),
        transport_facts=transport(internal=lookup(adapter=False, servers=("10.9.9.9",))),
        probes=server_probes(INTERNAL_DNS) + server_probes("8.8.8.8", srv=Outcome.NXDOMAIN)
        + server_probes("10.9.9.9", srv=Outcome.SERVFAIL),
        edge=EdgeTransportConfigFacts(EDGE_CONFIG, "Normal", True),
    )  # fmt: skip


def values(finding: Any) -> str:
    """Everything a finding says, as one string, for 'the exact values appear' checks."""
    parts = [finding.summary]
    for item in finding.evidence:
        parts.append(item.subject)
        parts.extend(f"{k}={v}" for k, v in item.values)
    return "\n".join(parts)


def rounds(
    server: str,
    outcomes: Iterable[Outcome],
    *,
    vantage: Vantage = Vantage.HOST,
    elapsed_ms: float = 2.0,
) -> tuple[DnsQueryResult, ...]:
    """The three standard questions asked in several rounds (--probe-repeat): in round k all
    three get ``outcomes[k - 1]``; answered queries took ``elapsed_ms``."""
    out: list[DnsQueryResult] = []
    for attempt, outcome in enumerate(outcomes, start=1):
        for result in server_probes(server, srv=outcome, internal=outcome, public=outcome, vantage=vantage):
            out.append(dataclasses.replace(result, attempt=attempt, elapsed_ms=elapsed_ms))
    return tuple(out)
