"""server-a-record-wrong-nic: the server's own A record points at a NIC that is not the MAPI
network adapter.

Windows registers the server's name with the address of every NIC on which "Register this
connection's addresses in DNS" is on and a DNS server is configured (KB816592; "Domain Name
System Client Behavior in Windows Vista", TechNet). With registration off on the MAPI NIC and
on for a backup NIC, the name points at the backup network: other servers and clients reach
the server there, or not at all, and transport fails with "4.4.0 DNS query failed ...
ErrorRetry" as when the record is gone (KB3007623). A dedicated backup, replication or iSCSI
network registering beside the MAPI NIC sends part of the lookups there as well.

The evidence is the A record as the probes saw it, the NIC that holds each of its values, and
why the MAPI NIC is the one it is (the default gateway decides against the A record: see
agent/collect/nics.py ``choose_mapi_nic``). nic-dns-registration-disabled stays silent where
this rule fires: the fix is the same registration fix, and this finding says more.
"""

from __future__ import annotations

from agent.model.facts import CollectionArea, HostFacts, NicFacts
from agent.model.finding_data import RegisterMapiNic, SymptomScope
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.model.probe import Vantage
from agent.rules import _common as c
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="server-a-record-wrong-nic",
    title="The server's A record points at a network adapter that is not the MAPI adapter",
    severity=Severity.HIGH,
    kind=RuleKind.CAUSE,
    reads=(CollectionArea.NICS,),
    explanation=(
        "Windows puts the server's name in DNS with the address of every network adapter that has "
        "'Register this connection's addresses in DNS' turned on. Here the name points at an adapter "
        "that is not the one clients and other Exchange servers use (the MAPI adapter, the one with the "
        "default gateway), typically a backup or replication network. Other servers then reach this "
        "server on the wrong network or not at all, and with the MAPI adapter's address missing mail "
        "queues with '4.4.0 DNS query failed ... ErrorRetry'. The fix turns registration on for the MAPI "
        "adapter, turns it off on a dedicated backup, replication or iSCSI adapter, registers the name "
        "again, and restarts the Exchange transport service."
    ),
    references=(
        "KB3007623",
        "KB816592",
        "https://learn.microsoft.com/powershell/module/dnsclient/set-dnsclient",
        "https://learn.microsoft.com/powershell/module/dnsclient/register-dnsclient",
    ),
    fix_id="enable-nic-dns-registration",
    data=RegisterMapiNic,
    explains=(
        Explains(
            "queue-dns-failure", (SymptomScope.INTERNAL, SymptomScope.ALL_EXTERNAL, SymptomScope.DOMAIN)
        ),
    ),
)


def _record_evidence(view: c.ARecordView) -> EvidenceItem:
    # The record as the probes below saw it, in one line (the probes themselves follow).
    host_side = any(p.vantage is Vantage.HOST for p in view.probes)
    return EvidenceItem(
        source="A record (probed)",
        subject=f"A record of {view.fqdn}",
        values=(
            ("A", view.addresses),
            ("asked", tuple(dict.fromkeys(p.server for p in view.probes))),
            ("from", Vantage.HOST.value if host_side else Vantage.ORCHESTRATOR.value),
            ("MAPI NIC's addresses in it", view.mapi_held),
        ),
    )


def _other_evidence(view: c.ARecordView, nic: NicFacts, decision: str) -> EvidenceItem:
    return c.nic_evidence(
        nic,
        ("holds A record value", view.held(nic)),
        ("IPv4Address", nic.ipv4_addresses),
        ("default gateway", nic.default_gateways),
        ("RegisterThisConnectionsAddress", nic.register_this_connections_address),
        ("DNS servers", nic.dns_servers),
        ("decision", decision),
        source="Get-NetIPConfiguration",
    )


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    view = c.a_record_view(facts)
    if view is None or not view.points_elsewhere:
        return ()
    mapi = view.mapi
    decisions: list[str] = []  # per other NIC, why it is turned off or left as it is
    turn_off: list[int] = []
    for nic in view.others:
        dedicated, why = c.dedicated_network(nic)
        if dedicated and nic.register_this_connections_address is not False:
            turn_off.append(nic.interface_index)
            decisions.append(why)
        elif dedicated:
            decisions.append(
                f"registration is already off there ({why}); if its address is still in the A record after "
                "the name is registered again, delete that record in DNS"
            )
        else:
            decisions.append(why)
    # What exfix does about each other NIC, in words: the plan's decision, shown as evidence.
    said = [
        f"{'exfix turns its registration off: ' if nic.interface_index in turn_off else ''}{why}"
        for nic, why in zip(view.others, decisions, strict=True)
    ]
    held = "; ".join(f"{', '.join(view.held(n))} of {n.label}" for n in view.others)
    if view.mapi_held:
        mapi_part = f"and {', '.join(view.mapi_held)} of the MAPI {mapi.label}"
    else:
        mapi_part = (
            f"not {', '.join(mapi.ipv4_addresses) or 'an address'} of the MAPI {mapi.label} "
            f"(RegisterThisConnectionsAddress={mapi.register_this_connections_address})"
        )
    summary = (
        f"{view.fqdn} resolves to {held}, {mapi_part}; chosen as MAPI NIC because {facts.mapi_nic.reason}. "
        + " ".join(f"{nic.label}: {d}." for nic, d in zip(view.others, said, strict=True))
    )
    evidence = [
        _record_evidence(view),
        *c.probe_evidence(view.probes),
        *(_other_evidence(view, nic, d) for nic, d in zip(view.others, said, strict=True)),
        c.nic_evidence(
            mapi,
            ("RegisterThisConnectionsAddress", mapi.register_this_connections_address),
            ("DNS servers", mapi.dns_servers),
        ),
        c.mapi_choice_evidence(facts, mapi),
    ]
    data = RegisterMapiNic(
        fqdn=view.fqdn,
        a_record=view.addresses,
        interface_index=mapi.interface_index,
        interface_alias=mapi.interface_alias,
        mapi_addresses=mapi.addresses,
        other_indexes=tuple(n.interface_index for n in view.others),
        other_aliases=tuple(n.interface_alias for n in view.others),
        decisions=tuple(decisions),
        turn_off=tuple(turn_off),
    )
    return (
        c.finding(
            METADATA,
            facts,
            subject=f"A record of {view.fqdn}",
            summary=summary,
            evidence=evidence,
            data=data,
        ),
    )
