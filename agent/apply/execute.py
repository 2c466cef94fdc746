"""Carrying out one host's plan: before-state, the call, the read-back; and undoing it.

For each automatic action, in plan order:

1. read the action's properties (``read_back``) and journal them as the before-state; when
   the action has an undo, the before-state must be the plan's ``before`` (it is what the
   reviewed rollback restores; a difference means the host changed since the stale check);
2. journal ``execute``/``started``, run the action's CmdletCall (the very object the scripts
   were rendered from), journal the outcome;
3. read the properties again and compare them with the plan's ``after``.

The first failure (an error record, a transport failure, a read-back that differs) or an
interrupt stops the host, and every action that was executed, or may have been, is undone in
reverse (:func:`undo`): read first, and run the reviewed rollback only where the property is
not already back at its before-state; then read again and compare with the before-state. After
a transport failure the old connection is abandoned and a new one opened (a mutation is never
re-sent by the transport, and a broken pool is not trusted with the undo).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.apply._context import Recorder, call_json
from agent.apply.readback import ReadBackError, State, Values, differences, planned, read_state, same
from agent.apply.results import HostOutcome, StepResult, StepStatus, values_to_json
from agent.errors import CmdletError, HostError, one_line
from agent.model.command import CmdletCall, Endpoint
from agent.model.plan import (
    RESTART_KIND,
    TRANSPORT_SERVICE,
    Action,
    Change,
    HostPlan,
    restart_transport_call,
)
from agent.transport.connection import HostConnection

ConnectionFactory = Callable[[], HostConnection]

_RESTART_READ = CmdletCall(Endpoint.OS, "Get-Service", (("Name", TRANSPORT_SERVICE),))
_RESTART_CHANGE = (Change("Status", None, "Running"),)


@dataclass(frozen=True, slots=True)
class UndoItem:
    """What undoing one executed action needs; built from the plan during apply, and from the
    journal's ``before`` record by ``exfix rollback``."""

    action: str
    kind: str
    read_back: CmdletCall | None
    changes: tuple[Change, ...]
    rollback: tuple[CmdletCall, ...]
    before: Values | None  # the captured before-state (None: the action has no read-back)
    restart_required: bool

    @classmethod
    def of(cls, action: Action, before: State | None) -> UndoItem:
        return cls(action.id, action.kind, action.read_back, action.changes, action.rollback,
                   None if before is None else before.values, action.restart_required)  # fmt: skip

    @property
    def is_restart(self) -> bool:
        return self.kind == RESTART_KIND


@dataclass(frozen=True, slots=True)
class HostResult:
    outcome: HostOutcome
    steps: tuple[StepResult, ...]
    error: str | None
    interrupted: bool


class _Interrupted(Exception):
    """The cancel flag was seen between reading the before-state and sending the change."""


class _Failed(Exception):
    """Ends the host's run: the step failed (``broken``: the connection is not to be trusted)."""

    def __init__(self, message: str, *, broken: bool = False) -> None:
        super().__init__(message)
        self.broken = broken


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (HostError, ReadBackError)):
        return one_line(str(exc))
    return one_line(f"{type(exc).__name__}: {exc}")


def _read(conn: HostConnection, host: str, read_back: CmdletCall, changes: Sequence[Change]) -> State:
    try:
        return read_state(conn, host, read_back, changes)
    except CmdletError as exc:
        raise _Failed(f"{read_back.cmdlet}: {exc.message}") from exc
    except HostError as exc:
        raise _Failed(_describe(exc), broken=True) from exc
    except ReadBackError as exc:
        raise _Failed(_describe(exc)) from exc


