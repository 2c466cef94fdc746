"""dns-client-cache-negative: mail to a remote domain fails with a DNS error, the host's DNS
client cache holds a negative answer (NotExist 9003, NoRecords 9501) for a name that mail needs
(the domain's MX or A, a mail host's A or AAAA), and the host's configured DNS servers now answer
that very question: the cache is stale. Until the entry's TimeToLive runs out the DNS Client
service answers from it without asking a server (KB318803, MaxNegativeCacheTtl), so fixing DNS
did not yet cure the queue. Clear-DnsClientCache removes it (learn.microsoft.com:
Clear-DnsClientCache).

The names a failing queue needs are the ones the probes asked: the remote domain (MX, A, AAAA)
and, where its MX answered, the lowest-preference mail hosts (A, AAAA). A probe of a configured
server from either vantage that returned records for the entry's name and type is the proof
that the entry is stale; a NODATA or NXDOMAIN probe agrees with the cache and says nothing.
"""

from __future__ import annotations

from agent.model.facts import CollectionArea, DnsCacheEntry, HostFacts, normalize_name
from agent.model.finding_data import ClearDnsClientCache, SymptomScope
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.model.probe import DnsQueryResult, Outcome
from agent.rules import _common as c
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="dns-client-cache-negative",
    title="The host's DNS client cache holds a stale 'name does not exist' answer",
    severity=Severity.MEDIUM,
    kind=RuleKind.CAUSE,
    explanation=(
        "Windows keeps negative DNS answers ('this name does not exist', 'no such record') in its DNS "
        "client cache for a while. This server cached one for a name its stuck mail needs, although the "
        "DNS servers it is configured with answer that name now. Until the cached answer expires, the "
        "server keeps believing the old one and the mail stays queued. Clearing the DNS client cache "
        "removes the stale answer; it changes no setting and does not interrupt mail flow."
    ),
    references=(
        "https://learn.microsoft.com/powershell/module/dnsclient/get-dnsclientcache",
        "https://learn.microsoft.com/powershell/module/dnsclient/clear-dnsclientcache",
        "https://learn.microsoft.com/windows/win32/debug/system-error-codes--9000-11999-",
        "KB318803",
    ),
    fix_id="clear-dns-client-cache",
    data=ClearDnsClientCache,
    # The configured servers whose probes show the entry stale come from the NICs and the
    # transport settings; without them there is no probe to contrast the cache with.
    reads=(CollectionArea.QUEUES, CollectionArea.DNS_CACHE, CollectionArea.NICS, CollectionArea.TRANSPORT),
    explains=(
        Explains("queue-dns-failure", (SymptomScope.ALL_EXTERNAL, SymptomScope.DOMAIN), same_domain=True),
    ),
)


def _needed(facts: HostFacts, domain: str) -> tuple[tuple[str, str], ...]:
    """(name, record type) a delivery to ``domain`` asks, as far as the probes know."""
    seen = c.domain_probes(facts, domain)
    wanted = [(domain, "MX"), (domain, "A"), (domain, "AAAA")]
    wanted += [(host, rdtype) for host in seen.mx_hosts for rdtype in ("A", "AAAA")]
    return tuple(dict.fromkeys(wanted))


def _answers(facts: HostFacts, name: str, rdtype: str) -> tuple[DnsQueryResult, ...]:
    return tuple(
        p for p in facts.probes_for(qname=name, rdtype=rdtype) if p.outcome is Outcome.ANSWER and p.records
    )


def cache_evidence(entry: DnsCacheEntry) -> EvidenceItem:
    return EvidenceItem(
        source="Get-DnsClientCache",
        subject=f"cache entry {entry.entry!r}",
        values=(
            ("Entry", entry.entry),
            ("Name", entry.name),
            ("Type", f"{entry.record_type} ({entry.type_name})"),
            ("Status", f"{entry.status} ({entry.status_name})"),
            ("TimeToLive", entry.time_to_live),
            ("Section", entry.section),
        ),
    )


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    if not facts.dns_cache:
        return ()
    out: list[Finding] = []
    for domain, queues in c.failing_domains(facts).items():
        stale: list[tuple[DnsCacheEntry, tuple[DnsQueryResult, ...]]] = []
        for name, rdtype in _needed(facts, domain):
            for entry in facts.negative_cache_entries(name):
                if entry.type_name != rdtype:
                    continue
                answered = _answers(facts, normalize_name(name), rdtype)
                if answered:
                    stale.append((entry, answered))
        if not stale:
            continue
        evidence: list[EvidenceItem] = [c.queue_evidence(q) for q in queues]
        for entry, answered in stale:
            evidence.append(cache_evidence(entry))
            evidence.extend(c.probe_evidence(answered))
        entry, answered = stale[0]
        out.append(
            c.finding(
                METADATA,
                facts,
                subject=domain,
                summary=(
                    f"mail to {domain} fails ({queues[0].last_error.kind.value}); the DNS client cache holds "
                    f"{entry.status_name} ({entry.status}) for {entry.type_name} {entry.entry} with "
                    f"{entry.time_to_live} s to live, while {answered[0].server} now answers it "
                    f"({', '.join(answered[0].records)})"
                ),
                evidence=evidence,
                data=ClearDnsClientCache(
                    domain=domain,
                    queues=tuple(q.identity for q in queues),
                    entries=tuple(e.entry for e, _ in stale),
                    record_types=tuple(e.type_name for e, _ in stale),
                    statuses=tuple(e.status for e, _ in stale),
                    time_to_live=tuple(e.time_to_live for e, _ in stale),
                ),
            )
        )
    return tuple(out)
