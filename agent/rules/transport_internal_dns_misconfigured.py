"""transport-internal-dns-misconfigured: transport's internal lookups use a fixed server list
(InternalDNSAdapterEnabled $false) and none of those servers can resolve the AD domain.

Routing to other Exchange servers then fails with "SMTPSEND.DNS.NonExistentDomain" or
"ServerFailure" on the internal queues even though the NIC's own DNS settings are fine.
"""

from __future__ import annotations

from agent.model.facts import HostFacts, is_public_address
from agent.model.finding_data import SetInternalDns, SymptomScope
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.rules import _common as c
from agent.rules import _mail_path as paths
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="transport-internal-dns-misconfigured",
    title="Transport's internal DNS servers cannot resolve the Active Directory domain",
    severity=Severity.HIGH,
    kind=RuleKind.CAUSE,
    explanation=(
        "Exchange transport is set to use its own list of DNS servers for internal lookups instead of the "
        "network adapter's, and none of the servers on that list knows the Active Directory domain. Mail "
        "to other Exchange servers in the organisation then queues with a DNS error. The fix points internal "
        "lookups back at DNS servers that hold the AD zone and restarts the Exchange transport service."
    ),
    references=(
        "https://learn.microsoft.com/powershell/module/exchange/set-transportservice",
        "https://learn.microsoft.com/exchange/mail-flow/mail-routing/mail-routing",
    ),
    fix_id="set-transport-internal-dns",
    data=SetInternalDns,
    reads=paths.READS,  # where a server or setting is on the mail path
    explains=(Explains("queue-dns-failure", (SymptomScope.INTERNAL,)),),
)


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    transport = facts.transport
    if transport is None or transport.internal.adapter_enabled or not transport.internal.servers:
        return ()
    verdicts = [c.ad_verdict(facts, server) for server in transport.internal.servers]
    kinds = {judged.verdict for judged in verdicts}
    if c.Verdict.RESOLVES in kinds or c.Verdict.UNKNOWN in kinds or c.Verdict.FAILS not in kinds:
        return ()
    # The Internal* group is always on the path (next hops inside the organisation,
    # agent/rules/_mail_path.py); the connectors without UseExternalDNSServersEnabled use it too.
    routes = paths.routes_using(facts, "internal")
    evidence: list[EvidenceItem] = [c.transport_evidence(facts, "internal")]
    evidence.extend(paths.route_evidence(route) for route in routes)
    for judged in verdicts:
        evidence.extend(c.probe_evidence(judged.probes))
    per_server = "; ".join(f"{j.server}: {c.describe_probes(j.probes)}" for j in verdicts)
    nic = facts.mapi
    nic_servers = nic.dns_servers if nic is not None else ()
    candidates = tuple(
        s
        for s in dict.fromkeys(nic_servers + c.probed_servers(facts))
        if s not in transport.internal.servers
        and not is_public_address(s)
        and c.ad_verdict(facts, s).verdict is c.Verdict.RESOLVES
    )
    return (
        c.finding(
            METADATA,
            facts,
            subject="internal DNS lookups",
            summary=(
                "InternalDNSAdapterEnabled=False and InternalDNSServers "
                f"{', '.join(transport.internal.servers)} "
                f"cannot resolve {facts.probe_targets.ad_srv}: {per_server}; they resolve "
                f"{paths.describe(routes)}"
            ),
            evidence=evidence,
            data=SetInternalDns(
                transport_noun=facts.status.transport_noun,
                current_servers=transport.internal.servers,
                candidate_servers=candidates,
                adapter_servers=nic_servers,
                ad_domain=facts.ad_domain,
            ),
        ),
    )
