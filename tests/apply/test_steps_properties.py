"""The step machine under random faults: any command of a run may fail on the transport,
answer an error record or nothing, be interrupted (with or without having taken effect), and
the cancel flag may be set at any point. Whatever happens, the machine ends, never sends a
change twice, undoes exactly what was sent (or may have been), last first, and its outcome
says truthfully where the host stands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.apply.results import HostOutcome, StepStatus
from agent.apply.steps import (
    CLOSING_RESTART,
    INTERRUPTED_UNDO,
    Answer,
    AwaitSlot,
    Cancel,
    Command,
    Done,
    Execute,
    Go,
    Interrupted,
    ReadBack,
    Record,
    Rollback,
    Stop,
    start_apply,
)
from agent.model.plan import Action
from agent.transport.base import CommandResult
from apply._steps_support import (
    A1,
    A2,
    A3,
    DENIED,
    DROPPED,
    MANUAL,
    Fault,
    SimHost,
    host_plan,
    run,
)

NOTHING = Answer(CommandResult())  # no output, no error: a read of an object that is not there

faults = st.sampled_from([
    Fault(DROPPED), Fault(DROPPED, happened=True), Fault(DENIED), Fault(NOTHING),
    Fault(Interrupted()), Fault(Interrupted(), happened=True),
])  # fmt: skip
plans = st.lists(st.sampled_from([A1, A2, A3, MANUAL]), unique_by=lambda a: a.id, min_size=1, max_size=4)
drifts = st.sampled_from([{}, {"ExternalDNSAdapterEnabled": False}, {"UseExternalDNSServersEnabled": True}])


Scenario = tuple[list[Action], dict[str, Any]]


def _scenario() -> st.SearchStrategy[Scenario]:
    """A plan and what its simulated host does (SimHost's arguments)."""

    def build(actions: list[Action], table: dict[int, Fault], cancel: int | None,
              drift: dict[str, object]) -> Scenario:  # fmt: skip
        return actions, {"actions": tuple(actions), "faults": table, "values": drift,
                         "cancel_after": frozenset() if cancel is None else frozenset({cancel})}  # fmt: skip

    # A three-step run sends about 22 commands before any undo, and as many to undo it.
    return st.builds(build, plans, st.dictionaries(st.integers(0, 45), faults, max_size=3),
                     st.none() | st.integers(0, 45), drifts)  # fmt: skip


def _executed(commands: Sequence[Command]) -> list[str]:
    return [c.action for c in commands if isinstance(c, Execute)]


def _is_undo_record(c: Command) -> bool:
    return isinstance(c, Record) and c.phase in ("rollback", "rollback-verify")


def _undo_order(commands: Sequence[Command]) -> list[str]:
    """The items the undo dealt with, in the order it came to them."""
    seen: list[str] = []
    for c in commands:
        if isinstance(c, Record) and _is_undo_record(c) and c.action not in seen:
            seen.append(c.action or "")
    return [a for a in seen if a != CLOSING_RESTART]


def _undo_interrupted(commands: Sequence[Command]) -> bool:
    return any(isinstance(c, Record) and c.error == INTERRUPTED_UNDO for c in commands)


@settings(max_examples=400, deadline=None)
@given(_scenario())
def test_the_machine_always_ends_and_its_outcome_is_the_truth(scenario: Scenario) -> None:
    actions, sim = scenario
    host = SimHost(**sim)
    done = run(start_apply(host_plan(actions)), host, limit=500)
    commands = host.commands
    assert commands[-1] is done and sum(isinstance(c, Done) for c in commands) == 1

    executed = _executed(commands)
    automatic = [a.id for a in actions if not a.manual]
    # Never a change twice, only in plan order, never a manual step, and never without its
    # "started" record on disk first.
    assert len(executed) == len(set(executed))
    assert executed == [a for a in automatic if a in executed]
    assert not {c.action for c in commands if isinstance(c, (Execute, ReadBack))} & {MANUAL.id}
    for i, c in enumerate(commands):
        if isinstance(c, Execute):
            assert commands[i - 1] == Record("execute", "started", c.action, call=c.call)
        if isinstance(c, Rollback):
            assert commands[i - 1] == Record("rollback", "started", c.action, call=c.call)

    # Undone: exactly what was sent, or may have been, last first (all of it unless a second
    # interrupt stopped the undo), and nothing is sent to change the host after the undo began.
    order = _undo_order(commands)
    if _undo_interrupted(commands):
        assert order == list(reversed(executed))[: len(order)]
    elif done.outcome is not HostOutcome.DONE:
        assert order == list(reversed(executed))
    undoing = [i for i, c in enumerate(commands) if isinstance(c, Rollback) or _is_undo_record(c)]
    first_undo = undoing[0] if undoing else len(commands)
    assert not any(isinstance(c, Execute) for c in commands[first_undo:])

    # The outcome is what the host shows.
    if done.outcome is HostOutcome.DONE:
        assert executed == automatic and not order and host.values == host.plan_after()
        assert all(s.status in (StepStatus.OK, StepStatus.MANUAL) for s in done.steps)
    elif done.outcome is HostOutcome.ROLLED_BACK:
        assert host.values == host.initial
    else:
        assert done.outcome is HostOutcome.ROLLBACK_FAILED
        assert _undo_interrupted(commands) or any(s.status is StepStatus.ROLLBACK_FAILED for s in done.steps)
    assert [s.action for s in done.steps][: len(actions)] == [a.id for a in actions]
    assert all(s.action == CLOSING_RESTART for s in done.steps[len(actions):])

    # An interrupt sets the cancel flag, so that the hosts not started are skipped.
    if any(isinstance(c, Cancel) for c in commands):
        assert done.interrupted and host.cancelled


@settings(max_examples=200, deadline=None)
@given(plans, st.integers(0, 60))
def test_no_step_starts_once_the_cancel_flag_is_seen(actions: list[Action], at: int) -> None:
    host = SimHost(actions=tuple(actions), cancel_after=frozenset({at}))
    done = run(start_apply(host_plan(actions)), host)
    later = host.commands[at + 1:]
    assert not any(isinstance(c, Record) and (c.phase, c.result) == ("execute", "started") for c in later)
    if any(isinstance(c, Record) and c.phase == "interrupted" for c in host.commands):
        assert done.interrupted and done.outcome is HostOutcome.ROLLED_BACK
        assert host.values == host.initial


@settings(max_examples=100, deadline=None)
@given(_scenario())
def test_the_machine_is_deterministic(scenario: Scenario) -> None:
    actions, sim = scenario
    first, second = SimHost(**sim), SimHost(**sim)
    assert run(start_apply(host_plan(actions)), first) == run(start_apply(host_plan(actions)), second)
    assert first.commands == second.commands


gates = st.sampled_from([Go(), Stop("more than 0 host(s) failed")])


@settings(max_examples=300, deadline=None)
@given(_scenario(), gates)
def test_a_gated_host_restarts_only_through_its_gate_and_a_stop_leaves_it_as_it_was(
    scenario: Scenario, gate: Go | Stop
) -> None:
    """The same random faults with the restart gate answered Go or Stop: the restart is sent
    only after the gate opened; a host stopped at its gate never restarts (no closing restart
    either), and is skipped only when it is back as it was."""
    actions, sim = scenario
    host = SimHost(**sim, gate=gate)
    done = run(start_apply(host_plan(actions), gated=True), host, limit=500)
    commands = host.commands
    executed = _executed(commands)
    assert len(executed) == len(set(executed))
    awaited = [i for i, c in enumerate(commands) if isinstance(c, AwaitSlot)]
    assert len(awaited) <= 1
    for i, c in enumerate(commands):
        if isinstance(c, Execute) and c.action == A3.id:
            assert awaited and awaited[0] < i and isinstance(gate, Go)
            assert Record("gate", "open", A3.id) in commands[awaited[0]:i]
    stopped = any(isinstance(c, Record) and (c.phase, c.result) == ("gate", "stopped") for c in commands)
    if stopped:
        sent = [c for c in commands if isinstance(c, (Execute, Rollback))]
        assert not [c for c in sent if c.call.cmdlet == "Restart-Service"]
    if done.outcome is HostOutcome.SKIPPED:
        assert stopped and host.values == host.initial
        assert done.error is not None and done.error.startswith("the run stopped before its restart")
    elif done.outcome is HostOutcome.DONE:
        assert not stopped and host.values == host.plan_after()
    elif done.outcome is HostOutcome.ROLLED_BACK:
        assert host.values == host.initial
