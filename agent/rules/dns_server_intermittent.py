"""dns-server-intermittent: a DNS server in use answers some attempts of a question and lets
others down (no reply, SERVFAIL, REFUSED). An overloaded server, response rate limiting or
packet loss on the path does this; transport then fails some lookups and not others, and its
queues flap between Retry and Ready ("451 4.4.0 DNS query failed" with ServerFailure or
ErrorTimeout one attempt, delivered the next).

Only the same question asked several times (``exfix scan --probe-repeat N``) tells this apart
from a server that cannot resolve a name (it fails that question every time: the other rules'
business) or one that is down (every attempt times out: dns-server-unreachable). A server that
answers one question and always fails another is therefore not intermittent; one round of
probes never makes this finding. Each vantage is judged on its own attempts: the host's and
exfix's paths to the server differ, and a firewall on one of them is not flakiness.

Advisory: the fix is on the DNS server or the network (capacity, rate-limit exemptions for
the Exchange servers, the lossy link), not on the Exchange server.
"""

from __future__ import annotations

from agent.model.facts import HostFacts
from agent.model.finding_data import IntermittentDnsServer, SymptomScope
from agent.model.findings import DataValue, EvidenceItem, Finding, Severity
from agent.model.probe import ServerProbeStats, server_stats
from agent.rules import _common as c
from agent.rules import _mail_path as paths
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="dns-server-intermittent",
    title="A DNS server in use fails some queries and answers others",
    severity=Severity.MEDIUM,
    kind=RuleKind.ADVISORY,
    explanation=(
        "The Exchange server uses a DNS server that answered some of exfix's repeated lookups and "
        "failed others for the same names (no reply, or a server failure). Mail then fails on some "
        "delivery attempts and goes through on others, so queues move between Retry and Ready. "
        "Usual causes: the DNS server is overloaded, it limits how fast one client may ask "
        "(response rate limiting), or packets are lost on the way. The evidence gives the share of "
        "failed queries and how long answers took. Check the DNS server's load and rate limits and "
        "the network path; exfix changes nothing for this finding."
    ),
    references=(
        "https://learn.microsoft.com/powershell/module/dnsclient/resolve-dnsname",
        "https://learn.microsoft.com/powershell/module/dnsserver/set-dnsserverresponseratelimiting",
        "https://learn.microsoft.com/powershell/module/exchange/get-queue",
    ),
    fix_id=None,
    data=IntermittentDnsServer,
    reads=paths.READS,  # where a server or setting is on the mail path
    explains=(
        Explains(
            "queue-dns-failure", (SymptomScope.INTERNAL, SymptomScope.ALL_EXTERNAL, SymptomScope.DOMAIN)
        ),
    ),
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g} ms"


def _stats_evidence(stats: ServerProbeStats) -> EvidenceItem:
    values: list[tuple[str, DataValue]] = [
        ("attempts", stats.attempts),
        ("failed", stats.failures),
        ("failure rate", f"{stats.failures}/{stats.attempts} ({round(stats.failure_rate * 100)}%)"),
        ("rounds", stats.rounds),
        ("latency (answered)", f"min {_ms(stats.latency_min_ms)}, avg {_ms(stats.latency_avg_ms)}, "
                               f"max {_ms(stats.latency_max_ms)}"),
    ]
    mixed = [f"{q.rdtype} {q.qname}" for q in stats.questions if q.mixed]
    values.append(("answered and failed", tuple(mixed)))
    # Derived from the probes below (Resolve-DnsName on the host, or exfix's dns-probe).
    return EvidenceItem(
        source="probe rounds",
        subject=f"DNS server {stats.server}",
        values=tuple(values),
        vantage=stats.vantage.value,
    )


def _us(value: float | None) -> int | None:
    return None if value is None else round(value * 1000)


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    out: list[Finding] = []
    stats = server_stats(facts.probes)
    for server in c.all_configured_servers(facts):
        flaky = tuple(s for s in stats if s.server == server and s.intermittent)
        if not flaky:
            continue
        places = c.server_in_use(facts, server)
        if not places:
            continue
        attempts = sum(s.attempts for s in flaky)
        failures = sum(s.failures for s in flaky)
        percent = round(100 * failures / attempts)
        answered = [s for s in flaky if s.latency_avg_ms is not None]
        average = (
            sum((s.latency_avg_ms or 0.0) * (s.attempts - s.failures) for s in answered)
            / sum(s.attempts - s.failures for s in answered)
            if answered else None
        )  # fmt: skip
        worst = max((s.latency_max_ms for s in answered if s.latency_max_ms is not None), default=None)
        vantages = tuple(s.vantage.value for s in flaky)
        seen_from = {s.vantage for s in flaky}
        mixed = sorted({f"{q.rdtype} {q.qname}" for s in flaky for q in s.questions if q.mixed})
        evidence = [
            EvidenceItem(
                source="configuration",
                subject=f"DNS server {server}",
                values=(("configured on", places),),
            ),
            *(_stats_evidence(s) for s in flaky),
            # Each question once per vantage, with every attempt's outcome in order.
            *c.probe_evidence(p for p in facts.probes_for(server=server) if p.vantage in seen_from),
        ]
        out.append(
            c.finding(
                METADATA,
                facts,
                subject=f"DNS server {server}",
                summary=(
                    f"DNS server {server} (configured on {', '.join(places)}) failed {failures} of "
                    f"{attempts} queries ({percent}%) from {', '.join(vantages)}, answering the same "
                    f"questions at other attempts ({', '.join(mixed)}); answers took "
                    f"{_ms(None if average is None else round(average, 1))} on average"
                ),
                evidence=evidence,
                data=IntermittentDnsServer(
                    server=server,
                    configured_on=places,
                    vantages=vantages,
                    attempts=attempts,
                    failures=failures,
                    failure_percent=percent,
                    latency_avg_us=_us(average),
                    latency_max_us=_us(worst),
                ),
            )
        )
    return tuple(out)
