"""nic-external-dns-server: the MAPI NIC's DNS server list holds a server that is public, or
one that cannot resolve the AD domain.

Such a server answers, but knows nothing of contoso.local: queues to internal Exchange servers
fail with "451 4.4.0 DNS query failed ... SMTPSEND.DNS.NonExistentDomain" while internet mail
may still work ("Bad NIC Settings Cause Internal Messages to Queue with 451 4.4.0 DNS query
failed"). A public address is flagged on sight; a private one only when the probes show it
cannot answer the AD domain controllers' SRV record."""

from __future__ import annotations

from agent.model.facts import CollectionArea, HostFacts, is_public_address
from agent.model.finding_data import SetNicDnsServers, SymptomScope
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.rules import _common as c
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="nic-external-dns-server",
    title="The MAPI network adapter uses a DNS server that does not know the AD domain",
    severity=Severity.HIGH,
    kind=RuleKind.CAUSE,
    explanation=(
        "An Exchange server must use only internal DNS servers, the ones that hold the Active Directory "
        "zone, even as secondary servers. A public or ISP DNS server answers 'no such domain' for internal "
        "names, so mail to other Exchange servers queues with 'SMTPSEND.DNS.NonExistentDomain' while "
        "internet "
        "mail may still work. The fix sets the adapter's DNS server list to the internal servers only and "
        "restarts the Exchange transport service."
    ),
    references=(
        "https://learn.microsoft.com/powershell/module/dnsclient/set-dnsclientserveraddress",
        "https://learn.microsoft.com/powershell/module/exchange/set-transportservice",
    ),
    fix_id="set-nic-dns-servers",
    data=SetNicDnsServers,
    reads=(CollectionArea.NICS,),
    explains=(Explains("queue-dns-failure", (SymptomScope.INTERNAL,)),),
)


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    nic = facts.mapi
    if nic is None or not nic.dns_servers:
        return ()
    flagged: list[tuple[str, str]] = []
    evidence: list[EvidenceItem] = []
    for server in nic.dns_servers:
        if is_public_address(server):
            flagged.append((server, "public address"))
            evidence.append(
                EvidenceItem(
                    source="Get-DnsClientServerAddress",
                    subject=f"DNS server {server}",
                    values=(
                        ("configured on", nic.label),
                        ("address", server),
                        ("why", "a public (internet) address"),
                    ),
                )
            )
            continue
        judged = c.ad_verdict(facts, server)
        if judged.verdict is c.Verdict.FAILS:
            vantages = ", ".join(dict.fromkeys(p.vantage.value for p in judged.probes))
            flagged.append(
                (
                    server,
                    f"cannot resolve {facts.probe_targets.ad_srv} ({vantages} probe: "
                    f"{c.describe_probes(judged.probes)})",
                )
            )
            evidence.append(
                EvidenceItem(
                    source="Get-DnsClientServerAddress",
                    subject=f"DNS server {server}",
                    values=(
                        ("configured on", nic.label),
                        ("address", server),
                        ("why", "cannot resolve the AD domain's DC SRV record"),
                    ),
                )
            )
            evidence.extend(c.probe_evidence(judged.probes))
    if not flagged:
        return ()
    drop = tuple(server for server, _ in flagged)
    keep = tuple(s for s in nic.dns_servers if s not in drop)
    candidates = tuple(
        s
        for s in c.probed_servers(facts)
        if not is_public_address(s) and c.ad_verdict(facts, s).verdict is c.Verdict.RESOLVES
    )
    data = SetNicDnsServers(
        interface_index=nic.interface_index,
        interface_alias=nic.interface_alias,
        current_servers=nic.dns_servers,
        keep_servers=keep,
        drop_servers=drop,
        candidate_servers=candidates,
        ad_domain=facts.ad_domain,
    )
    reasons = "; ".join(f"{server}: {why}" for server, why in flagged)
    return (
        c.finding(
            METADATA,
            facts,
            subject=nic.label,
            summary=(
                f"{nic.label} (the MAPI NIC: {facts.mapi_nic.reason}) has DNS servers "
                f"{', '.join(nic.dns_servers)}; {reasons}"
            ),
            evidence=(
                c.nic_evidence(nic, *c.server_list_values(nic), source="Get-DnsClientServerAddress"),
                c.mapi_choice_evidence(facts, nic),
                *evidence,
            ),
            data=data,
        ),
    )
