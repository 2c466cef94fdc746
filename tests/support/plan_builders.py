"""Host plans with a hostile value in every string a host could have supplied, through every
step kind of every fix (the planners' own drafts), for the tests that read rendered scripts
back: tests/planning/test_templates_roundtrip.py (tests/support/pwsh_oracle.py) and
tests/review/test_scripts_tree_sitter.py (the tree-sitter grammar)."""

from __future__ import annotations

from agent.fixes import (
    clear_dns_client_cache,
    dns_fault_tolerance,
    firewall_dns_allow,
    firewall_dns_block,
    nic_dns_servers,
    nic_registration,
    smart_host_connector,
)
from agent.fixes import transport_dns as tdns
from agent.fixes._draft import Draft
from agent.model.facts import FirewallProfileFacts, FirewallRuleFacts
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.model.plan import Action, Advisory, AdvisoryKind, HostPlan
from agent.planning.build import _order


def every_step(v: str) -> list[Draft]:
    """Every kind of action, with ``v`` in every string a host could have supplied."""
    ids = (f"rule|{v}|subject",)
    return [
        nic_dns_servers.draft(12, v, ("10.0.0.10", v), ("10.0.0.10",), ids),
        *nic_registration.drafts(12, v, False, ids),
        nic_registration.disable_draft(16, v, True, v, ids),
        *tdns.external_drafts("TransportService", v, (), True, ("203.0.113.53", v), (v, v + "2"), ids),
        *tdns.external_drafts("TransportServer", v, (v,), False, (v,), (), ids),
        tdns.internal_servers_draft("TransportService", v, (v,), ("10.0.0.10",), ids),
        tdns.internal_servers_draft("TransportServer", v, (), (v,), ids),
        tdns.adapter_draft("TransportService", v, 12, (v,), ids),
        tdns.adapter_draft("TransportServer", v, 12, (v,), ids),
        smart_host_connector.draft(v, "exfix smart host " + v, ("203.0.113.10", v), (v,), ids),
        *dns_fault_tolerance.drafts(v, v, v + ".bak", ids),
        clear_dns_client_cache.draft(v, (v,), ("MX",), (9003,), ids),
        firewall_dns_block.draft(
            FirewallRuleFacts(v, v, "Outbound", "Block", True, ("Any",), "UDP", ("53",), (v,)), v, ids
        ),
        firewall_dns_allow.draft("UDP", ("10.0.0.10", v), FirewallProfileFacts(v, True, "Block"), ids),
        firewall_dns_allow.draft("TCP", (v,), FirewallProfileFacts(v, True, v), ids),
    ]


def host_plan(v: str, drafts: list[Draft] | None = None) -> HostPlan:
    ordered = _order(every_step(v) if drafts is None else drafts)
    actions = tuple(
        Action(
            id=f"{n:02d}-{d.kind}", kind=d.kind, fix_id=d.fix_id, call=d.call,
            description=d.description,
            changes=d.changes, read_back=d.read_back, rollback=d.rollback, disruptive=d.disruptive,
            restart_required=d.restart_required, manual=d.manual, finding_ids=d.finding_ids,
            depends_on=d.depends_on, fingerprint="f" * 64,
        )
        for n, d in enumerate(ordered, start=1)
    )  # fmt: skip
    finding = Finding(
        rule_id="nic-dns-registration-disabled", host=v, subject=v, severity=Severity.HIGH, title=v,
        summary=v,
        evidence=(EvidenceItem(source=v, subject=v, values=((v, v), ("list", (v, v)), ("n", 1)), vantage=v),),
        fix_id="enable-nic-dns-registration", fix_disrupts_mail_flow=True,
    )  # fmt: skip
    advisory = Advisory(AdvisoryKind.MISSING_VARIABLE, "set-transport-external-dns", (finding.id,), v, v)
    return HostPlan(
        host=v, directory="h", fqdn=v, exchange_version=v, findings=(finding,), actions=actions,
        advisories=(advisory,), fingerprint="e" * 64,
    )  # fmt: skip
