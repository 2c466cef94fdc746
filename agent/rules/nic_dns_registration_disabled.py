"""nic-dns-registration-disabled: "Register this connection's addresses in DNS" is off on the
MAPI/primary NIC.

Exchange's health checks and routing look up the server's own A record; with registration off
on the MAPI NIC the record goes stale or disappears, and transport fails with
"4.4.0 DNS query failed ... ErrorRetry" to every destination (KB3007623). A DAG
replication NIC with registration off and no gateway is correct and is not judged.

Where the A record points at another NIC instead (a backup NIC that registers),
server-a-record-wrong-nic reports it, with the record and the NIC that holds it, and plans the
same fix plus what the other NIC needs; this rule stays silent then, so one cause is one
finding.
"""

from __future__ import annotations

from agent.model.facts import CollectionArea, HostFacts
from agent.model.finding_data import EnableRegistration, SymptomScope
from agent.model.findings import Finding, Severity
from agent.rules import _common as c
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="nic-dns-registration-disabled",
    title="DNS registration is turned off on the MAPI network adapter",
    severity=Severity.HIGH,
    kind=RuleKind.CAUSE,
    explanation=(
        "The network adapter the Exchange server uses for client and Active Directory traffic does not "
        "register its address in DNS. Other servers, and Exchange's own health checks, then cannot find "
        "this server by name, and mail queues with '4.4.0 DNS query failed ... ErrorRetry'. On a DAG "
        "member it can also trigger database failovers. The fix turns registration back on for that one "
        "adapter, registers the address, and restarts the Exchange transport service."
    ),
    references=(
        "KB3007623",
        "https://learn.microsoft.com/powershell/module/dnsclient/set-dnsclient",
        "https://learn.microsoft.com/powershell/module/dnsclient/register-dnsclient",
    ),
    fix_id="enable-nic-dns-registration",
    data=EnableRegistration,
    reads=(CollectionArea.NICS,),
    explains=(
        Explains(
            "queue-dns-failure", (SymptomScope.INTERNAL, SymptomScope.ALL_EXTERNAL, SymptomScope.DOMAIN)
        ),
    ),
)


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    nic = facts.mapi
    if nic is None or nic.register_this_connections_address is not False:
        return ()
    view = c.a_record_view(facts)
    if view is not None and view.points_elsewhere:
        return ()
    return (
        c.finding(
            METADATA,
            facts,
            subject=nic.label,
            summary=(
                f"{nic.label} RegisterThisConnectionsAddress=False; chosen as MAPI NIC because "
                f"{facts.mapi_nic.reason}"
            ),
            evidence=(
                c.nic_evidence(
                    nic,
                    ("RegisterThisConnectionsAddress", False),
                    ("UseSuffixWhenRegistering", nic.use_suffix_when_registering),
                ),
                c.mapi_choice_evidence(facts, nic),
            ),
            data=EnableRegistration(
                interface_index=nic.interface_index,
                interface_alias=nic.interface_alias,
                fqdn=facts.exchange.fqdn,
            ),
        ),
    )
