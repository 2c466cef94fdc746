"""The restart gate of the step machine with plain data: where a gated host waits for its
restart slot, what it does on Go, and how it stops on Stop or an interrupt at the gate (undone
as an interrupted host is, no closing restart, skipped)."""

from __future__ import annotations

import pytest

from agent.apply.results import HostOutcome, StepStatus
from agent.apply.steps import (
    Ack,
    AwaitSlot,
    Done,
    Go,
    Interrupted,
    Record,
    Stop,
    next_step,
    start_apply,
    stopped_error,
)
from apply._steps_support import (
    A3,
    DENIED,
    Fault,
    SimHost,
    applied,
    host_plan,
    run,
    trace,
    undone,
)

GATE = [("gate", "waiting", "03"), ("await", "03")]
# 03's before-read runs before the gate; its execute and read-back in the slot.
RESTART_BEFORE = [("read", "03"), ("before", "ok", "03")]
RESTART_IN_SLOT = [("execute", "started", "03"), ("execute", "03"), ("execute", "ok", "03"), ("read", "03"),
                   ("verify", "ok", "03")]  # fmt: skip
STOPPED = "the run stopped before its restart (more than 0 host(s) failed)"


def test_a_gated_host_waits_for_its_slot_just_before_the_restart_is_sent() -> None:
    host = SimHost()
    done = run(start_apply(host_plan(), gated=True), host)
    assert trace(host) == [
        *applied("01"), *applied("02"), *RESTART_BEFORE, *GATE, ("gate", "open", "03"), *RESTART_IN_SLOT,
        ("done", "done"),
    ]  # fmt: skip
    assert done.outcome is HostOutcome.DONE
    assert host.values == host.plan_after()
    # The waiting record says what the host changed before the gate (what a stop undoes).
    (waiting,) = [r for r in host.journal if r.phase == "gate" and r.result == "waiting"]
    executed = ["01-set-transport-external-dns", "02-use-external-dns-on-connector"]
    assert waiting.detail == {"executed": executed}


def test_an_ungated_host_and_a_host_without_a_restart_never_wait() -> None:
    host = SimHost()
    run(start_apply(host_plan()), host)
    assert not any(k[0] in ("await", "gate") for k in trace(host))
    plain = SimHost(actions=host_plan().actions[:2])
    assert run(start_apply(host_plan(plain.actions), gated=True), plain).outcome is HostOutcome.DONE
    assert not any(k[0] in ("await", "gate") for k in trace(plain))


def test_stop_at_the_gate_undoes_what_ran_without_a_restart_and_skips_the_host() -> None:
    host = SimHost(gate=Stop("more than 0 host(s) failed"))
    done = run(start_apply(host_plan(), gated=True), host)
    assert trace(host) == [
        *applied("01"), *applied("02"), *RESTART_BEFORE, *GATE, ("gate", "stopped", "03"),
        *undone("02"), *undone("01"),  # last first, and no closing restart: none ran
        ("done", "skipped"),
    ]  # fmt: skip
    assert done.outcome is HostOutcome.SKIPPED
    assert done.error == f"{STOPPED}; its changes were undone"
    assert [(s.action[:2], s.status) for s in done.steps] == [
        ("01", StepStatus.ROLLED_BACK), ("02", StepStatus.ROLLED_BACK), ("03", StepStatus.NOT_RUN),
    ]  # fmt: skip
    assert host.values == host.initial
    (stopped,) = [r for r in host.journal if r.phase == "gate" and r.result == "stopped"]
    assert stopped.error == STOPPED and stopped.action == A3.id
    assert not done.interrupted


def test_a_host_whose_first_step_is_the_restart_stops_having_changed_nothing() -> None:
    host = SimHost(actions=(A3,), gate=Stop("interrupted"))
    done = run(start_apply(host_plan((A3,)), gated=True), host)
    assert trace(host) == [*RESTART_BEFORE, *GATE, ("gate", "stopped", "03"), ("done", "skipped")]
    assert done.error == "the run stopped before its restart (interrupted); it had changed nothing"


def test_an_undo_after_a_stop_that_fails_is_a_rollback_failure_not_a_skip() -> None:
    host = SimHost(gate=Stop("interrupted"), faults={(("undo", "01"), 1): Fault(DENIED)})
    done = run(start_apply(host_plan(), gated=True), host)
    assert done.outcome is HostOutcome.ROLLBACK_FAILED
    assert done.error == stopped_error("interrupted", True, True)
    assert done.error.endswith("undoing its changes failed")


def test_a_keyboard_interrupt_while_waiting_stops_the_run_and_the_host_at_its_gate() -> None:
    """Ctrl-C in the thread waiting at the gate: the run's cancel flag is set (the hosts not
    started are skipped) and the host stops as on Stop."""
    host = SimHost(faults={(("await", "03"), 1): Fault(Interrupted())})
    done = run(start_apply(host_plan(), gated=True), host)
    assert trace(host) == [
        *applied("01"), *applied("02"), *RESTART_BEFORE, *GATE, ("cancel",), ("gate", "stopped", "03"),
        *undone("02"), *undone("01"), ("done", "skipped"),
    ]  # fmt: skip
    assert done.outcome is HostOutcome.SKIPPED and done.interrupted
    assert done.error == "the run stopped before its restart (interrupted); its changes were undone"


def test_a_cancel_that_comes_with_go_stops_before_the_restart_as_an_interrupted_host() -> None:
    """The slot was given as the run was being cancelled: the host holds it, sends nothing more
    and is undone in it, as any host in flight at an interrupt (rolled back)."""
    host = SimHost(cancel_after=frozenset({(("await", "03"), 1)}))
    done = run(start_apply(host_plan(), gated=True), host)
    keys = trace(host)
    assert ("execute", "03") not in keys and ("interrupted", "stopping") in keys
    assert done.outcome is HostOutcome.ROLLED_BACK and done.interrupted
    assert host.values == host.initial


def test_a_failure_before_the_gate_never_waits_for_the_slot() -> None:
    host = SimHost(faults={(("execute", "02"), 1): Fault(DENIED)})
    done = run(start_apply(host_plan(), gated=True), host)
    assert done.outcome is HostOutcome.ROLLED_BACK
    assert not any(k[0] in ("await", "gate") for k in trace(host))


def test_the_gate_is_answered_with_go_or_stop_only() -> None:
    state, command = next_step(start_apply(host_plan((A3,)), gated=True), Ack())
    while not isinstance(command, AwaitSlot):
        assert not isinstance(command, Done)
        result = Ack() if isinstance(command, Record) else SimHost(actions=(A3,)).perform(command)
        state, command = next_step(state, result)
    with pytest.raises(ValueError, match="Go or Stop"):
        next_step(state, Ack())
    _, after = next_step(state, Go())
    assert after == Record("gate", "open", A3.id)
