"""What apply and rollback report: per host, per step, and the queues before and after."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from agent.errors import EXIT_OK, EXIT_ROLLBACK_FAILED, EXIT_ROLLED_BACK
from agent.model.document import encode_object
from agent.model.findings import Finding
from agent.model.plan import PlanValue
from agent.model.results import finding_to_dict

# The checks' values live in agent.model (the playbook run carries them too); apply names them.
from agent.model.verification import CheckStatus as CheckStatus
from agent.model.verification import ProbeCheck as ProbeCheck
from agent.model.verification import TrackingCheck as TrackingCheck

# /2: the organisations' units ("organizations") beside the hosts. /3: each unit's
# "new_findings", the findings after the change that the host did not have before it. /4: the
# symptom's checks, each pass/fail/not-available: a "status" on each queue, and "probes" (the
# lookups that failed before, re-run on the host) and "tracking" (SEND events to each next hop
# in Get-MessageTrackingLog since the change). A /3 reader that ignores unknown keys reads /4.
APPLY_SCHEMA = "exfix.apply/4"
APPLY_SCHEMAS = ("exfix.apply/1", "exfix.apply/2", "exfix.apply/3", APPLY_SCHEMA)
ROLLBACK_SCHEMA = "exfix.rollback/1"

Values = tuple[tuple[str, PlanValue], ...]  # property -> value, in the plan's order


class StepStatus(str, enum.Enum):
    OK = "ok"  # executed, and the read-back equals the planned ``after``
    FAILED = "failed"  # the cmdlet wrote an error, the transport failed, or the read-back differed
    MANUAL = "manual"  # a step for a person: reported, never run
    NOT_RUN = "not-run"  # a failure or an interrupt came first
    ROLLED_BACK = "rolled-back"  # undone, and the read-back equals the before-state
    UNCHANGED = "unchanged"  # "may have run", but the read-back shows the before-state: nothing to undo
    NO_UNDO = "no-undo"  # ran, and has no undo (Register-DnsClient, the transport restart)
    ROLLBACK_FAILED = "rollback-failed"  # undoing it failed: the host needs a person


class HostOutcome(str, enum.Enum):
    DONE = "done"  # every automatic step ran and read back as planned
    NOTHING_TO_DO = "nothing-to-do"  # no automatic step (manual steps and advice only)
    ROLLED_BACK = "rolled-back"  # a step failed (or apply was interrupted); the host is as before
    ROLLBACK_FAILED = "rollback-failed"  # ... and undoing failed: needs a person
    # Not started (--max-fail was reached, or apply was interrupted), or stopped so at its restart
    # gate: its steps before the restart undone, no restart sent (the error says which).
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class StepResult:
    action: str
    kind: str
    status: StepStatus
    before: Values = ()
    after: Values = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "status": self.status.value,
            "before": values_to_json(self.before),
            "after": values_to_json(self.after),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """One queue as Get-Queue showed it."""

    identity: str
    next_hop: str
    status: str
    message_count: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return encode_object(self)


@dataclass(frozen=True, slots=True)
class QueueChange:
    """A queue that was failing before apply: its status then and after verification (None
    when the queue no longer exists: Exchange removes an empty queue after a while)."""

    next_hop: str
    before: QueueStatus
    after: QueueStatus | None
    retried: bool  # Retry-Queue was run on it
    checked: bool = True  # False: the queues could not be read after apply (after is None then)

    @property
    def drained(self) -> bool:
        return self.checked and (self.after is None or self.after.message_count == 0)

    @property
    def status(self) -> CheckStatus:
        if not self.checked:
            return CheckStatus.NOT_AVAILABLE
        return CheckStatus.PASS if self.drained else CheckStatus.FAIL

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_hop": self.next_hop,
            "before": self.before.to_dict(),
            "after": None if self.after is None else self.after.to_dict(),
            "retried": self.retried,
            "checked": self.checked,
            "drained": self.drained,
            "status": self.status.value,
        }


@dataclass(frozen=True, slots=True)
class HostApply:
    """One host's apply. ``verified`` is None when nothing ran (nothing to verify), else
    whether the symptom is gone: the findings the plan addressed are gone, no queue still
    fails with a DNS error, and every queue that was failing drained within --verify-timeout."""

    host: str
    outcome: HostOutcome
    steps: tuple[StepResult, ...] = ()
    verified: bool | None = None
    queues: tuple[QueueChange, ...] = ()
    remaining_findings: tuple[Finding, ...] = ()
    error: str | None = None
    # Among the remaining findings, those the host did not have before the change: a fault the
    # change created (never ``verified`` then).
    new_findings: tuple[Finding, ...] = ()
    # The symptom checked as an admin checks it (agent/apply/symptom.py).
    probes: tuple[ProbeCheck, ...] = ()
    tracking: tuple[TrackingCheck, ...] = ()

    @property
    def ok(self) -> bool:
        if self.outcome is HostOutcome.NOTHING_TO_DO:
            # A server with no step of its own may still be verified after an organisation
            # change that was for it (its queues to the domain must drain).
            return self.verified is not False
        return self.outcome is HostOutcome.DONE and self.verified is True

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "outcome": self.outcome.value,
            "verified": self.verified,
            "error": self.error,
            "steps": [s.to_dict() for s in self.steps],
            "queues": [q.to_dict() for q in self.queues],
            "remaining_findings": [finding_to_dict(f) for f in self.remaining_findings],
            "new_findings": [finding_to_dict(f) for f in self.new_findings],
            "probes": [p.to_dict() for p in self.probes],
            "tracking": [t.to_dict() for t in self.tracking],
        }


@dataclass(frozen=True, slots=True)
class ApplyReport:
    plan_digest: str
    run: str
    journal: str
    operator: str
    ticket: str | None
    started: str
    finished: str
    hosts: tuple[HostApply, ...]
    interrupted: bool = False
    # The organisations' units (``host`` is the organisation's name), applied before the hosts.
    organizations: tuple[HostApply, ...] = ()

    @property
    def exit_code(self) -> int:
        """6 when a rollback failed; 5 when any unit is not done-and-verified (rolled back,
        skipped, interrupted, or the symptom persists); 0 when every unit is done and verified
        or had nothing to do."""
        units = self.organizations + self.hosts
        if any(h.outcome is HostOutcome.ROLLBACK_FAILED for h in units):
            return EXIT_ROLLBACK_FAILED
        if self.interrupted or not all(h.ok for h in units):
            return EXIT_ROLLED_BACK
        return EXIT_OK

    def host(self, name: str) -> HostApply:
        for host in self.hosts:
            if host.host == name:
                return host
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": APPLY_SCHEMA,
            "plan_digest": self.plan_digest,
            "run": self.run,
            "journal": self.journal,
            "operator": self.operator,
            "ticket": self.ticket,
            "started": self.started,
            "finished": self.finished,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
            "hosts": [h.to_dict() for h in self.hosts],
            "organizations": [o.to_dict() for o in self.organizations],
        }


@dataclass(frozen=True, slots=True)
class HostRollback:
    host: str
    steps: tuple[StepResult, ...]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(
            s.status in (StepStatus.ROLLED_BACK, StepStatus.UNCHANGED, StepStatus.NO_UNDO) for s in self.steps
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "ok": self.ok,
            "error": self.error,
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True, slots=True)
class RollbackReport:
    undoes: str  # the apply run
    run: str
    plan_digest: str
    journal: str
    hosts: tuple[HostRollback, ...]

    @property
    def exit_code(self) -> int:
        """0 when every step was undone (or had nothing to undo) and read back as before; 6
        otherwise."""
        return EXIT_OK if all(h.ok for h in self.hosts) else EXIT_ROLLBACK_FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": ROLLBACK_SCHEMA,
            "undoes": self.undoes,
            "run": self.run,
            "plan_digest": self.plan_digest,
            "journal": self.journal,
            "exit_code": self.exit_code,
            "hosts": [h.to_dict() for h in self.hosts],
        }


def value_to_json(value: PlanValue) -> Any:
    return list(value) if isinstance(value, tuple) else value


def values_to_json(values: Values) -> dict[str, Any]:
    return {name: value_to_json(value) for name, value in values}
