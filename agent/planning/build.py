"""findings -> the plan. Pure: no IO except reading the templates to render the scripts whose
sha256 the plan records.

Per host, the actions come in a fixed order:

1. the automatic changes that do not interrupt mail flow, fix by fix (the order of
   agent/fixes/registry.py FIXES),
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

from agent.evaluate import not_judged, organization_of
from agent.fixes import restart_transport
from agent.fixes._draft import Draft, Planned
from agent.fixes.fingerprint import fingerprint_for
from agent.fixes.registry import FIXES, FIXES_BY_ID, FIXES_BY_KIND
from agent.fixes.spec import FixSpec
from agent.model import catalogue
from agent.model.facts import HostFacts
from agent.model.finding_data import MalformedEdgeConfig
from agent.model.findings import Finding, Level
from agent.model.plan import (
    RESTART_KIND,
    SCHEMA,
    Action,
    Advisory,
    AdvisoryKind,
    Consequence,
    HostPlan,
    HostVars,
    Plan,
    PlanSource,
    with_scripts,
)
from agent.planning.judge import HostProposal, OrgProposal, is_shared, judge
from agent.planning.outstanding import with_outstanding
from agent.planning.render import render_plan
from agent.rules.metadata import RuleKind
from agent.rules.registry import RULES_BY_ID


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


def _order(drafts: Sequence[Draft], hold_restart: str | None = None) -> list[Draft]:
    rank = {fix.id: i for i, fix in enumerate(FIXES)}
    automatic = sorted((d for d in drafts if not d.manual), key=lambda d: rank.get(d.fix_id, len(rank)))
    manual = [d for d in drafts if d.manual]
    out = list(automatic)
    restart = restart_transport.draft(automatic, manual=False)
    if restart is not None and hold_restart is not None:
        # The restart is left to a person, for after the reason is gone (see _restart_hold).
        restart = dataclasses.replace(
            restart, manual=True, description=f"{restart.description}. {hold_restart}"
        )
    if restart is not None:
        out.append(restart)
    out.extend(manual)
    restart = restart_transport.draft(manual, manual=True)
    if restart is not None:
        out.append(restart)
    return out


def _checked(fix: FixSpec, planned: Planned) -> Planned:
    """A planner's drafts must be steps some fix declares, and read only what their fix says
    its drift check reads: a planner that does otherwise is a bug, not a plan."""
    for draft in planned.drafts:
        owner = FIXES_BY_KIND.get(draft.kind)
        if owner is None:
            raise ValueError(f"fix {fix.id!r} planned a step of unknown kind {draft.kind!r}")
        # Every call a step, its read-back or its rollback makes is declared, so that the
        # least-privilege roles (exfix rbac) grant it: UndeclaredCommand (a ValueError) if not.
        for call in (draft.call, *((draft.read_back,) if draft.read_back else ()), *draft.rollback):
            catalogue.check(call)
        unread = {ref.area for ref in draft.depends_on} - set(fix.reads)
        if unread:
            names = ", ".join(sorted(area.value for area in unread))
            raise ValueError(
                f"fix {fix.id!r} planned {draft.kind!r} depending on {names}, which it does not declare"
            )
    return planned


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


def _planned(
    findings: Sequence[Finding], facts: HostFacts, host_vars: HostVars
) -> tuple[list[Draft], list[Advisory]]:
    """Every finding's drafts and advice, through its fix's planner."""
    drafts: list[Draft] = []
    advisories: list[Advisory] = []
    for finding in findings:
        if finding.fix_id is None:
            advisory = _advisory_for(finding)
            if advisory is not None:
                advisories.append(advisory)
            continue
        fix = FIXES_BY_ID[finding.fix_id]
        if fix.planner is None:
            raise ValueError(f"finding {finding.id!r} names the built-in fix {fix.id!r}")
        planned = _checked(fix, fix.planner(finding, facts, host_vars))
        drafts.extend(planned.drafts)
        advisories.extend(planned.advisories)
    return drafts, advisories


# A transport restart on a host whose EdgeTransport.exe.config is not well-formed XML would not
# bring transport back: the service cannot load the file (MSExchangeTransport event 14004,
# AppConfigLoadFailed; agent/rules/edge_transport_config_malformed.py). The plan then leaves the
# restart to a person, once the file is repaired, instead of letting apply stop mail flow.


def _restart_hold(findings: Sequence[Finding]) -> str | None:
    """Why this host's transport must not be restarted by apply, or None."""
    for finding in findings:
        if isinstance(finding.data, MalformedEdgeConfig):
            where = f"line {finding.data.line}, column {finding.data.column}"
            return (
                f"Not restarted by apply: {finding.data.config_path} is not well-formed XML ({where}), and "
                "the transport service would not start again with it. Repair the file first, then restart "
                "MSExchangeTransport so the changes take effect"
            )
    return None


