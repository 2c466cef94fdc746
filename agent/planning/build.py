"""findings -> the plan. Pure: no IO except reading the templates to render the scripts whose
sha256 the plan records.

Per host, the actions come in a fixed order:

1. the automatic changes that do not interrupt mail flow, fix by fix (planners.FIX_ORDER),
   finding by finding;
2. at most one ``Restart-Service -Name MSExchangeTransport`` (disruptive), when any of them
   only takes effect after a restart;
3. the manual steps (set-dns-fault-tolerance), followed by their own restart, also manual:
   apply does not run them, and a person who runs them later needs the restart then.

Identical actions proposed for two findings (transport-external-dns-unresolvable and
transport-no-dns-configured both asking for the same Set-TransportService) become one action
addressing both. A host whose findings have no fix gets no action, so planning again after a
successful apply yields an empty plan.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence

from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import HostFacts
from agent.model.findings import Finding
from agent.model.plan import (
    SCHEMA,
    TRANSPORT_SERVICE,
    Action,
    ActionKind,
    Advisory,
    AdvisoryKind,
    Change,
    FactArea,
    FactRef,
    HostPlan,
    HostVars,
    Plan,
    PlanSource,
    restart_transport_call,
    with_scripts,
)
from agent.planning._draft import Draft
from agent.planning.fingerprint import fingerprint_for
from agent.planning.planners import FIX_ORDER, PLANNERS
from agent.planning.render import render_plan
from agent.rules.metadata import RuleKind
from agent.rules.registry import RULES_BY_ID

RESTART_FIX_ID = "restart-transport"  # the restart is shared by every fix that needs it


def _merge(drafts: Sequence[Draft]) -> list[Draft]:
    merged: dict[tuple[object, ...], Draft] = {}
    for draft in drafts:
        key = (draft.kind, draft.call, draft.manual, draft.rollback, draft.changes)
        known = merged.get(key)
        if known is None:
            merged[key] = draft
            continue
        merged[key] = dataclasses.replace(
            known,
            finding_ids=tuple(dict.fromkeys(known.finding_ids + draft.finding_ids)),
            depends_on=tuple(dict.fromkeys(known.depends_on + draft.depends_on)),
        )
    return list(merged.values())


def _restart(drafts: Sequence[Draft], *, manual: bool) -> Draft | None:
    needing = [d for d in drafts if d.restart_required]
    if not needing:
        return None
    when = "after the manual steps above" if manual else "so the changes above take effect"
    return Draft(
        kind=ActionKind.RESTART_TRANSPORT,
        fix_id=RESTART_FIX_ID,
        call=restart_transport_call(),
        description=(
            f"Restart the Exchange transport service ({TRANSPORT_SERVICE}) {when}. Mail flow on this server "
            "stops while it restarts; queued messages are kept and delivered afterwards"
        ),
        changes=(Change("Status", None, "Running"),),
        read_back=CmdletCall(Endpoint.OS, "Get-Service", (("Name", TRANSPORT_SERVICE),)),
        rollback=(),
        restart_required=False,
        finding_ids=tuple(dict.fromkeys(f for d in needing for f in d.finding_ids)),
        depends_on=(FactRef(FactArea.EXCHANGE_SERVER),),
        manual=manual,
        disruptive=True,
    )


def _order(drafts: Sequence[Draft]) -> list[Draft]:
    rank = {fix: i for i, fix in enumerate(FIX_ORDER)}
    automatic = sorted((d for d in drafts if not d.manual), key=lambda d: rank.get(d.fix_id, len(rank)))
    manual = [d for d in drafts if d.manual]
    out = list(automatic)
    restart = _restart(automatic, manual=False)
    if restart is not None:
        out.append(restart)
    out.extend(manual)
    restart = _restart(manual, manual=True)
    if restart is not None:
        out.append(restart)
    return out


def _advisory_for(finding: Finding) -> Advisory | None:
    """Advisory-rule findings (no fix, cause outside the host) as advice; symptoms are
    explained by their causes and need none."""
    rule = RULES_BY_ID.get(finding.rule_id)
    if rule is None or rule.metadata.kind is not RuleKind.ADVISORY:
        return None
    return Advisory(
        kind=AdvisoryKind.NO_FIX,
        fix_id=None,
        finding_ids=(finding.id,),
        message=f"{finding.title}: {finding.summary}. exfix changes nothing for this finding.",
    )


def plan_host(facts: HostFacts, findings: Sequence[Finding], host_vars: HostVars, directory: str) -> HostPlan:
    """The plan for one host (scripts not yet rendered)."""
    drafts: list[Draft] = []
    advisories: list[Advisory] = []
    for finding in findings:
        if finding.host != facts.host:
            raise ValueError(f"finding {finding.id!r} is not about host {facts.host!r}")
        if finding.fix_id is None:
            advisory = _advisory_for(finding)
            if advisory is not None:
                advisories.append(advisory)
            continue
        planned = PLANNERS[finding.fix_id](finding, facts, host_vars)
        drafts.extend(planned.drafts)
        advisories.extend(planned.advisories)
    actions = []
    for n, draft in enumerate(_order(_merge(drafts)), start=1):
        actions.append(
            Action(
                id=f"{n:02d}-{draft.kind.value}",
                kind=draft.kind,
                fix_id=draft.fix_id,
                call=draft.call,
                description=draft.description,
                changes=draft.changes,
                read_back=draft.read_back,
                rollback=draft.rollback,
                disruptive=draft.disruptive,
                restart_required=draft.restart_required,
                manual=draft.manual,
                finding_ids=draft.finding_ids,
                depends_on=draft.depends_on,
                fingerprint=fingerprint_for(draft.depends_on, facts),
            )
        )
    return HostPlan(
        host=facts.host,
        directory=directory,
        fqdn=facts.exchange.fqdn,
        exchange_version=facts.exchange.version,
        findings=tuple(findings),
        actions=tuple(actions),
        advisories=tuple(dict.fromkeys(advisories)),
        fingerprint=host_fingerprint(actions, facts),
    )


def host_fingerprint(actions: Sequence[Action], facts: HostFacts) -> str:
    """The combination: the fingerprint of every fact slice any of the host's actions uses."""
    return fingerprint_for((ref for a in actions for ref in a.depends_on), facts)


