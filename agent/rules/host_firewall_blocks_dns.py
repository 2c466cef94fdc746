"""host-firewall-blocks-dns: the host's own Windows Firewall drops its DNS queries to a server
that answers everyone else. Resolve-DnsName on the host gets no reply from the server (it
times out, or the send fails), while exfix's probes of the same server from the orchestrator
get DNS replies: the server is up, the path from the host is not. Transport's lookups then
time out too ("451 4.4.0 DNS query failed. The error was: DNS query failed with error
ErrorTimeout", "Error occurs when you send email to all remote domains":
https://learn.microsoft.com/en-us/troubleshoot/exchange/mailflow/dns-query-failed).

The contrast alone decides (agent/rules/_common.py ``firewalled_contrast``): a server silent
from both vantages is dns-server-unreachable, never this. Where the firewall rules were read
(the ``firewall`` area), the block rules that match the server's UDP 53 are named in the
evidence, and they are what the fix disables (agent/fixes/firewall_dns_block.py says why an
allow rule would not do). Where they could not be read the finding still stands, without a
fix, and says so: the firewall area is in ``reads_if_collected``, not ``reads``.
"""

from __future__ import annotations

from agent.model.facts import CollectionArea, HostFacts
from agent.model.finding_data import DisableFirewallBlock, SymptomScope
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.rules import _common as c
from agent.rules import _mail_path as paths
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="host-firewall-blocks-dns",
    title="The host's firewall blocks its DNS queries to a working DNS server",
    severity=Severity.HIGH,
    kind=RuleKind.CAUSE,
    explanation=(
        "The Exchange server's own Windows Firewall has an outbound rule that blocks DNS (port 53) to a "
        "DNS server it is configured to use. The DNS server itself works: exfix asked it from outside "
        "the host and got answers, while the same questions asked on the host got no reply. Transport's "
        "lookups time out, and mail stays queued. A blocking rule wins over any rule that allows the same "
        "traffic, so the fix is to turn the blocking rule off (it can be turned on again), not to add "
        "an allow rule."
    ),
    references=(
        "https://learn.microsoft.com/powershell/module/netsecurity/get-netfirewallrule",
        "https://learn.microsoft.com/powershell/module/netsecurity/disable-netfirewallrule",
        "https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-fasp/702e3c23-c9d8-43db-8380-b4c670dd7f7d",
        "https://learn.microsoft.com/en-us/troubleshoot/exchange/mailflow/dns-query-failed",
    ),
    fix_id="disable-dns-firewall-block",
    data=DisableFirewallBlock,
    # Where a server is in use is decided as dns-server-unreachable decides it: the NICs, the
    # transport lists the mail path uses (its send connectors and queues). The firewall area is
    # only evidence and the fix's input: not needed for the verdict (module docstring).
    reads=paths.READS,
    reads_if_collected=(CollectionArea.FIREWALL,),
    explains=(
        Explains(
            "queue-dns-failure", (SymptomScope.INTERNAL, SymptomScope.ALL_EXTERNAL, SymptomScope.DOMAIN)
        ),
    ),
)


def _configured_servers(facts: HostFacts) -> tuple[str, ...]:
    """The NICs' configured DNS servers: what the firewall keyword ``DNS`` stands for."""
    return tuple(dict.fromkeys(s for nic in facts.nics for s in nic.dns_servers))


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    out: list[Finding] = []
    nic_servers = _configured_servers(facts)
    for server in c.all_configured_servers(facts):
        contrast = c.firewalled_contrast(facts, server)
        if contrast is None:
            continue
        places = c.server_in_use(facts, server)
        if not places:
            continue
        host_side, orchestrator = contrast
        host_outcomes = tuple(dict.fromkeys(p.outcome.value for p in host_side))
        orchestrator_outcomes = tuple(dict.fromkeys(p.outcome.value for p in orchestrator))
        evidence: list[EvidenceItem] = [
            EvidenceItem(
                source="configuration",
                subject=f"DNS server {server}",
                values=(
                    ("configured on", places),
                    ("host probes", len(host_side)),
                    ("host replies", 0),
                    ("host outcomes", host_outcomes),
                    ("orchestrator probes", len(orchestrator)),
                    ("orchestrator replies", sum(1 for p in orchestrator if p.outcome.responded)),
                    ("orchestrator outcomes", orchestrator_outcomes),
                ),
            )
        ]
        evidence.extend(c.probe_evidence(host_side))
        evidence.extend(c.probe_evidence(orchestrator))
        rules: tuple[str, ...] = ()
        issue = facts.status.issue(CollectionArea.FIREWALL)
        read = facts.firewall is not None
        if facts.firewall is not None:
            blocking = facts.firewall.blocking(server, nic_servers)
            rules = tuple(r.name for r in blocking)
            for rule in blocking:
                evidence.append(
                    EvidenceItem(
                        source="Get-NetFirewallRule",
                        subject=f"firewall rule {rule.name!r} ({rule.display_name})",
                        values=(
                            ("Direction", rule.direction),
                            ("Action", rule.action),
                            ("Enabled", rule.enabled),
                            ("Profile", rule.profile),
                            ("Protocol", rule.protocol),
                            ("RemotePort", rule.remote_port),
                            ("RemoteAddress", rule.remote_address),
                        ),
                    )
                )
            allowing = facts.firewall.allowing(server, nic_servers)
            if allowing and blocking:
                evidence.append(
                    EvidenceItem(
                        source="Get-NetFirewallRule",
                        subject="allow rules that lose to the block rules",
                        values=(("Name", tuple(r.name for r in allowing)),),
                    )
                )
            if not blocking:
                evidence.append(
                    EvidenceItem(
                        source="Get-NetFirewallRule",
                        subject=f"firewall rules for UDP 53 to {server}",
                        values=(
                            ("matching block rules", 0),
                            ("outbound rules read", len(facts.firewall.rules)),
                        ),
                    )
                )
        else:
            why = issue.reason if issue is not None else "not collected"
            evidence.append(
                EvidenceItem(
                    source="Get-NetFirewallRule",
                    subject="the host's firewall rules",
                    values=(("read", False), ("reason", why)),
                )
            )
        names = ", ".join(repr(name) for name in rules)
        summary = (
            f"DNS server {server} (configured on {', '.join(places)}) gave no reply to any of "
            f"{len(host_side)} probe(s) from the host ({', '.join(host_outcomes)}) but answered "
            f"{sum(1 for p in orchestrator if p.outcome.responded)} of {len(orchestrator)} from exfix"
        )
        if rules:
            summary += f"; the host's firewall rule(s) {names} block UDP 53 to it"
        elif not read:
            summary += "; the host's firewall rules could not be read"
        out.append(
            c.finding(
                METADATA,
                facts,
                subject=f"DNS server {server}",
                summary=summary,
                evidence=evidence,
                data=DisableFirewallBlock(
                    server=server,
                    configured_on=places,
                    host_outcomes=host_outcomes,
                    orchestrator_outcomes=orchestrator_outcomes,
                    rules=rules,
                    firewall_read=read,
                    firewall_issue=issue.reason if issue is not None else "",
                ),
            )
        )
    return tuple(out)
