"""The step machine with plain data: every failure point of a three-step host, every way the
undo can fail, and the exact commands the machine sends for each (no lab, no sockets)."""

from __future__ import annotations

import dataclasses

import pytest

from agent.apply.readback import Values
from agent.apply.results import HostOutcome, StepStatus
from agent.apply.steps import (
    CLOSING_RESTART,
    INTERRUPTED_CALL,
    INTERRUPTED_UNDO,
    Ack,
    Answer,
    Done,
    Interrupted,
    Record,
    UndoItem,
    next_step,
    start_apply,
    start_undo,
)
from agent.model.command import CmdletCall, Endpoint
from agent.model.plan import Action, Change, restart_transport_call
from agent.model.remote import RemoteError
from agent.transport.base import CommandResult
from apply._steps_support import (
    A1,
    A2,
    A3,
    ACTIONS,
    CLOSING,
    DENIED,
    DROPPED,
    HOST,
    MANUAL,
    STEPS,
    Fault,
    SimHost,
    answer,
    applied,
    host_plan,
    run,
    trace,
    unchanged,
    undo_of,
    undone,
)

ROLLED_BACK = [("done", "rolled-back")]
ROLLBACK_FAILED = [("done", "rollback-failed")]
CMDLETS = {"01": "Set-TransportService", "02": "Set-SendConnector", "03": "Restart-Service"}
READS = {"01": "Get-TransportService", "02": "Get-SendConnector", "03": "Get-Service"}


def _prior(k: int) -> tuple[list[str], list[tuple[str, ...]], list[tuple[str, ...]]]:
    """For a failure at step ``k``: the steps before it, their commands, and their undo."""
    prior = list(STEPS[: k - 1])
    done = [c for s in prior for c in applied(s)]
    undo = [c for s in reversed(prior) for c in undo_of(s)]
    return prior, done, undo


def _statuses(done: object) -> list[tuple[str, StepStatus]]:
    return [(s.action[:2], s.status) for s in done.steps]


def _undone_statuses(prior: list[str]) -> list[tuple[str, StepStatus]]:
    return [(s, StepStatus.NO_UNDO if s == "03" else StepStatus.ROLLED_BACK) for s in prior]


def _not_run(k: int) -> list[tuple[str, StepStatus]]:
    return [(s, StepStatus.NOT_RUN) for s in STEPS[k:]]


# --- a clean run ----------------------------------------------------------------------------


def test_a_clean_run_reads_runs_and_reads_back_each_step_in_order() -> None:
    host = SimHost()
    done = run(start_apply(host_plan()), host)
    assert trace(host) == [*applied("01"), *applied("02"), *applied("03"), ("done", "done")]
    assert done.outcome is HostOutcome.DONE and done.error is None and not done.interrupted
    assert [s.status for s in done.steps] == [StepStatus.OK] * 3
    assert done.steps[0].before == (("ExternalDNSAdapterEnabled", True), ("ExternalDNSServers", ()))
    assert done.steps[0].after == (("ExternalDNSAdapterEnabled", False), ("ExternalDNSServers", ("8.8.8.8",)))
    assert host.values == host.plan_after()


def test_the_records_carry_what_the_journal_format_says() -> None:
    host = SimHost()
    run(start_apply(host_plan()), host)
    before, started, ok, verify = host.journal[:4]
    assert before == Record(
        "before", "ok", A1.id, before=(("ExternalDNSAdapterEnabled", True), ("ExternalDNSServers", ())),
        detail={
            "kind": "set-transport-external-dns",
            "read_back": {"endpoint": "exchange", "cmdlet": "Get-TransportService",
                          "parameters": [["Identity", "EX01"]]},
            "changes": [
                {"property": "ExternalDNSAdapterEnabled", "before": True, "after": False},
                {"property": "ExternalDNSServers", "before": [], "after": ["8.8.8.8"]},
            ],
            "rollback": [{"endpoint": "exchange", "cmdlet": "Set-TransportService",
                          "parameters": [["Identity", "EX01"], ["ExternalDNSAdapterEnabled", True],
                                         ["ExternalDNSServers", None]]}],
            "restart_required": True,
        },
    )  # fmt: skip
    assert started == Record("execute", "started", A1.id, call=A1.call)
    assert ok == Record("execute", "ok", A1.id)
    after = (("ExternalDNSAdapterEnabled", False), ("ExternalDNSServers", ("8.8.8.8",)))
    assert verify == Record("verify", "ok", A1.id, after=after)