# --- host directories -----------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Names Windows will not create as files or directories, whatever the extension.
_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)


def host_directories(hosts: Sequence[str]) -> tuple[str, ...]:
    """A safe, unique directory name per host name (host names come from an inventory and
    facts: untrusted). A name that is already safe is kept; any other gets its safe part and
    a short hash of the real name, so two names that differ only in unsafe characters or case
    stay apart."""
    out: list[str] = []
    seen: set[str] = set()
    for host in hosts:
        safe = _UNSAFE.sub("_", host).strip("._-")[:48]
        base = safe.split(".", 1)[0].lower()
        clean = safe == host and bool(safe) and base not in _RESERVED and safe.casefold() not in seen
        name = safe if clean else f"{safe or 'host'}-{hashlib.sha256(host.encode('utf-8')).hexdigest()[:10]}"
        n = 2
        candidate = name
        while candidate.casefold() in seen:
            candidate = f"{name}-{n}"
            n += 1
        seen.add(candidate.casefold())
        out.append(candidate)
    return tuple(out)


def build_plan(
    fleet_facts: Sequence[HostFacts],
    findings_by_host: Mapping[str, Sequence[Finding]],
    host_vars_by_host: Mapping[str, HostVars],
    *,
    source: PlanSource | None = None,
) -> Plan:
    """The plan for a fleet: hosts in the order given, digest computed over the content (which
    includes ``source``, where apply will reach the hosts again), then each host's scripts
    rendered with the digest in their headers and their sha256 recorded."""
    names = [facts.host for facts in fleet_facts]
    if len(set(names)) != len(names):
        raise ValueError("a host appears twice in the facts")
    directories = host_directories(names)
    hosts = tuple(
        plan_host(
            facts,
            tuple(findings_by_host.get(facts.host, ())),
            host_vars_by_host.get(facts.host, HostVars()),
            directory,
        )
        for facts, directory in zip(fleet_facts, directories, strict=True)
    )
    unsigned = Plan(schema=SCHEMA, hosts=hosts, digest="", source=source)
    plan = dataclasses.replace(unsigned, digest=unsigned.compute_digest())
    rendered = render_plan(plan)
    return dataclasses.replace(
        plan, hosts=tuple(with_scripts(h, rendered[h.directory].sha256()) for h in plan.hosts)
    )
