"""Apply and undo as a pure step machine: what to journal, read, run or undo next on one host.

:func:`next_step` takes the machine's state (a frozen :class:`HostRun`) and what became of the
last command (a result), and returns the new state and the next command. It never touches a
connection, the journal, a clock or the cancel flag; agent/apply/execute.py drives it, owning
all four, and does nothing but perform each command and report what happened. So every
decision of apply and rollback (the drift check, when to stop, what to undo, when to reconnect
and retry, the outcome) can be tested with plain data.

Commands, and the result each one is answered with:

- :class:`Record` (write one journal record) -> :class:`Ack`;
- :class:`ReadBack`, :class:`Execute`, :class:`Rollback` (run one cmdlet call) ->
  :class:`Answer` (the CommandResult, error records included) or :class:`Broken` (a transport
  failure: the call may or may not have run, and the connection is not to be trusted);
- :class:`Reconnect` (drop the connection; the next call opens a new one) -> :class:`Ack`;
- :class:`Cancel` (set the run's cancel flag, so the hosts not started are skipped) -> :class:`Ack`;
- :class:`AwaitSlot` (the restart gate: wait until the host may go out of mail flow) ->
  :class:`Go` (the host now holds its restart slot) or :class:`Stop` (the run stopped: the
  host must not restart);
- :class:`Done` ends the host; nothing answers it.

Any command may instead be answered :class:`Interrupted` (a KeyboardInterrupt while it was
performed: it may or may not have happened). Every other result carries ``cancelled``, the
cancel flag as it was once the command was performed. The driver starts the machine with
``next_step(state, Ack(cancelled=...))``.

What the machine decides, for each automatic action in plan order (manual actions are
journaled ``manual``/``not-run`` and never sent):

1. read the action's properties and journal them as the before-state; when the action has an
   undo, the before-state must be the plan's ``before`` (what the reviewed rollback restores;
   a difference means the host changed since the stale check);
2. if the cancel flag is set by now, stop: nothing of this action was sent;
3. journal ``execute``/``started``, run the call, journal the outcome;
4. read the properties again and compare them with the plan's ``after``.

A host applied with a gate (``start_apply(plan, gated=True)``, as apply runs every host)
stops once, before the *execute* of its first disruptive action (the MSExchangeTransport
restart): it journals ``gate``/``waiting`` and sends :class:`AwaitSlot`. Everything before it
(the connection, each read, the non-disruptive changes and their read-backs, the restart's
own before-read) ran while other servers were out of mail flow. On :class:`Go` it journals
``gate``/``open`` and goes on; the rest of its steps (the restart, read back Running, and any
undo they need, the closing restart included) run in its restart slot. On :class:`Stop` the
host does not restart: it journals ``gate``/``stopped`` with the run's reason and undoes
everything it executed, exactly as an interrupted host is undone (no restart ran, so no
closing restart); its outcome is ``skipped`` when the undo read back clean (the error says
"the run stopped before its restart; its changes were undone"), ``rollback-failed`` when it
did not.

The first failure (a read that fails, drift, an error record, a transport failure, a read-back
that differs) or an interrupt stops the host; every action that was executed, or may have
been, is undone last first. Undoing one reads first and runs the reviewed rollback calls only
where the property is not already back at its before-state, then reads again and compares.
After a transport failure the connection is replaced before the undo (a broken pool is not
trusted with it), and an undo step that fails on the transport is tried once more on a new
connection (it reads first, so trying again never undoes twice). When an undone setting only
takes effect at a MSExchangeTransport restart and a restart already ran, one closing restart
follows, as the reviewed rollback.ps1 ends with one. An interrupt during the undo stops it:
the step in flight is ``rollback``/``failed`` and the rest is left to ``exfix rollback``.

``exfix rollback`` runs the undo part alone (:func:`start_undo`) on items read from the journal.

One action applied cleanly, as the driver sees it::

    state = start_apply(plan)
    state, command = next_step(state, Ack())        # ReadBack(01, Get-TransportService)
    state, command = next_step(state, Answer(read))  # Record("before", "ok", before=...)
    state, command = next_step(state, Ack())        # Record("execute", "started", call=...)
    state, command = next_step(state, Ack())        # Execute(01, Set-TransportService)
    state, command = next_step(state, Answer(ok))   # Record("execute", "ok")
    state, command = next_step(state, Ack())        # ReadBack(01, Get-TransportService)
    state, command = next_step(state, Answer(read))  # Record("verify", "ok", after=...)
    state, command = next_step(state, Ack())        # Done(HostOutcome.DONE, steps, ...)
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.apply.readback import ReadBackError, State, Values, differences, planned, state_from_result
from agent.apply.results import HostOutcome, StepResult, StepStatus
from agent.errors import CmdletError, one_line
from agent.model.command import CmdletCall, Endpoint
from agent.model.plan import (
    RESTART_KIND,
    TRANSPORT_SERVICE,
    Action,
    Change,
    HostPlan,
    call_to_dict,
    restart_transport_call,
)
from agent.transport.base import CommandResult

INTERRUPTED_CALL = "interrupted during the call"
INTERRUPTED_UNDO = "interrupted during the undo"
CLOSING_RESTART = "rollback-restart-transport"

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


def closing_restart() -> UndoItem:
    """Not an undo of anything: the restart that makes the restored settings take effect; it
    has no before-state, so its read-back must show the service running again."""
    return UndoItem(CLOSING_RESTART, RESTART_KIND, _RESTART_READ, _RESTART_CHANGE,
                    (restart_transport_call(),), None, False)  # fmt: skip


# --- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """Write one journal record for the host (agent/apply/journal.py). ``before``/``after`` are
    written as property -> value; ``detail`` is already in its JSON shape."""

    phase: str
    result: str
    action: str | None = None
    before: Values | None = None
    after: Values | None = None
    call: CmdletCall | None = None
    error: str | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ReadBack:
    """Run an action's read-back call."""

    action: str
    call: CmdletCall


