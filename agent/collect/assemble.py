"""Put the parsed areas of one host together into HostFacts (pure).

The MAPI NIC is chosen here, once the probes are in: the host's own FQDN's A record (as the
host's DNS servers answer it) tells which NIC holds the registered address.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.collect.nics import choose_mapi_nic, fqdn_addresses
from agent.model import dns_servers
from agent.model.facts import (
    AreaIssue,
    CollectionStatus,
    DnsCacheEntry,
    EdgeConfigFileFacts,
    EdgeTransportConfigFacts,
    ExchangeServerFacts,
    FirewallFacts,
    HostFacts,
    NicFacts,
    OrgFacts,
    ProbeTargets,
    QueueFacts,
    TransportDnsFacts,
)
from agent.model.probe import DnsQueryResult


def host_facts(
    host: str,
    exchange: ExchangeServerFacts,
    *,
    transport: TransportDnsFacts | None,
    queues: tuple[QueueFacts, ...],
    org: OrgFacts,
    nics: tuple[NicFacts, ...],
    edge_config: EdgeTransportConfigFacts | None,
    probe_targets: ProbeTargets,
    probes: Iterable[DnsQueryResult] = (),
    remote_domains: Iterable[str] = (),
    issues: Iterable[AreaIssue] = (),
    edge_config_file: EdgeConfigFileFacts | None = None,
    dns_cache: tuple[DnsCacheEntry, ...] | None = None,
    firewall: FirewallFacts | None = None,
) -> HostFacts:
    all_probes = tuple(probes)
    resolved = fqdn_addresses(all_probes, exchange.fqdn)
    return HostFacts(
        host=host,
        exchange=exchange,
        transport=transport,
        queues=queues,
        org=org,
        nics=nics,
        mapi_nic=choose_mapi_nic(nics, exchange.fqdn, resolved),
        edge_config=edge_config,
        probe_targets=probe_targets,
        probes=all_probes,
        remote_domains=tuple(dict.fromkeys(d.strip().lower() for d in remote_domains if d.strip())),
        status=CollectionStatus(transport_noun=exchange.transport_noun, issues=tuple(issues)),
        edge_config_file=edge_config_file,
        dns_cache=dns_cache,
        firewall=firewall,
    )


def configured_dns_servers(nics: Iterable[NicFacts], transport: TransportDnsFacts | None) -> tuple[str, ...]:
    """Every DNS server the host is configured with (NICs, then ExternalDNSServers, then
    InternalDNSServers), each once: the servers the probes must ask. Configured as
    agent/model/dns_servers.py defines it: Windows' fec0:0:0:ffff::1-3 placeholders and empty
    rows are never probed (nothing answers there; a probe would only time out and read as an
    unreachable server)."""
    servers: list[str] = []
    for nic in nics:
        servers.extend(nic.dns_servers)
    if transport is not None:
        servers.extend(transport.external.servers)
        servers.extend(transport.internal.servers)
    return dns_servers.configured(servers)


def failing_remote_domains(queues: Iterable[QueueFacts]) -> tuple[str, ...]:
    """The remote domains of external queues that fail with a DNS error: the domains the
    probes should look up (MX, A, AAAA)."""
    out = []
    for queue in queues:
        domain = queue.next_hop_domain.strip().lower()
        if queue.failing_dns and queue.scope.value == "external" and domain and "*" not in domain:
            out.append(domain)
    return tuple(dict.fromkeys(out))