def test_manual_steps_are_reported_and_never_sent() -> None:
    host = SimHost(actions=(A1, MANUAL, A2))
    done = run(start_apply(host_plan((A1, MANUAL, A2))), host)
    assert trace(host) == [*applied("01"), ("manual", "not-run", "04"), *applied("02"), ("done", "done")]
    assert host.journal[4] == Record("manual", "not-run", MANUAL.id, call=MANUAL.call,
                                     detail={"description": MANUAL.description})  # fmt: skip
    assert _statuses(done) == [("01", StepStatus.OK), ("04", StepStatus.MANUAL), ("02", StepStatus.OK)]


def test_an_action_without_a_read_back_is_run_and_not_read() -> None:
    register = dataclasses.replace(A2, read_back=None, rollback=(), changes=())
    host = SimHost(actions=(register,))
    done = run(start_apply(host_plan((register,))), host)
    assert trace(host) == [("before", "ok", "02"), ("execute", "started", "02"), ("execute", "02"),
                           ("execute", "ok", "02"), ("done", "done")]  # fmt: skip
    assert host.journal[0].before is None
    assert done.steps[0].before == () and done.steps[0].after == ()


# --- every failure point of each of the three steps -----------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_before_read_fails_on_the_transport(k: int) -> None:
    s = STEPS[k - 1]
    prior, done_before, undo = _prior(k)
    host = SimHost(faults={(("read", s), 1): Fault(DROPPED)})
    done = run(start_apply(host_plan()), host)
    # A broken connection is not trusted with the undo: a new one is opened first.
    assert trace(host) == [*done_before, ("read", s), ("reconnect",), *undo, *ROLLED_BACK]
    assert done.outcome is HostOutcome.ROLLED_BACK and done.error == DROPPED.message
    assert _statuses(done) == [*_undone_statuses(prior), (s, StepStatus.FAILED), *_not_run(k)]
    assert host.values == host.initial


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_before_read_answers_an_error(k: int) -> None:
    s = STEPS[k - 1]
    prior, done_before, undo = _prior(k)
    host = SimHost(faults={(("read", s), 1): Fault(DENIED)})
    done = run(start_apply(host_plan()), host)
    assert trace(host) == [*done_before, ("read", s), *undo, *ROLLED_BACK]
    assert done.error == f"{READS[s]}: Access is denied."
    assert _statuses(done) == [*_undone_statuses(prior), (s, StepStatus.FAILED), *_not_run(k)]


@pytest.mark.parametrize(("k", "drifted"), [(1, {"ExternalDNSAdapterEnabled": False}),
                                            (2, {"UseExternalDNSServersEnabled": True})])  # fmt: skip
def test_drift_since_the_stale_check_stops_before_the_change(k: int, drifted: dict[str, object]) -> None:
    s = STEPS[k - 1]
    prior, done_before, undo = _prior(k)
    host = SimHost(values=dict(drifted))
    done = run(start_apply(host_plan()), host)
    assert trace(host) == [*done_before, ("read", s), ("before", "ok", s), ("before", "drifted", s), *undo,
                           *ROLLED_BACK]  # fmt: skip
    (name, value), = drifted.items()
    difference = f"{name}: expected {not value!r}, read {value!r}"
    assert next(r for r in host.journal if r.result == "drifted").error == difference
    assert done.error == f"the host changed since the plan was checked: {difference}"
    assert _statuses(done) == [*_undone_statuses(prior), (s, StepStatus.FAILED), *_not_run(k)]
    assert host.values == host.initial


def test_the_restart_has_no_undo_so_its_before_state_is_not_checked_for_drift() -> None:
    host = SimHost(values={"Status": "Stopped"})
    done = run(start_apply(host_plan()), host)
    assert trace(host) == [*applied("01"), *applied("02"), *applied("03"), ("done", "done")]
    assert done.outcome is HostOutcome.DONE


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_call_answers_an_error_record(k: int) -> None:
    s = STEPS[k - 1]
    prior, done_before, undo = _prior(k)
    host = SimHost(faults={(("execute", s), 1): Fault(DENIED)})
    done = run(start_apply(host_plan()), host)
    # The step itself counts as "may have run": read, found unchanged, nothing to undo. Once
    # the restart may have run, the restored settings need a closing restart.
    mine = [("rollback", "no-undo", s)] if s == "03" else unchanged(s)
    closing = CLOSING if s == "03" else []
    assert trace(host) == [*done_before, ("read", s), ("before", "ok", s), ("execute", "started", s),
                           ("execute", s), ("execute", "failed", s), *mine, *undo, *closing,
                           *ROLLED_BACK]  # fmt: skip
    failed = next(r for r in host.journal if r.phase == "execute" and r.result == "failed")
    assert failed.error == f"{CMDLETS[s]}: Access is denied."
    assert failed.detail == {"errors": [RemoteError("Access is denied.", "AccessDenied,X",
                                                    "PermissionDenied").to_dict()]}  # fmt: skip
    status = StepStatus.NO_UNDO if s == "03" else StepStatus.UNCHANGED
    assert _statuses(done)[: k] == [*_undone_statuses(prior), (s, status)]
    assert done.steps[k - 1].error == f"{CMDLETS[s]}: Access is denied."
    assert host.values == host.initial


