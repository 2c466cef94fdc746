"""remote-domain-no-mail-dns: a remote domain that fails in the queues has neither an MX nor an A
record. The recipient's problem: reported, nothing to fix here ("Error 451 4.4.0: DNS Query
Failed - Fix Guide", scenario 1; RFC 5321 5.1: no MX means the A record is the implicit MX)."""

from __future__ import annotations

from agent.model.facts import CollectionArea, HostFacts
from agent.model.finding_data import DomainWithoutMailDns, SymptomScope
from agent.model.findings import EvidenceItem, Finding, Level, Severity
from agent.model.probe import Outcome
from agent.rules import _common as c
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="remote-domain-no-mail-dns",
    title="A remote domain has no MX and no A record",
    severity=Severity.LOW,
    kind=RuleKind.ADVISORY,
    explanation=(
        "Mail to a remote domain is stuck with a DNS error, and DNS has neither a mail server (MX) record "
        "nor an address (A) record for that domain, so there is nowhere to deliver it. This is the "
        "recipient's problem, or a misspelt domain: nothing on the Exchange server needs changing. Tell the "
        "senders, or the remote domain's owner."
    ),
    references=(
        "https://learn.microsoft.com/exchange/mail-flow/connectors/send-connectors",
        "https://learn.microsoft.com/powershell/module/dnsclient/resolve-dnsname",
    ),
    fix_id=None,
    data=DomainWithoutMailDns,
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

_ABSENT = frozenset({Outcome.NXDOMAIN, Outcome.NODATA})


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    domains = c.failing_domains(facts)
    if not domains or c.external_resolution_broken(facts):
        return ()
    out: list[Finding] = []
    for domain, queues in domains.items():
        seen = c.domain_probes(facts, domain)
        # Only definitive replies count: a SERVFAIL from one server says nothing about the
        # domain, and a resolver moves on to the next server.
        mx = [p for p in seen.mx if p.outcome.definitive]
        a = [p for p in seen.domain_a if p.outcome.definitive]
        mx_absent = bool(mx) and all(p.outcome in _ABSENT and not p.records for p in mx)
        # NXDOMAIN for the MX query means the name does not exist at all: no A either.
        a_absent = (bool(a) and all(p.outcome in _ABSENT and not p.records for p in a)) or (
            not a and bool(mx) and all(p.outcome is Outcome.NXDOMAIN for p in mx)
        )
        if not (mx_absent and a_absent):
            continue
        evidence: list[EvidenceItem] = [c.queue_evidence(q) for q in queues]
        evidence.extend(c.probe_evidence(seen.mx + seen.domain_a))
        out.append(
            c.finding(
                METADATA,
                facts,
                subject=domain,
                summary=(
                    f"mail to {domain} fails ({queues[0].last_error.kind.value}); the domain has no MX "
                    f"({c.describe_probes(seen.mx)}) and no A ({c.describe_probes(seen.domain_a)})"
                ),
                evidence=evidence,
                data=DomainWithoutMailDns(domain=domain, queues=tuple(q.identity for q in queues)),
            )
        )
    return tuple(out)