def _host_actions(
    drafts: Sequence[Draft], facts: HostFacts, findings: Sequence[Finding]
) -> tuple[tuple[Action, ...], list[Advisory]]:
    """A host's own actions from its kept drafts, and the advice on a restart left to a person."""
    hold = _restart_hold(findings)
    actions = _actions([d for d in drafts if not is_shared(d)], facts, hold_restart=hold)
    if hold is None or not any(a.kind == RESTART_KIND for a in actions):
        return actions, []
    for_file = tuple(f.id for f in findings if isinstance(f.data, MalformedEdgeConfig))
    return actions, [Advisory(AdvisoryKind.CANNOT_PLAN, restart_transport.FIX_ID, for_file, hold)]


def _partial(unit: HostPlan, facts: HostFacts) -> HostPlan:
    """``unit`` with what the plan could not take into account: the fact areas not collected on
    the host, and the rules not judged there."""
    return dataclasses.replace(unit, failed_areas=facts.status.issues, not_judged=not_judged(facts))


def _actions(
    drafts: Sequence[Draft], facts: HostFacts, prefix: str = "", hold_restart: str | None = None
) -> tuple[Action, ...]:
    return tuple(
        Action(
            id=f"{prefix}{n:02d}-{draft.kind}",
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
        for n, draft in enumerate(_order(_merge(drafts), hold_restart), start=1)
    )


def plan_host(
    facts: HostFacts, findings: Sequence[Finding], host_vars: HostVars, directory: str
) -> tuple[HostPlan, tuple[Draft, ...]]:
    """The plan for one host on its own (scripts not yet rendered; judged as a plan of its
    own, agent/planning/judge.py), and the drafts of its fixes that change what the
    organisation shares (a send connector's flag), for the organisation's unit."""
    _check_host(facts, findings)
    drafts, advisories = _planned(findings, facts, host_vars)
    judged = judge([HostProposal(facts, host_vars, tuple(drafts))], [])
    kept = judged.host_drafts[0]
    own, held = _host_actions(kept, facts, findings)
    unit = _unit(facts, directory, findings, own, [*advisories, *judged.host_advisories[0], *held],
                 judged.consequences[0])  # fmt: skip
    return _partial(unit, facts), tuple(d for d in kept if is_shared(d))


def _check_host(facts: HostFacts, findings: Sequence[Finding]) -> None:
    for finding in findings:
        if finding.host != facts.host:
            raise ValueError(f"finding {finding.id!r} is not about host {facts.host!r}")


def _unit(
    facts: HostFacts, directory: str, findings: Sequence[Finding], actions: tuple[Action, ...],
    advisories: Sequence[Advisory], consequences: Sequence[Consequence] = (),
) -> HostPlan:  # fmt: skip
    """A unit run through the host of ``facts``."""
    return HostPlan(
        host=facts.host,
        directory=directory,
        fqdn=facts.exchange.fqdn,
        exchange_version=facts.exchange.version,
        findings=tuple(findings),
        actions=actions,
        advisories=tuple(dict.fromkeys(advisories)),
        fingerprint=host_fingerprint(actions, facts),
        consequences=tuple(consequences),
    )


def _org_unit(
    name: str,
    findings: Sequence[Finding],
    drafts: Sequence[Draft],
    advisories: Sequence[Advisory],
    facts: HostFacts,
    directory: str,
    asked_by: Sequence[str] = (),
) -> HostPlan:
    """The organisation's unit from its judged drafts: its own findings' steps and the shared
    steps the hosts' fixes asked for, merged (one Set-SendConnector however many servers
    needed it). ``facts`` are those of the server the unit runs through (the first affected
    server); ``asked_by``: the servers whose fixes asked for shared steps."""
    stray = [d.kind for d in drafts if not is_shared(d)]
    if stray:
        raise ValueError(f"an organisation fix planned host steps: {', '.join(stray)}")
    # "org-": the unit runs through a server that may have steps of its own; the journal tells
    # the two apart by the action id.
    actions = _actions(drafts, facts, prefix="org-")
    servers = tuple(dict.fromkeys([*(s for f in findings for s in f.servers), *asked_by]))
    unit = _unit(facts, directory, findings, actions, advisories)
    return dataclasses.replace(unit, level=Level.ORGANIZATION, organization=name, servers=servers)


def plan_organization(
    name: str,
    findings: Sequence[Finding],
    hoisted: Sequence[Draft],
    facts: HostFacts,
    host_vars: HostVars,
    directory: str,
    asked_by: Sequence[str] = (),
) -> HostPlan:
    """The organisation's unit on its own (not judged with the hosts): its own findings
    planned once (one send connector for a domain, SourceTransportServers = the servers whose
    queues fail), and the shared steps the hosts' fixes asked for."""
    drafts, advisories = _planned(findings, facts, host_vars)
    return _org_unit(name, findings, [*drafts, *hoisted], advisories, facts, directory, asked_by)


def host_fingerprint(actions: Sequence[Action], facts: HostFacts) -> str:
    """The combination: the fingerprint of every fact slice any of the host's actions uses."""
    return fingerprint_for((ref for a in actions for ref in a.depends_on), facts)


# --- host directories -----------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Names Windows will not create as files or directories, whatever the extension.
_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)