def run_host(rec: Recorder, plan: HostPlan, connect: ConnectionFactory) -> HostResult:
    """Apply ``plan``'s automatic actions on one host; undo them all on failure or interrupt.
    Never raises for a host problem: the outcome says what happened."""
    host = plan.host
    steps: dict[str, StepResult] = {}
    executed: list[UndoItem] = []
    failure: str | None = None
    broken = False
    interrupted = False
    conn = connect()
    try:
        for action in plan.actions:
            if action.manual:
                rec.record("manual", "not-run", host=host, action=action.id, call=call_json(action.call),
                           detail={"description": action.description})  # fmt: skip
                steps[action.id] = StepResult(action.id, action.kind, StepStatus.MANUAL)
                continue
            if rec.cancel.is_set():
                interrupted = True
                break
            try:
                before, after = _one(rec, conn, host, action, executed)
            except _Failed as exc:
                failure, broken = str(exc), exc.broken
                steps[action.id] = StepResult(action.id, action.kind, StepStatus.FAILED, error=failure)
                break
            except _Interrupted:
                interrupted = True
                break
            except KeyboardInterrupt:
                # A second Ctrl-C, or an API caller without the SIGINT handler: the call in
                # flight may or may not have run. The action is already in ``executed`` if it
                # could have, and undo reads before it changes anything.
                rec.cancel.set()
                interrupted, broken = True, True
                steps[action.id] = StepResult(action.id, action.kind, StepStatus.FAILED,
                                              error="interrupted during the call")  # fmt: skip
                break
            steps[action.id] = StepResult(
                action.id, action.kind, StepStatus.OK,
                before=() if before is None else before.values, after=() if after is None else after.values,
            )  # fmt: skip
    except Exception as exc:  # a bug must not skip the undo below
        failure, broken = _describe(exc), True
    if interrupted:
        rec.record("interrupted", "stopping", host=host,
                   detail={"executed": [i.action for i in executed]})  # fmt: skip
    if failure is None and not interrupted:
        conn.close()
        return HostResult(HostOutcome.DONE, _ordered(plan, steps), None, False)
    if broken:
        conn.close()
    undone = undo(rec, host, executed, connect, conn=None if broken else conn)
    for step in undone:
        previous = steps.get(step.action)
        steps[step.action] = StepResult(
            step.action, step.kind, step.status,
            before=previous.before if previous else step.before, after=step.after,
            error=step.error or (previous.error if previous else None),
        )  # fmt: skip
    ok = all(s.status is not StepStatus.ROLLBACK_FAILED for s in undone)
    outcome = HostOutcome.ROLLED_BACK if ok else HostOutcome.ROLLBACK_FAILED
    error = failure if failure is not None else "interrupted"
    return HostResult(outcome, _ordered(plan, steps), error, interrupted)


def _ordered(plan: HostPlan, steps: dict[str, StepResult]) -> tuple[StepResult, ...]:
    """The plan's actions in order, then the steps undo added (the closing restart)."""
    ids = {a.id for a in plan.actions}
    planned_steps = tuple(
        steps.get(a.id)
        or StepResult(a.id, a.kind, StepStatus.MANUAL if a.manual else StepStatus.NOT_RUN)
        for a in plan.actions
    )
    return planned_steps + tuple(s for key, s in steps.items() if key not in ids)


def _one(
    rec: Recorder, conn: HostConnection, host: str, action: Action, executed: list[UndoItem]
) -> tuple[State | None, State | None]:
    """Steps 1-3 for one action. Appends it to ``executed`` just before the call is sent."""
    before: State | None = None
    if action.read_back is not None:
        before = _read(conn, host, action.read_back, action.changes)
    rec.record(
        "before", "ok", host=host, action=action.id,
        before=None if before is None else values_to_json(before.values),
        detail={
            "kind": action.kind,
            "read_back": call_json(action.read_back),
            "changes": [{"property": c.property, "before": _json(c.before), "after": _json(c.after)}
                        for c in action.changes],
            "rollback": [call_json(c) for c in action.rollback],
            "restart_required": action.restart_required,
        },
    )  # fmt: skip
    if before is not None and action.rollback:
        drift = differences(planned(action.changes, "before"), before)
        if drift:
            rec.record("before", "drifted", host=host, action=action.id, error="; ".join(drift))
            raise _Failed(f"the host changed since the plan was checked: {'; '.join(drift)}")
    if rec.cancel.is_set():
        raise _Interrupted  # stop before the change: nothing of this action ran
    rec.record("execute", "started", host=host, action=action.id, call=call_json(action.call))
    executed.append(UndoItem.of(action, before))
    try:
        result = conn.invoke(action.call)
    except HostError as exc:
        rec.record("execute", "failed", host=host, action=action.id, error=_describe(exc))
        raise _Failed(_describe(exc), broken=True) from exc
    if result.errors:
        message = one_line(f"{action.call.cmdlet}: {result.errors[0].message}")
        rec.record("execute", "failed", host=host, action=action.id, error=message,
                   detail={"errors": [e.to_dict() for e in result.errors]})  # fmt: skip
        raise _Failed(message)
    rec.record("execute", "ok", host=host, action=action.id)
    if action.read_back is None:
        return before, None
    after = _read(conn, host, action.read_back, action.changes)
    mismatch = differences(planned(action.changes, "after"), after)
    rec.record("verify", "mismatch" if mismatch else "ok", host=host, action=action.id,
               after=values_to_json(after.values), error="; ".join(mismatch) or None)  # fmt: skip
    if mismatch:
        raise _Failed(f"read back after {action.call.cmdlet}: {'; '.join(mismatch)}")
    return before, after


