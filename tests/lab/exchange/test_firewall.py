"""The lab's Windows Firewall: the NetSecurity cmdlets over a host's rules, block beating allow
(MS-FASP 2.2.34), and the rules deciding the host's own DNS in the mail flow."""

from __future__ import annotations

from lab.exchange._exchange_support import OS, error, failure, invoke, make_fleet, ok, prop
from mock_remoting.exchange import firewall, mailflow
from mock_remoting.exchange.firewall import FirewallProfile, FirewallRule

SERVER = "10.0.0.10"
BLOCK = "{3F2A9C1E-7B44-4D0B-9E51-2C6A0D8E1F01}"  # EX01's block rule in the scenario
ALLOW = "{3F2A9C1E-7B44-4D0B-9E51-2C6A0D8E1F02}"  # and its allow rule for the same server


def test_rules_and_their_filters_as_get_netfirewallrule_shows_them() -> None:
    ex01 = make_fleet("host-firewall-blocks-dns").host("EX01")
    rules = ok(ex01, OS, "Get-NetFirewallRule", ("Direction", "Outbound"), ("Enabled", "True"))
    assert [prop(r, "Name") for r in rules] == [BLOCK, ALLOW, "CoreNet-DNS-Out-UDP"]
    block = rules[0]
    assert block.PSObject.type_names[0].endswith("root/standardcimv2/MSFT_NetFirewallRule")
    assert prop(block, "Action").name == "Block" and prop(block, "Direction").name == "Outbound"
    assert prop(block, "Enabled") == "True" and prop(block, "PolicyStoreSourceType") == "Local"
    ports = {prop(f, "InstanceID"): f for f in ok(ex01, OS, "Get-NetFirewallPortFilter", ("All", True))}
    assert prop(ports[BLOCK], "Protocol") == "UDP" and prop(ports[BLOCK], "RemotePort") == "53"
    filters = ok(ex01, OS, "Get-NetFirewallAddressFilter", ("All", True))
    addresses = {prop(f, "InstanceID"): f for f in filters}
    assert prop(addresses[BLOCK], "RemoteAddress") == "10.0.0.0/24"
    missing = invoke(ex01, OS, "Get-NetFirewallRule", ("Name", "nope"))
    assert error(missing)[1] == "CmdletizationQuery_NotFound_Name,Get-NetFirewallRule"


def test_an_allow_rule_does_not_beat_the_block_rule_disabling_the_block_does() -> None:
    fleet = make_fleet("host-firewall-blocks-dns")
    ex01 = fleet.host("EX01")
    state = ex01.state
    assert state.dns_blocked(SERVER) and not state.dns_blocked(SERVER, tcp_only=True)
    # What the issue first asked for: an outbound allow for DNS to the server. It changes nothing.
    ok(ex01, OS, "New-NetFirewallRule", ("Name", "exfix-allow-dns"), ("DisplayName", "Allow DNS"),
       ("Direction", "Outbound"), ("Action", "Allow"), ("Protocol", "UDP"), ("RemotePort", ["53"]),
       ("RemoteAddress", [SERVER]))  # fmt: skip
    assert state.dns_blocked(SERVER)
    ok(ex01, OS, "Remove-NetFirewallRule", ("Name", ["exfix-allow-dns"]))
    assert "exfix-allow-dns" not in [r.name for r in state.firewall_rules]
    # Turning the block rule off lets the query through; turning it on again blocks it again.
    ok(ex01, OS, "Disable-NetFirewallRule", ("Name", [BLOCK]))
    assert not state.dns_blocked(SERVER)
    (rule,) = ok(ex01, OS, "Get-NetFirewallRule", ("Name", [BLOCK]))
    assert prop(rule, "Enabled") == "False"
    ok(ex01, OS, "Enable-NetFirewallRule", ("Name", [BLOCK]))
    assert state.dns_blocked(SERVER)
    # EX02's block rule is for another resolver; its disabled rule blocks nothing.
    assert not fleet.host("EX02").state.dns_blocked(SERVER)