def host_directories(hosts: Sequence[str], *, taken: Sequence[str] = ()) -> tuple[str, ...]:
    """A safe, unique directory name per host name (host names come from an inventory and
    facts: untrusted), none of them one of ``taken``. A name that is already safe is kept; any
    other gets its safe part and a short hash of the real name, so two names that differ only
    in unsafe characters or case stay apart."""
    out: list[str] = []
    seen: set[str] = {name.casefold() for name in taken}
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
    organization_findings: Sequence[Finding] = (),
    probe_repeat: int = 1,
) -> Plan:
    """The plan for a fleet: hosts in the order given, and one unit per organisation with
    something to change or advise (its findings, and the shared steps its hosts' fixes asked
    for); digest computed over the content (which includes ``source``, where apply will reach
    the hosts again), then each unit's scripts rendered with the digest in their headers and
    their sha256 recorded."""
    names = [facts.host for facts in fleet_facts]
    if len(set(names)) != len(names):
        raise ValueError("a host appears twice in the facts")
    by_name = {facts.host: facts for facts in fleet_facts}
    directories = host_directories(names)
    # An organisation's work, by the server it runs through: an organisation finding is planned
    # from (and its drift checked on) the first of its servers that was scanned, because the
    # facts it rests on (the remote domain's MX and A records) are what that server's probes
    # saw. The shared steps hosts' fixes ask for join the organisation's first unit.
    units: dict[tuple[str, str], tuple[list[Finding], list[Draft], list[str]]] = {}
    for finding in organization_findings:
        scanned = [s for s in finding.servers if s in by_name]
        if not scanned:
            raise ValueError(f"organisation finding {finding.id!r} names no server in the facts")
        units.setdefault((finding.host, scanned[0]), ([], [], []))[0].append(finding)

    # What every finding's fix plans, then judged as one plan (agent/planning/judge.py): the
    # steps that would create a new fault get the steps that prevent it, or are left out.
    host_findings: list[tuple[Finding, ...]] = []
    host_advice: list[list[Advisory]] = []
    proposals: list[HostProposal] = []
    for facts in fleet_facts:
        findings = tuple(findings_by_host.get(facts.host, ()))
        _check_host(facts, findings)
        variables = host_vars_by_host.get(facts.host, HostVars())
        drafts, advisories = _planned(findings, facts, variables)
        host_findings.append(findings)
        host_advice.append(advisories)
        proposals.append(HostProposal(facts, variables, tuple(drafts)))
    org_keys = list(units)
    org_advice: list[list[Advisory]] = []
    org_proposals: list[OrgProposal] = []
    for org, server in org_keys:
        drafts, advisories = _planned(units[(org, server)][0], by_name[server],
                                      host_vars_by_host.get(server, HostVars()))  # fmt: skip
        org_advice.append(advisories)
        org_proposals.append(OrgProposal(org, tuple(drafts)))
    judged = judge(proposals, org_proposals)

    own_drafts = {key: list(drafts) for key, drafts in zip(org_keys, judged.org_drafts, strict=True)}
    own_advice = {key: [*org_advice[j], *judged.org_advisories[j]] for j, key in enumerate(org_keys)}
    hosts: list[HostPlan] = []
    for i, (facts, directory) in enumerate(zip(fleet_facts, directories, strict=True)):
        kept = judged.host_drafts[i]
        actions, held = _host_actions(kept, facts, host_findings[i])
        advice = [*host_advice[i], *judged.host_advisories[i], *held]
        unit = _unit(facts, directory, host_findings[i], actions, advice, judged.consequences[i])
        hosts.append(_partial(unit, facts))
        shared = [d for d in kept if is_shared(d)]
        if shared:
            org = organization_of(facts)
            key = next((k for k in units if k[0] == org), (org, facts.host))
            _, hoisted, asked = units.setdefault(key, ([], [], []))
            hoisted.extend(shared)
            asked.append(facts.host)
    org_dirs = host_directories([f"org-{org}" for org, _ in units], taken=directories)
    organizations = tuple(
        _org_unit(
            org,
            findings,
            [*own_drafts.get((org, server), ()), *hoisted],
            own_advice.get((org, server), ()),
            by_name[server],
            directory,
            asked,
        )
        for ((org, server), (findings, hoisted, asked)), directory in zip(
            units.items(), org_dirs, strict=True
        )
    )
    host_units, org_units = with_outstanding(tuple(hosts), organizations)
    unsigned = Plan(schema=SCHEMA, hosts=host_units, digest="", source=source, organizations=org_units,
                    probe_repeat=probe_repeat)  # fmt: skip
    plan = dataclasses.replace(unsigned, digest=unsigned.compute_digest())
    rendered = render_plan(plan)
    return dataclasses.replace(
        plan,
        hosts=tuple(with_scripts(h, rendered[h.directory].sha256()) for h in plan.hosts),
        organizations=tuple(with_scripts(o, rendered[o.directory].sha256()) for o in plan.organizations),
    )