@pytest.mark.parametrize("happened", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_call_fails_on_the_transport(k: int, happened: bool) -> None:
    s = STEPS[k - 1]
    _, done_before, undo = _prior(k)
    host = SimHost(faults={(("execute", s), 1): Fault(DROPPED, happened=happened)})
    done = run(start_apply(host_plan()), host)
    mine = undo_of(s) if happened or s == "03" else unchanged(s)
    closing = CLOSING if s == "03" else []
    assert trace(host) == [*done_before, ("read", s), ("before", "ok", s), ("execute", "started", s),
                           ("execute", s), ("execute", "failed", s), ("reconnect",), *mine, *undo,
                           *closing, *ROLLED_BACK]  # fmt: skip
    assert done.outcome is HostOutcome.ROLLED_BACK and done.error == DROPPED.message
    assert host.values == host.initial


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_read_back_differs_from_the_plan(k: int) -> None:
    s = STEPS[k - 1]
    _, done_before, undo = _prior(k)
    stale = {"01": answer(ExternalDNSAdapterEnabled=True, ExternalDNSServers=()),
             "02": answer(UseExternalDNSServersEnabled=False), "03": answer(Status="Stopped")}[s]  # fmt: skip
    host = SimHost(faults={(("read", s), 2): Fault(stale)})
    done = run(start_apply(host_plan()), host)
    closing = CLOSING if s == "03" else []
    assert trace(host) == [*done_before, *applied(s)[:-1], ("verify", "mismatch", s), *undo_of(s), *undo,
                           *closing, *ROLLED_BACK]  # fmt: skip
    expected = {
        "01": "ExternalDNSAdapterEnabled: expected False, read True; "
              "ExternalDNSServers: expected ['8.8.8.8'], read []",
        "02": "UseExternalDNSServersEnabled: expected True, read False",
        "03": "Status: expected 'Running', read 'Stopped'",
    }[s]
    assert done.error == f"read back after {CMDLETS[s]}: {expected}"
    verify = next(r for r in host.journal if r.phase == "verify" and r.result == "mismatch")
    assert verify.error == expected
    assert host.values == host.initial


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_cancel_between_the_before_read_and_the_send_sends_nothing_more(k: int) -> None:
    s = STEPS[k - 1]
    prior, done_before, undo = _prior(k)
    host = SimHost(cancel_after=frozenset({(("before", "ok", s), 1)}))
    done = run(start_apply(host_plan()), host)
    assert trace(host) == [*done_before, ("read", s), ("before", "ok", s), ("interrupted", "stopping"), *undo,
                           *ROLLED_BACK]  # fmt: skip
    stopping = next(r for r in host.journal if r.phase == "interrupted")
    assert stopping.detail == {"executed": [a.id for a in ACTIONS[: k - 1]]}
    assert done.outcome is HostOutcome.ROLLED_BACK and done.interrupted and done.error == "interrupted"
    assert _statuses(done) == [*_undone_statuses(prior), *_not_run(k - 1)]
    assert host.values == host.initial


@pytest.mark.parametrize("k", [2, 3])
def test_a_cancel_between_steps_starts_no_further_step(k: int) -> None:
    prior, done_before, undo = _prior(k)
    host = SimHost(cancel_after=frozenset({(("verify", "ok", prior[-1]), 1)}))
    done = run(start_apply(host_plan()), host)
    assert trace(host) == [*done_before, ("interrupted", "stopping"), *undo, *ROLLED_BACK]
    assert done.interrupted and host.values == host.initial


def test_a_cancel_after_the_last_step_changes_nothing() -> None:
    host = SimHost(cancel_after=frozenset({(("verify", "ok", "03"), 1)}))
    done = run(start_apply(host_plan()), host)
    assert done.outcome is HostOutcome.DONE and not done.interrupted


@pytest.mark.parametrize("happened", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_keyboard_interrupt_during_the_call(k: int, happened: bool) -> None:
    s = STEPS[k - 1]
    _, done_before, undo = _prior(k)
    host = SimHost(faults={(("execute", s), 1): Fault(Interrupted(), happened=happened)})
    done = run(start_apply(host_plan()), host)
    mine = undo_of(s) if happened or s == "03" else unchanged(s)
    closing = CLOSING if s == "03" else []
    # The cancel flag is set so the hosts not started are skipped; the call may have run, so
    # the step is undone like the others, on a new connection.
    assert trace(host) == [*done_before, ("read", s), ("before", "ok", s), ("execute", "started", s),
                           ("execute", s), ("cancel",), ("interrupted", "stopping"), ("reconnect",), *mine,
                           *undo, *closing, *ROLLED_BACK]  # fmt: skip
    assert done.outcome is HostOutcome.ROLLED_BACK and done.interrupted and done.error == "interrupted"
    assert done.steps[k - 1].error == INTERRUPTED_CALL
    assert host.cancelled and host.values == host.initial


def test_a_keyboard_interrupt_while_journaling_the_start_sends_nothing() -> None:
    host = SimHost(faults={(("execute", "started", "02"), 1): Fault(Interrupted(), happened=True)})
    done = run(start_apply(host_plan()), host)
    # The record may be on disk ("may have run"): exfix rollback would read and find nothing.
    assert trace(host) == [*applied("01"), ("read", "02"), ("before", "ok", "02"),
                           ("execute", "started", "02"), ("cancel",), ("interrupted", "stopping"),
                           ("reconnect",), *undone("01"), *ROLLED_BACK]  # fmt: skip
    assert _statuses(done) == [("01", StepStatus.ROLLED_BACK), ("02", StepStatus.FAILED),
                               ("03", StepStatus.NOT_RUN)]  # fmt: skip


# --- every way the undo can fail ------------------------------------------------------------

# Step 3 (the restart) answers an error record: 03 has no undo, 02 and 01 are undone, and the
# closing restart makes the restored 01 take effect. The faults below hit the undo of 02.
_HEAD = [*applied("01"), *applied("02"), ("read", "03"), ("before", "ok", "03"), ("execute", "started", "03"),
         ("execute", "03"), ("execute", "failed", "03"), ("rollback", "no-undo", "03")]  # fmt: skip
_TAIL = [*undone("01"), *CLOSING]
_BASE = {(("execute", "03"), 1): Fault(DENIED)}


def _undo_02(faults: dict[tuple[str, str, int], Fault] | None = None) -> tuple[SimHost, Done]:
    """Run the base case with ``faults`` keyed (command, step, occurrence)."""
    table = {**_BASE, **{((c, s), n): f for (c, s, n), f in (faults or {}).items()}}
    host = SimHost(faults=table)
    return host, run(start_apply(host_plan()), host)


def test_the_undo_runs_in_reverse_and_ends_with_the_closing_restart() -> None:
    host, done = _undo_02()
    assert trace(host) == [*_HEAD, *undone("02"), *_TAIL, *ROLLED_BACK]
    assert _statuses(done) == [("01", StepStatus.ROLLED_BACK), ("02", StepStatus.ROLLED_BACK),
                               ("03", StepStatus.NO_UNDO), ("ro", StepStatus.ROLLED_BACK)]  # fmt: skip
    assert done.steps[-1].action == CLOSING_RESTART
    assert host.values == host.initial


def test_the_undo_read_fails() -> None:
    host, done = _undo_02({("read", "02", 3): Fault(DENIED)})
    assert trace(host) == [*_HEAD, ("read", "02"), ("rollback", "failed", "02"), *_TAIL, *ROLLBACK_FAILED]
    assert done.outcome is HostOutcome.ROLLBACK_FAILED
    assert done.steps[1].status is StepStatus.ROLLBACK_FAILED
    assert done.steps[1].error == "Get-SendConnector: Access is denied."


def test_the_undo_call_fails() -> None:
    host, _ = _undo_02({("undo", "02", 1): Fault(DENIED)})
    assert trace(host) == [*_HEAD, ("read", "02"), ("rollback", "started", "02"), ("undo", "02"),
                           ("rollback", "failed", "02"), *_TAIL, *ROLLBACK_FAILED]  # fmt: skip
    failed = Record("rollback", "failed", A2.id, error="Set-SendConnector: Access is denied.")
    assert [r for r in host.journal if r.result == "failed" and r.phase == "rollback"] == [failed]
    assert host.values["UseExternalDNSServersEnabled"] is True  # still changed: a person must look


def test_the_undo_reads_back_something_else() -> None:
    host, done = _undo_02({("read", "02", 4): Fault(answer(UseExternalDNSServersEnabled=True))})
    assert trace(host) == [*_HEAD, *undone("02")[:-1], ("rollback-verify", "mismatch", "02"),
                           ("rollback", "failed", "02"), *_TAIL, *ROLLBACK_FAILED]  # fmt: skip
    assert done.steps[1].error == (
        "read back after the undo: UseExternalDNSServersEnabled: expected False, read True"
    )


@pytest.mark.parametrize("happened", [False, True])
def test_a_transport_failure_of_the_undo_is_retried_once_on_a_new_connection(happened: bool) -> None:
    host, _ = _undo_02({("undo", "02", 1): Fault(DROPPED, happened=happened)})
    # The retry reads first: an undo that went through before the drop is not sent again.
    again = unchanged("02") if happened else undone("02")
    assert trace(host) == [*_HEAD, ("read", "02"), ("rollback", "started", "02"), ("undo", "02"),
                           ("reconnect",), *again, *_TAIL, *ROLLED_BACK]  # fmt: skip
    assert host.values == host.initial


def test_a_transport_failure_of_the_undo_read_is_retried_too() -> None:
    host, _ = _undo_02({("read", "02", 3): Fault(DROPPED)})
    assert trace(host) == [*_HEAD, ("read", "02"), ("reconnect",), *undone("02"), *_TAIL, *ROLLED_BACK]


def test_a_second_transport_failure_fails_the_undo_step() -> None:
    host, done = _undo_02({("undo", "02", 1): Fault(DROPPED), ("undo", "02", 2): Fault(DROPPED)})
    assert trace(host) == [*_HEAD, ("read", "02"), ("rollback", "started", "02"), ("undo", "02"),
                           ("reconnect",), ("read", "02"), ("rollback", "started", "02"), ("undo", "02"),
                           ("rollback", "failed", "02"), *_TAIL, *ROLLBACK_FAILED]  # fmt: skip
    assert done.steps[1].error == DROPPED.message


def test_the_closing_restart_that_does_not_bring_the_service_back_fails() -> None:
    host, done = _undo_02({("read", "restart", 1): Fault(answer(Status="Stopped"))})
    assert trace(host) == [*_HEAD, *undone("02"), *undone("01"), *CLOSING[:-1],
                           ("rollback-verify", "mismatch", "restart"), ("rollback", "failed", "restart"),
                           *ROLLBACK_FAILED]  # fmt: skip
    assert done.steps[-1].status is StepStatus.ROLLBACK_FAILED


def test_a_keyboard_interrupt_during_the_undo_stops_it() -> None:
    host, done = _undo_02({("undo", "02", 1): Fault(Interrupted())})
    # The person wants out: the step in flight is journaled failed, 01 stays for exfix rollback.
    assert trace(host) == [*_HEAD, ("read", "02"), ("rollback", "started", "02"), ("undo", "02"),
                           ("rollback", "failed", "02"), ("cancel",), *ROLLBACK_FAILED]  # fmt: skip
    assert host.journal[-1] == Record("rollback", "failed", A2.id, error=INTERRUPTED_UNDO)
    assert done.interrupted and done.steps[0].status is StepStatus.OK


# --- the undo alone (exfix rollback) ---------------------------------------------------------


def _item(action: Action, before: Values | None) -> UndoItem:
    """What exfix rollback reads from the journal's before record of ``action``."""
    return UndoItem(action.id, action.kind, action.read_back, action.changes, action.rollback, before,
                    action.restart_required)  # fmt: skip


def test_exfix_rollback_undoes_from_journaled_items_with_the_same_steps() -> None:
    items = [_item(A1, (("ExternalDNSAdapterEnabled", True), ("ExternalDNSServers", ()))),
             _item(A3, (("Status", "Running"),))]  # fmt: skip
    host = SimHost(values={"ExternalDNSAdapterEnabled": False, "ExternalDNSServers": ("8.8.8.8",)})
    done = run(start_undo(HOST, items, restart_ran=True), host)
    assert trace(host) == [("rollback", "no-undo", "03"), *undone("01"), *CLOSING, *ROLLED_BACK]
    assert [(s.action[:2], s.status) for s in done.steps] == [
        ("03", StepStatus.NO_UNDO), ("01", StepStatus.ROLLED_BACK), ("ro", StepStatus.ROLLED_BACK)]
    assert host.values["ExternalDNSAdapterEnabled"] is True and done.error is None


def test_exfix_rollback_restarts_only_when_a_restart_already_ran() -> None:
    items = [_item(A1, (("ExternalDNSAdapterEnabled", True), ("ExternalDNSServers", ())))]
    host = SimHost(values={"ExternalDNSAdapterEnabled": False, "ExternalDNSServers": ("8.8.8.8",)})
    run(start_undo(HOST, items), host)  # by default: whether the items hold the restart
    assert trace(host) == [*undone("01"), *ROLLED_BACK]


def test_exfix_rollback_with_nothing_left_sends_nothing() -> None:
    host = SimHost()
    done = run(start_undo(HOST, [], restart_ran=True), host)
    assert trace(host) == ROLLED_BACK and done.steps == ()


def test_an_interrupted_undo_alone_says_so() -> None:
    items = [_item(A1, (("ExternalDNSAdapterEnabled", True), ("ExternalDNSServers", ())))]
    host = SimHost(faults={(("read", "01"), 1): Fault(Interrupted())})
    done = run(start_undo(HOST, items), host)
    assert trace(host) == [("read", "01"), ("rollback", "failed", "01"), ("cancel",), *ROLLBACK_FAILED]
    assert done.error == INTERRUPTED_UNDO and done.interrupted


def test_a_rollback_with_several_calls_journals_each_before_sending_it() -> None:
    two = _item(A2, (("UseExternalDNSServersEnabled", False),))
    calls = (
        CmdletCall(Endpoint.EXCHANGE, "Set-SendConnector",
                   (("Identity", "Internet"), ("UseExternalDNSServersEnabled", False))),
        CmdletCall(Endpoint.EXCHANGE, "Set-SendConnector", (("Identity", "Internet"), ("Enabled", True))),
    )  # fmt: skip
    item = UndoItem(two.action, two.kind, two.read_back, two.changes, calls, two.before, False)
    host = SimHost(values={"UseExternalDNSServersEnabled": True})
    run(start_undo(HOST, [item]), host)
    assert trace(host) == [("read", "02"), ("rollback", "started", "02"), ("undo", "02"),
                           ("rollback", "started", "02"), ("undo", "02"), ("rollback", "ok", "02"),
                           ("read", "02"), ("rollback-verify", "ok", "02"), *ROLLED_BACK]  # fmt: skip
    assert [r.call for r in host.journal if r.result == "started"] == list(calls)


# --- the machine's own contract -------------------------------------------------------------


def test_nothing_follows_done() -> None:
    state, command = next_step(start_undo(HOST, []), Ack())
    assert command.__class__.__name__ == "Done"
    with pytest.raises(ValueError):
        next_step(state, Ack())


def test_the_state_and_the_commands_are_frozen_values() -> None:
    state = start_apply(host_plan())
    _, command = next_step(state, Ack())
    with pytest.raises(AttributeError):
        state.index = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        command.call = restart_transport_call()  # type: ignore[misc, union-attr]
    assert next_step(state, Ack()) == next_step(state, Ack())  # pure: the same answer every time


def test_a_read_back_the_machine_cannot_compare_fails_the_step_without_reconnecting() -> None:
    objects = (*answer(UseExternalDNSServersEnabled=True).result.objects,
               *answer(UseExternalDNSServersEnabled=False).result.objects)  # fmt: skip
    odd = Answer(CommandResult(objects=objects))
    host = SimHost(faults={(("read", "02"), 1): Fault(odd)})
    done = run(start_apply(host_plan()), host)
    assert trace(host) == [*applied("01"), ("read", "02"), *undone("01"), *ROLLED_BACK]
    assert "disagree" in (done.error or "")


def test_a_change_whose_before_is_none_is_compared_as_no_value() -> None:
    create = dataclasses.replace(A2, changes=(Change("UseExternalDNSServersEnabled", None, True),))
    host = SimHost(actions=(create,), values={"UseExternalDNSServersEnabled": None})
    done = run(start_apply(host_plan((create,))), host)
    assert done.outcome is HostOutcome.DONE
