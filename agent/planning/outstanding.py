"""What stands in the way of each finding the plan does not make go away by itself. Pure.

A finding is addressed when an automatic step of the plan (in any unit: an organisation's
connector counts for the servers it is for) names it. Every other finding of a unit gets one
:class:`~agent.model.plan.Outstanding`, so that neither a person nor a ticket system is left
with "problems found" and nothing to act on (issue 9, class 6):

- a symptom (queue-dns-failure) is addressed when every cause that explains it is; otherwise
  its blocker is the causes that are not (or that exfix found no cause);
- a finding with advice says what the advice says: the inventory variable to set
  (missing-variable), the step exfix refused because it would break something else
  (would-break), or what a person has to do outside exfix (the others);
- a finding whose step is manual names that step and the script it is in;
- anything else: exfix plans no change for it, and says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from agent.model.findings import Finding
from agent.model.plan import REMEDIATE_SCRIPT, Advisory, AdvisoryKind, Blocker, HostPlan, Outstanding
from agent.rules.metadata import RuleKind
from agent.rules.registry import RULES_BY_ID

_BLOCKERS = {
    AdvisoryKind.MISSING_VARIABLE: Blocker.VARIABLE,
    AdvisoryKind.WOULD_BREAK: Blocker.REFUSED,
}
# When a finding has several pieces of advice, the one a person can act on first.
_RANK = (AdvisoryKind.WOULD_BREAK, AdvisoryKind.MISSING_VARIABLE)


def addressed(units: Iterable[HostPlan]) -> frozenset[str]:
    """The ids of the findings some automatic step of the plan names."""
    return frozenset(fid for unit in units for action in unit.automatic for fid in action.finding_ids)


def _advice(finding: Finding, units: Sequence[HostPlan], own: HostPlan) -> Advisory | None:
    found = [a for unit in (own, *units) for a in unit.advisories if finding.id in a.finding_ids]
    if not found:
        return None
    found.sort(key=lambda a: _RANK.index(a.kind) if a.kind in _RANK else len(_RANK))
    return found[0]


def outstanding_of(
    unit: HostPlan, units: Sequence[HostPlan], done: frozenset[str]
) -> tuple[Outstanding, ...]:
    """The outstanding findings of ``unit``; ``units``: every unit of the plan, ``done``: the
    findings the plan addresses."""
    by_id = {f.id: f for u in units for f in u.findings}
    out: list[Outstanding] = []
    for finding in unit.findings:
        if finding.id in done:
            continue
        rule = RULES_BY_ID.get(finding.rule_id)
        if rule is not None and rule.metadata.kind is RuleKind.SYMPTOM:
            open_causes = [c for c in finding.explained_by if c not in done]
            if finding.explained_by and not open_causes:
                continue
            if open_causes:
                names = ", ".join(dict.fromkeys(by_id[c].rule_id if c in by_id else c for c in open_causes))
                message = (
                    f"The queues stay as they are until their cause is fixed: {names}, which this plan does "
                    "not fix (see what stands in the way of that finding)."
                )
            else:
                message = (
                    "No rule of exfix explains these queues; read each queue's LastError (the next hop, "
                    "the DNS error class) and look at the server's DNS by hand."
                )
            out.append(Outstanding(finding.id, finding.rule_id, Blocker.CAUSE, message))
            continue
        advice = _advice(finding, units, unit)
        if advice is not None:
            blocker = _BLOCKERS.get(advice.kind, Blocker.ADVICE)
            out.append(Outstanding(finding.id, finding.rule_id, blocker, advice.message, advice.variable))
            continue
        manual = [a for u in units for a in u.manual if finding.id in a.finding_ids]
        if manual:
            where = next(u for u in units if any(a in u.manual for a in manual))
            steps = "; ".join(a.description for a in manual)
            message = (
                f"A person has to run the manual step(s) in hosts/{where.directory}/{REMEDIATE_SCRIPT}: "
                f"{steps}. apply does not run them."
            )
            out.append(Outstanding(finding.id, finding.rule_id, Blocker.MANUAL, message))
            continue
        message = "exfix plans no change for this finding; read its evidence and fix it by hand."
        out.append(Outstanding(finding.id, finding.rule_id, Blocker.ADVICE, message))
    return tuple(out)


def with_outstanding(
    hosts: tuple[HostPlan, ...], organizations: tuple[HostPlan, ...]
) -> tuple[tuple[HostPlan, ...], tuple[HostPlan, ...]]:
    """The units with what stands in the way of each of their outstanding findings."""
    units = (*organizations, *hosts)
    done = addressed(units)

    def filled(unit: HostPlan) -> HostPlan:
        return dataclasses.replace(unit, outstanding=outstanding_of(unit, units, done))

    return tuple(filled(h) for h in hosts), tuple(filled(o) for o in organizations)
