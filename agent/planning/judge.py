"""A plan judged as a whole before it is written: what would its steps break? Pure.

Each step's predictor (agent/fixes: ``Step.predict``) turns the facts the plan was made from
into the facts as they would be after the step. The prediction for one server is the facts
after every step the plan runs for it: its own, and every step on what the servers of its
organisation share (a send connector lives in Active Directory, so a connector switch one
server asks for changes the route of every server that sends through it). The rules then judge
the prediction with the probes exfix already made: what a DNS server answers does not depend
on which setting points at it. A finding of the prediction that the facts do not have is a
fault the plan would create. The case behind this (issue 9, class 5): a NIC lists an internal
DNS server without forwarders and a public one; the NIC fix drops the public one, and transport
is left with no server that resolves internet names.

For each such finding, in order:

1. its own fix is planned on the predicted facts; if that gives steps the plan does not have
   yet (set-transport-external-dns and the connector switch, when the inventory gives
   ``exfix_external_dns_servers``), they join the plan for the findings the causing steps
   were for, the plan records the consequence as prevented, and the whole plan is judged again;
2. otherwise the steps that cause it (each one that alone would create the finding; all of
   them when only their combination does), and the other steps of the same fix for the same
   findings, are refused: judging starts again from the planners' steps without them, and the
   plan says why (an advisory of kind ``would-break`` for the findings they were for, naming
   what would let exfix prevent the fault, and the consequence as refused).

A refused step is never proposed again, so judging ends: every new start refuses at least one
step more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from agent.evaluate import evaluate, organization_of
from agent.fixes._draft import Draft, Planned
from agent.fixes._predict import PlannedStep
from agent.fixes.registry import FIXES_BY_ID
from agent.fixes.registry import step as registry_step
from agent.model.facts import HostFacts
from agent.model.findings import Finding, Level
from agent.model.plan import Advisory, AdvisoryKind, Consequence, HostVars, Resolution

# Prevention rounds within one start, before the finding that still appears is refused.
MAX_ROUNDS = 8

_Key = tuple[object, ...]


def step_key(draft: Draft, owner: str) -> _Key:
    """What makes two drafts the same step: the same change (build_plan merges such drafts into
    one action) on the same server ``owner``; a shared step is the organisation's, whichever
    server asked for it."""
    return ("" if is_shared(draft) else owner, draft.kind, draft.call, draft.manual, draft.rollback,
            draft.changes)  # fmt: skip


def is_shared(draft: Draft) -> bool:
    """A step that changes what the organisation's servers share (FixSpec step level)."""
    return registry_step(draft.kind)[1].level is Level.ORGANIZATION


@dataclass(frozen=True, slots=True)
class HostProposal:
    """One server: its facts, the inventory's choices for it, and what its findings' fixes
    planned (its own steps and the shared ones it asks for)."""

    facts: HostFacts
    host_vars: HostVars
    drafts: tuple[Draft, ...]


@dataclass(frozen=True, slots=True)
class OrgProposal:
    """An organisation's unit: what its own findings' fixes planned (shared steps only)."""

    organization: str
    drafts: tuple[Draft, ...]


@dataclass(frozen=True, slots=True)
class Judged:
    """The plan's steps once judged, in the order of the proposals, with the advice added for
    the steps left out and the consequences found (on the server where the fault would be)."""

    host_drafts: tuple[tuple[Draft, ...], ...]
    org_drafts: tuple[tuple[Draft, ...], ...]
    host_advisories: tuple[tuple[Advisory, ...], ...]
    org_advisories: tuple[tuple[Advisory, ...], ...]
    consequences: tuple[tuple[Consequence, ...], ...]


@dataclass(frozen=True, slots=True)
class _Refusal:
    """Steps left out, the finding they would create and where, and what the finding's own fix
    said about preventing it."""

    causes: tuple[Draft, ...]
    keys: frozenset[_Key]  # the steps left out: the causes and the rest of their fixes
    finding: Finding
    at: str  # the server where the fault would be
    prevention: Planned
    prevention_refused: bool


@dataclass(slots=True)
class _Attempt:
    host_drafts: list[list[Draft]]
    org_drafts: list[list[Draft]]
    consequences: list[list[Consequence]] = field(default_factory=list)


def predict(facts: HostFacts, steps: Iterable[PlannedStep]) -> HostFacts:
    """The facts after ``steps`` (planners' drafts or a plan's actions), in order; a step
    without a predictor changes nothing the rules read."""
    for draft in steps:
        change = registry_step(draft.kind)[1].predict
        if change is not None:
            facts = change(draft, facts)
    return facts