def _json(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def undo(
    rec: Recorder, host: str, items: Sequence[UndoItem], connect: ConnectionFactory,
    *, conn: HostConnection | None = None, restart_ran: bool | None = None,
) -> list[StepResult]:  # fmt: skip
    """Undo ``items`` (executed, or possibly executed, in that order) last first, each from its
    before-state, then restart MSExchangeTransport once when a restart already ran and an
    undone setting only takes effect at the next one (``restart_ran``: whether it ran; by
    default, whether ``items`` hold the restart). Uses ``conn`` if given, else a new
    connection; closes what it used. Journals every step; never raises for a host problem (a
    failed step is ROLLBACK_FAILED and the others are still tried)."""
    results: list[StepResult] = []
    current = conn if conn is not None else connect()
    try:
        undid_restart_setting = False
        for item in reversed(items):
            step, current = _undo_one(rec, host, item, current, connect)
            results.append(step)
            undid_restart_setting |= step.status is StepStatus.ROLLED_BACK and item.restart_required
        if restart_ran is None:
            restart_ran = any(i.is_restart for i in items)
        if undid_restart_setting and restart_ran:
            step, current = _undo_one(rec, host, _restart_item(), current, connect)
            results.append(step)
    finally:
        current.close()
    return results


def _restart_item() -> UndoItem:
    # Not an undo of anything: the restart that makes the restored settings take effect,
    # as the reviewed rollback.ps1 ends with one.
    return UndoItem("rollback-restart-transport", RESTART_KIND, _RESTART_READ,
                    _RESTART_CHANGE, (restart_transport_call(),), None, False)  # fmt: skip


def _undo_one(
    rec: Recorder, host: str, item: UndoItem, conn: HostConnection, connect: ConnectionFactory
) -> tuple[StepResult, HostConnection]:
    """One item, with one retry on a fresh connection after a transport failure (every step
    reads first, so trying again never undoes twice)."""
    for attempt in (1, 2):
        try:
            return _undo_attempt(rec, host, item, conn), conn
        except _Failed as exc:
            if not exc.broken or attempt == 2:
                rec.record("rollback", "failed", host=host, action=item.action, error=str(exc))
                return StepResult(item.action, item.kind, StepStatus.ROLLBACK_FAILED, error=str(exc)), conn
            conn.close()
            conn = connect()
    raise AssertionError("unreachable")  # pragma: no cover


def _undo_attempt(rec: Recorder, host: str, item: UndoItem, conn: HostConnection) -> StepResult:
    if not item.rollback:
        rec.record("rollback", "no-undo", host=host, action=item.action)
        return StepResult(item.action, item.kind, StepStatus.NO_UNDO)
    if item.before is not None and item.read_back is not None:
        current = _read(conn, host, item.read_back, item.changes)
        if not differences(item.before, current):
            rec.record("rollback", "unchanged", host=host, action=item.action,
                       after=values_to_json(current.values))  # fmt: skip
            return StepResult(item.action, item.kind, StepStatus.UNCHANGED, after=current.values)
    for call in item.rollback:
        rec.record("rollback", "started", host=host, action=item.action, call=call_json(call))
        try:
            result = conn.invoke(call)
        except HostError as exc:
            raise _Failed(_describe(exc), broken=True) from exc
        if result.errors:
            raise _Failed(one_line(f"{call.cmdlet}: {result.errors[0].message}"))
    rec.record("rollback", "ok", host=host, action=item.action)
    if item.read_back is None:
        return StepResult(item.action, item.kind, StepStatus.ROLLED_BACK)
    after = _read(conn, host, item.read_back, item.changes)
    # The before-state; for the closing restart (no before-state), the service running again.
    expected = item.before if item.before is not None else planned(item.changes, "after")
    mismatch = differences(expected, after)
    rec.record("rollback-verify", "mismatch" if mismatch else "ok", host=host, action=item.action,
               after=values_to_json(after.values), error="; ".join(mismatch) or None)  # fmt: skip
    if mismatch:
        raise _Failed(f"read back after the undo: {'; '.join(mismatch)}")
    return StepResult(item.action, item.kind, StepStatus.ROLLED_BACK, after=after.values)


__all__ = ["HostResult", "UndoItem", "run_host", "same", "undo"]
