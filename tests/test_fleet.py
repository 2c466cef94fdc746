from __future__ import annotations

import threading

import pytest

from agent.fleet import HostRun, run_fleet


def test_results_keep_input_order_and_failures_stay_per_host() -> None:
    def work(host: str) -> str:
        if host == "bad":
            raise RuntimeError("boom")
        return host.upper()

    done: list[str] = []
    runs = run_fleet(["a", "bad", "c"], work, forks=2, on_done=lambda run: done.append(run.host))
    assert [r.host for r in runs] == ["a", "bad", "c"]
    assert [r.value for r in runs] == ["A", None, "C"]
    assert isinstance(runs[1].error, RuntimeError)
    assert sorted(done) == ["a", "bad", "c"]


def test_never_more_than_forks_at_once() -> None:
    lock = threading.Lock()
    active = peak = 0
    gate = threading.Barrier(3, timeout=5)

    def work(host: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        if host < 3:
            gate.wait()  # the first three meet, proving three can run together
        with lock:
            active -= 1
        return host

    runs: list[HostRun[int, int]] = run_fleet(list(range(10)), work, forks=3)
    assert [r.value for r in runs] == list(range(10))
    assert peak == 3


def test_forks_must_be_positive() -> None:
    with pytest.raises(ValueError):
        run_fleet(["a"], str, forks=0)
