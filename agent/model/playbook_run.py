"""The result of running a playbook: per host an outcome, the findings, the actions and the
queues before and after; for the run, the plan digest, the artifacts and the exit code.

This is the ``exfix.playbook-run/4`` document (agent/schemas/playbook-run.schema.json) that
ticket automation reads; /2 added the outcome ``command-failed`` (its summary count, exit 7),
/3 each host's ``outstanding`` and ``new_findings``, /4 the outcome ``partial`` (its
summary count, exit 8); the schema still accepts /1, /2 and /3 documents. Outcomes, worst
first, and the exit code each leads to (DESIGN.md; the order is agent.errors.EXIT_PRECEDENCE's):

================  ====  ==========================================================
failed            6     a step failed and undoing it failed, or the fix did not
                        clear the symptom: a person must look
rolled-back       5     a step failed; what had changed was undone
unreachable       3     the host could not be scanned (exfix could not talk to it)
command-failed    7     the host answered with an error (Get-ExchangeServer failed:
                        RBAC, a missing cmdlet), so it was not scanned, or not
                        checked before apply; nothing was changed there
pending-approval  2     fixes are planned and wait for ``--approve <digest>``
planned           2     fixes are planned (a ``plan`` playbook never applies)
findings          2     problems found that this playbook does not change (diagnose
                        mode, advice, or fixes outside the playbook)
partial           8     nothing found, but a fact area could not be collected, so the
                        rules that read it were not judged (as ``exfix scan`` exits 8)
remediated        0     fixes applied, read back, and the symptom is gone
healthy           0     nothing in the playbook's scope is wrong
================  ====  ==========================================================

A run refused before anything changed (the approved digest matches no plan) exits 4, unless
a host's outcome is worse (5, 6).

These are values, like the rest of agent.model: the workflow builds them, agent.report shows
them. What a run records about its playbook is :class:`RunPlaybook`, which
agent.workflow.playbook.Playbook satisfies, so this module needs nothing above the model.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from agent.errors import (
    EXIT_COMMAND_FAILED,
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_REFUSED,
    EXIT_ROLLBACK_FAILED,
    EXIT_ROLLED_BACK,
    EXIT_UNREACHABLE,
    StaleSetting,
    worst_exit,
)
from agent.model.document import encode_object
from agent.model.facts import QueueFacts
from agent.model.findings import Finding
from agent.model.plan import Outstanding
from agent.model.results import finding_to_dict
from agent.model.verification import ProbeCheck, TrackingCheck

# /3: each host's "outstanding" (what stands in the way of each finding the run leaves) and
# "new_findings" (what a change created). /4: the outcome "partial" (exit 8) and its summary count,
# and each host's "verification" (the symptom's checks after a change, each pass/fail/not-available).
RUN_SCHEMA = "exfix.playbook-run/4"

# The value of a playbook variable once resolved (agent.workflow.playbook checks its type).
VarValue = str | int | bool | tuple[str, ...]


class Choice(Protocol):
    """A playbook setting with a fixed set of values (a str enum): shown by its value."""

    @property
    def value(self) -> str: ...


class RunPlaybook(Protocol):
    """What a run document and its reports say about the playbook that ran."""

    @property
    def name(self) -> str: ...

    @property
    def source(self) -> str: ...  # the file it was read from

    @property
    def sha256(self) -> str: ...  # of that file's bytes

    @property
    def mode(self) -> Choice: ...

    @property
    def approval(self) -> Choice: ...

    def to_dict(self) -> dict[str, Any]: ...  # the run document's "playbook" object


class Outcome(str, enum.Enum):
    HEALTHY = "healthy"
    REMEDIATED = "remediated"
    FINDINGS = "findings"
    PLANNED = "planned"
    PENDING_APPROVAL = "pending-approval"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    UNREACHABLE = "unreachable"
    COMMAND_FAILED = "command-failed"
    PARTIAL = "partial"

    @property
    def exit_code(self) -> int:
        return _EXIT[self]

    @property
    def rank(self) -> int:
        """Higher is worse (the run's outcome is its worst host's)."""
        return _RANK.index(self)


_EXIT = {
    Outcome.HEALTHY: EXIT_OK,
    Outcome.REMEDIATED: EXIT_OK,
    Outcome.PARTIAL: EXIT_PARTIAL,
    Outcome.FINDINGS: EXIT_FINDINGS,
    Outcome.PLANNED: EXIT_FINDINGS,
    Outcome.PENDING_APPROVAL: EXIT_FINDINGS,
    Outcome.UNREACHABLE: EXIT_UNREACHABLE,
    Outcome.COMMAND_FAILED: EXIT_COMMAND_FAILED,
    Outcome.ROLLED_BACK: EXIT_ROLLED_BACK,
    Outcome.FAILED: EXIT_ROLLBACK_FAILED,
}
_RANK = (
    Outcome.HEALTHY, Outcome.REMEDIATED, Outcome.PARTIAL, Outcome.FINDINGS, Outcome.PLANNED,
    Outcome.PENDING_APPROVAL,
    Outcome.COMMAND_FAILED, Outcome.UNREACHABLE, Outcome.ROLLED_BACK, Outcome.FAILED,
)  # fmt: skip


class ActionStatus(str, enum.Enum):
    PLANNED = "planned"  # in a plan that this playbook never applies
    PENDING_APPROVAL = "pending-approval"  # waits for --approve <digest>
    APPLIED = "applied"  # ran and read back as planned
    MANUAL = "manual"  # a step for a person: reported, never run
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"
    NOT_RUN = "not-run"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class QueueView:
    """One queue as Get-Queue showed it."""

    identity: str
    next_hop: str
    status: str
    message_count: int
    error_class: str
    last_error: str

    @classmethod
    def of(cls, queue: QueueFacts) -> QueueView:
        return cls(
            identity=queue.identity,
            next_hop=queue.next_hop_domain,
            status=queue.status,
            message_count=queue.message_count,
            error_class=queue.last_error.kind.value,
            last_error=queue.last_error.raw,
        )

    @property
    def failing(self) -> bool:
        return self.status.lower() == "retry" or bool(self.last_error)

    def to_dict(self) -> dict[str, Any]:
        return encode_object(self)


@dataclass(frozen=True, slots=True)
class ActionView:
    id: str
    fix_id: str
    kind: str
    description: str
    disruptive: bool
    manual: bool
    status: ActionStatus
    plan_digest: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return encode_object(self)


def _outstanding_to_dict(item: Outstanding) -> dict[str, Any]:
    return {
        "finding_id": item.finding_id,
        "rule_id": item.rule_id,
        "blocker": item.blocker.value,
        "message": item.message,
        "variable": item.variable,
    }


@dataclass(frozen=True, slots=True)
class HostResult:
    """One host's part of the run. ``findings`` are those in the playbook's scope before any
    change; ``remaining`` those still there afterwards (None: nothing was applied, so there
    was no second look). ``queues_after`` is None when nothing was applied."""

    host: str
    outcome: Outcome
    reason: str  # one plain sentence: why this outcome
    error: str | None = None
    exchange_version: str | None = None
    findings: tuple[Finding, ...] = ()
    remaining: tuple[Finding, ...] | None = None
    actions: tuple[ActionView, ...] = ()
    queues_before: tuple[QueueView, ...] = ()
    queues_after: tuple[QueueView, ...] | None = None
    # What stands in the way of each finding the run leaves as it is (agent/planning/outstanding.py).
    outstanding: tuple[Outstanding, ...] = ()
    # Findings after a change that the host did not have before it: the change created them.
    new_findings: tuple[Finding, ...] = ()
    # How the change was verified (None: nothing was verified here): apply's verdict, the
    # lookups the failing queues needed re-run on the host, the SEND events to their next hops.
    verified: bool | None = None
    probes: tuple[ProbeCheck, ...] = ()
    tracking: tuple[TrackingCheck, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        verification = None
        if self.verified is not None or self.probes or self.tracking:
            verification = {
                "verified": self.verified,
                "probes": [p.to_dict() for p in self.probes],
                "tracking": [t.to_dict() for t in self.tracking],
            }
        return {
            "host": self.host,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "error": self.error,
            "exchange_version": self.exchange_version,
            "findings": [finding_to_dict(f) for f in self.findings],
            "remaining_findings": None
            if self.remaining is None
            else [finding_to_dict(f) for f in self.remaining],
            "actions": [a.to_dict() for a in self.actions],
            "queues": {
                "before": [q.to_dict() for q in self.queues_before],
                "after": None if self.queues_after is None else [q.to_dict() for q in self.queues_after],
            },
            "outstanding": [_outstanding_to_dict(o) for o in self.outstanding],
            "new_findings": [finding_to_dict(f) for f in self.new_findings],
            "verification": verification,
        }


class PlanRole(str, enum.Enum):
    PENDING_APPROVAL = "pending-approval"  # written for review; waits for --approve
    PLANNED = "planned"  # written for review by a plan playbook
    APPLIED = "applied"  # applied in this run


@dataclass(frozen=True, slots=True)
class PlanArtifact:
    role: PlanRole
    digest: str
    directory: str
    plan_json: str
    review_md: str
    review_html: str
    scripts: tuple[str, ...]
    apply_command: str | None

    def to_dict(self) -> dict[str, Any]:
        return encode_object(self)


@dataclass(frozen=True, slots=True)
class PlaybookRun:
    ticket: str | None
    playbook: RunPlaybook
    variables: tuple[tuple[str, VarValue], ...]
    source: str
    operator: str
    started: str
    finished: str
    hosts: tuple[HostResult, ...]
    directory: str  # where the run's artifacts are
    run_file: str  # the exfix.playbook-run/2 document written there
    plans: tuple[PlanArtifact, ...] = ()
    journal: str | None = None
    approved: str | None = None  # the digest given to --approve
    refused: str | None = None  # why the approved plan was not applied (exit 4)
    # When the refusal is a stale plan: what drifted (StalePlanError.drift), for ticket systems.
    stale: tuple[StaleSetting, ...] = ()
    approve_command: str | None = None  # this playbook again, with --approve <pending digest>

    @property
    def outcome(self) -> Outcome:
        if not self.hosts:
            return Outcome.HEALTHY
        return max((h.outcome for h in self.hosts), key=lambda o: o.rank)

    @property
    def exit_code(self) -> int:
        """The worst outcome's code; a refusal (4) beats 3, 7, 2, 8 and 0 (EXIT_PRECEDENCE)."""
        code = self.outcome.exit_code
        return worst_exit((code, EXIT_REFUSED)) if self.refused is not None else code

    @property
    def digest(self) -> str | None:
        """The plan that waits for approval; else the plan applied; else None."""
        for role in (PlanRole.PENDING_APPROVAL, PlanRole.PLANNED, PlanRole.APPLIED):
            for plan in self.plans:
                if plan.role is role:
                    return plan.digest
        return None

    @property
    def pending(self) -> PlanArtifact | None:
        return next((p for p in self.plans if p.role is not PlanRole.APPLIED), None)

    def counts(self) -> dict[str, int]:
        counted = Counter(h.outcome.value for h in self.hosts)
        return {outcome.value: counted.get(outcome.value, 0) for outcome in Outcome}

    def message(self) -> str:
        """One plain-language sentence for the ticket."""
        counts = self.counts()
        total = len(self.hosts)
        if self.refused is not None:
            return f"Refused, nothing was changed: {self.refused}"
        parts = [f"{n} {name}" for name, n in counts.items() if n]
        head = {
            Outcome.HEALTHY: "Nothing to fix",
            Outcome.REMEDIATED: "Fixed and verified",
            Outcome.PARTIAL: "Nothing found, but some checks could not be made",
            Outcome.FINDINGS: "Problems found",
            Outcome.PLANNED: "Fixes planned for review",
            Outcome.PENDING_APPROVAL: "Fixes planned; waiting for approval",
            Outcome.UNREACHABLE: "Some servers could not be reached",
            Outcome.COMMAND_FAILED: "Some servers answered a command with an error",
            Outcome.ROLLED_BACK: "A change failed and was rolled back",
            Outcome.FAILED: "A change failed and needs a person",
        }[self.outcome]
        return f"{head} ({total} server{'s' if total != 1 else ''}: {', '.join(parts) or 'none'})."

    def to_dict(self) -> dict[str, Any]:
        pending = self.pending
        return {
            "schema": RUN_SCHEMA,
            "ticket": self.ticket,
            "playbook": self.playbook.to_dict(),
            "variables": {k: list(v) if isinstance(v, tuple) else v for k, v in self.variables},
            "source": self.source,
            "operator": self.operator,
            "started": self.started,
            "finished": self.finished,
            "outcome": self.outcome.value,
            "exit_code": self.exit_code,
            "message": self.message(),
            "digest": self.digest,
            "approval": {
                "approved": self.approved,
                "refused": self.refused,
                "stale": [item.to_dict() for item in self.stale],
                "apply_command": None if pending is None else pending.apply_command,
                "approve_command": self.approve_command,
            },
            "artifacts": {
                "directory": self.directory,
                "run": self.run_file,
                "journal": self.journal,
                "plans": [p.to_dict() for p in self.plans],
            },
            "summary": {"hosts": len(self.hosts), **self.counts()},
            "hosts": [h.to_dict() for h in self.hosts],
        }
