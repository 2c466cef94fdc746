"""dns-server-unreachable: a DNS server the host is configured with (on a NIC, or in the
transport settings) never answers the probes. Usually a firewall dropping 53/udp and 53/tcp,
or a server that is gone; messages then sit in Ready/Retry ("Error 451 4.4.0: DNS Query Failed
- Fix Guide", fix C). Advisory: the fix is in the network, not on the Exchange server."""

from __future__ import annotations

from agent.model.facts import HostFacts
from agent.model.finding_data import SymptomScope, UnreachableDnsServer
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.model.probe import Outcome
from agent.rules import _common as c
from agent.rules import _mail_path as paths
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="dns-server-unreachable",
    title="A configured DNS server does not answer",
    severity=Severity.MEDIUM,
    kind=RuleKind.ADVISORY,
    explanation=(
        "The Exchange server is configured to use a DNS server that does not answer at all. Lookups wait "
        "for it to time out before trying the next server, which delays mail, and if no server answers, "
        "mail stays queued. The usual cause is a firewall blocking DNS (port 53, UDP and TCP) between the "
        "Exchange server and the DNS server, or a DNS server that no longer exists. Check the network path; "
        "exfix changes nothing for this finding."
    ),
    references=(
        "https://learn.microsoft.com/powershell/module/dnsclient/resolve-dnsname",
        "https://learn.microsoft.com/powershell/module/exchange/set-transportservice",
    ),
    fix_id=None,
    data=UnreachableDnsServer,
    reads=paths.READS,  # where a server or setting is on the mail path
    explains=(
        Explains(
            "queue-dns-failure", (SymptomScope.INTERNAL, SymptomScope.ALL_EXTERNAL, SymptomScope.DOMAIN)
        ),
    ),
)


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    out: list[Finding] = []
    for server in c.all_configured_servers(facts):
        probes = c.preferred_vantage_for(facts, server)
        # Every attempt of every round must have timed out: a server that answered even one
        # of the repeated probes (--probe-repeat) is reachable, and one that drops only some
        # queries is dns-server-intermittent's. From a single round exfix cannot tell a dead
        # server from one that dropped that round; the evidence says how many rounds there were.
        if not probes or any(p.outcome is not Outcome.TIMEOUT for p in probes):
            continue
        if c.firewalled_contrast(facts, server) is not None:
            continue  # silent from the host only: host-firewall-blocks-dns, one cause one finding
        places = c.server_in_use(facts, server)
        if not places:
            continue
        vantages = tuple(dict.fromkeys(p.vantage.value for p in probes))
        evidence: list[EvidenceItem] = [
            EvidenceItem(
                source="configuration",
                subject=f"DNS server {server}",
                values=(
                    ("configured on", places), ("probes", len(probes)), ("answered", 0),
                    ("rounds", max(p.attempt for p in probes)),
                ),
            )
        ]
        evidence.extend(c.probe_evidence(probes))
        out.append(
            c.finding(
                METADATA,
                facts,
                subject=f"DNS server {server}",
                summary=(
                    f"DNS server {server} (configured on {', '.join(places)}) timed out on all "
                    f"{len(probes)} probe(s) from {', '.join(vantages)}"
                ),
                evidence=evidence,
                data=UnreachableDnsServer(server=server, configured_on=places, vantages=vantages),
            )
        )
    return tuple(out)