def judge(hosts: Sequence[HostProposal], orgs: Sequence[OrgProposal]) -> Judged:
    """The proposals judged as one plan (see the module docstring)."""
    baseline = [frozenset(f.id for f in evaluate(p.facts)) for p in hosts]
    refused: set[_Key] = set()
    refusals: list[_Refusal] = []
    while True:
        attempt, refusal = _attempt(hosts, orgs, baseline, refused)
        if refusal is None:
            return _judged(hosts, orgs, attempt, refusals)
        if refusal.keys <= refused:  # cannot happen: the causes are steps of this start
            raise RuntimeError("judging the plan refused nothing new")
        refused |= refusal.keys
        refusals.append(refusal)


def _attempt(
    hosts: Sequence[HostProposal],
    orgs: Sequence[OrgProposal],
    baseline: Sequence[frozenset[str]],
    refused: set[_Key],
) -> tuple[_Attempt, _Refusal | None]:
    """One start: the planners' steps without the refused ones, judged in rounds. In a round
    every server's prediction is judged; each new finding gets its own fix's steps where they
    are new, and the next round judges the plan with them. A new finding that gets no new steps
    (or one still there in the last round) refuses its causes."""
    attempt = _Attempt(
        [[d for d in p.drafts if step_key(d, p.facts.host) not in refused] for p in hosts],
        [[d for d in o.drafts if step_key(d, "") not in refused] for o in orgs],
        [[] for _ in hosts],
    )
    org_names = [organization_of(p.facts) for p in hosts]
    for round_ in range(MAX_ROUNDS):
        found = []
        for i, proposal in enumerate(hosts):
            steps = _steps_for(i, org_names, orgs, attempt)
            if not steps:
                continue
            predicted = predict(proposal.facts, steps)
            new = [f for f in evaluate(predicted) if f.id not in baseline[i]]
            if new:
                found.append((i, steps, predicted, new[0]))
        if not found:
            return attempt, None
        for i, steps, predicted, finding in found:
            proposal = hosts[i]
            here = proposal.facts.host
            causes = _causes(proposal.facts, steps, finding)
            prevention = _prevention(finding, predicted, proposal.host_vars)
            known = _keys(hosts, attempt)
            fresh = [d for d in prevention.drafts if step_key(d, here) not in known | refused]
            if not fresh or round_ == MAX_ROUNDS - 1:
                prevention_refused = any(step_key(d, here) in refused for d in prevention.drafts)
                keys = {step_key(c, here) for c in causes} | _sibling_keys(causes, hosts, attempt)
                refusal = _Refusal(causes, frozenset(keys), finding, here, prevention, prevention_refused)
                return attempt, refusal
            ids = tuple(dict.fromkeys([*(fid for c in causes for fid in c.finding_ids), finding.id]))
            added = [dataclasses.replace(d, finding_ids=ids) for d in fresh]
            attempt.host_drafts[i].extend(added)
            attempt.consequences[i].append(
                Consequence(
                    finding=finding,
                    caused_by=tuple(dict.fromkeys(c.description for c in causes)),
                    resolution=Resolution.PREVENTED,
                    prevented_by=tuple(d.description for d in added),
                    message=_prevented_message(causes, finding, added),
                )
            )
    raise AssertionError("unreachable: the last round refuses")  # pragma: no cover


def _steps_for(
    index: int, org_names: Sequence[str], orgs: Sequence[OrgProposal], attempt: _Attempt
) -> list[Draft]:
    """Every step the plan runs for server ``index``: its own, then each shared step of its
    organisation (asked for by any of its servers, or planned for the organisation's
    findings), each once."""
    org = org_names[index]
    steps = [d for d in attempt.host_drafts[index] if not is_shared(d)]
    shared = [d for j, drafts in enumerate(attempt.host_drafts) if org_names[j] == org for d in drafts
              if is_shared(d)]  # fmt: skip
    shared.extend(d for o, drafts in zip(orgs, attempt.org_drafts, strict=True) if o.organization == org
                  for d in drafts)  # fmt: skip
    seen: set[_Key] = set()
    for draft in shared:
        if step_key(draft, "") not in seen:
            seen.add(step_key(draft, ""))
            steps.append(draft)
    return steps


def _causes(facts: HostFacts, steps: Sequence[Draft], finding: Finding) -> tuple[Draft, ...]:
    """The steps that alone would create ``finding``; when none does alone, every step that
    changes something the rules read (only their combination does)."""
    alone = [s for s in steps if finding.id in {f.id for f in evaluate(predict(facts, (s,)))}]
    if alone:
        return tuple(alone)
    return tuple(s for s in steps if registry_step(s.kind)[1].predict is not None)


def _owned(hosts: Sequence[HostProposal], attempt: _Attempt) -> Iterable[tuple[Draft, str]]:
    """Every step of the attempt, with the server it runs on ("" for a shared step)."""
    for proposal, drafts in zip(hosts, attempt.host_drafts, strict=True):
        for draft in drafts:
            yield draft, proposal.facts.host
    for drafts in attempt.org_drafts:
        for draft in drafts:
            yield draft, ""


def _keys(hosts: Sequence[HostProposal], attempt: _Attempt) -> set[_Key]:
    return {step_key(d, owner) for d, owner in _owned(hosts, attempt)}


