"""host-firewall-blocks-dns: the host's probes of a server get no reply while exfix's own
probes of it do; the firewall rules that match are the evidence where they were read. And
dns-server-unreachable stays silent for that server: one cause, one finding."""

from __future__ import annotations

import dataclasses

from agent.evaluate import evaluate
from agent.model.facts import AreaIssue, CollectionArea, FirewallFacts, HostFacts
from agent.model.finding_data import DisableFirewallBlock
from agent.model.probe import Outcome, Vantage
from agent.rules import dns_server_unreachable, host_firewall_blocks_dns
from support.facts_builders import (
    INTERNAL_DNS,
    firewall_profiles,
    firewall_rule,
    host,
    internal_queue,
    mapi_nic,
    server_probes,
    unreachable,
    values,
)

BLOCK = firewall_rule("{3F2A-block}", remote_address=("10.0.0.0/24",))
ALLOW = firewall_rule("CoreNet-DNS-Out-UDP", action="Allow")
TIMEOUT_ERROR = "451 4.4.0 DNS query failed. The error was: DNS query failed with error ErrorTimeout"


RULES = FirewallFacts((BLOCK, ALLOW))


def blocked_host(firewall: FirewallFacts | None = RULES, issues: tuple[AreaIssue, ...] = ()) -> HostFacts:
    return host(
        nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS,)),),
        probes=unreachable(INTERNAL_DNS) + server_probes(INTERNAL_DNS, vantage=Vantage.ORCHESTRATOR),
        queues=(internal_queue(last_error=TIMEOUT_ERROR),),
        firewall=firewall,
        issues=issues,
    )


def test_silent_from_the_host_but_answering_exfix_is_the_host_firewall() -> None:
    facts = blocked_host()
    (finding,) = host_firewall_blocks_dns.evaluate(facts)
    data = finding.data
    assert isinstance(data, DisableFirewallBlock)
    assert data.server == INTERNAL_DNS and data.firewall_read
    assert data.rules == ("{3F2A-block}",)  # the allow rule loses: not a cause
    assert data.host_outcomes == ("timeout",) and data.orchestrator_outcomes == ("answer",)
    text = values(finding)
    # Both vantages' results and the rule as Get-NetFirewallRule showed it are the evidence.
    assert "host replies=0" in text and "orchestrator replies=3" in text
    assert "RemoteAddress=('10.0.0.0/24',)" in text and "Action=Block" in text
    assert "allow rules that lose to the block rules" in text and "CoreNet-DNS-Out-UDP" in text
    assert {e.vantage for e in finding.evidence if e.vantage} == {"host", "orchestrator"}
    # One cause, one finding: the server is not also "unreachable".
    assert dns_server_unreachable.evaluate(facts) == ()


def test_the_queue_symptom_is_explained_by_the_firewall_finding() -> None:
    judged = evaluate(blocked_host())
    rules = {f.rule_id for f in judged}
    assert rules == {"host-firewall-blocks-dns", "queue-dns-failure"}
    (queue,) = [f for f in judged if f.rule_id == "queue-dns-failure"]
    (cause,) = [f for f in judged if f.rule_id == "host-firewall-blocks-dns"]
    assert cause.id in queue.explained_by


def test_silent_from_both_vantages_is_unreachable_not_firewalled() -> None:
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS,)),),
        probes=unreachable(INTERNAL_DNS) + unreachable(INTERNAL_DNS, vantage=Vantage.ORCHESTRATOR),
        firewall=FirewallFacts((BLOCK,)),  # even with a matching block rule: the server is down too
    )
    assert host_firewall_blocks_dns.evaluate(facts) == ()
    (finding,) = dns_server_unreachable.evaluate(facts)
    assert finding.subject == f"DNS server {INTERNAL_DNS}"


def test_no_contrast_without_the_orchestrator_or_with_any_host_reply() -> None:
    only_host = host(nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS,)),), probes=unreachable(INTERNAL_DNS),
                     firewall=FirewallFacts((BLOCK,)))  # fmt: skip
    assert host_firewall_blocks_dns.evaluate(only_host) == ()
    assert len(dns_server_unreachable.evaluate(only_host)) == 1
    # One answer from the host: the path works (a refusal or NXDOMAIN is a reply too).
    some = server_probes(INTERNAL_DNS, srv=Outcome.TIMEOUT, internal=Outcome.TIMEOUT, public=Outcome.REFUSED)
    facts = host(nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS,)),),
                 probes=some + server_probes(INTERNAL_DNS, vantage=Vantage.ORCHESTRATOR))  # fmt: skip
    assert host_firewall_blocks_dns.evaluate(facts) == ()


def test_unreadable_rules_still_give_the_finding_and_say_why() -> None:
    issue = AreaIssue(CollectionArea.FIREWALL, "Get-NetFirewallRule: Access is denied.")
    facts = blocked_host(firewall=None, issues=(issue,))
    (finding,) = host_firewall_blocks_dns.evaluate(facts)
    data = finding.data
    assert isinstance(data, DisableFirewallBlock)
    assert not data.firewall_read and data.rules == () and "Access is denied" in data.firewall_issue
    assert "could not be read" in finding.summary and "Access is denied" in values(finding)