def test_the_mail_flow_times_out_while_blocked_and_delivers_once_the_rule_is_off() -> None:
    fleet = make_fleet("host-firewall-blocks-dns")
    ex01 = fleet.host("EX01")
    state = ex01.state
    for queue in state.queues:
        assert queue.status == "Retry" and "ErrorTimeout" in (queue.last_error or "")
    ok(ex01, OS, "Disable-NetFirewallRule", ("Name", [BLOCK]))
    with fleet.org.lock:
        for queue in state.queues:
            mailflow.run_attempt(fleet.org, state, queue)  # no restart: the firewall is live
    assert all(q.queued == 0 and q.last_error is None for q in state.queues)


def test_unreadable_rules_and_group_policy_rules() -> None:
    fleet = make_fleet("host-firewall-blocks-dns")
    message, fqid, category = failure(invoke(fleet.host("EX03"), OS, "Get-NetFirewallRule"))
    assert "Access is denied" in message and fqid.endswith(",Get-NetFirewallRule")
    assert category == "PermissionDenied"
    ex02 = fleet.host("EX02")
    gpo = FirewallRule("GPO-Block", "GPO block", "Outbound", "Block", True, ("Any",), "UDP", ("53",),
                       ("Any",), "Hardening GPO")  # fmt: skip
    ex02.state.firewall_rules.append(gpo)
    (rule,) = ok(ex02, OS, "Get-NetFirewallRule", ("Name", ["GPO-Block"]))
    assert prop(rule, "PolicyStoreSourceType") == "GroupPolicy"
    assert prop(rule, "PolicyStoreSource") == "Hardening GPO"
    result = invoke(ex02, OS, "Disable-NetFirewallRule", ("Name", ["GPO-Block"]))
    assert result.errors and ex02.state.dns_blocked(SERVER)  # the local store cannot change a GPO's rule


# --- profiles: a hardened host's DefaultOutboundAction Block ---------------------------------


def test_get_netfirewallprofile_shows_each_profile_and_its_default_outbound_action() -> None:
    ex01 = make_fleet("host-firewall-default-block").host("EX01")
    profiles = ok(ex01, OS, "Get-NetFirewallProfile", ("All", True), ("PolicyStore", "ActiveStore"))
    assert [prop(p, "Name") for p in profiles] == ["Domain", "Private", "Public"]
    domain = profiles[0]
    assert domain.PSObject.type_names[0].endswith("root/standardcimv2/MSFT_NetFirewallProfile")
    assert prop(domain, "DefaultOutboundAction").name == "Block" and prop(domain, "Enabled") == "True"
    # A profile the scenario does not set keeps NotConfigured (the computer's default, Allow).
    ex02 = make_fleet("host-firewall-default-block").host("EX02")
    private = ok(ex02, OS, "Get-NetFirewallProfile", ("Name", ["Private"]))
    assert [prop(p, "DefaultOutboundAction").name for p in private] == ["NotConfigured"]
    missing = invoke(ex02, OS, "Get-NetFirewallProfile", ("Name", ["Work"]))
    assert error(missing)[1] == "CmdletizationQuery_NotFound_Name,Get-NetFirewallProfile"


