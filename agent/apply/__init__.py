"""Apply, verify and roll back an approved plan; the append-only journal.

The Python API (the CLI and the playbook runner use exactly this):

- :func:`plan_fleet` (targets, credentials, source=...) -> :class:`FleetPlan` (``.plan``, the
  scan report, ``.exit_code``); write it with :func:`agent.review.write_plan_dir`;
- :func:`read_plan_file` (DIR/plan.json) -> :class:`PlanFile`;
- :func:`apply_plan` (plan, targets, credentials, approve=..., ...) -> :class:`ApplyReport`
  (per host: outcome, steps with before/after, ``verified``, queue status before and after,
  remaining findings; ``.exit_code``); raises a RefusedError (exit 4), a HostError (exit 3)
  or a RemoteCommandError (exit 7) when it refuses, having changed nothing;
- :func:`hold_hosts` (targets, credentials, journal=..., purpose=...) -> :class:`HostHold`:
  the hosts' locks taken before the caller collects and plans them; ``apply_plan(...,
  held=hold, collected=facts)`` then applies under them and its stale check takes those facts
  instead of collecting the held hosts again (agent/apply/hold.py);
- :func:`rollback_journal` (journal, targets, credentials, ...) -> :class:`RollbackReport`;
- :class:`Journal`, :func:`read_journal`, :class:`JournalEntry` (agent/apply/journal.py
  documents the record format);
- :func:`sigint_cancels` (cancel event): Ctrl-C sets the event instead of raising.

Journal phases and their results: hold (taken: hosts held before they are collected,
agent/apply/hold.py), start (ok | rollback), refused (the error class),
lock (acquired | broken | refused | failed: the host's change marker, agent/apply/lock.py;
failed: a hold could not reach it, and left it out),
stale-check (fresh | drifted | unreachable | command-failed), manual (not-run),
before (ok | drifted), execute (started | ok | failed), verify (ok | mismatch),
gate (waiting | open | stopped: a host's restart slot, agent/apply/steps.py), interrupted (stopping),
rollback (started | ok | unchanged | no-undo | failed), rollback-verify (ok | mismatch),
queues (retry-ok | retry-failed | verified | not-verified), host (the host outcome),
unlock (released | not-ours | failed), end (ok | failed; a hold no apply used: detail
applied false).
"""

from __future__ import annotations

from agent.apply._context import sigint_cancels
from agent.apply.fleet_plan import FleetPlan, plan_fleet
from agent.apply.hold import HostHold, hold_hosts
from agent.apply.journal import Journal, JournalEntry, read_journal
from agent.apply.plan_file import PlanFile, read_plan_file
from agent.apply.results import (
    ApplyReport,
    HostApply,
    HostOutcome,
    HostRollback,
    QueueChange,
    QueueStatus,
    RollbackReport,
    StepResult,
    StepStatus,
)
from agent.apply.rollback import read_apply, rollback_journal
from agent.apply.run import DEFAULT_VERIFY_TIMEOUT, apply_plan, current_operator

__all__ = [
    "DEFAULT_VERIFY_TIMEOUT",
    "ApplyReport",
    "FleetPlan",
    "HostApply",
    "HostHold",
    "HostOutcome",
    "HostRollback",
    "Journal",
    "JournalEntry",
    "PlanFile",
    "QueueChange",
    "QueueStatus",
    "RollbackReport",
    "StepResult",
    "StepStatus",
    "apply_plan",
    "current_operator",
    "hold_hosts",
    "plan_fleet",
    "read_apply",
    "read_journal",
    "read_plan_file",
    "rollback_journal",
    "sigint_cancels",
]
