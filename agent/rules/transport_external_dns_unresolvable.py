"""transport-external-dns-unresolvable: the DNS servers transport uses for internet names
cannot resolve them.

Typical cause: transport uses internal DNS servers without forwarders (or that may not
recurse) for external lookups, and every external domain fails with "DNS query failed with
error ErrorDnsQueryFailed" or "ServerFailure" ("451 4.4.0 DNS query failed Exchange Server
error in message queue", all remote domains). Fires only when every effective server answered
the public probe name with a failure (SERVFAIL, REFUSED, NXDOMAIN) or, for some of them, not
at all, and none resolved it. Servers that only time out are dns-server-unreachable's finding,
not this one.

Only the settings on the path of this server's internet mail are judged
(agent/rules/_mail_path.py): the External* group only when a send connector of this server
routes by DNS with UseExternalDNSServersEnabled $true, the Internal* group when one routes
without it; a connector that sends to smart hosts or through Front End Transport
(FrontendProxyEnabled) puts neither on the path. The evidence names the connector."""

from __future__ import annotations

from agent.model.facts import HostFacts
from agent.model.finding_data import SetExternalDns, SymptomScope
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.rules import _common as c
from agent.rules import _mail_path as paths
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="transport-external-dns-unresolvable",
    title="Transport's DNS servers for external lookups cannot resolve internet names",
    severity=Severity.HIGH,
    kind=RuleKind.CAUSE,
    explanation=(
        "To deliver internet mail, Exchange looks up each recipient domain's MX and A records, with the DNS "
        "settings the send connector uses (the evidence names the connector). The DNS servers of those "
        "settings cannot resolve internet names (for example internal DNS servers without forwarders), so "
        "mail to every external domain queues with '451 4.4.0 DNS query failed'. The fix "
        "points transport's external lookups at DNS servers that resolve internet names, makes the internet "
        "send connector use them, and restarts the Exchange transport service."
    ),
    references=(
        "https://learn.microsoft.com/powershell/module/exchange/set-transportservice",
        "https://learn.microsoft.com/powershell/module/exchange/set-sendconnector",
        "https://learn.microsoft.com/exchange/mail-flow/connectors/send-connectors",
    ),
    fix_id="set-transport-external-dns",
    data=SetExternalDns,
    reads=paths.READS,  # where a server or setting is on the mail path
    explains=(Explains("queue-dns-failure", (SymptomScope.ALL_EXTERNAL, SymptomScope.DOMAIN)),),
)


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    for lookup in c.external_lookups(facts):
        found = _judge(facts, lookup)
        if found is not None:
            return (found,)
    return ()


def _judge(facts: HostFacts, lookup: c.LookupServers) -> Finding | None:
    if not lookup.servers:
        return None  # no server at all: transport-no-dns-configured's finding
    verdicts = [c.public_verdict(facts, server) for server in lookup.servers]
    kinds = {judged.verdict for judged in verdicts}
    if c.Verdict.RESOLVES in kinds or c.Verdict.UNKNOWN in kinds or c.Verdict.FAILS not in kinds:
        return None
    public = facts.probe_targets.public_name
    evidence: list[EvidenceItem] = [c.transport_evidence(facts, lookup.side)]
    for route in lookup.routes:
        evidence.append(paths.route_evidence(route))
        if route.connector is not None:
            evidence.append(c.connector_evidence(route.connector))
    for judged in verdicts:
        evidence.extend(c.probe_evidence(judged.probes))
    per_server = "; ".join(f"{j.server}: {c.describe_probes(j.probes)}" for j in verdicts)
    candidates = tuple(
        s
        for s in c.probed_servers(facts)
        if s not in lookup.servers and c.public_verdict(facts, s).verdict is c.Verdict.RESOLVES
    )
    connectors_to_switch = tuple(
        cn.name for cn in lookup.connectors if not cn.use_external_dns_servers_enabled
    )
    return c.finding(
        METADATA,
        facts,
        subject="external DNS lookups",
        summary=(
            f"for {paths.describe(lookup.routes)}, transport resolves internet names with "
            f"{', '.join(lookup.servers)} ({lookup.how}); none of them resolves {public}: {per_server}"
        ),
        evidence=evidence,
        data=SetExternalDns(
            transport_noun=facts.status.transport_noun,
            settings_side=lookup.side,
            adapter_enabled=lookup.settings.adapter_enabled,
            current_servers=lookup.servers,
            candidate_servers=candidates,
            connectors_to_switch=connectors_to_switch,
            public_name=public,
        ),
    )
