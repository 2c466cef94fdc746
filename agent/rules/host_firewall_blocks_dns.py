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

The other way a host's firewall drops its DNS: a hardened server whose profile blocks outbound
traffic by default (Set-NetFirewallProfile -DefaultOutboundAction Block: "Blocks outbound
network traffic that does not match an outbound rule", Set-NetFirewallProfile docs) and that
has no enabled allow rule for UDP 53 to the server. Then the evidence names the profile, its
DefaultOutboundAction and that no allow rule matches, and the finding names the fix that adds
one (allow-dns-through-firewall, agent/fixes/firewall_dns_allow.py), which also turns off the
matching block rules where there are some (an allow rule loses to them).
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
        "an allow rule. On a hardened server whose firewall blocks all outbound traffic that no rule "
        "allows, and that has no rule allowing DNS to that server, the fix adds rules that allow DNS "
        "(UDP and TCP port 53) to exactly the DNS servers it cannot reach."
    ),
    references=(
        "https://learn.microsoft.com/powershell/module/netsecurity/get-netfirewallrule",
        "https://learn.microsoft.com/powershell/module/netsecurity/disable-netfirewallrule",
        "https://learn.microsoft.com/powershell/module/netsecurity/get-netfirewallprofile",
        "https://learn.microsoft.com/powershell/module/netsecurity/set-netfirewallprofile",
        "https://learn.microsoft.com/powershell/module/netsecurity/new-netfirewallrule",
        "https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-fasp/702e3c23-c9d8-43db-8380-b4c670dd7f7d",
        "https://learn.microsoft.com/en-us/troubleshoot/exchange/mailflow/dns-query-failed",
    ),
    fix_id="disable-dns-firewall-block",
    # Where the profile blocks by default and no allow rule matches: the finding's fix.
    other_fix_ids=("allow-dns-through-firewall",),
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


_ALLOW_FIX = METADATA.other_fix_ids[0]


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
        default_block = None
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
            default_block = facts.firewall.default_block_without_allow(server, nic_servers)
            if default_block is not None:
                profile = default_block
                evidence.append(
                    EvidenceItem(
                        source="Get-NetFirewallProfile",
                        subject=f"firewall profile {profile.name}",
                        values=(
                            ("Enabled", profile.enabled),
                            ("DefaultOutboundAction", profile.default_outbound_action),
                            ("enabled allow rules for UDP 53 to " + server, 0),
                        ),
                    )
                )
            if not blocking and default_block is None:
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
        if default_block is not None:
            summary += (
                f"; the host's firewall profile {default_block.name} blocks outbound traffic by default "
                f"(DefaultOutboundAction {default_block.default_outbound_action}) and no enabled allow rule "
                f"matches UDP 53 to it"
            )
        if not read:
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
                    default_block_profile=default_block.name if default_block is not None else "",
                ),
                # The allow rule is what cures a default Block (its fix turns off the matching
                # block rules too); without a default Block, turning the block rules off does.
                fix_id=_ALLOW_FIX if default_block is not None else None,
            )
        )
    return tuple(out)
