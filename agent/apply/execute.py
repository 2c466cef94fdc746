"""Carrying out one host's plan, and undoing it: the IO loop around the step machine.

Every decision (what to read, when to stop, what to undo, when to reconnect and retry, the
outcome) is in agent/apply/steps.py, which documents the order of a host's steps. This loop
owns what the machine must not: the connection, the journal (:class:`Recorder`) and the cancel
flag. It performs each command the machine hands it and reports what happened: a call's
CommandResult, a transport failure (the connection is then not to be trusted), the cancel flag
as it stands, or a KeyboardInterrupt that arrived meanwhile.

The restart gate (:class:`AwaitSlot`) is answered by the ``gate`` the caller passes: apply's
scheduler (agent/apply/run.py), which blocks until the host may take its restart slot
(:class:`Go`) or the run stops (:class:`Stop`). Without one the host is not gated.

The journal must be writable: a record that cannot be written stops the host with the error
(exfix never changes a host it cannot account for), and the connection is closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.apply._context import Recorder, call_json
from agent.apply.readback import same
from agent.apply.results import HostOutcome, StepResult, values_to_json
from agent.apply.steps import (
    Ack,
    Answer,
    AwaitSlot,
    Broken,
    Call,
    Cancel,
    Done,
    Go,
    HostRun,
    Interrupted,
    Reconnect,
    Record,
    Result,
    Stop,
    UndoItem,
    next_step,
    start_apply,
    start_undo,
)
from agent.errors import HostError, one_line
from agent.model.plan import HostPlan
from agent.transport.base import CommandResult
from agent.transport.connection import HostConnection

ConnectionFactory = Callable[[], HostConnection]
# Called in the host's thread at its restart gate; returns once the host holds its restart slot
# (Go) or the run has stopped (Stop).
Gate = Callable[[], Go | Stop]


@dataclass(frozen=True, slots=True)
class HostResult:
    outcome: HostOutcome
    steps: tuple[StepResult, ...]
    error: str | None
    interrupted: bool


def run_host(
    rec: Recorder, plan: HostPlan, connect: ConnectionFactory, gate: Gate | None = None
) -> HostResult:
    """Apply ``plan``'s automatic actions on one host; undo them all on failure or interrupt.
    ``gate``: the restart gate, asked before the first disruptive execute (none: the host is
    not gated). Never raises for a host problem: the outcome says what happened."""
    done = drive(rec, plan.host, start_apply(plan, gated=gate is not None), connect, gate)
    return HostResult(done.outcome, done.steps, done.error, done.interrupted)


def undo(
    rec: Recorder, host: str, items: Sequence[UndoItem], connect: ConnectionFactory,
    *, restart_ran: bool | None = None,
) -> Done:  # fmt: skip
    """Undo ``items`` (executed, or possibly executed, in that order) last first, on a new
    connection, as apply's own undo does (agent/apply/steps.py); ``restart_ran``: whether a
    MSExchangeTransport restart already ran with them (by default, whether ``items`` hold it).
    Journals every step; never raises for a host problem (a failed step is ROLLBACK_FAILED and
    the others are still tried)."""
    return drive(rec, host, start_undo(host, items, restart_ran=restart_ran), connect)


def drive(
    rec: Recorder, host: str, state: HostRun, connect: ConnectionFactory, gate: Gate | None = None
) -> Done:
    """Run the machine ``state`` to its end on ``host``; returns its Done."""
    link = _Link(connect)
    try:
        result: Result = Ack(cancelled=rec.cancel.is_set())
        while True:
            state, command = next_step(state, result)
            if isinstance(command, Done):
                return command
            result = _perform(rec, host, link, command, gate)
    finally:
        link.drop()


def _perform(
    rec: Recorder, host: str, link: _Link, command: Record | Call | Reconnect | Cancel | AwaitSlot,
    gate: Gate | None,
) -> Result:  # fmt: skip
    try:
        if isinstance(command, AwaitSlot):
            return gate() if gate is not None else Go(cancelled=rec.cancel.is_set())
        if isinstance(command, Record):
            _write(rec, host, command)
        elif isinstance(command, Reconnect):
            link.drop()
        elif isinstance(command, Cancel):
            rec.cancel.set()
        else:
            try:
                answer = link.invoke(command)
            except Exception as exc:  # HostError, or anything else the transport raised
                return Broken(_describe(exc), cancelled=rec.cancel.is_set())
            return Answer(answer, cancelled=rec.cancel.is_set())
    except KeyboardInterrupt:
        return Interrupted()
    return Ack(cancelled=rec.cancel.is_set())


def _write(rec: Recorder, host: str, record: Record) -> None:
    rec.record(
        record.phase, record.result, host=host, action=record.action,
        before=None if record.before is None else values_to_json(record.before),
        after=None if record.after is None else values_to_json(record.after),
        call=call_json(record.call), error=record.error,
        detail=None if record.detail is None else dict(record.detail),
    )  # fmt: skip


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HostError):
        return one_line(str(exc))
    return one_line(f"{type(exc).__name__}: {exc}")


class _Link:
    """The host's connection: opened for the first call that needs one, dropped on Reconnect
    and at the end."""

    def __init__(self, connect: ConnectionFactory) -> None:
        self._connect = connect
        self._conn: HostConnection | None = None

    def invoke(self, command: Call) -> CommandResult:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn.invoke(command.call)

    def drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()


__all__ = ["Gate", "HostResult", "UndoItem", "drive", "run_host", "same", "undo"]
