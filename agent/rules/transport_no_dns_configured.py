"""transport-no-dns-configured: transport is told not to use the adapter's DNS servers and has
no servers of its own, for external or internal lookups. It then has nobody to ask."""

from __future__ import annotations

from agent.model.facts import CollectionArea, DnsLookupSettings, HostFacts
from agent.model.finding_data import ConfigureTransportDns, LookupSide, SymptomScope
from agent.model.findings import Finding, Severity
from agent.rules import _common as c
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="transport-no-dns-configured",
    title="Transport DNS lookups are set to use no DNS server at all",
    severity=Severity.HIGH,
    kind=RuleKind.CAUSE,
    explanation=(
        "Exchange transport is set not to use the network adapter's DNS servers, and its own list of DNS "
        "servers is empty, so it has no DNS server to ask and every delivery that needs a DNS lookup "
        "fails. The fix gives transport DNS servers that work (or turns the adapter's servers back on) "
        "and restarts the Exchange transport service."
    ),
    references=("https://learn.microsoft.com/powershell/module/exchange/set-transportservice",),
    fix_id="set-transport-external-dns",
    data=ConfigureTransportDns,
    reads=(CollectionArea.TRANSPORT, CollectionArea.NICS),
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
    sides = tuple(side for side, settings in groups if not settings.adapter_enabled and not settings.servers)
    if not sides:
        return ()
    said = "; ".join(
        f"{side.capitalize()}DNSAdapterEnabled=False and {side.capitalize()}DNSServers is empty"
        for side in sides
    )
    nic = facts.mapi
    return (
        c.finding(
            METADATA,
            facts,
            subject="transport DNS lookups",
            summary=f"{said}: transport has no DNS server for {' or '.join(sides)} lookups",
            evidence=tuple(c.transport_evidence(facts, side) for side in sides),
            data=ConfigureTransportDns(
                transport_noun=facts.status.transport_noun,
                sides=sides,
                adapter_servers=nic.dns_servers if nic is not None else (),
            ),
        ),
    )
