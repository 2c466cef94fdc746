"""set-nic-dns-servers: leave only internal DNS servers on the MAPI NIC.

The servers the finding flagged (public addresses, and servers the probes showed cannot
resolve the AD domain) are dropped; the others keep their order. exfix never adds a server
the NIC did not have: if nothing would be left, the plan has no action and says so, because
a NIC without DNS servers breaks far more than mail (an Exchange server must use
internal DNS only, even as secondary). Transport reads the NIC's servers at start, so the
change needs the MSExchangeTransport restart build_plan adds once per host.
"""

from __future__ import annotations

from agent.fixes import _predict
from agent.fixes._derive import nic_by_index, without_placeholders
from agent.fixes._draft import Draft, Planned, advise, nic_gone, request
from agent.fixes._setting import PropertyChange, Setting, SettingChange, setting_draft
from agent.fixes.spec import FixSpec, Step
from agent.model.command import Endpoint
from agent.model.facts import HostFacts
from agent.model.finding_data import SetNicDnsServers
from agent.model.findings import Finding
from agent.model.plan import AdvisoryKind, FactArea, FactRef, HostVars

FIX_ID = "set-nic-dns-servers"

# The kinds of step this fix plans (plan.json "kind").
SET_NIC_DNS_SERVERS = "set-nic-dns-servers"


def draft(
    index: int, alias: str, before: tuple[str, ...], after: tuple[str, ...], finding_ids: tuple[str, ...]
) -> Draft:
    # Read back: Get-DnsClientServerAddress returns one object per address family; the value
    # to compare is their ServerAddresses joined, IPv4 first (as NicFacts.dns_servers). The
    # planner never plans from a NIC without servers, so the rollback always names some.
    change = SettingChange(
        Setting.of(Endpoint.OS, "DnsClientServerAddress", ("InterfaceIndex", index)),
        (PropertyChange("ServerAddresses", before, after),),
    )
    return setting_draft(
        change,
        kind=SET_NIC_DNS_SERVERS,
        fix_id=FIX_ID,
        description=(
            f"Set the DNS servers of the MAPI NIC {alias!r} (InterfaceIndex {index}) to the internal "
            f"servers {', '.join(after)} (was {', '.join(before)})"
        ),
        restart_required=True,
        finding_ids=finding_ids,
        depends_on=(FactRef(FactArea.NIC_DNS_SERVERS, str(index)),),
    )


def plan(finding: Finding, facts: HostFacts, host_vars: HostVars) -> Planned:
    wanted = request(finding, SetNicDnsServers)
    nic = nic_by_index(facts, wanted.interface_index) if wanted is not None else None
    if wanted is None or nic is None:
        return nic_gone(finding)
    index = wanted.interface_index
    drop = set(wanted.drop_servers)
    before = without_placeholders(nic.dns_servers)
    keep = tuple(s for s in before if s not in drop)
    if not keep:
        candidates = wanted.candidate_servers
        hint = (
            f" In the probes, {', '.join(candidates)} resolved the AD domain; if they are the right servers "
            "for this NIC, set them by hand."
            if candidates
            else " No server that resolves the AD domain was found in the probes."
        )
        return advise(
            AdvisoryKind.NO_SERVER_LEFT,
            finding,
            f"Removing {', '.join(sorted(drop))} from {nic.label} would leave it with no DNS server, so "
            f"exfix plans no change: the NIC needs an internal DNS server that holds the AD zone.{hint}",
        )
    if keep == before:
        return Planned()
    return Planned((draft(index, nic.interface_alias, before, keep, (finding.id,)),))


def predict(step: _predict.PlannedStep, facts: HostFacts) -> HostFacts:
    """The NIC with the step's ServerAddresses (Set-DnsClientServerAddress replaces the list)."""
    index = _predict.index(_predict.parameter(step, "InterfaceIndex"))
    return _predict.with_nic_servers(facts, index, _predict.texts(_predict.after(step, "ServerAddresses")))


SPEC = FixSpec(
    id=FIX_ID,
    summary=(
        "Set-DnsClientServerAddress on the MAPI NIC to internal DNS servers only, restart MSExchangeTransport"
    ),
    disrupts_mail_flow=True,
    planner=plan,
    template=FIX_ID,
    steps=(
        Step(
            SET_NIC_DNS_SERVERS,
            risk=(
                "Changing the MAPI NIC's DNS servers changes name resolution for everything on this server, "
                "not only Exchange; only servers already on the NIC are kept."
            ),
            predict=predict,
        ),
    ),
    reads=(FactArea.NIC_DNS_SERVERS,),
)
