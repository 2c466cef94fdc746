"""allow-dns-through-firewall: add outbound Windows Firewall rules that let the host's DNS out
to the configured servers it cannot reach, on a host whose firewall profile blocks outbound
traffic by default (rule host-firewall-blocks-dns, a finding with ``default_block_profile``).

A hardened server has DefaultOutboundAction Block on its profile ("Blocks outbound network
traffic that does not match an outbound rule", Set-NetFirewallProfile docs,
https://learn.microsoft.com/powershell/module/netsecurity/set-netfirewallprofile): there, DNS
leaves only where an enabled allow rule matches it. The fix is New-NetFirewallRule with
-Direction Outbound -Action Allow -Protocol UDP (and a second for TCP, which DNS falls back to
for a truncated answer, RFC 7766) -RemotePort 53 -RemoteAddress <exactly the servers the host
cannot reach> -Profile <the profile that blocks>. Each has a fixed -Name
(``exfix-allow-dns-udp``, ``exfix-allow-dns-tcp``): Name is the rule's unique key
(New-NetFirewallRule docs, -Name), so the rollback, Remove-NetFirewallRule -Name, removes
exactly the rule apply added and nothing an administrator made.

Where block rules match the same traffic too, an allow rule alone changes nothing ("block
rules take precedence over allow rules", MS-FASP 2.2.34 FW_RULE_ACTION): the plan then also
turns those off, with the disable-dns-firewall-block steps (under that fix's id, and before
these: agent/fixes/registry.py order). Both are needed then, and each alone would leave the
host's DNS dropped.

It does not plan, and says why, where:

- the profile ignores local rules (AllowLocalFirewallRules False, set by group policy: "The
  firewall rules defined by the local administrator are ignored, and only firewall rules from
  GPOs are applied", Set-NetFirewallProfile docs): the allow rule belongs in that GPO;
- a rule of the fixed name already exists (an earlier exfix run, for other servers): a second
  New-NetFirewallRule with that name would fail; the advice names the servers to add;
- the firewall was not read: nothing to decide with.

A rule that exists but is disabled is not in the facts (exfix reads the enabled rules): apply's
New-NetFirewallRule then fails ("already exists") and the step is rolled back.

The firewall applies a new rule to the next packet: no transport restart (non-disruptive).
Read back: Get-NetFirewallRule -Name shows the rule, Enabled True. The drift check reads the
profile (FactArea.FIREWALL_PROFILE) and the rule's name (absent when planned).
"""

from __future__ import annotations

import dataclasses

from agent.fixes import _predict
from agent.fixes import firewall_dns_block as block
from agent.fixes._draft import Draft, Planned, advise, request
from agent.fixes.spec import FixSpec, Step
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import FirewallFacts, FirewallProfileFacts, FirewallRuleFacts, HostFacts
from agent.model.finding_data import DisableFirewallBlock
from agent.model.findings import Finding
from agent.model.plan import AdvisoryKind, Change, FactArea, FactRef, HostVars
from agent.rules import _common as rules_common

FIX_ID = "allow-dns-through-firewall"

# The kind of step this fix plans (plan.json "kind").
NEW_DNS_ALLOW_RULE = "new-dns-allow-firewall-rule"

# The rules' fixed Names, per protocol: what the rollback removes.
RULE_NAMES = {"UDP": "exfix-allow-dns-udp", "TCP": "exfix-allow-dns-tcp"}
_DISPLAY = "exfix - Allow DNS to the configured DNS servers ({protocol}-Out)"
_DESCRIPTION = (
    "Added by exfix (host-firewall-blocks-dns): the profile blocks outbound traffic by default. "
    "Remove with Remove-NetFirewallRule -Name {name}."
)
DNS_PORT = "53"


def _nic_servers(facts: HostFacts) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for nic in facts.nics for s in nic.dns_servers))


def _allowed(firewall: FirewallFacts, server: str, protocol: str, nic_servers: tuple[str, ...]) -> bool:
    return any(not r.blocks and r.matches_dns(server, protocol, nic_servers) for r in firewall.rules)


def unreachable_servers(facts: HostFacts) -> tuple[str, ...]:
    """The configured DNS servers in use that answer exfix but not the host, and that the
    host's profile drops by default for want of an allow rule: what the allow rules name. One
    set for every finding of the host, so that each finding's planner proposes the same rule
    (build_plan merges them)."""
    if facts.firewall is None:
        return ()
    nic_servers = _nic_servers(facts)
    out = []
    for server in rules_common.all_configured_servers(facts):
        if rules_common.firewalled_contrast(facts, server) is None:
            continue
        if not rules_common.server_in_use(facts, server):
            continue
        if facts.firewall.default_block_without_allow(server, nic_servers) is not None:
            out.append(server)
    return tuple(out)


