"""allow-dns-through-firewall: on a host whose profile blocks outbound traffic by default, the
planner adds allow rules for UDP and TCP 53 to exactly the servers the host cannot reach (with
the block rules off first where some match), advises where a local rule would not help; the
drift check reads the profile; the prediction adds the rules."""

from __future__ import annotations

from agent.fixes import firewall_dns_allow as fix
from agent.fixes import firewall_dns_block
from agent.fixes.fingerprint import facts_for, fingerprint_for
from agent.fixes.registry import FIXES
from agent.fixes.registry import fix as fix_by_id
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import FirewallFacts, FirewallProfileFacts, FirewallRuleFacts, HostFacts
from agent.model.findings import Finding
from agent.model.plan import Change, FactArea, FactRef, HostVars
from agent.model.probe import Vantage
from agent.rules import host_firewall_blocks_dns
from support.facts_builders import (
    INTERNAL_DNS,
    firewall_profiles,
    firewall_rule,
    host,
    mapi_nic,
    server_probes,
    unreachable,
)

SECOND = "10.0.0.11"


def hardened(
    *rules: FirewallRuleFacts,
    profiles: tuple[FirewallProfileFacts, ...] | None = None,
    servers: tuple[str, ...] = (INTERNAL_DNS,),
    blocked: tuple[str, ...] | None = None,
) -> HostFacts:
    """A host with the DNS ``servers`` on its MAPI NIC, silent from the host for ``blocked`` (all
    of them by default) and answering exfix."""
    silent = servers if blocked is None else blocked
    probes = []
    for server in servers:
        probes.extend(unreachable(server) if server in silent else server_probes(server))
        probes.extend(server_probes(server, vantage=Vantage.ORCHESTRATOR))
    return host(
        nics=(mapi_nic(ipv4_dns_servers=servers),),
        probes=probes,
        firewall=FirewallFacts(rules, firewall_profiles() if profiles is None else profiles),
    )


def findings(facts: HostFacts) -> tuple[Finding, ...]:
    return host_firewall_blocks_dns.evaluate(facts)


def test_a_default_block_gets_udp_and_tcp_allow_rules_by_fixed_name_removed_by_name() -> None:
    facts = hardened(firewall_rule("Allow-Old-Resolver", action="Allow", remote_address=("10.0.9.53",)))
    (found,) = findings(facts)
    assert found.fix_id == fix.FIX_ID
    planned = fix.plan(found, facts, HostVars())
    assert planned.advisories == ()
    udp, tcp = planned.drafts
    for draft, protocol in ((udp, "UDP"), (tcp, "TCP")):
        name = f"exfix-allow-dns-{protocol.lower()}"
        params = dict(draft.call.parameters)
        assert draft.call.cmdlet == "New-NetFirewallRule" and draft.call.endpoint is Endpoint.OS
        assert params["Name"] == name
        assert (params["Direction"], params["Action"], params["Protocol"]) == ("Outbound", "Allow", protocol)
        assert (params["RemotePort"], params["RemoteAddress"], params["Profile"]) == (
            ("53",),
            (INTERNAL_DNS,),
            "Domain",
        )
        assert draft.rollback == (CmdletCall(Endpoint.OS, "Remove-NetFirewallRule", (("Name", name),)),)
        assert draft.read_back == CmdletCall(Endpoint.OS, "Get-NetFirewallRule", (("Name", name),))
        assert draft.changes == (Change("Name", None, name), Change("Enabled", None, True))
        assert draft.depends_on == (
            FactRef(FactArea.FIREWALL_PROFILE, "Domain"),
            FactRef(FactArea.FIREWALL_RULE, name),
        )
        assert not draft.restart_required and not draft.disruptive
        assert "DefaultOutboundAction Block" in draft.description
    assert not fix.SPEC.disrupts_mail_flow


def test_only_the_servers_the_host_cannot_reach_and_only_what_no_rule_allows_yet() -> None:
    # The second server answers the host too; TCP 53 to the first is already allowed.
    tcp_ok = firewall_rule("Allow-DNS-TCP", action="Allow", protocol="TCP", remote_address=(INTERNAL_DNS,))
    facts = hardened(tcp_ok, servers=(INTERNAL_DNS, SECOND), blocked=(INTERNAL_DNS,))
    (found,) = findings(facts)
    (udp,) = fix.plan(found, facts, HostVars()).drafts
    assert udp.call.param("Name") == "exfix-allow-dns-udp"
    assert udp.call.param("RemoteAddress") == (INTERNAL_DNS,)
    # Both silent: one rule per protocol names both, and each finding proposes the same rules.
    both = hardened(servers=(INTERNAL_DNS, SECOND))
    first, second = findings(both)
    plans = [fix.plan(f, both, HostVars()).drafts for f in (first, second)]
    assert [d.call for d in plans[0]] == [d.call for d in plans[1]]
    assert plans[0][0].call.param("RemoteAddress") == (INTERNAL_DNS, SECOND)