def test_under_a_default_block_only_an_allow_rule_lets_dns_out_and_a_block_rule_still_wins() -> None:
    fleet = make_fleet("host-firewall-default-block")
    ex01 = fleet.host("EX01")
    state = ex01.state
    assert state.dns_blocked(SERVER) and state.dns_blocked(SERVER, tcp_only=True)
    ok(ex01, OS, "New-NetFirewallRule", ("Name", "exfix-allow-dns-udp"), ("DisplayName", "Allow DNS (UDP)"),
       ("Direction", "Outbound"), ("Action", "Allow"), ("Protocol", "UDP"), ("RemotePort", ["53"]),
       ("RemoteAddress", [SERVER]), ("Profile", ["Domain"]))  # fmt: skip
    assert not state.dns_blocked(SERVER)  # UDP out; TCP still needs its own rule
    assert state.dns_blocked(SERVER, tcp_only=True)
    assert state.dns_blocked("10.0.0.11")  # exactly the address the rule names
    ok(ex01, OS, "Remove-NetFirewallRule", ("Name", ["exfix-allow-dns-udp"]))
    assert state.dns_blocked(SERVER)
    # EX02 allows DNS to its DNS servers: healthy under the same default. EX03's block rule
    # beats an allow rule added beside it.
    assert not fleet.host("EX02").state.dns_blocked(SERVER)
    ex03 = fleet.host("EX03")
    ok(ex03, OS, "New-NetFirewallRule", ("Name", "exfix-allow-dns-udp"), ("DisplayName", "Allow DNS (UDP)"),
       ("Direction", "Outbound"), ("Action", "Allow"), ("Protocol", "UDP"), ("RemotePort", ["53"]),
       ("RemoteAddress", [SERVER]))  # fmt: skip
    assert ex03.state.dns_blocked(SERVER)
    ok(ex03, OS, "Disable-NetFirewallRule", ("Name", ["{8C1D2E3F-4A5B-4C6D-8E9F-0A1B2C3D4E03}"]))
    assert not ex03.state.dns_blocked(SERVER)


def test_profile_verdicts_off_and_local_rules_ignored() -> None:
    allow = FirewallRule(
        "Allow-DNS", "Allow DNS", "Outbound", "Allow", True, ("Any",), "UDP", ("53",), (SERVER,)
    )
    gpo_allow = FirewallRule("GPO-Allow-DNS", "GPO", "Outbound", "Allow", True, ("Any",), "UDP", ("53",),
                             (SERVER,), group_policy="contoso.local\\Hardening")  # fmt: skip
    block = FirewallProfile("Domain", True, "Block")
    assert firewall.dns_blocked([], SERVER, [SERVER], profile=block)
    assert not firewall.dns_blocked([allow], SERVER, [SERVER], profile=block)
    assert not firewall.dns_blocked(
        [], SERVER, [SERVER], profile=FirewallProfile("Domain", True, "NotConfigured")
    )
    assert not firewall.dns_blocked([], SERVER, [SERVER], profile=FirewallProfile("Domain", False, "Block"))
    # AllowLocalFirewallRules False (a GPO's setting): only the GPO's rules count.
    gpo_only = FirewallProfile("Domain", True, "Block", allow_local_rules=False)
    assert firewall.dns_blocked([allow], SERVER, [SERVER], profile=gpo_only)
    assert not firewall.dns_blocked([gpo_allow], SERVER, [SERVER], profile=gpo_only)


def test_the_mail_flow_obeys_the_default_block_and_delivers_once_dns_is_allowed() -> None:
    fleet = make_fleet("host-firewall-default-block")
    ex01 = fleet.host("EX01")
    state = ex01.state
    assert state.queues and all(
        q.status == "Retry" and "ErrorTimeout" in (q.last_error or "") for q in state.queues
    )
    for protocol in ("UDP", "TCP"):
        ok(ex01, OS, "New-NetFirewallRule", ("Name", f"exfix-allow-dns-{protocol.lower()}"),
           ("DisplayName", f"Allow DNS ({protocol})"), ("Direction", "Outbound"), ("Action", "Allow"),
           ("Protocol", protocol), ("RemotePort", ["53"]), ("RemoteAddress", [SERVER]))  # fmt: skip
    with fleet.org.lock:
        for queue in state.queues:
            mailflow.run_attempt(fleet.org, state, queue)  # no restart: the firewall is live
    assert all(q.queued == 0 and q.last_error is None for q in state.queues)