@dataclass(frozen=True, slots=True)
class Execute:
    """Run an action's call: the change itself."""

    action: str
    call: CmdletCall


@dataclass(frozen=True, slots=True)
class Rollback:
    """Run one of an action's reviewed rollback calls."""

    action: str
    call: CmdletCall


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Close the connection; the next call runs on a new one."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """Set the run's cancel flag (a KeyboardInterrupt was seen: the hosts not started must be
    skipped)."""


@dataclass(frozen=True, slots=True)
class AwaitSlot:
    """The restart gate: wait until the host may take its restart slot (apply's scheduler,
    agent/planning/schedule.py), before the execute of ``action``, its first disruptive
    action."""

    action: str


@dataclass(frozen=True, slots=True)
class Done:
    """The host is finished. ``steps``: apply's per-action results in plan order, then the
    closing restart; for an undo alone, the undo steps in the order they ran."""

    outcome: HostOutcome
    steps: tuple[StepResult, ...]
    error: str | None
    interrupted: bool


Call = ReadBack | Execute | Rollback
Command = Record | ReadBack | Execute | Rollback | Reconnect | Cancel | AwaitSlot | Done


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ack:
    """A Record, Reconnect or Cancel was performed (and, to start the machine: nothing yet)."""

    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """A call ran; what it returned, its error records included."""

    result: CommandResult
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Broken:
    """A call failed on the transport (or the transport raised): it may or may not have run,
    and the connection is not to be trusted. ``message`` is one line."""

    message: str
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Go:
    """AwaitSlot: the host holds its restart slot now."""

    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Stop:
    """AwaitSlot: the run stopped (``reason``: "interrupted", "more than 0 host(s) failed");
    the host must not restart."""

    reason: str


@dataclass(frozen=True, slots=True)
class Interrupted:
    """A KeyboardInterrupt arrived while the command was performed: it may or may not have
    happened."""


Result = Ack | Answer | Broken | Go | Stop | Interrupted


# --- the state ------------------------------------------------------------------------------


class Phase(enum.Enum):
    """Which command the machine waits on the result of."""

    START = "start"
    MANUAL_RECORDED = "manual-recorded"
    BEFORE_READ = "before-read"
    BEFORE_RECORDED = "before-recorded"
    DRIFT_RECORDED = "drift-recorded"
    STARTED_RECORDED = "started-recorded"
    EXECUTING = "executing"
    EXECUTE_FAILED_RECORDED = "execute-failed-recorded"
    EXECUTE_OK_RECORDED = "execute-ok-recorded"
    AFTER_READ = "after-read"
    VERIFY_RECORDED = "verify-recorded"
    GATE_RECORDED = "gate-recorded"
    GATE_WAITING = "gate-waiting"
    GATE_OPEN_RECORDED = "gate-open-recorded"
    GATE_CANCELLING = "gate-cancelling"
    GATE_STOP_RECORDED = "gate-stop-recorded"
    CANCELLING = "cancelling"
    STOPPING = "stopping"
    RECONNECTING = "reconnecting"
    UNDO_NO_UNDO_RECORDED = "undo-no-undo-recorded"
    UNDO_READ = "undo-read"
    UNDO_UNCHANGED_RECORDED = "undo-unchanged-recorded"
    UNDO_STARTED_RECORDED = "undo-started-recorded"
    UNDO_CALLING = "undo-calling"
    UNDO_OK_RECORDED = "undo-ok-recorded"
    UNDO_VERIFY_READ = "undo-verify-read"
    UNDO_VERIFY_RECORDED = "undo-verify-recorded"
    UNDO_RETRY_RECONNECTING = "undo-retry-reconnecting"
    UNDO_CANCELLING = "undo-cancelling"
    UNDO_FAILED_RECORDED = "undo-failed-recorded"
    FINISHED = "finished"


# An interrupt in these phases lands while an action is on its way: it counts as that action's
# failure, and the action is undone if its call may have been sent.
_IN_ACTION = frozenset({
    Phase.BEFORE_READ, Phase.BEFORE_RECORDED, Phase.DRIFT_RECORDED, Phase.STARTED_RECORDED,
    Phase.EXECUTING, Phase.EXECUTE_FAILED_RECORDED, Phase.EXECUTE_OK_RECORDED, Phase.AFTER_READ,
    Phase.VERIFY_RECORDED,
})  # fmt: skip
_UNDOING = frozenset(p for p in Phase if p.value.startswith("undo-"))
_GATE = frozenset(p for p in Phase if p.value.startswith("gate-"))


@dataclass(frozen=True, slots=True)
class HostRun:
    """Where one host's run stands. Build it with :func:`start_apply` or :func:`start_undo`;
    only :func:`next_step` makes the next one."""

    host: str
    actions: tuple[Action, ...]
    phase: Phase = Phase.START
    index: int = 0  # the action being applied
    before: State | None = None  # its before-state, as read
    read: State | None = None  # the last state read after a change or an undo
    pending: str | None = None  # a failure whose journal record is being written
    pending_broken: bool = False
    steps: tuple[StepResult, ...] = ()  # apply: one per action settled, in order
    executed: tuple[UndoItem, ...] = ()  # apply: what was sent, or may have been, in order
    failure: str | None = None
    broken: bool = False
    interrupted: bool = False
    undo_only: bool = False  # exfix rollback: no apply part
    undo: tuple[UndoItem, ...] = ()  # what to undo, in undo order (the closing restart last)
    restart_ran: bool = False
    position: int = 0  # the item of ``undo`` being undone
    attempt: int = 1
    call: int = 0  # its rollback call being run
    undone: tuple[StepResult, ...] = ()  # one per item of ``undo`` settled
    undo_interrupted: bool = False
    closing: bool = False  # the closing restart was added to ``undo``
    reconnected: bool = False  # an interrupt came while the connection was being replaced
    gated: bool = False  # wait at the restart gate before the first disruptive execute
    through_gate: bool = False  # the gate answered Go: the host holds its restart slot
    stopped: str | None = None  # the gate answered Stop: the run's reason

    @property
    def action(self) -> Action:
        return self.actions[self.index]

    @property
    def item(self) -> UndoItem:
        return self.undo[self.position]


def start_apply(plan: HostPlan, *, gated: bool = False) -> HostRun:
    """The machine for applying ``plan`` (its automatic actions; manual ones are reported).
    ``gated``: wait at the restart gate (AwaitSlot) before the first disruptive execute."""
    return HostRun(plan.host, plan.actions, gated=gated)


def start_undo(host: str, items: Sequence[UndoItem], *, restart_ran: bool | None = None) -> HostRun:
    """The machine for undoing ``items`` (executed, or possibly executed, in that order), last
    first. ``restart_ran``: whether a MSExchangeTransport restart already ran with them (by
    default, whether ``items`` hold the restart)."""
    ran = any(i.is_restart for i in items) if restart_ran is None else restart_ran
    return HostRun(host, (), undo_only=True, undo=tuple(reversed(items)), restart_ran=ran)


Step = tuple[HostRun, Command]


def next_step(state: HostRun, result: Result) -> Step:
    """The state after ``result`` (what became of the last command ``state`` asked for) and the
    next command. Pure. Raises ValueError when the machine has already finished."""
    phase = state.phase
    if phase is Phase.FINISHED:
        raise ValueError("the host is finished: Done was the last command")
    if isinstance(result, Interrupted):
        if phase in (Phase.CANCELLING, Phase.UNDO_CANCELLING, Phase.GATE_CANCELLING):
            return state, Cancel()  # it may not have been set: the hosts not started must be skipped
        if phase is Phase.GATE_WAITING and not state.interrupted:
            # Ctrl-C while waiting for the slot: the run stops, so the host stops at its gate
            # as it would on Stop (nothing of the restart was sent).
            return _to(state, Phase.GATE_CANCELLING, Cancel(), interrupted=True)
        if state.undo_only or phase in _UNDOING:
            if not state.undo_interrupted:
                return _undo_interrupted(state)
        elif not state.interrupted:
            return _apply_interrupted(state)
        # Once the host is stopping for an interrupt, a further one changes nothing: carry on
        # as if the command was performed (whether it was is as unknown as before).
        result = Ack()
    if phase is Phase.START:
        return _undo_next(state) if state.undo_only else _next_action(state, 0, _cancelled(result))
    if phase in _UNDOING:
        return _undo_step(state, result)
    return _apply_step(state, result)


def _cancelled(result: Result) -> bool:
    return isinstance(result, (Ack, Answer, Broken, Go)) and result.cancelled


def _to(state: HostRun, phase: Phase, command: Command, **changes: Any) -> Step:
    return dataclasses.replace(state, phase=phase, **changes), command


# --- apply ----------------------------------------------------------------------------------


def _apply_step(state: HostRun, result: Result) -> Step:
    phase = state.phase
    if phase is Phase.MANUAL_RECORDED:
        return _next_action(state, state.index + 1, _cancelled(result))
    if phase is Phase.BEFORE_READ:
        read = _read(state.host, state.action.read_back, state.action.changes, result)
        if isinstance(read, _Failure):
            return _fail(state, read.message, read.broken)
        return _record_before(state, read)
    if phase is Phase.BEFORE_RECORDED:
        return _check_before(state, _cancelled(result))
    if phase in (Phase.DRIFT_RECORDED, Phase.EXECUTE_FAILED_RECORDED):
        return _fail(state, state.pending or "", state.pending_broken)
    if phase in _GATE:
        return _gate_step(state, result)
    if phase is Phase.STARTED_RECORDED:
        action = state.action
        return _to(state, Phase.EXECUTING, Execute(action.id, action.call),
                   executed=(*state.executed, UndoItem.of(action, state.before)))  # fmt: skip
    if phase is Phase.EXECUTING:
        return _executed(state, result)
    if phase is Phase.EXECUTE_OK_RECORDED:
        action = state.action
        if action.read_back is None:
            return _settled(state, None, _cancelled(result))
        return _to(state, Phase.AFTER_READ, ReadBack(action.id, action.read_back))
    if phase is Phase.AFTER_READ:
        read = _read(state.host, state.action.read_back, state.action.changes, result)
        if isinstance(read, _Failure):
            return _fail(state, read.message, read.broken)
        mismatch = differences(planned(state.action.changes, "after"), read)
        return _to(state, Phase.VERIFY_RECORDED,
                   Record("verify", "mismatch" if mismatch else "ok", state.action.id, after=read.values,
                          error="; ".join(mismatch) or None),
                   read=read)  # fmt: skip
    if phase is Phase.VERIFY_RECORDED:
        assert state.read is not None
        mismatch = differences(planned(state.action.changes, "after"), state.read)
        if mismatch:
            return _fail(state, f"read back after {state.action.call.cmdlet}: {'; '.join(mismatch)}", False)
        return _settled(state, state.read, _cancelled(result))
    if phase is Phase.CANCELLING:
        return _begin_undo(state) if state.reconnected else _stop(state)
    if phase is Phase.STOPPING:
        return _after_stop(state)
    if phase is Phase.RECONNECTING:
        return _begin_undo(state)
    raise AssertionError(f"no transition from {phase}")  # pragma: no cover


def _next_action(state: HostRun, index: int, cancelled: bool) -> Step:
    state = dataclasses.replace(state, index=index, before=None, read=None, pending=None)
    if index == len(state.actions):
        return _finish(state)
    action = state.action
    if action.manual:
        return _to(state, Phase.MANUAL_RECORDED,
                   Record("manual", "not-run", action.id, call=action.call,
                          detail={"description": action.description}),
                   steps=(*state.steps, StepResult(action.id, action.kind, StepStatus.MANUAL)),
                   )  # fmt: skip
    if cancelled:
        return _stop(dataclasses.replace(state, interrupted=True))
    if action.read_back is None:
        return _record_before(state, None)
    return _to(state, Phase.BEFORE_READ, ReadBack(action.id, action.read_back))


def _record_before(state: HostRun, before: State | None) -> Step:
    action = state.action
    detail = {
        "kind": action.kind,
        "read_back": call_json(action.read_back),
        "changes": [{"property": c.property, "before": _json(c.before), "after": _json(c.after)}
                    for c in action.changes],
        "rollback": [call_json(c) for c in action.rollback],
        "restart_required": action.restart_required,
    }  # fmt: skip
    return _to(state, Phase.BEFORE_RECORDED,
               Record("before", "ok", action.id, before=None if before is None else before.values,
                      detail=detail),
               before=before)  # fmt: skip


def _json(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def call_json(call: CmdletCall | None) -> dict[str, Any] | None:
    return None if call is None else call_to_dict(call)


def _check_before(state: HostRun, cancelled: bool) -> Step:
    action = state.action
    if state.before is not None and action.rollback:
        drift = differences(planned(action.changes, "before"), state.before)
        if drift:
            return _to(state, Phase.DRIFT_RECORDED,
                       Record("before", "drifted", action.id, error="; ".join(drift)),
                       pending=f"the host changed since the plan was checked: {'; '.join(drift)}",
                       pending_broken=False)  # fmt: skip
    if cancelled:
        # Stop before the change: nothing of this action was sent.
        return _stop(dataclasses.replace(state, interrupted=True))
    if state.gated and action.disruptive and not state.through_gate:
        return _to(state, Phase.GATE_RECORDED,
                   Record("gate", "waiting", action.id, detail={"executed": _executed_ids(state)}))
    return _started(state)


def _started(state: HostRun) -> Step:
    action = state.action
    return _to(state, Phase.STARTED_RECORDED, Record("execute", "started", action.id, call=action.call))


def _executed_ids(state: HostRun) -> list[str]:
    return [i.action for i in state.executed]


def _gate_step(state: HostRun, result: Result) -> Step:
    """The restart gate (module docstring): wait, then go on in the slot or stop and undo."""
    phase = state.phase
    action = state.action
    if phase is Phase.GATE_RECORDED:
        return _to(state, Phase.GATE_WAITING, AwaitSlot(action.id))
    if phase is Phase.GATE_WAITING:
        if isinstance(result, Stop):
            return _gate_stopped(state, result.reason)
        if not isinstance(result, Go):
            raise ValueError(f"AwaitSlot is answered with Go or Stop, not {type(result).__name__}")
        return _to(state, Phase.GATE_OPEN_RECORDED, Record("gate", "open", action.id), through_gate=True)
    if phase is Phase.GATE_OPEN_RECORDED:
        if _cancelled(result):
            # Interrupted between the slot and the restart: an interrupted host in flight.
            return _stop(dataclasses.replace(state, interrupted=True))
        return _started(state)
    if phase is Phase.GATE_CANCELLING:
        return _gate_stopped(state, "interrupted")
    assert phase is Phase.GATE_STOP_RECORDED
    return _after_stop(state)


def _gate_stopped(state: HostRun, reason: str) -> Step:
    error = f"the run stopped before its restart ({reason})"
    detail = {"executed": _executed_ids(state)}
    record = Record("gate", "stopped", state.action.id, error=error, detail=detail)
    return _to(state, Phase.GATE_STOP_RECORDED, record, stopped=reason)


def _executed(state: HostRun, result: Result) -> Step:
    action = state.action
    if isinstance(result, Broken):
        return _to(state, Phase.EXECUTE_FAILED_RECORDED,
                   Record("execute", "failed", action.id, error=result.message),
                   pending=result.message, pending_broken=True)  # fmt: skip
    assert isinstance(result, Answer)
    if result.result.errors:
        message = one_line(f"{action.call.cmdlet}: {result.result.errors[0].message}")
        return _to(state, Phase.EXECUTE_FAILED_RECORDED,
                   Record("execute", "failed", action.id, error=message,
                          detail={"errors": [e.to_dict() for e in result.result.errors]}),
                   pending=message, pending_broken=False)  # fmt: skip
    return _to(state, Phase.EXECUTE_OK_RECORDED, Record("execute", "ok", action.id))


def _settled(state: HostRun, after: State | None, cancelled: bool) -> Step:
    action = state.action
    step = StepResult(action.id, action.kind, StepStatus.OK,
                      before=() if state.before is None else state.before.values,
                      after=() if after is None else after.values)  # fmt: skip
    return _next_action(dataclasses.replace(state, steps=(*state.steps, step)), state.index + 1, cancelled)


def _fail(state: HostRun, message: str, broken: bool) -> Step:
    action = state.action
    step = StepResult(action.id, action.kind, StepStatus.FAILED, error=message)
    return _stop(dataclasses.replace(state, steps=(*state.steps, step), failure=message, broken=broken,
                                     pending=None))  # fmt: skip


def _apply_interrupted(state: HostRun) -> Step:
    # A second Ctrl-C, or an API caller without the SIGINT handler. The call in flight may or
    # may not have run: it is in ``executed`` already if it could have, and the undo reads
    # before it changes anything. The connection was mid-request, so it is replaced.
    if state.phase is Phase.RECONNECTING:  # already stopping for a failure; the undo follows
        return _to(state, Phase.CANCELLING, Cancel(), interrupted=True, reconnected=True)
    steps = state.steps
    failure = state.failure
    if state.phase in _IN_ACTION:
        action = state.action
        if state.pending is not None:  # the action had failed; its record was being written
            failure = state.pending
        steps = (*steps, StepResult(action.id, action.kind, StepStatus.FAILED,
                                    error=state.pending or INTERRUPTED_CALL))  # fmt: skip
    return _to(state, Phase.CANCELLING, Cancel(), steps=steps, failure=failure, interrupted=True,
               broken=True, pending=None)  # fmt: skip


def _stop(state: HostRun) -> Step:
    if state.interrupted:
        return _to(state, Phase.STOPPING,
                   Record("interrupted", "stopping", detail={"executed": [i.action for i in state.executed]}))
    return _after_stop(state)


def _after_stop(state: HostRun) -> Step:
    if state.broken:
        return _to(state, Phase.RECONNECTING, Reconnect())
    return _begin_undo(state)


def _begin_undo(state: HostRun) -> Step:
    state = dataclasses.replace(state, undo=tuple(reversed(state.executed)),
                                restart_ran=any(i.is_restart for i in state.executed))  # fmt: skip
    return _undo_next(state)


# --- undo -----------------------------------------------------------------------------------


def _undo_step(state: HostRun, result: Result) -> Step:
    phase = state.phase
    if phase is Phase.UNDO_CANCELLING:
        return _finish(state)
    item = state.item
    if phase is Phase.UNDO_NO_UNDO_RECORDED:
        return _undone(state, StepResult(item.action, item.kind, StepStatus.NO_UNDO))
    if phase is Phase.UNDO_READ:
        read = _read(state.host, item.read_back, item.changes, result)
        if isinstance(read, _Failure):
            return _undo_failed(state, read.message, read.broken)
        assert item.before is not None
        if not differences(item.before, read):
            return _to(state, Phase.UNDO_UNCHANGED_RECORDED,
                       Record("rollback", "unchanged", item.action, after=read.values), read=read)
        return _undo_call(state, 0)
    if phase is Phase.UNDO_UNCHANGED_RECORDED:
        assert state.read is not None
        return _undone(state, StepResult(item.action, item.kind, StepStatus.UNCHANGED,
                                         after=state.read.values))  # fmt: skip
    if phase is Phase.UNDO_STARTED_RECORDED:
        return _to(state, Phase.UNDO_CALLING, Rollback(item.action, item.rollback[state.call]))
    if phase is Phase.UNDO_CALLING:
        if isinstance(result, Broken):
            return _undo_failed(state, result.message, True)
        assert isinstance(result, Answer)
        if result.result.errors:
            call = item.rollback[state.call]
            return _undo_failed(state, one_line(f"{call.cmdlet}: {result.result.errors[0].message}"), False)
        return _undo_call(state, state.call + 1)
    if phase is Phase.UNDO_OK_RECORDED:
        if item.read_back is None:
            return _undone(state, StepResult(item.action, item.kind, StepStatus.ROLLED_BACK))
        return _to(state, Phase.UNDO_VERIFY_READ, ReadBack(item.action, item.read_back))
    if phase is Phase.UNDO_VERIFY_READ:
        read = _read(state.host, item.read_back, item.changes, result)
        if isinstance(read, _Failure):
            return _undo_failed(state, read.message, read.broken)
        mismatch = differences(_undo_expected(item), read)
        return _to(state, Phase.UNDO_VERIFY_RECORDED,
                   Record("rollback-verify", "mismatch" if mismatch else "ok", item.action, after=read.values,
                          error="; ".join(mismatch) or None),
                   read=read)  # fmt: skip
    if phase is Phase.UNDO_VERIFY_RECORDED:
        assert state.read is not None
        mismatch = differences(_undo_expected(item), state.read)
        if mismatch:
            return _undo_failed(state, f"read back after the undo: {'; '.join(mismatch)}", False)
        return _undone(state, StepResult(item.action, item.kind, StepStatus.ROLLED_BACK,
                                         after=state.read.values))  # fmt: skip
    if phase is Phase.UNDO_RETRY_RECONNECTING:
        return _undo_next(dataclasses.replace(state, attempt=2))
    if phase is Phase.UNDO_FAILED_RECORDED:
        return _undone(state, StepResult(item.action, item.kind, StepStatus.ROLLBACK_FAILED,
                                         error=state.pending))  # fmt: skip
    raise AssertionError(f"no transition from {phase}")  # pragma: no cover


def _undo_expected(item: UndoItem) -> Values:
    # The before-state; for the closing restart (no before-state), the service running again.
    return item.before if item.before is not None else planned(item.changes, "after")


def _undo_next(state: HostRun) -> Step:
    """Start (or, on ``attempt`` 2, try again) the item at ``position``; after the last, the
    closing restart when it is needed, then the end."""
    state = dataclasses.replace(state, call=0, read=None, pending=None, pending_broken=False)
    if state.undo_interrupted:
        return _to(state, Phase.UNDO_CANCELLING, Cancel())
    if state.position == len(state.undo):
        if _needs_closing_restart(state):
            return _undo_next(dataclasses.replace(state, undo=(*state.undo, closing_restart()), closing=True))
        return _finish(state)
    item = state.item
    if not item.rollback:
        return _to(state, Phase.UNDO_NO_UNDO_RECORDED, Record("rollback", "no-undo", item.action))
    if item.before is not None and item.read_back is not None:
        return _to(state, Phase.UNDO_READ, ReadBack(item.action, item.read_back))
    return _undo_call(state, 0)


def _needs_closing_restart(state: HostRun) -> bool:
    if not state.restart_ran or state.closing:
        return False
    return any(
        s.status is StepStatus.ROLLED_BACK and i.restart_required
        for s, i in zip(state.undone, state.undo, strict=True)
    )


def _undo_call(state: HostRun, call: int) -> Step:
    item = state.item
    if call < len(item.rollback):
        return _to(state, Phase.UNDO_STARTED_RECORDED,
                   Record("rollback", "started", item.action, call=item.rollback[call]), call=call)
    return _to(state, Phase.UNDO_OK_RECORDED, Record("rollback", "ok", item.action), call=call)


def _undo_failed(state: HostRun, message: str, broken: bool) -> Step:
    if broken and state.attempt == 1:
        return _to(state, Phase.UNDO_RETRY_RECONNECTING, Reconnect())
    return _to(state, Phase.UNDO_FAILED_RECORDED,
               Record("rollback", "failed", state.item.action, error=message), pending=message)


def _undone(state: HostRun, step: StepResult) -> Step:
    return _undo_next(dataclasses.replace(state, undone=(*state.undone, step), position=state.position + 1,
                                          attempt=1))  # fmt: skip


def _undo_interrupted(state: HostRun) -> Step:
    # Ctrl-C again while undoing: the person wants out. The step in flight is journaled as
    # failed (whether its call ran is unknown) and the rest stays in the journal, where
    # ``exfix rollback`` finds it.
    state = dataclasses.replace(state, interrupted=True, undo_interrupted=True)
    if state.phase is Phase.START:
        return _undo_next(state)
    if state.phase is Phase.UNDO_FAILED_RECORDED:  # the failure was being journaled already
        item = state.item
        return _undone(state, StepResult(item.action, item.kind, StepStatus.ROLLBACK_FAILED,
                                         error=state.pending))  # fmt: skip
    return _to(state, Phase.UNDO_FAILED_RECORDED,
               Record("rollback", "failed", state.item.action, error=INTERRUPTED_UNDO),
               pending=INTERRUPTED_UNDO)  # fmt: skip


# --- reading and the end --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Failure:
    message: str
    broken: bool


def _read(host: str, call: CmdletCall | None, changes: Sequence[Change], result: Result) -> State | _Failure:
    assert call is not None
    if isinstance(result, Broken):
        return _Failure(result.message, True)
    assert isinstance(result, Answer)
    try:
        return state_from_result(host, call, changes, result.result)
    except CmdletError as exc:
        return _Failure(f"{call.cmdlet}: {exc.message}", False)
    except ReadBackError as exc:
        return _Failure(one_line(str(exc)), False)
    except Exception as exc:  # host data apply cannot make sense of must not skip the undo
        return _Failure(one_line(f"{type(exc).__name__}: {exc}"), False)


def _finish(state: HostRun) -> Step:
    return _to(state, Phase.FINISHED, _done(state))


def _done(state: HostRun) -> Done:
    # An interrupted undo left something undone (at least the step in flight).
    failed = state.undo_interrupted or any(s.status is StepStatus.ROLLBACK_FAILED for s in state.undone)
    undone_outcome = HostOutcome.ROLLBACK_FAILED if failed else HostOutcome.ROLLED_BACK
    if state.undo_only:
        return Done(undone_outcome, state.undone, INTERRUPTED_UNDO if state.undo_interrupted else None,
                    state.interrupted)  # fmt: skip
    if state.failure is None and not state.interrupted and state.stopped is None:
        return Done(HostOutcome.DONE, _ordered(state.actions, state.steps), None, False)
    steps = {s.action: s for s in state.steps}
    for step in state.undone:
        previous = steps.get(step.action)
        steps[step.action] = StepResult(
            step.action, step.kind, step.status,
            before=previous.before if previous else step.before, after=step.after,
            error=step.error or (previous.error if previous else None),
        )  # fmt: skip
    ordered = _ordered(state.actions, tuple(steps.values()))
    if state.stopped is not None and state.failure is None:
        # Stopped at its gate: not started as far as mail flow goes, and back as it was.
        error = stopped_error(state.stopped, bool(state.executed), failed)
        outcome = HostOutcome.ROLLBACK_FAILED if failed else HostOutcome.SKIPPED
        return Done(outcome, ordered, error, state.interrupted)
    error = state.failure if state.failure is not None else "interrupted"
    return Done(undone_outcome, ordered, error, state.interrupted)


def stopped_error(reason: str, changed: bool, failed: bool) -> str:
    """The error of a host stopped at its restart gate (HostApply.error, the ``host`` record)."""
    head = f"the run stopped before its restart ({reason})"
    if failed:
        return f"{head}; undoing its changes failed"
    return f"{head}; its changes were undone" if changed else f"{head}; it had changed nothing"


def _ordered(actions: Sequence[Action], steps: Sequence[StepResult]) -> tuple[StepResult, ...]:
    """The plan's actions in order, then the steps the undo added (the closing restart)."""
    by_id = {s.action: s for s in steps}
    ids = {a.id for a in actions}
    planned_steps = tuple(
        by_id.get(a.id)
        or StepResult(a.id, a.kind, StepStatus.MANUAL if a.manual else StepStatus.NOT_RUN)
        for a in actions
    )
    return planned_steps + tuple(s for s in steps if s.action not in ids)


__all__ = [
    "CLOSING_RESTART",
    "INTERRUPTED_CALL",
    "INTERRUPTED_UNDO",
    "Ack",
    "Answer",
    "AwaitSlot",
    "Broken",
    "Call",
    "Cancel",
    "Command",
    "Done",
    "Execute",
    "Go",
    "HostRun",
    "Interrupted",
    "Phase",
    "ReadBack",
    "Reconnect",
    "Record",
    "Result",
    "Rollback",
    "Stop",
    "UndoItem",
    "closing_restart",
    "next_step",
    "start_apply",
    "start_undo",
    "stopped_error",
]
