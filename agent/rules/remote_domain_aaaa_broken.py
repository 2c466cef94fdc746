"""remote-domain-aaaa-broken: one remote domain fails in the queues while others deliver (or
nothing on this host explains a global failure), and that domain's DNS answers MX and A but
fails or ignores AAAA queries.

Exchange asks for AAAA as well as A for a domain's mail hosts; a zone whose servers drop or
fail AAAA queries makes the whole lookup fail with "451 4.4.0 DNS query failed" for that one
domain ("451 4.4.0 DNS query failed Exchange Server error in message queue"). The owner of
that DNS must fix it; until then a send connector for the one domain, with the mail host's
IPv4 address as smart host, delivers without the AAAA lookup."""

from __future__ import annotations

from agent.model.facts import CollectionArea, HostFacts
from agent.model.finding_data import AddSmartHostConnector, SymptomScope
from agent.model.findings import EvidenceItem, Finding, Level, Severity
from agent.model.probe import Outcome
from agent.rules import _common as c
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="remote-domain-aaaa-broken",
    title="A remote domain's DNS fails IPv6 (AAAA) queries, so mail to it cannot be routed",
    severity=Severity.MEDIUM,
    kind=RuleKind.CAUSE,
    explanation=(
        "Mail to one remote domain is stuck with a DNS error while other internet domains are delivered. "
        "That domain's DNS servers answer the mail server (MX) and IPv4 (A) queries but fail or ignore the "
        "IPv6 (AAAA) queries Exchange also makes, so Exchange gives up. The remote domain's owner has to "
        "fix their DNS; meanwhile a dedicated send connector for that domain, pointing at its mail server's "
        "IPv4 address, gets the mail through. Adding a send connector does not interrupt mail flow."
    ),
    references=(
        "https://learn.microsoft.com/powershell/module/exchange/new-sendconnector",
        "https://learn.microsoft.com/exchange/mail-flow/connectors/send-connectors",
    ),
    fix_id="add-smarthost-send-connector",
    data=AddSmartHostConnector,
    # The transport settings, connectors and NICs decide whether external resolution as a whole is
    # broken, which makes one failing domain say nothing about that domain's own DNS.
    reads=(
        CollectionArea.QUEUES, CollectionArea.TRANSPORT, CollectionArea.SEND_CONNECTORS, CollectionArea.NICS
    ),
    explains=(
        Explains("queue-dns-failure", (SymptomScope.ALL_EXTERNAL, SymptomScope.DOMAIN), same_domain=True),
    ),
    # The remote domain's DNS is the same for every server, and the fix (a send connector)
    # lives in Active Directory: one finding for the organisation, naming the servers.
    level=Level.ORGANIZATION,
)

_AAAA_BROKEN = frozenset({Outcome.SERVFAIL, Outcome.TIMEOUT})


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    domains = c.failing_domains(facts)
    if not domains:
        return ()
    delivering = c.delivering_external(facts)
    globally_broken = c.external_resolution_broken(facts)
    if not delivering and globally_broken:
        return ()
    out: list[Finding] = []
    for domain, queues in domains.items():
        seen = c.domain_probes(facts, domain)
        mx_ok = any(p.outcome is Outcome.ANSWER and p.records for p in seen.mx)
        a_ok = bool(seen.ipv4_addresses)
        aaaa_broken = bool(seen.aaaa) and all(p.outcome in _AAAA_BROKEN for p in seen.aaaa)
        if not (mx_ok and a_ok and aaaa_broken):
            continue
        others = ", ".join(q.next_hop_domain for q in delivering) or "none"
        evidence: list[EvidenceItem] = [c.queue_evidence(q) for q in queues]
        evidence.extend(c.probe_evidence(seen.mx + seen.a + seen.aaaa))
        out.append(
            c.finding(
                METADATA,
                facts,
                subject=domain,
                summary=(
                    f"mail to {domain} fails ({queues[0].last_error.kind.value}) "
                    "while other external domains "
                    f"deliver ({others}); MX {', '.join(seen.mx_hosts) or domain} and A "
                    f"{', '.join(seen.ipv4_addresses)} resolve but AAAA gets {c.describe_probes(seen.aaaa)}"
                ),
                evidence=evidence,
                data=AddSmartHostConnector(
                    domain=domain,
                    mx_hosts=seen.mx_hosts,
                    smart_hosts=seen.ipv4_addresses,
                    queues=tuple(q.identity for q in queues),
                    source_transport_servers=(facts.exchange.name,),
                    connector_name=f"{domain} smart host",
                ),
            )
        )
    return tuple(out)
