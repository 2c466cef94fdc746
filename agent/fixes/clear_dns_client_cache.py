"""clear-dns-client-cache: Clear-DnsClientCache on the host, so that the stale negative answer
the finding names is asked of the DNS servers again (rule dns-client-cache-negative).

Clear-DnsClientCache "deletes all the contents of the DNS client cache" (learn.microsoft.com:
Clear-DnsClientCache); it is what ``ipconfig /flushdns`` does. It changes no setting, needs no
restart of MSExchangeTransport and does not interrupt mail flow: every later lookup simply asks
the configured servers again and the cache fills with their answers. So the step has no
rollback, and needs none: there is nothing to put back that Windows would not rebuild by itself,
and the plan says so. For the same reason the step has no drift check of its own (apply checks
drift only for steps it could roll back): a cache entry that expired between plan and apply
makes the flush useless, never harmful.

The read-back asks Get-DnsClientCache for the first stale entry the finding names (by Entry,
Type and Status): after the flush no such row may come back. An entry the host has learnt
afresh from the servers is a positive one and does not match the Status asked for.
"""

from __future__ import annotations

import dataclasses

from agent.fixes._draft import Draft, Planned, advise, request
from agent.fixes._predict import PlannedStep
from agent.fixes.spec import FixSpec, Step
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import DNS_STATUS_WORDS, HostFacts
from agent.model.finding_data import ClearDnsClientCache
from agent.model.findings import Finding
from agent.model.plan import AdvisoryKind, Change, FactArea, FactRef, HostVars

FIX_ID = "clear-dns-client-cache"
CLEAR = "clear-dns-client-cache"

NO_UNDO = (
    "A cache flush has no undo, and needs none: Windows refills the cache from the DNS servers with "
    "the next lookups"
)


def read_back_call(entry: str, record_type: str, status: int) -> CmdletCall:
    """Get-DnsClientCache for the negative row ``entry``/``record_type``/``status``."""
    word = DNS_STATUS_WORDS.get(status, str(status))
    return CmdletCall(
        Endpoint.OS, "Get-DnsClientCache", (("Entry", entry), ("Type", record_type), ("Status", word))
    )


def draft(
    domain: str,
    entries: tuple[str, ...],
    record_types: tuple[str, ...],
    statuses: tuple[int, ...],
    finding_ids: tuple[str, ...],
) -> Draft:
    """The flush for the stale negative ``entries`` (parallel to ``record_types`` and
    ``statuses``; at least one) that keep mail to ``domain`` from resolving."""
    named = ", ".join(
        f"{t} {e} ({DNS_STATUS_WORDS.get(s, s)})"
        for e, t, s in zip(entries, record_types, statuses, strict=False)
    )
    return Draft(
        kind=CLEAR,
        fix_id=FIX_ID,
        call=CmdletCall(Endpoint.OS, "Clear-DnsClientCache"),
        description=(
            f"Clear the host's DNS client cache, so the stale negative answers for {named} are asked of "
            f"the DNS servers again and mail to {domain} can resolve. {NO_UNDO}"
        ),
        changes=(Change("Status", statuses[0], None),),
        read_back=read_back_call(entries[0], record_types[0], statuses[0]),
        rollback=(),
        restart_required=False,
        finding_ids=finding_ids,
        depends_on=(FactRef(FactArea.EXCHANGE_SERVER),),
    )


def plan(finding: Finding, facts: HostFacts, host_vars: HostVars) -> Planned:
    wanted = request(finding, ClearDnsClientCache)
    if wanted is None or not wanted.entries:
        return advise(AdvisoryKind.CANNOT_PLAN, finding, "The finding names no DNS client cache entry.")
    return Planned(
        drafts=(draft(wanted.domain, wanted.entries, wanted.record_types, wanted.statuses, (finding.id,)),)
    )


def predict(step: PlannedStep, facts: HostFacts) -> HostFacts:
    """After the flush the cache is empty (the lookups after it refill it with what the servers
    answer, which the probes already show)."""
    return dataclasses.replace(facts, dns_cache=())


SPEC = FixSpec(
    id=FIX_ID,
    summary="Clear-DnsClientCache: drop a stale negative DNS answer from the host's cache (no undo needed)",
    disrupts_mail_flow=False,
    planner=plan,
    template="clear-dns-client-cache",
    steps=(Step(CLEAR, risk=NO_UNDO + ".", predict=predict, no_undo=NO_UNDO + "."),),
    reads=(FactArea.EXCHANGE_SERVER,),
)