def _sibling_keys(causes: Sequence[Draft], hosts: Sequence[HostProposal], attempt: _Attempt) -> set[_Key]:
    """The steps of the causes' fixes for the same findings: a fix is refused whole (its
    registration step without the Set-DnsClient before it would make no sense). Finding ids
    name their server, so the same fix of another server is not one of them."""
    groups = {(c.fix_id, c.finding_ids) for c in causes}
    return {step_key(d, owner) for d, owner in _owned(hosts, attempt) if (d.fix_id, d.finding_ids) in groups}


def _prevention(finding: Finding, predicted: HostFacts, host_vars: HostVars) -> Planned:
    """What the new finding's own fix plans on the predicted facts."""
    fix = FIXES_BY_ID.get(finding.fix_id) if finding.fix_id is not None else None
    if fix is None or fix.planner is None:
        return Planned()
    return fix.planner(finding, predicted, host_vars)


# --- wording --------------------------------------------------------------------------------


def _steps_text(drafts: Iterable[Draft]) -> str:
    return "; ".join(f"'{d.description}'" for d in dict.fromkeys(drafts))


def _fault(finding: Finding) -> str:
    return f"{finding.title} ({finding.summary})"


def _prevented_message(causes: Sequence[Draft], finding: Finding, added: Sequence[Draft]) -> str:
    return (
        f"After {_steps_text(causes)}: {_fault(finding)}. The plan also runs {_steps_text(added)}, so that "
        "this does not happen."
    )


def _refused_message(refusal: _Refusal, owner: str) -> tuple[str, str | None]:
    """The advice for the findings the refused steps were for, and the variable that would let
    exfix prevent the fault (None when no variable would)."""
    where = "" if refusal.at == owner else f" on {refusal.at}"
    steps, fault = _steps_text(refusal.causes), _fault(refusal.finding)
    head = f"exfix leaves out {steps}, because afterwards{where}: {fault}. "
    advice = refusal.prevention.advisories
    variable = next((a.variable for a in advice if a.variable), None)
    if advice:
        lift = " ".join(a.message for a in advice)
    elif refusal.prevention_refused:
        lift = "The change that would prevent it would create another fault, and was left out too."
    else:
        lift = "exfix has no change that would prevent it; fix it by hand first, then plan again."
    return head + lift, variable


def _judged(
    hosts: Sequence[HostProposal],
    orgs: Sequence[OrgProposal],
    attempt: _Attempt,
    refusals: Sequence[_Refusal],
) -> Judged:
    host_advice: list[list[Advisory]] = [[] for _ in hosts]
    org_advice: list[list[Advisory]] = [[] for _ in orgs]
    consequences = [list(c) for c in attempt.consequences]
    index = {p.facts.host: i for i, p in enumerate(hosts)}
    for refusal in refusals:
        consequences[index[refusal.at]].append(
            Consequence(
                finding=refusal.finding,
                caused_by=tuple(dict.fromkeys(c.description for c in refusal.causes)),
                resolution=Resolution.REFUSED,
                prevented_by=(),
                message=_refused_message(refusal, refusal.at)[0],
            )
        )
        for owner, left_out, advice in _owners(hosts, orgs, refusal.keys, host_advice, org_advice):
            for fix_id, finding_ids in dict.fromkeys((d.fix_id, d.finding_ids) for d in left_out):
                message, variable = _refused_message(refusal, owner)
                item = Advisory(AdvisoryKind.WOULD_BREAK, fix_id, finding_ids, message, variable)
                if item not in advice:
                    advice.append(item)
    return Judged(
        host_drafts=tuple(tuple(d) for d in attempt.host_drafts),
        org_drafts=tuple(tuple(d) for d in attempt.org_drafts),
        host_advisories=tuple(tuple(a) for a in host_advice),
        org_advisories=tuple(tuple(a) for a in org_advice),
        consequences=tuple(tuple(c) for c in consequences),
    )


def _owners(
    hosts: Sequence[HostProposal],
    orgs: Sequence[OrgProposal],
    keys: frozenset[_Key],
    host_advice: Sequence[list[Advisory]],
    org_advice: Sequence[list[Advisory]],
) -> list[tuple[str, list[Draft], list[Advisory]]]:
    """The units whose planners proposed steps that were left out, those steps, and the advice
    list of the unit: where the advice for the findings those steps were for belongs."""
    out: list[tuple[str, list[Draft], list[Advisory]]] = []
    for proposal, advice in zip(hosts, host_advice, strict=True):
        mine = [d for d in proposal.drafts if step_key(d, proposal.facts.host) in keys]
        if mine:
            out.append((proposal.facts.host, mine, advice))
    for org, advice in zip(orgs, org_advice, strict=True):
        mine = [d for d in org.drafts if step_key(d, "") in keys]
        if mine:
            out.append((org.organization, mine, advice))
    return out
