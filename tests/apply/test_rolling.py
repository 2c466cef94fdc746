"""The rolling order of apply (agent/planning/schedule.py, which apply runs), with plain data:
what may start beside what, and that a run of any shape always finishes (hypothesis drives a
whole schedule)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.planning.schedule import Limits, Slot, may_start, next_start, site_sizes, why_waiting

NIC = Slot("ex01", disruptive=False, site="A", dag="DAG1")
R1 = Slot("ex02", disruptive=True, site="A", dag="DAG1")
R2 = Slot("ex03", disruptive=True, site="A", dag="DAG1")
R3 = Slot("ex04", disruptive=True, site="A", dag="DAG2")
R4 = Slot("ex05", disruptive=True, site="B", dag="")


def test_changes_without_a_restart_run_beside_anything_up_to_the_workers() -> None:
    limits = Limits(workers=2, serial=1)
    sites = site_sizes([NIC, R1, R2, R3, R4])
    assert may_start(NIC, [R1], limits, sites)
    assert not may_start(NIC, [R1, R3], limits, sites)
    assert why_waiting(NIC, [R1, R3], limits, sites) == "2 host(s) in progress (--forks)"


def test_serial_bounds_the_restarts_at_once() -> None:
    limits = Limits(workers=16, serial=1)
    sites = site_sizes([R1, R2, R3, R4])
    assert not may_start(R4, [R3], limits, sites)
    assert why_waiting(R4, [R3], limits, sites) == "1 restart(s) in progress (--serial)"
    assert may_start(R4, [R3], Limits(16, 2), sites)


def test_two_members_of_one_dag_never_restart_together() -> None:
    limits = Limits(workers=16, serial=8)
    sites = site_sizes([R1, R2, R3, R4, Slot("ex09", True, "A", "")])
    assert not may_start(R2, [R1], limits, sites)
    assert why_waiting(R2, [R1], limits, sites) == "ex02 of DAG DAG1 is restarting"
    assert may_start(R3, [R1], limits, sites)  # another DAG of the same, larger site
    # DAG names compare as Exchange compares them: case-insensitively.
    assert not may_start(Slot("ex06", True, "A", "dag1"), [R1], limits, sites)


def test_a_member_whose_dag_is_not_known_restarts_alone() -> None:
    limits = Limits(workers=16, serial=8)
    unknown = Slot("ex07", True, "C", None)
    sites = site_sizes([unknown, R4, Slot("ex08", True, "C", "")])
    assert not may_start(unknown, [R4], limits, sites)
    assert not may_start(R4, [unknown], limits, sites)
    assert may_start(unknown, [NIC], limits, sites)  # a NIC change elsewhere is no restart
    assert "not known" in why_waiting(unknown, [R4], limits, sites)


def test_the_last_server_in_service_of_a_site_is_not_taken_down() -> None:
    limits = Limits(workers=16, serial=8)
    a = Slot("a1", True, "Site-A", "")
    b = Slot("a2", True, "site-a", "")  # the same site: AD names are case-insensitive
    sites = site_sizes([a, b])
    assert may_start(a, [], limits, sites)
    assert not may_start(b, [a], limits, sites)
    assert why_waiting(b, [a], limits, sites) == "the other server(s) of AD site site-a are restarting"
    # A site the run knows one server of: nothing else there to keep up, so it goes.
    alone = Slot("b1", True, "Site-B", "")
    assert may_start(alone, [a], limits, site_sizes([a, b, alone]))


def test_the_first_that_may_start_goes_and_a_waiting_restart_holds_up_no_one() -> None:
    limits = Limits(workers=16, serial=1)
    sites = site_sizes([R1, R2, NIC])
    assert next_start([R2, NIC], [R1], limits, sites) == NIC
    assert next_start([R2], [R1], limits, sites) is None
    assert next_start([R2, NIC], [], limits, sites) == R2


_slots = st.lists(
    st.builds(
        Slot,
        host=st.just(""),
        disruptive=st.booleans(),
        site=st.sampled_from(["A", "B", "c"]),
        dag=st.sampled_from(["", None, "D1", "d1", "D2"]),
    ),
    max_size=30,
).map(lambda slots: [Slot(f"h{i}", s.disruptive, s.site, s.dag) for i, s in enumerate(slots)])


@settings(max_examples=300, deadline=None)
@given(_slots, st.integers(1, 8), st.integers(1, 4), st.randoms(use_true_random=False))
def test_any_fleet_finishes_and_no_moment_breaks_a_rule(
    slots: list[Slot], workers: int, serial: int, rnd: object
) -> None:
    """Drive a schedule as apply does (start what may start, then one running host finishes,
    in any order): every host runs, and at no moment are the limits broken."""
    assert isinstance(rnd, random.Random)
    limits = Limits(workers, serial)
    sites = site_sizes(slots)
    waiting, running, done = list(slots), [], []
    while waiting or running:
        while (slot := next_start(waiting, running, limits, sites)) is not None:
            waiting.remove(slot)
            running.append(slot)
        assert running, "nothing runs and nothing may start: the run would hang"
        restarting = [r for r in running if r.disruptive]
        assert len(running) <= workers and len(restarting) <= serial
        dags = [r.dag.casefold() for r in restarting if r.dag]
        assert len(dags) == len(set(dags))
        assert len(restarting) <= 1 or all(r.dag is not None for r in restarting)
        for site, size in sites.items():
            down = sum(1 for r in restarting if r.site.casefold() == site)
            assert size <= 1 or down < size
        done.append(running.pop(rnd.randrange(len(running))))
    assert sorted(s.host for s in done) == sorted(s.host for s in slots)