def draft(
    protocol: str, servers: tuple[str, ...], profile: FirewallProfileFacts, finding_ids: tuple[str, ...]
) -> Draft:
    name = RULE_NAMES[protocol]
    call = CmdletCall(
        Endpoint.OS,
        "New-NetFirewallRule",
        (
            ("Name", name),
            ("DisplayName", _DISPLAY.format(protocol=protocol)),
            ("Description", _DESCRIPTION.format(name=name)),
            ("Direction", "Outbound"),
            ("Action", "Allow"),
            ("Protocol", protocol),
            ("RemotePort", (DNS_PORT,)),
            ("RemoteAddress", servers),
            ("Profile", profile.name),
        ),
    )
    return Draft(
        kind=NEW_DNS_ALLOW_RULE,
        fix_id=FIX_ID,
        call=call,
        description=(
            f"Add the outbound Windows Firewall rule {name!r}, allowing {protocol} port {DNS_PORT} to "
            f"{', '.join(servers)} on the {profile.name} profile, whose DefaultOutboundAction "
            f"{profile.default_outbound_action} drops DNS no rule allows"
        ),
        changes=(Change("Name", None, name), Change("Enabled", None, True)),
        read_back=CmdletCall(Endpoint.OS, "Get-NetFirewallRule", (("Name", name),)),
        rollback=(CmdletCall(Endpoint.OS, "Remove-NetFirewallRule", (("Name", name),)),),
        restart_required=False,
        finding_ids=finding_ids,
        depends_on=(FactRef(FactArea.FIREWALL_PROFILE, profile.name), FactRef(FactArea.FIREWALL_RULE, name)),
    )


def plan(finding: Finding, facts: HostFacts, host_vars: HostVars) -> Planned:
    wanted = request(finding, DisableFirewallBlock)
    if wanted is None:
        return advise(AdvisoryKind.CANNOT_PLAN, finding, "The finding carries no firewall data; scan again.")
    firewall = facts.firewall
    profile = firewall.host_profile() if firewall is not None else None
    if firewall is None or profile is None or not wanted.default_block_profile:
        return advise(
            AdvisoryKind.CANNOT_PLAN,
            finding,
            f"The host's firewall profile could not be read, so exfix cannot tell what drops its DNS to "
            f"{wanted.server}. On the host, see Get-NetFirewallProfile (DefaultOutboundAction) and the "
            "enabled outbound rules for port 53.",
        )
    # Where block rules match too, they must go first: an allow rule loses to them.
    turned_off = block.plan(finding, facts, host_vars) if wanted.rules else Planned()
    if not profile.allow_local_rules:
        text = (
            f"The {profile.name} profile blocks outbound traffic by default and ignores local firewall rules "
            "(AllowLocalFirewallRules False, from group policy), so a rule exfix adds would change nothing. "
            f"Add an outbound allow rule for UDP and TCP port {DNS_PORT} to {wanted.server} in that GPO."
        )
        refused = advise(AdvisoryKind.CANNOT_PLAN, finding, text).advisories
        return Planned(turned_off.drafts, (*turned_off.advisories, *refused))
    servers = unreachable_servers(facts)
    if wanted.server not in servers:
        return turned_off  # the facts no longer show the default dropping it
    existing = {r.name.strip().lower(): r for r in firewall.rules}
    nic_servers = _nic_servers(facts)
    drafts = list(turned_off.drafts)
    advisories = list(turned_off.advisories)
    for protocol, name in RULE_NAMES.items():
        missing = tuple(s for s in servers if not _allowed(firewall, s, protocol.lower(), nic_servers))
        if not missing:
            continue
        found = existing.get(name)
        if found is not None:
            text = (
                f"exfix's firewall rule {name!r} exists already (RemoteAddress "
                f"{', '.join(found.remote_address)}) and does not allow {protocol} port {DNS_PORT} to "
                f"{', '.join(missing)}. Add them with "
                f"Set-NetFirewallRule -Name {name} -RemoteAddress <the addresses>, or remove the rule "
                "(Remove-NetFirewallRule -Name) and plan again."
            )
            advisories.extend(advise(AdvisoryKind.CANNOT_PLAN, finding, text).advisories)
            continue
        drafts.append(draft(protocol, missing, profile, (finding.id,)))
    return Planned(tuple(drafts), tuple(advisories))


def predict(step: _predict.PlannedStep, facts: HostFacts) -> HostFacts:
    """The facts with the new allow rule among the enabled outbound rules."""
    if facts.firewall is None:
        return facts
    name = str(_predict.parameter(step, "Name"))
    rule = FirewallRuleFacts(
        name=name,
        display_name=str(_predict.parameter(step, "DisplayName")),
        direction="Outbound",
        action=str(_predict.parameter(step, "Action")),
        enabled=True,
        profile=_predict.texts(_predict.parameter(step, "Profile")),
        protocol=str(_predict.parameter(step, "Protocol")),
        remote_port=_predict.texts(_predict.parameter(step, "RemotePort")),
        remote_address=_predict.texts(_predict.parameter(step, "RemoteAddress")),
    )
    kept = tuple(r for r in facts.firewall.rules if r.name.strip().lower() != name.strip().lower())
    return dataclasses.replace(facts, firewall=dataclasses.replace(facts.firewall, rules=(*kept, rule)))


SPEC = FixSpec(
    id=FIX_ID,
    summary=(
        "New-NetFirewallRule allowing outbound UDP and TCP 53 to exactly the configured DNS servers a "
        "default-Block profile drops (fixed names exfix-allow-dns-udp/-tcp); Remove-NetFirewallRule rolls "
        "it back"
    ),
    disrupts_mail_flow=False,
    planner=plan,
    template=FIX_ID,
    steps=(
        Step(
            NEW_DNS_ALLOW_RULE,
            risk=(
                "The host may send DNS (port 53) to the addresses shown, and nothing else; whoever owns the "
                "hardening policy should carry the rule into it, or the next policy change may drop it."
            ),
            predict=predict,
        ),
    ),
    reads=(FactArea.FIREWALL_PROFILE, FactArea.FIREWALL_RULE),
    plans_steps_of=(block.FIX_ID,),
)
