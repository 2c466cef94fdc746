"""enable-nic-dns-registration: turn "Register this connection's addresses in DNS" back on
for the MAPI NIC only, then register its address now (KB3007623).

Planned from two rules. nic-dns-registration-disabled: registration is off on the MAPI NIC.
server-a-record-wrong-nic: the server's A record points at another NIC; then, besides the MAPI
NIC's registration, registration goes off on the other NICs the finding found to be dedicated
backup, replication or iSCSI networks (agent/rules/_common.py ``dedicated_network``: no default
gateway, and named for it), before Register-DnsClient registers the name again. That decision
is in the step's description (REVIEW.md, plan.json); a NIC left as it is gets an advisory that
says why and what a person may do.

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
from agent.model.finding_data import EnableRegistration, RegisterMapiNic
from agent.model.findings import Finding
from agent.model.plan import AdvisoryKind, FactArea, FactRef, HostVars

FIX_ID = "enable-nic-dns-registration"

# The kinds of step this fix plans (plan.json "kind").
ENABLE_REGISTRATION = "enable-nic-dns-registration"
DISABLE_REGISTRATION = "disable-nic-dns-registration"
REGISTER_DNS_CLIENT = "register-dns-client"


_SETTING = "'Register this connection's addresses in DNS'"


def _label(index: int, alias: str) -> str:
    return f"NIC {alias!r} (InterfaceIndex {index})"


def _registration(index: int, before: bool | None, after: bool) -> SettingChange:
    # An unknown before value (None) has no rollback: exfix does not guess what to restore.
    return SettingChange(
        Setting.of(Endpoint.OS, "DnsClient", ("InterfaceIndex", index)),
        (PropertyChange("RegisterThisConnectionsAddress", before, after),),
    )


def enable_draft(index: int, alias: str, before: bool | None, finding_ids: tuple[str, ...]) -> Draft:
    return setting_draft(
        _registration(index, before, True),
        kind=ENABLE_REGISTRATION,
        fix_id=FIX_ID,
        description=f"Turn on {_SETTING} for the MAPI {_label(index, alias)}",
        restart_required=True,
        finding_ids=finding_ids,
        depends_on=(FactRef(FactArea.NIC_REGISTRATION, str(index)),),
    )


def disable_draft(
    index: int, alias: str, before: bool | None, why: str, finding_ids: tuple[str, ...]
) -> Draft:
    """Registration off for a dedicated network's NIC; ``why`` is the decision, shown to the
    change board. It needs no transport restart: transport reads the MAPI NIC's servers, and
    the record is what changes."""
    return setting_draft(
        _registration(index, before, False),
        kind=DISABLE_REGISTRATION,
        fix_id=FIX_ID,
        description=f"Turn off {_SETTING} for {_label(index, alias)}: {why}",
        restart_required=False,
        finding_ids=finding_ids,
        depends_on=(FactRef(FactArea.NIC_REGISTRATION, str(index)),),
    )


def register_draft(why: str, indexes: tuple[int, ...], finding_ids: tuple[str, ...]) -> Draft:
    """Register-DnsClient; ``why`` ends the description ("so ...")."""
    return Draft(
        kind=REGISTER_DNS_CLIENT,
        fix_id=FIX_ID,
        call=CmdletCall(Endpoint.OS, "Register-DnsClient"),
        description=f"Register the host's addresses in DNS now, so {why}",
        changes=(),
        read_back=None,
        rollback=(),
        restart_required=False,
        finding_ids=finding_ids,
        depends_on=tuple(FactRef(FactArea.NIC_REGISTRATION, str(i)) for i in indexes),
    )


def drafts(index: int, alias: str, before: bool | None, finding_ids: tuple[str, ...]) -> tuple[Draft, ...]:
    """The two actions for the MAPI NIC ``index`` (``alias`` only describes it)."""
    return (
        enable_draft(index, alias, before, finding_ids),
        register_draft(f"the A record of {_label(index, alias)} exists again", (index,), finding_ids),
    )


def _still_mapi(finding: Finding, facts: HostFacts, index: int) -> Planned | None:
    if facts.mapi_nic.interface_index != index:
        return advise(
            AdvisoryKind.CANNOT_PLAN,
            finding,
            f"NIC {index} is no longer the MAPI NIC in the facts; scan the host again.",
        )
    return None


def _plan_a_record(finding: Finding, facts: HostFacts, wanted: RegisterMapiNic) -> Planned:
    """server-a-record-wrong-nic: the MAPI NIC's registration on, the dedicated networks'
    off, the name registered again; advice for every other NIC left as it is."""
    index = wanted.interface_index
    mapi = nic_by_index(facts, index)
    if mapi is None:
        return nic_gone(finding)
    moved = _still_mapi(finding, facts, index)
    if moved is not None:
        return moved
    ids = (finding.id,)
    out: list[Draft] = []
    if mapi.register_this_connections_address is not True:
        out.append(enable_draft(index, mapi.interface_alias, mapi.register_this_connections_address, ids))
    advice: list[str] = []
    changed = [index]
    turned_off: list[str] = []
    decisions = dict(zip(wanted.other_indexes, wanted.decisions, strict=False))
    for other_index, alias in zip(wanted.other_indexes, wanted.other_aliases, strict=False):
        other = nic_by_index(facts, other_index)
        why = decisions.get(other_index, "")
        label = _label(other_index, alias)
        if other_index in wanted.turn_off:
            if other is None:
                advice.append(f"{label} is no longer in the facts; scan the host again.")
            elif other.register_this_connections_address is not False:
                out.append(disable_draft(other_index, other.interface_alias,
                                         other.register_this_connections_address, why, ids))  # fmt: skip
                changed.append(other_index)
                turned_off.append(label)
            continue
        text = f"{label}: {why}."
        if other is None or other.register_this_connections_address is not False:
            text += (
                " If it is a backup, replication or iSCSI network after all, turn its registration off "
                f"by hand (Set-DnsClient -InterfaceIndex {other_index} -RegisterThisConnectionsAddress "
                "$false) and run Register-DnsClient."
            )
        advice.append(text)
    mapi_label = _label(index, mapi.interface_alias)
    record = f"the A record of {wanted.fqdn} holds the address of the MAPI {mapi_label}"
    if turned_off:
        record += " and no longer that of " + ", ".join(turned_off)
    out.append(register_draft(record, tuple(changed), ids))
    advisories = tuple(
        a for text in advice for a in advise(AdvisoryKind.CANNOT_PLAN, finding, text).advisories
    )
    return Planned(tuple(out), advisories)


def plan(finding: Finding, facts: HostFacts, host_vars: HostVars) -> Planned:
    by_record = request(finding, RegisterMapiNic)
    if by_record is not None:
        return _plan_a_record(finding, facts, by_record)
    wanted = request(finding, EnableRegistration)
    nic = nic_by_index(facts, wanted.interface_index) if wanted is not None else None
    if wanted is None or nic is None:
        return nic_gone(finding)
    index = wanted.interface_index
    moved = _still_mapi(finding, facts, index)
    if moved is not None:
        return moved
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
        "Set-DnsClient -RegisterThisConnectionsAddress $true on the MAPI NIC ($false on a dedicated backup, "
        "replication or iSCSI NIC the A record points at), Register-DnsClient, restart MSExchangeTransport"
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
        Step(
            DISABLE_REGISTRATION,
            risk=(
                "Turning DNS registration off on a dedicated backup, replication or iSCSI network takes that "
                "address out of the server's A record; nothing else on the server uses the setting."
            ),
        ),
        Step(REGISTER_DNS_CLIENT),
    ),
    reads=(FactArea.NIC_REGISTRATION,),
)
