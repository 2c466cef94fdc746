"""What a fix declares about itself: one FixSpec per fix, beside its planner.

A fix is one unit: its id (what rules name), what it changes, whether it interrupts mail
flow, its planner, its template, the steps (action kinds) the planner emits with the risk a
change board should weigh for each, and the fact areas its drift check reads. The spec is
validated when it is built, and the registry (agent/fixes/registry.py) checks it against the
rules that name it, so a fix cannot be half declared.

Scope: a host fix is planned from one host's finding and runs on that host. An organisation
fix is planned once from an organisation finding (one that names the affected servers) and
runs once, through one server of the organisation; a host fix may also emit organisation steps
(the send-connector switch of set-transport-external-dns), which the plan builder takes out of
the host plans and merges into the organisation's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from agent.fixes._draft import Planned
from agent.fixes._predict import Predict
from agent.model.facts import HostFacts
from agent.model.findings import Finding, Level
from agent.model.plan import FactArea, HostVars

# planner(finding, facts, host_vars): the drafts and advisories for one finding. For an
# organisation finding ``facts`` are those of the first affected server that was scanned.
Planner = Callable[[Finding, HostFacts, HostVars], Planned]

_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)+$")


class FixSpecError(ValueError):
    """A fix's declaration is inconsistent. Raised when the fix module is imported."""


@dataclass(frozen=True, slots=True)
class Step:
    """One kind of action a fix plans. ``kind`` is the action's kind in plan.json; the fix's
    template renders it with the macros ``remediate_<kind>`` and ``rollback_<kind>`` (dashes
    as underscores)."""

    kind: str
    risk: str | None = None  # one sentence for the change board (REVIEW.md "Risk")
    level: Level = Level.HOST  # where the action runs: on the host, or once for the organisation
    # The facts after the step (agent/fixes/_predict.py), for judging a plan as a whole before
    # it is written (agent/planning/judge.py). None: the step changes nothing the rules read
    # (Register-DnsClient, a backup copy, the restart).
    predict: Predict | None = None
    # Why the step has no undo step in the rollback script, where that must be said (a cache
    # flush: nothing to put back, and nothing that needs it); the plan's review and rollback.ps1
    # show it. None: the step's rollback calls are its undo, or it needs no word.
    no_undo: str | None = None
    # A step that interrupts mail flow: about how many seconds the host is out of mail flow
    # while it runs, an estimate the review page shows per host and in total (worded as one).
    # The fix declaring the step says where its figure comes from. None: not disruptive.
    outage_estimate_s: int | None = None

    def __post_init__(self) -> None:
        if self.outage_estimate_s is not None and self.outage_estimate_s <= 0:
            raise FixSpecError(f"step {self.kind!r}: outage_estimate_s must be a positive number of seconds")

    @property
    def macro_suffix(self) -> str:
        return self.kind.replace("-", "_")


@dataclass(frozen=True, slots=True)
class FixSpec:
    id: str
    summary: str  # what it changes, in one line (exfix rules)
    disrupts_mail_flow: bool  # its changes take effect only after MSExchangeTransport restarts
    planner: Planner | None  # None: steps the plan builder adds itself (the shared restart)
    template: str  # ps_templates/<template>.ps1.j2
    steps: tuple[Step, ...]
    reads: tuple[FactArea, ...]  # the fact areas its actions depend on: what the drift check reads
    level: Level = Level.HOST  # the level of the findings it is planned from
    # Other fixes whose steps its planner may emit, under their own ids (allow-dns-through-
    # firewall turns matching block rules off with disable-dns-firewall-block's step): a
    # playbook that lists this fix must list those too, or it would run steps it did not list.
    plans_steps_of: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not _ID.match(self.id):
            problems.append("id is not lower-case words joined by '-'")
        if not self.summary.strip() or "\n" in self.summary:
            problems.append("summary must be one non-empty line")
        if not self.steps:
            problems.append("a fix plans at least one kind of step")
        kinds = [s.kind for s in self.steps]
        if len(set(kinds)) != len(kinds):
            problems.append("a step kind is declared twice")
        for kind in kinds:
            if not _ID.match(kind) and kind != self.id:
                problems.append(f"step kind {kind!r} is not lower-case words joined by '-'")
        if not self.reads:
            problems.append("a fix reads at least one fact area (its drift check)")
        if self.id in self.plans_steps_of:
            problems.append("plans_steps_of names the fix itself")
        if self.level is Level.ORGANIZATION and any(s.level is Level.HOST for s in self.steps):
            problems.append("an organisation fix plans organisation steps only")
        if problems:
            raise FixSpecError(f"fix {self.id!r}: " + "; ".join(problems))

    def step(self, kind: str) -> Step:
        for step in self.steps:
            if step.kind == kind:
                return step
        raise KeyError(kind)
