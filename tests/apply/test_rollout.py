"""apply's restart gates across threads (agent/apply/run.py _Rollout), with plain data: a
slot passes from one host to the next, a failure stops the host waiting behind it instead of
freeing the slot for it, and a halted or cancelled run stops every host at its gate."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from agent.apply._context import Recorder
from agent.apply.journal import Journal
from agent.apply.results import HostApply, HostOutcome
from agent.apply.run import _Rollout
from agent.apply.steps import Go, Stop
from agent.planning.schedule import Limits, Slot

A = Slot("a", True, "S", "D1")
B = Slot("b", True, "S", "D2")
C = Slot("c", True, "S", "D3")


def _rollout(tmp_path: Path, max_fail: int = 0, serial: int = 1) -> tuple[_Rollout, Recorder]:
    rec = Recorder(Journal(tmp_path / "journal.jsonl"), "run", "tester", None, "0" * 64)
    slots = {s.host: s for s in (A, B, C)}
    return _Rollout(rec, slots, Limits(workers=16, serial=serial), max_fail, 0), rec


def _start(rollout: _Rollout, *slots: Slot) -> None:
    with rollout.lock:
        for slot in slots:
            assert rollout.next_start([slot]) == slot


def _wait(pool: ThreadPoolExecutor, rollout: _Rollout, host: str) -> Future[Go | Stop]:
    return pool.submit(rollout.gate, host)


def test_the_slot_passes_to_the_next_host_when_the_one_in_it_is_done(tmp_path: Path) -> None:
    rollout, _ = _rollout(tmp_path)
    _start(rollout, A)
    with rollout.lock:
        assert rollout.next_start([B]) is None  # --serial 1: one host prepared at a time
    with ThreadPoolExecutor(2) as pool:
        assert isinstance(_wait(pool, rollout, "a").result(timeout=5), Go)
        _start(rollout, B)  # A holds its slot: its place to prepare is free
        second = _wait(pool, rollout, "b")
        time.sleep(0.3)
        assert not second.done()  # A is still out of mail flow
        rollout.changed("a", HostApply("a", HostOutcome.DONE))
        assert isinstance(second.result(timeout=5), Go)


def test_a_failure_in_the_slot_stops_the_host_waiting_behind_it(tmp_path: Path) -> None:
    rollout, _ = _rollout(tmp_path, max_fail=0)
    _start(rollout, A)
    with ThreadPoolExecutor(2) as pool:
        assert isinstance(_wait(pool, rollout, "a").result(timeout=5), Go)
        _start(rollout, B)
        second = _wait(pool, rollout, "b")
        rollout.changed("a", HostApply("a", HostOutcome.ROLLED_BACK))
        assert second.result(timeout=5) == Stop("more than 0 host(s) failed")
    assert rollout.stop_reason() == "more than 0 host(s) failed"


def test_a_failure_within_max_fail_lets_the_next_host_restart(tmp_path: Path) -> None:
    rollout, _ = _rollout(tmp_path, max_fail=1)
    _start(rollout, A)
    with ThreadPoolExecutor(2) as pool:
        assert isinstance(_wait(pool, rollout, "a").result(timeout=5), Go)
        _start(rollout, B)
        second = _wait(pool, rollout, "b")
        rollout.changed("a", HostApply("a", HostOutcome.ROLLBACK_FAILED))
        assert isinstance(second.result(timeout=5), Go)


def test_a_cancel_stops_the_host_at_its_gate(tmp_path: Path) -> None:
    rollout, rec = _rollout(tmp_path)
    _start(rollout, A)
    with ThreadPoolExecutor(2) as pool:
        assert isinstance(_wait(pool, rollout, "a").result(timeout=5), Go)
        _start(rollout, B)
        second = _wait(pool, rollout, "b")
        rec.cancel.set()  # as the SIGINT handler does: nothing is notified, the waiting thread looks
        assert second.result(timeout=5) == Stop("interrupted")


def test_a_halted_run_stops_the_host_at_its_gate(tmp_path: Path) -> None:
    rollout, _ = _rollout(tmp_path)
    _start(rollout, A)
    with ThreadPoolExecutor(2) as pool:
        assert isinstance(_wait(pool, rollout, "a").result(timeout=5), Go)
        _start(rollout, B)
        second = _wait(pool, rollout, "b")
        rollout.halt("the run failed")
        assert second.result(timeout=5) == Stop("the run failed")


def test_at_serial_two_the_second_slot_goes_to_another_dag_while_a_partner_waits(tmp_path: Path) -> None:
    rollout, _ = _rollout(tmp_path, serial=2)
    partner = Slot("a2", True, "S", "D1")
    rollout = _Rollout(rollout._rec, {s.host: s for s in (A, partner, B)}, Limits(16, 2), 0, 0)
    _start(rollout, A)
    with ThreadPoolExecutor(3) as pool:
        assert isinstance(_wait(pool, rollout, "a").result(timeout=5), Go)
        _start(rollout, partner, B)
        waits = _wait(pool, rollout, "a2")
        assert isinstance(_wait(pool, rollout, "b").result(timeout=5), Go)  # past the waiting partner
        time.sleep(0.3)
        assert not waits.done()
        rollout.changed("a", HostApply("a", HostOutcome.DONE))
        assert isinstance(waits.result(timeout=5), Go)