def test_rules_that_do_not_match_are_not_named() -> None:
    others = FirewallFacts((
        firewall_rule("other-server", remote_address=("10.9.9.9",)),
        firewall_rule("tcp-only", protocol="TCP"),
        firewall_rule("private-profile", profile=("Private",)),
        firewall_rule("port-range-no-53", remote_port=("100-200",)),
        firewall_rule("off", enabled=False),
    ))  # fmt: skip
    (finding,) = host_firewall_blocks_dns.evaluate(blocked_host(firewall=others))
    assert isinstance(finding.data, DisableFirewallBlock) and finding.data.rules == ()
    assert "matching block rules=0" in values(finding)


def test_firewall_address_forms_match_as_windows_reads_them() -> None:
    dns = (INTERNAL_DNS,)
    for address in ("Any", "10.0.0.10", "10.0.0.0/255.255.255.0", "10.0.0.1-10.0.0.20", "DNS"):
        assert firewall_rule(remote_address=(address,)).matches_dns(INTERNAL_DNS, "udp", dns), address
    for address in ("10.0.1.0/24", "10.0.0.11-10.0.0.20", "LocalSubnet", "fd00::/8"):
        assert not firewall_rule(remote_address=(address,)).matches_dns(INTERNAL_DNS, "udp", dns), address
    assert firewall_rule(protocol="17").matches_dns(INTERNAL_DNS, "udp", dns)
    assert firewall_rule(remote_port=("50-60",)).matches_dns(INTERNAL_DNS, "udp", dns)
    assert not firewall_rule(direction="Inbound").matches_dns(INTERNAL_DNS, "udp", dns)


def test_a_host_side_error_that_is_no_network_failure_is_no_firewall() -> None:
    def errored(detail: str) -> HostFacts:
        host_side = tuple(
            dataclasses.replace(p, outcome=Outcome.ERROR, detail=detail) for p in unreachable(INTERNAL_DNS)
        )
        return host(nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS,)),),
                    probes=host_side + server_probes(INTERNAL_DNS, vantage=Vantage.ORCHESTRATOR))  # fmt: skip

    assert host_firewall_blocks_dns.evaluate(errored("CommandNotFoundException")) == ()
    assert len(host_firewall_blocks_dns.evaluate(errored("WSAECONNREFUSED"))) == 1


# --- a profile that blocks outbound traffic by default (a hardened server) -------------------


def test_a_default_block_without_a_matching_allow_rule_is_the_cause_and_names_the_allow_fix() -> None:
    old_resolver = firewall_rule("Allow-Old-Resolver", action="Allow", remote_address=("10.0.9.53",))
    facts = blocked_host(FirewallFacts((old_resolver,), firewall_profiles("Block")))
    (finding,) = host_firewall_blocks_dns.evaluate(facts)
    data = finding.data
    assert isinstance(data, DisableFirewallBlock)
    assert data.default_block_profile == "Domain" and data.rules == ()
    assert finding.fix_id == "allow-dns-through-firewall"
    text = values(finding)
    # The profile, its DefaultOutboundAction and that no enabled allow rule matches UDP 53.
    assert "firewall profile Domain" in text and "DefaultOutboundAction=Block" in text
    assert f"enabled allow rules for UDP 53 to {INTERNAL_DNS}=0" in text
    assert "DefaultOutboundAction Block" in finding.summary and "no enabled allow rule" in finding.summary
    assert "matching block rules" not in text  # the default, not a rule, is the cause


def test_a_default_block_with_a_matching_allow_rule_or_not_configured_is_not_the_cause() -> None:
    allow = firewall_rule("Allow-DNS", action="Allow", remote_address=("DNS",))
    cases = (
        FirewallFacts((allow,), firewall_profiles("Block")),  # allowed: something else drops it
        FirewallFacts((), firewall_profiles("NotConfigured")),  # the default, Allow
        FirewallFacts((), firewall_profiles("Block", enabled=False)),  # the profile is off
        FirewallFacts((), None),  # profiles not read (an older snapshot)
    )
    for firewall in cases:
        (finding,) = host_firewall_blocks_dns.evaluate(blocked_host(firewall))
        assert isinstance(finding.data, DisableFirewallBlock)
        assert finding.data.default_block_profile == "", firewall
        assert finding.fix_id == "disable-dns-firewall-block"
        assert "DefaultOutboundAction" not in finding.summary


def test_a_tcp_only_allow_rule_does_not_let_the_udp_query_out() -> None:
    tcp = firewall_rule("Allow-DNS-TCP", action="Allow", protocol="TCP", remote_address=(INTERNAL_DNS,))
    (finding,) = host_firewall_blocks_dns.evaluate(blocked_host(FirewallFacts((tcp,), firewall_profiles())))
    assert isinstance(finding.data, DisableFirewallBlock) and finding.data.default_block_profile == "Domain"


def test_a_healthy_hardened_host_has_no_finding() -> None:
    allow = firewall_rule("Allow-DNS", action="Allow", remote_address=("DNS",))
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS,)),),
        probes=server_probes(INTERNAL_DNS) + server_probes(INTERNAL_DNS, vantage=Vantage.ORCHESTRATOR),
        firewall=FirewallFacts((allow,), firewall_profiles("Block")),
    )
    assert evaluate(facts) == ()
