"""apply over the lab with restarts that roll: hosts in parallel, never two members of one DAG
and never more than --serial restarts at once, read from the journal's order (no timing)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.apply import HostOutcome, JournalEntry, StepStatus, read_apply
from agent.errors import EXIT_ROLLED_BACK
from apply._apply_support import (
    config_state,
    exfix_command,
    journal_lines,
    lab_fleet,
    phases,
    subprocess_env,
    wait_in_journal,
)
from e2e.conftest import base_scenario, host_spec, write_scenario

pytestmark = pytest.mark.lab

# EX01/EX02 in DAG1, EX03/EX04 in DAG2 (all in the organisation's site), EX05 alone in its own
# site; on every one the MAPI NIC does not register in DNS, and that fix restarts
# MSExchangeTransport (transport reads its addresses at start).
DAGS = {"EX01": "DAG1", "EX02": "DAG1", "EX03": "DAG2", "EX04": "DAG2", "EX05": None}


def _scenario(tmp_path: Path) -> Path:
    data = base_scenario()
    hosts = []
    for i, (name, dag) in enumerate(DAGS.items()):
        spec = host_spec(name, 21 + i)
        spec["nics"][0]["register"] = False
        if dag is not None:
            spec["dag"] = dag
        else:
            spec["site"] = "Branch-Site"
        hosts.append(spec)
    data["hosts"] = hosts
    data["send_connectors"][0]["source_transport_servers"] = list(DAGS)
    return write_scenario(tmp_path / "rolling.yaml", data)


def _spans(lines: list[dict[str, Any]], *, until: str = "slot") -> dict[str, tuple[int, int]]:
    """Per host, a span of journal positions: "slot", from the record that gave it its restart
    slot (``gate``/``open``; a host without a restart: its first step record) to just after its
    last step record, the time it is out of mail flow; "steps", from its first step record to
    just after its last (its preparation, then its slot); "verify", from just after its last
    step record to its ``host`` outcome (its verification)."""
    first: dict[str, int] = {}
    opened: dict[str, int] = {}
    last: dict[str, int] = {}
    outcome: dict[str, int] = {}
    for i, line in enumerate(lines):
        host = line.get("host")
        if host is None or line["phase"] in ("lock", "unlock", "stale-check", "refused"):
            continue
        if line["phase"] == "gate":
            if line["result"] == "open":
                opened[host] = i
        elif line.get("action") is not None:
            first.setdefault(host, i)
            last[host] = i + 1
        elif line["phase"] == "host":
            outcome[host] = i
    if until == "verify":
        return {h: (last[h], outcome[h]) for h in first}
    start = {**first, **opened} if until == "slot" else first
    return {h: (start[h], last[h]) for h in first}


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_restarts_roll_by_dag_and_serial_while_hosts_run_in_parallel(tmp_path: Path) -> None:
    with lab_fleet(_scenario(tmp_path), tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        assert all(any(a.disruptive for a in h.automatic) for h in plan_file.plan.hosts)
        states = [fleet.host(f"{n.lower()}.contoso.local").state for n in DAGS]
        starts = [s.transport_starts for s in states]
        report = fleet.apply(plan_file, allow_restart=True, serial=2, forks=16)
        assert {h.outcome.value for h in report.hosts} == {"done"}, report.hosts
        assert [s.transport_starts for s in states] == [n + 1 for n in starts]  # each restarted once
    spans = _spans(journal_lines(plan_file.default_journal))
    name = {n: f"{n.lower()}.contoso.local" for n in DAGS}
    # One DAG's members one after the other; never more than two restarts at once.
    assert not _overlap(spans[name["EX01"]], spans[name["EX02"]])
    assert not _overlap(spans[name["EX03"]], spans[name["EX04"]])
    for moment in range(max(end for _, end in spans.values())):
        active = [h for h, (start, end) in spans.items() if start <= moment < end]
        assert len(active) <= 2, (moment, active)
    # ... and yet in parallel: some two hosts' steps overlapped (two prepare at once with
    # --serial 2; restarts of two DAGs side by side: the gate test below, without timing).
    steps = _spans(journal_lines(plan_file.default_journal), until="steps")
    assert any(_overlap(steps[a], steps[b]) for a in steps for b in steps if a < b)


def test_a_restarted_server_is_verified_while_the_next_one_restarts(tmp_path: Path) -> None:
    """The restart slot is the steps' time only: once a server's transport runs again (read
    back Running) it is back in mail flow, and its verification (queues drain, collected
    again) overlaps the next restart instead of holding it up."""
    with lab_fleet(_scenario(tmp_path), tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        report = fleet.apply(plan_file, allow_restart=True, serial=1, forks=16)
        assert {h.outcome.value for h in report.hosts} == {"done"}
        assert all(h.verified for h in report.hosts), report.hosts
    lines = journal_lines(plan_file.default_journal)
    slots = _spans(lines)
    verifying = _spans(lines, until="verify")
    assert not any(_overlap(a, b) for a in slots.values() for b in slots.values() if a < b)
    assert any(_overlap(verifying[a], slots[b]) for a in verifying for b in slots if a != b)


def test_serial_one_restarts_one_server_at_a_time(tmp_path: Path) -> None:
    with lab_fleet(_scenario(tmp_path), tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        report = fleet.apply(plan_file, allow_restart=True, serial=1, forks=16)
        assert {h.outcome.value for h in report.hosts} == {"done"}
    spans = list(_spans(journal_lines(plan_file.default_journal)).values())
    assert not any(_overlap(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :])


# --- the restart gate: a host prepares outside the slot and waits for it ----------------------

NAMES = {n: f"{n.lower()}.contoso.local" for n in DAGS}
STOPPED = "the run stopped before its restart"


class _Watch:
    """The journal as apply writes it (``on_event``, in the writing host's thread), and a way
    to hold a host's thread at a record until another host has got somewhere: how these tests
    make two hosts' steps meet without depending on timing."""

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []
        self._changed = threading.Condition()

    def __call__(self, entry: JournalEntry) -> None:
        with self._changed:
            self.entries.append(entry)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[JournalEntry], bool], timeout: float = 30.0) -> JournalEntry:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((e for e in self.entries if predicate(e)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no journal record matched in time")
                self._changed.wait(left)


def _hold(
    watch: _Watch,
    when: Callable[[JournalEntry], bool],
    until: Callable[[JournalEntry], bool],
    then: Callable[[JournalEntry], None] = lambda e: None,
) -> Callable[[JournalEntry], None]:
    """An on_event hook: the first record matching ``when`` holds its host's thread until a
    record matching ``until`` is written (by another host), then runs ``then``."""
    held: list[JournalEntry] = []

    def on_event(entry: JournalEntry) -> None:
        watch(entry)
        if not held and when(entry):
            held.append(entry)
            found = watch.wait_for(until)
            then(found)

    return on_event


def _gate(entry: JournalEntry, result: str, host: str | None = None) -> bool:
    return entry.phase == "gate" and entry.result == result and (host is None or entry.host == host)


def test_the_next_host_s_changes_run_while_another_restarts(tmp_path: Path) -> None:
    """--serial 1: the first host to hold the restart slot is held in it until another host
    has run a change of its own (enable the NIC's DNS registration): the next host's
    preparation runs while a server is out of mail flow, and still no two slots overlap."""
    watch = _Watch()

    def a_change_elsewhere(e: JournalEntry) -> bool:
        return (e.phase == "execute" and e.result == "ok" and e.host != opened[0].host
                and "restart" not in (e.action or ""))  # fmt: skip

    opened: list[JournalEntry] = []
    hook = _hold(watch, lambda e: _gate(e, "open") and not opened.append(e), a_change_elsewhere)
    with lab_fleet(_scenario(tmp_path), tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        report = fleet.apply(plan_file, allow_restart=True, serial=1, forks=16, on_event=hook)
        assert {h.outcome for h in report.hosts} == {HostOutcome.DONE}
    lines = journal_lines(plan_file.default_journal)
    slots = _spans(lines)
    first = opened[0].host
    assert first is not None
    changed = next(i for i, r in enumerate(lines) if r["phase"] == "execute" and r["result"] == "ok"
                   and r["host"] != first)  # fmt: skip
    assert slots[first][0] < changed < slots[first][1]  # inside the first host's slot
    assert not any(_overlap(a, b) for a in slots.values() for b in slots.values() if a < b)
    # Every host waited at its gate once, before its restart was sent, and went on.
    for host in NAMES.values():
        mine = phases(lines, host, gates=True)
        gate = [(p, r) for p, _, r in mine if p == "gate"]
        assert gate == [("gate", "waiting"), ("gate", "open")]
        restart = next(a for p, a, _ in mine if p == "execute" and "restart" in a)
        assert mine.index(("gate", restart, "open")) + 1 == mine.index(("execute", restart, "started"))


def test_the_gate_keeps_a_dag_partner_waiting_while_its_partner_restarts(tmp_path: Path) -> None:
    """--serial 2: the first of EX01 and EX02 (one DAG) to take a restart slot holds it until
    its partner is prepared and waiting at its gate and another server has taken the second
    slot; the partner gets its slot only after the first one's restart is over."""
    watch = _Watch()
    pair = (NAMES["EX01"], NAMES["EX02"])
    held: list[str] = []

    def first_of_the_pair_in_its_slot(e: JournalEntry) -> bool:
        if _gate(e, "open") and e.host in pair:
            held.append(e.host)
            return True
        return False

    def partner_waits_and_another_restarts(_: JournalEntry) -> bool:
        partner = next(h for h in pair if h != held[0])
        return any(_gate(e, "waiting", partner) for e in watch.entries) and any(
            _gate(e, "open") and e.host not in pair for e in watch.entries
        )

    hook = _hold(watch, first_of_the_pair_in_its_slot, partner_waits_and_another_restarts)
    with lab_fleet(_scenario(tmp_path), tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        report = fleet.apply(plan_file, allow_restart=True, serial=2, forks=16, on_event=hook)
        assert {h.outcome for h in report.hosts} == {HostOutcome.DONE}
    lines = journal_lines(plan_file.default_journal)
    slots = _spans(lines)
    first = held[0]
    partner = next(h for h in pair if h != first)
    waiting = next(i for i, r in enumerate(lines) if r["phase"] == "gate" and r["result"] == "waiting"
                   and r["host"] == partner)  # fmt: skip
    assert waiting < slots[first][1]  # it waited while its partner was out of mail flow ...
    assert slots[first][1] <= slots[partner][0]  # ... and restarted only after
    assert not _overlap(slots[NAMES["EX03"]], slots[NAMES["EX04"]])
    assert any(_overlap(slots[first], slots[NAMES[n]]) for n in ("EX03", "EX04", "EX05"))


def _stopped_at_the_gate(
    lines: list[dict[str, Any]], host: str, fleet: Any, before: dict[str, Any], report: Any, why: str
) -> None:
    """``host`` stopped at its gate: it changed something, did not restart, was undone and is
    skipped, with the reason in its error and journal; exfix rollback finds nothing left."""
    result = report.host(host)
    assert result.outcome is HostOutcome.SKIPPED
    assert result.error == f"{STOPPED} ({why}); its changes were undone"
    statuses = {s.action: s.status for s in result.steps}
    assert StepStatus.ROLLED_BACK in statuses.values()
    assert {s for a, s in statuses.items() if "restart" in a} == {StepStatus.NOT_RUN}
    mine = phases(lines, host, gates=True)
    assert ("gate", "waiting") in [(p, r) for p, _, r in mine]
    (stopped,) = [r for r in lines if r["host"] == host and (r["phase"], r["result"]) == ("gate", "stopped")]
    assert stopped["error"] == f"{STOPPED} ({why})"
    assert not any(p == "execute" and "restart" in a for p, a, _ in mine)
    assert not any("rollback-restart" in (a or "") for _, a, _ in mine)  # no closing restart
    assert mine[-1] == ("host", None, "skipped")
    assert config_state(fleet.lab, host) == before
    assert host not in read_apply(report.journal).hosts


def test_max_fail_stops_the_host_waiting_at_its_gate_and_undoes_it(tmp_path: Path) -> None:
    """--serial 1, --max-fail 0: the host in the slot fails its restart while the next one is
    prepared and waits at its gate; that one does not restart, its changes are undone and it
    is skipped; the hosts not started are skipped as before."""
    watch = _Watch()
    with lab_fleet(_scenario(tmp_path), tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        names = [h.host for h in plan_file.plan.hosts]
        before = {h: config_state(fleet.lab, h) for h in names}
        starts = {h: fleet.host(h).state.transport_starts for h in names}

        def fail_the_restart(entry: JournalEntry) -> None:
            assert held
            fleet.lab.inject(held[0], {"fail": {"kind": "http-500", "on": "Command", "endpoint": "os",
                                                "times": 1}})  # fmt: skip

        held: list[str] = []

        def in_slot(e: JournalEntry) -> bool:
            if _gate(e, "open") and e.host is not None:
                held.append(e.host)
                return True
            return False

        hook = _hold(watch, in_slot, lambda e: _gate(e, "waiting") and e.host != held[0], fail_the_restart)
        report = fleet.apply(plan_file, allow_restart=True, serial=1, max_fail=0, forks=16, on_event=hook)
        assert report.exit_code == EXIT_ROLLED_BACK
        failed = held[0]
        assert report.host(failed).outcome is HostOutcome.ROLLED_BACK
        lines = journal_lines(plan_file.default_journal)
        waiting = next(e.host for e in watch.entries if _gate(e, "waiting") and e.host != failed)
        assert waiting is not None
        _stopped_at_the_gate(lines, waiting, fleet, before[waiting], report, "more than 0 host(s) failed")
        assert fleet.host(waiting).state.transport_starts == starts[waiting]
        for host in names:
            if host not in (failed, waiting):
                skipped = report.host(host)
                assert skipped.outcome is HostOutcome.SKIPPED and skipped.steps == ()
                assert skipped.error == "more than 0 host(s) failed"
                assert config_state(fleet.lab, host) == before[host]


def test_a_cancel_stops_the_host_waiting_at_its_gate_and_the_one_in_its_slot_finishes(tmp_path: Path) -> None:
    """The cancel flag (what Ctrl-C sets) is set while one host restarts and the next waits at
    its gate: the restart in flight finishes, the waiting host is undone and skipped."""
    watch = _Watch()
    cancel = threading.Event()
    held: list[str] = []

    def restarting(e: JournalEntry) -> bool:
        if e.phase == "execute" and e.result == "started" and "restart" in (e.action or "") and not held:
            held.append(e.host or "")
            return True
        return False

    def next_one_waits(e: JournalEntry) -> bool:
        return _gate(e, "waiting") and e.host != held[0]

    hook = _hold(watch, restarting, next_one_waits, lambda _: cancel.set())
    with lab_fleet(_scenario(tmp_path), tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        names = [h.host for h in plan_file.plan.hosts]
        before = {h: config_state(fleet.lab, h) for h in names}
        report = fleet.apply(plan_file, allow_restart=True, serial=1, forks=16, on_event=hook, cancel=cancel)
        assert report.interrupted and report.exit_code == EXIT_ROLLED_BACK
        assert report.host(held[0]).outcome is HostOutcome.DONE  # its restart was in flight
        lines = journal_lines(plan_file.default_journal)
        waiting = next(e.host for e in watch.entries if _gate(e, "waiting") and e.host != held[0])
        assert waiting is not None
        _stopped_at_the_gate(lines, waiting, fleet, before[waiting], report, "interrupted")
        others = [h for h in names if h not in (held[0], waiting)]
        assert {report.host(h).outcome for h in others} == {HostOutcome.SKIPPED}
        assert {report.host(h).error for h in others} == {"interrupted"}


def test_sigint_at_the_gate_undoes_the_waiting_host_and_skips_it(tmp_path: Path) -> None:
    """A real SIGINT to ``exfix apply`` while a host waits at its gate (the host in the slot
    is slowed down so that the wait lasts): the waiting host is undone and skipped, the
    summary and the exit code say the run was interrupted."""
    with lab_fleet(_scenario(tmp_path), tmp_path) as fleet:
        result, plan_file = fleet.plan(tmp_path / "plan")
        names = [h.host for h in result.plan.hosts]
        before = {h: config_state(fleet.lab, h) for h in names}
        first = names[0]  # the first to start, and to take the slot
        journal = plan_file.default_journal
        process = subprocess.Popen(
            [*exfix_command(), "apply", str(plan_file.path), "--approve", result.plan.digest,
             "--allow-restart", "--verify-timeout", "2", "--operator", "tester"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
        )  # fmt: skip
        try:
            # Once its steps began (the stale check is over), a slow first host: its restart
            # and read-back (4 WSMan requests) take 2.8 s at least, while the next one
            # prepares at the lab's speed and waits at its gate.
            wait_in_journal(journal, lambda r: r["phase"] == "before" and r["host"] == first)
            fleet.lab.inject(first, {"latency_ms": 700})
            wait_in_journal(journal, lambda r: r["phase"] == "gate" and r["result"] == "open"
                            and r["host"] == first)  # fmt: skip
            line = wait_in_journal(journal, lambda r: r["phase"] == "gate" and r["result"] == "waiting"
                            and r["host"] != first)  # fmt: skip
            process.send_signal(signal.SIGINT)
            fleet.lab.clear_faults(first)  # the rest of its run (its verification) at the lab's speed
            out, err = process.communicate(timeout=90)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == EXIT_ROLLED_BACK, (out, err)
        assert "Interrupted" in out and "skipped" in out
        lines = journal_lines(journal)
        waiting = line["host"]
        mine = phases(lines, waiting, gates=True)
        assert ("gate", "stopped") in [(p, r) for p, _, r in mine]
        assert mine[-1] == ("host", None, "skipped")
        (outcome,) = [r for r in lines if r["host"] == waiting and r["phase"] == "host"]
        assert outcome["error"] == f"{STOPPED} (interrupted); its changes were undone"
        assert config_state(fleet.lab, waiting) == before[waiting]


