"""enable-nic-dns-registration: turn "Register this connection's addresses in DNS" back on
for the MAPI NIC only, then register its address now (KB3007623).

Set-DnsClient selects the NIC by InterfaceIndex, never by alias: the index is a number exfix
read from Get-DnsClient, while an alias is free text a host reports. The restart of
MSExchangeTransport the fix needs is added once per host by build_plan.
"""

from __future__ import annotations

import dataclasses

from agent.fixes import _predict
from agent.fixes._derive import nic_by_index
from agent.fixes._draft import Draft, Planned, advise, nic_gone, request
from agent.fixes._setting import PropertyChange, Setting, SettingChange, setting_draft
from agent.fixes.spec import FixSpec, Step
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import HostFacts
from agent.model.finding_data import EnableRegistration
from agent.model.findings import Finding
from agent.model.plan import AdvisoryKind, FactArea, FactRef, HostVars

FIX_ID = "enable-nic-dns-registration"

# The kinds of step this fix plans (plan.json "kind").
ENABLE_REGISTRATION = "enable-nic-dns-registration"
REGISTER_DNS_CLIENT = "register-dns-client"


def drafts(index: int, alias: str, before: bool | None, finding_ids: tuple[str, ...]) -> tuple[Draft, ...]:
    """The two actions for NIC ``index`` (``alias`` only describes it)."""
    deps = (FactRef(FactArea.NIC_REGISTRATION, str(index)),)
    label = f"NIC {alias!r} (InterfaceIndex {index})"
    # An unknown before value (None) has no rollback: exfix does not guess what to restore.
    change = SettingChange(
        Setting.of(Endpoint.OS, "DnsClient", ("InterfaceIndex", index)),
        (PropertyChange("RegisterThisConnectionsAddress", before, True),),
    )
    return (
        setting_draft(
            change,
            kind=ENABLE_REGISTRATION,
            fix_id=FIX_ID,
            description=f"Turn on 'Register this connection's addresses in DNS' for the MAPI {label}",
            restart_required=True,
            finding_ids=finding_ids,
            depends_on=deps,
        ),
        Draft(
            kind=REGISTER_DNS_CLIENT,
            fix_id=FIX_ID,
            call=CmdletCall(Endpoint.OS, "Register-DnsClient"),
            description=f"Register the host's addresses in DNS now, so the A record of {label} exists again",
            changes=(),
            read_back=None,
            rollback=(),
            restart_required=False,
            finding_ids=finding_ids,
            depends_on=deps,
        ),
    )


def plan(finding: Finding, facts: HostFacts, host_vars: HostVars) -> Planned:
    wanted = request(finding, EnableRegistration)
    nic = nic_by_index(facts, wanted.interface_index) if wanted is not None else None
    if wanted is None or nic is None:
        return nic_gone(finding)
    index = wanted.interface_index
    if facts.mapi_nic.interface_index != index:
        return advise(
            AdvisoryKind.CANNOT_PLAN,
            finding,
            f"NIC {index} is no longer the MAPI NIC in the facts; scan the host again.",
        )
    if nic.register_this_connections_address is True:
        return Planned()
    return Planned(drafts(index, nic.interface_alias, nic.register_this_connections_address, (finding.id,)))


def predict(step: _predict.PlannedStep, facts: HostFacts) -> HostFacts:
    index = _predict.index(_predict.parameter(step, "InterfaceIndex"))
    register = _predict.flag(_predict.after(step, "RegisterThisConnectionsAddress"))
    return _predict.with_nic(
        facts, index, lambda nic: dataclasses.replace(nic, register_this_connections_address=register)
    )


SPEC = FixSpec(
    id=FIX_ID,
    summary=(
        "Set-DnsClient -RegisterThisConnectionsAddress $true on the MAPI NIC, Register-DnsClient, "
        "restart MSExchangeTransport"
    ),
    disrupts_mail_flow=True,
    planner=plan,
    template=FIX_ID,
    steps=(
        Step(
            ENABLE_REGISTRATION,
            risk="Turning DNS registration on lets this server (re)create its own A record in the AD zone.",
            predict=predict,
        ),
        Step(REGISTER_DNS_CLIENT),
    ),
    reads=(FactArea.NIC_REGISTRATION,),
)
