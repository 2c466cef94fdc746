"""transport-no-dns-configured: transport is told not to use the adapter's DNS servers and has
no servers of its own, for external or internal lookups. It then has nobody to ask.

A group fires only when a route of this server's mail uses it (agent/rules/_mail_path.py):
the Internal* group always (next hops inside the organisation), the External* group only
when a send connector of this server has UseExternalDNSServersEnabled $true. Otherwise the
empty External* group is a setting nothing uses."""

from __future__ import annotations

from agent.model.facts import DnsLookupSettings, HostFacts
from agent.model.finding_data import ConfigureTransportDns, LookupSide, SymptomScope
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.rules import _common as c
from agent.rules import _mail_path as paths
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="transport-no-dns-configured",
    title="Transport DNS lookups are set to use no DNS server at all",
    severity=Severity.HIGH,
    kind=RuleKind.CAUSE,
    explanation=(
        "Exchange transport is set not to use the network adapter's DNS servers, and its own list of DNS "
        "servers is empty, so it has no DNS server to ask and every delivery that needs such a lookup "
        "fails: the internal ones (other Exchange servers) or those of the send connector named in the "
        "evidence. The fix gives transport DNS servers that work (or turns the adapter's servers back on) "
        "and restarts the Exchange transport service."
    ),
    references=(
        "https://learn.microsoft.com/powershell/module/exchange/set-transportservice",
        "https://learn.microsoft.com/powershell/module/exchange/set-sendconnector",
    ),
    fix_id="set-transport-external-dns",
    data=ConfigureTransportDns,
    reads=paths.READS,  # where a server or setting is on the mail path
    explains=(
        Explains(
            "queue-dns-failure", (SymptomScope.INTERNAL, SymptomScope.ALL_EXTERNAL, SymptomScope.DOMAIN)
        ),
    ),
)


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    transport = facts.transport
    if transport is None:
        return ()
    groups: tuple[tuple[LookupSide, DnsLookupSettings], ...] = (
        ("external", transport.external),
        ("internal", transport.internal),
    )
    empty = [
        (side, paths.routes_using(facts, side))
        for side, settings in groups
        if not settings.adapter_enabled and not settings.servers
    ]
    # A group nothing routes through is a setting nothing uses (the External* group without a
    # connector that has UseExternalDNSServersEnabled): not a fault.
    used = [(side, routes) for side, routes in empty if routes]
    if not used:
        return ()
    sides = tuple(side for side, _ in used)
    said = "; ".join(
        f"{side.capitalize()}DNSAdapterEnabled=False and {side.capitalize()}DNSServers is empty "
        f"(used by {paths.describe(routes)})"
        for side, routes in used
    )
    evidence: list[EvidenceItem] = []
    for side, routes in used:
        evidence.append(c.transport_evidence(facts, side))
        evidence.extend(paths.route_evidence(route) for route in routes)
    nic = facts.mapi
    return (
        c.finding(
            METADATA,
            facts,
            subject="transport DNS lookups",
            summary=f"{said}: transport has no DNS server for {' or '.join(sides)} lookups",
            evidence=evidence,
            data=ConfigureTransportDns(
                transport_noun=facts.status.transport_noun,
                sides=sides,
                adapter_servers=nic.dns_servers if nic is not None else (),
            ),
        ),
    )