def test_a_block_rule_beside_the_default_block_is_turned_off_first_under_its_own_fix() -> None:
    facts = hardened(firewall_rule("Block-DNS", remote_address=("10.0.0.0/24",)))
    (found,) = findings(facts)
    assert found.fix_id == fix.FIX_ID and found.data.rules == ("Block-DNS",)  # type: ignore[union-attr]
    drafts = fix.plan(found, facts, HostVars()).drafts
    assert [(d.fix_id, d.call.cmdlet) for d in drafts] == [
        (firewall_dns_block.FIX_ID, "Disable-NetFirewallRule"),
        (fix.FIX_ID, "New-NetFirewallRule"),
        (fix.FIX_ID, "New-NetFirewallRule"),
    ]
    # The registry runs the block rules' fix before this one.
    ids = [f.id for f in FIXES]
    assert ids.index(firewall_dns_block.FIX_ID) < ids.index(fix.FIX_ID)
    assert fix_by_id(fix.FIX_ID) is fix.SPEC


def test_an_allow_rule_that_loses_to_a_block_rule_leaves_the_finding_to_the_disable_fix() -> None:
    allow = firewall_rule("Allow-DNS", action="Allow", remote_address=(INTERNAL_DNS,))
    facts = hardened(firewall_rule("Block-DNS", remote_address=("10.0.0.0/24",)), allow)
    (found,) = findings(facts)
    # Once the block rule is off, the allow rule lets DNS out: no allow rule to add.
    assert found.fix_id == firewall_dns_block.FIX_ID
    assert found.data.default_block_profile == ""  # type: ignore[union-attr]


def test_advice_where_local_rules_are_ignored_or_exfix_rule_exists_or_profile_unread() -> None:
    ignored = hardened(profiles=firewall_profiles(allow_local_rules=False))
    (found,) = findings(ignored)
    planned = fix.plan(found, ignored, HostVars())
    assert planned.drafts == ()
    (advice,) = planned.advisories
    assert "AllowLocalFirewallRules False" in advice.message and "GPO" in advice.message
    # An earlier exfix rule for another server: New-NetFirewallRule with its name would fail.
    earlier = firewall_rule("exfix-allow-dns-udp", action="Allow", remote_address=("10.0.9.9",))
    facts = hardened(earlier)
    (found,) = findings(facts)
    planned = fix.plan(found, facts, HostVars())
    assert [d.call.param("Name") for d in planned.drafts] == ["exfix-allow-dns-tcp"]
    (advice,) = planned.advisories
    assert "'exfix-allow-dns-udp' exists already" in advice.message and INTERNAL_DNS in advice.message
    # A finding of the default Block, planned on facts whose profiles are gone: advice.
    unread = hardened()
    (found,) = findings(unread)
    no_profiles = hardened(profiles=())
    (advice,) = fix.plan(found, no_profiles, HostVars()).advisories
    assert "Get-NetFirewallProfile" in advice.message


def test_the_drift_check_reads_the_profile_and_the_prediction_adds_the_rules() -> None:
    facts = hardened()
    ref = FactRef(FactArea.FIREWALL_PROFILE, "Domain")
    assert facts_for(ref, facts) == {
        "name": "Domain",
        "enabled": True,
        "default_outbound_action": "Block",
        "allow_local_rules": True,
    }
    before = fingerprint_for((ref,), facts)
    assert fingerprint_for((ref,), hardened(profiles=firewall_profiles("Allow"))) != before
    assert facts_for(FactRef(FactArea.FIREWALL_RULE, "exfix-allow-dns-udp"), facts) is None
    (found,) = findings(facts)
    predicted = facts
    for draft in fix.plan(found, facts, HostVars()).drafts:
        predicted = fix.predict(draft, predicted)
    assert predicted.firewall is not None and facts.firewall is not None
    assert predicted.firewall.profiles == facts.firewall.profiles
    assert [r.name for r in predicted.firewall.rules] == ["exfix-allow-dns-udp", "exfix-allow-dns-tcp"]
    assert predicted.firewall.default_block_without_allow(INTERNAL_DNS, (INTERNAL_DNS,)) is None
    # The probes are as they were, so the rule still sees the contrast, now without the default
    # Block as its cause.
    (after,) = findings(predicted)
    assert after.data.default_block_profile == ""  # type: ignore[union-attr]
