"""disable-dns-firewall-block: turn off the host's outbound Windows Firewall rule that drops its
DNS queries to a configured server (rule host-firewall-blocks-dns).

Why not an allow rule. The issue asked for New-NetFirewallRule (an outbound allow for UDP/TCP
53 to the configured servers), rolled back by Remove-NetFirewallRule. That cannot cure a host
whose DNS an explicit block rule drops: "If conflicting rules match the same network traffic,
the actions determine the order of precedence. Allow-bypass rules take precedence over block
rules, and block rules take precedence over allow rules" (MS-FASP 2.2.34 FW_RULE_ACTION,
https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-fasp/702e3c23-c9d8-43db-8380-b4c670dd7f7d).
Allow-bypass needs an authenticated IPsec rule, which DNS to a resolver is not. So the fix is
Disable-NetFirewallRule -Name <the block rule> (rolled back by Enable-NetFirewallRule -Name),
which keeps the rule and its filters as they were, for whoever owns it to narrow. The allow
rule is the cure on a host whose profile blocks outbound traffic by default and that has no
allow rule for the server: allow-dns-through-firewall (agent/fixes/firewall_dns_allow.py),
which the finding names then, and which plans these steps first where block rules match too.

It changes only what is safely the DNS block and nothing else:

- a rule from group policy (PolicyStoreSourceType GroupPolicy) is not changed locally (the
  next policy refresh would restore it, and the local store does not hold it): advice naming
  the GPO;
- a rule whose remote port is not exactly 53 (Any, a range) blocks more than DNS: turning it
  off would open traffic the finding says nothing about, so advice instead;
- without the rules read (the ``firewall`` area failed), nothing is planned: advice with the
  cmdlets to find the rule.

The firewall applies a rule change to the next packet: no transport restart, mail does not
stop (non-disruptive). Read back: Get-NetFirewallRule -Name shows Enabled False. The drift
check reads the rule as it was found (FactArea.FIREWALL_RULE).
"""

from __future__ import annotations

import dataclasses

from agent.fixes import _predict
from agent.fixes._draft import Draft, Planned, advise, request
from agent.fixes.spec import FixSpec, Step
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import FirewallRuleFacts, HostFacts
from agent.model.finding_data import DisableFirewallBlock
from agent.model.findings import Finding
from agent.model.plan import Advisory, AdvisoryKind, Change, FactArea, FactRef, HostVars

FIX_ID = "disable-dns-firewall-block"

# The kind of step this fix plans (plan.json "kind").
DISABLE_FIREWALL_RULE = "disable-firewall-rule"


def draft(rule: FirewallRuleFacts, server: str, finding_ids: tuple[str, ...]) -> Draft:
    name = rule.name
    return Draft(
        kind=DISABLE_FIREWALL_RULE,
        fix_id=FIX_ID,
        call=CmdletCall(Endpoint.OS, "Disable-NetFirewallRule", (("Name", name),)),
        description=(
            f"Turn off the outbound Windows Firewall rule {name!r} ({rule.display_name}), which blocks "
            f"{rule.protocol} port {', '.join(rule.remote_port)} to {', '.join(rule.remote_address)}, so the "
            f"host's DNS queries reach {server}"
        ),
        changes=(Change("Enabled", True, False),),
        read_back=CmdletCall(Endpoint.OS, "Get-NetFirewallRule", (("Name", name),)),
        rollback=(CmdletCall(Endpoint.OS, "Enable-NetFirewallRule", (("Name", name),)),),
        restart_required=False,
        finding_ids=finding_ids,
        depends_on=(FactRef(FactArea.FIREWALL_RULE, name),),
    )


def _only_dns(rule: FirewallRuleFacts) -> bool:
    return tuple(p.strip() for p in rule.remote_port) == ("53",)


def plan(finding: Finding, facts: HostFacts, host_vars: HostVars) -> Planned:
    wanted = request(finding, DisableFirewallBlock)
    if wanted is None:
        return advise(AdvisoryKind.CANNOT_PLAN, finding, "The finding carries no firewall data; scan again.")
    server = wanted.server
    if not wanted.firewall_read or facts.firewall is None:
        why = wanted.firewall_issue or "they were not collected"
        return advise(
            AdvisoryKind.CANNOT_PLAN,
            finding,
            f"The host's firewall rules could not be read ({why}), so exfix cannot name the rule that "
            f"blocks DNS to {server}. On the host, list the enabled outbound block rules with "
            "Get-NetFirewallRule -Direction Outbound -Action Block -Enabled True -PolicyStore ActiveStore "
            "| Get-NetFirewallPortFilter, and turn off the one for port 53 (Disable-NetFirewallRule -Name).",
        )
    if not wanted.rules:
        return advise(
            AdvisoryKind.CANNOT_PLAN,
            finding,
            f"No enabled outbound block rule exfix read matches UDP 53 to {server}, yet the host gets no "
            "reply from it. Look at the firewall profile's DefaultOutboundAction (Get-NetFirewallProfile), "
            "third-party filtering on the host, and the network between the host and the server.",
        )
    drafts: list[Draft] = []
    advisories: list[Advisory] = []
    current = {r.name.strip().lower(): r for r in facts.firewall.rules}
    for name in wanted.rules:
        found = current.get(name.strip().lower())
        if found is None:
            text = f"Firewall rule {name!r} is no longer an enabled outbound rule in the facts; scan again."
            advisories.extend(advise(AdvisoryKind.CANNOT_PLAN, finding, text).advisories)
            continue
        label = f"Firewall rule {found.name!r} ({found.display_name})"
        if found.from_group_policy:
            gpo = found.policy_store_source or "a group policy object"
            text = (
                f"{label} comes from group policy ({gpo}): a local change would not last. Change the rule "
                f"in that GPO so that it no longer blocks DNS to {server}."
            )
        elif not _only_dns(found):
            text = (
                f"{label} blocks remote port {', '.join(found.remote_port)}, more than DNS: exfix does not "
                f"turn it off. Narrow it (Set-NetFirewallRule) or exempt {server} port 53 from it."
            )
        else:
            drafts.append(draft(found, server, (finding.id,)))
            continue
        advisories.extend(advise(AdvisoryKind.CANNOT_PLAN, finding, text).advisories)
    return Planned(tuple(drafts), tuple(advisories))


def predict(step: _predict.PlannedStep, facts: HostFacts) -> HostFacts:
    """The facts with the rule off: it leaves the enabled rules the area holds."""
    if facts.firewall is None:
        return facts
    name = str(_predict.parameter(step, "Name")).strip().lower()
    kept = tuple(r for r in facts.firewall.rules if r.name.strip().lower() != name)
    return dataclasses.replace(facts, firewall=dataclasses.replace(facts.firewall, rules=kept))


SPEC = FixSpec(
    id=FIX_ID,
    summary=(
        "Disable-NetFirewallRule for the local outbound block rule that drops the host's DNS to a configured "
        "server (an allow rule cannot override a block rule); Enable-NetFirewallRule rolls it back"
    ),
    disrupts_mail_flow=False,
    planner=plan,
    template=FIX_ID,
    steps=(
        Step(
            DISABLE_FIREWALL_RULE,
            risk=(
                "The rule stops blocking everything it matched (only port 53, to the addresses shown); "
                "whoever owns the hardening policy should narrow it and turn it on again, or keep it off."
            ),
            predict=predict,
        ),
    ),
    reads=(FactArea.FIREWALL_RULE,),
)
