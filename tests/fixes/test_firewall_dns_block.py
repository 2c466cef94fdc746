"""disable-dns-firewall-block: the planner turns off only a local block rule for port 53 alone,
advises for the rest; the drift check reads the rule as found; the prediction drops it."""

from __future__ import annotations

import dataclasses

from agent.fixes import firewall_dns_block as fix
from agent.fixes.fingerprint import facts_for, fingerprint_for
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import AreaIssue, CollectionArea, FirewallFacts, FirewallRuleFacts, HostFacts
from agent.model.findings import Finding
from agent.model.plan import Change, FactArea, FactRef, HostVars
from agent.model.probe import Vantage
from agent.rules import host_firewall_blocks_dns
from support.facts_builders import INTERNAL_DNS, firewall_rule, host, mapi_nic, server_probes, unreachable


def blocked(*rules: FirewallRuleFacts, issues: tuple[AreaIssue, ...] = (), read: bool = True) -> HostFacts:
    return host(
        nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS,)),),
        probes=unreachable(INTERNAL_DNS) + server_probes(INTERNAL_DNS, vantage=Vantage.ORCHESTRATOR),
        firewall=FirewallFacts(rules) if read else None,
        issues=issues,
    )


def finding(facts: HostFacts) -> Finding:
    (found,) = host_firewall_blocks_dns.evaluate(facts)
    return found


def test_a_local_block_rule_for_port_53_is_turned_off_and_rolled_back_by_name() -> None:
    facts = blocked(firewall_rule("Block-DNS", remote_address=("10.0.0.0/24",)))
    planned = fix.plan(finding(facts), facts, HostVars())
    (draft,) = planned.drafts
    assert planned.advisories == ()
    assert draft.call == CmdletCall(Endpoint.OS, "Disable-NetFirewallRule", (("Name", "Block-DNS"),))
    assert draft.rollback == (CmdletCall(Endpoint.OS, "Enable-NetFirewallRule", (("Name", "Block-DNS"),)),)
    assert draft.read_back == CmdletCall(Endpoint.OS, "Get-NetFirewallRule", (("Name", "Block-DNS"),))
    assert draft.changes == (Change("Enabled", True, False),)
    assert not draft.restart_required and not draft.disruptive and not fix.SPEC.disrupts_mail_flow
    assert draft.depends_on == (FactRef(FactArea.FIREWALL_RULE, "Block-DNS"),)
    assert "10.0.0.0/24" in draft.description and INTERNAL_DNS in draft.description


def test_group_policy_rules_broader_rules_and_unread_rules_get_advice_not_changes() -> None:
    gpo = firewall_rule(
        "GPO-Block", policy_store_source_type="GroupPolicy", policy_store_source="Hardening GPO"
    )
    wide = firewall_rule("Block-All-To-Subnet", remote_port=("Any",))
    facts = blocked(gpo, wide)
    planned = fix.plan(finding(facts), facts, HostVars())
    assert planned.drafts == ()
    messages = " | ".join(a.message for a in planned.advisories)
    assert "group policy (Hardening GPO)" in messages and "more than DNS" in messages
    unread = blocked(issues=(AreaIssue(CollectionArea.FIREWALL, "Access is denied."),), read=False)
    planned = fix.plan(finding(unread), unread, HostVars())
    assert planned.drafts == ()
    (advice,) = planned.advisories
    assert "could not be read (Access is denied.)" in advice.message
    assert "Get-NetFirewallRule" in advice.message
    none_match = blocked(firewall_rule("other", remote_address=("10.9.9.9",)))
    (advice,) = fix.plan(finding(none_match), none_match, HostVars()).advisories
    assert "DefaultOutboundAction" in advice.message


def test_the_drift_check_reads_the_rule_as_found_and_the_prediction_drops_it() -> None:
    rule = firewall_rule("Block-DNS")
    facts = blocked(rule)
    ref = FactRef(FactArea.FIREWALL_RULE, "Block-DNS")
    assert facts_for(ref, facts)["enabled"] is True
    before = fingerprint_for((ref,), facts)
    widened = blocked(dataclasses.replace(rule, remote_address=("Any", "10.0.0.0/8")))
    assert fingerprint_for((ref,), widened) != before  # someone changed the rule: the plan is stale
    assert facts_for(ref, blocked()) is None  # disabled or removed: gone from the enabled rules
    (draft,) = fix.plan(finding(facts), facts, HostVars()).drafts
    after = fix.predict(draft, facts)
    assert after.firewall == FirewallFacts(())
