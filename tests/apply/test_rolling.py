"""The rolling order of apply (agent/planning/schedule.py, which apply runs), with plain data:
what may start beside what, who may take a restart slot at the gate, and that a run of any
shape always finishes (hypothesis drives a whole schedule, gates included)."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.planning.schedule import (
    Limits,
    Slot,
    may_restart,
    may_start,
    next_restart,
    next_start,
    site_sizes,
    why_at_gate,
    why_waiting,
)

NIC = Slot("ex01", disruptive=False, site="A", dag="DAG1")
R1 = Slot("ex02", disruptive=True, site="A", dag="DAG1")
R2 = Slot("ex03", disruptive=True, site="A", dag="DAG1")
R3 = Slot("ex04", disruptive=True, site="A", dag="DAG2")
R4 = Slot("ex05", disruptive=True, site="B", dag="")


def restarting(slot: Slot) -> Slot:
    return dataclasses.replace(slot, restarting=True)


def test_changes_without_a_restart_run_beside_anything_up_to_the_workers() -> None:
    limits = Limits(workers=2, serial=1)
    assert may_start(NIC, [restarting(R1)], limits)
    assert may_start(NIC, [R1], limits)  # R1 preparing: a worker like any other
    assert not may_start(NIC, [restarting(R1), R3], limits)
    assert why_waiting(NIC, [R1, R3], limits) == "2 host(s) in progress (--forks)"


def test_a_host_with_a_restart_prepares_while_another_restarts_and_serial_bounds_the_prepared() -> None:
    """--serial 1: one server restarts while the next is prepared (connected, read, its
    non-disruptive steps done) outside the slot; a third waits: the hosts changed but not yet
    restarted are never more than --serial."""
    limits = Limits(workers=16, serial=1)
    assert may_start(R3, [restarting(R1)], limits)
    assert not may_start(R4, [restarting(R1), R3], limits)
    assert why_waiting(R4, [restarting(R1), R3], limits) == (
        "1 host(s) prepared for a restart or waiting for one (--serial)"
    )
    assert may_start(R4, [restarting(R1), R3], Limits(16, 2))
    # A host preparing or at its gate is no restart: the changes without one still start.
    assert may_start(NIC, [restarting(R1), R3], limits)


def test_serial_bounds_the_restarts_at_once() -> None:
    limits = Limits(workers=16, serial=1)
    sites = site_sizes([R1, R2, R3, R4])
    assert not may_restart(R4, [restarting(R3), R4], limits, sites)
    assert why_at_gate(R4, [restarting(R3), R4], limits, sites) == "1 restart(s) in progress (--serial)"
    assert may_restart(R4, [restarting(R3), R4], Limits(16, 2), sites)
    # Hosts preparing or at their gate hold no slot.
    assert may_restart(R4, [R3, R1, R4], limits, sites)


def test_two_members_of_one_dag_never_restart_together() -> None:
    limits = Limits(workers=16, serial=8)
    sites = site_sizes([R1, R2, R3, R4, Slot("ex09", True, "A", "")])
    assert not may_restart(R2, [restarting(R1)], limits, sites)
    assert why_at_gate(R2, [restarting(R1)], limits, sites) == "ex02 of DAG DAG1 is restarting"
    assert may_restart(R3, [restarting(R1)], limits, sites)  # another DAG of the same, larger site
    # DAG names compare as Exchange compares them: case-insensitively.
    assert not may_restart(Slot("ex06", True, "A", "dag1"), [restarting(R1)], limits, sites)
    # ... and a partner preparing beside it is no restart yet.
    assert may_restart(R2, [R1], limits, sites)


def test_a_member_whose_dag_is_not_known_restarts_alone() -> None:
    limits = Limits(workers=16, serial=8)
    unknown = Slot("ex07", True, "C", None)
    sites = site_sizes([unknown, R4, Slot("ex08", True, "C", "")])
    assert not may_restart(unknown, [restarting(R4)], limits, sites)
    assert not may_restart(R4, [restarting(unknown)], limits, sites)
    assert may_restart(unknown, [NIC], limits, sites)  # a NIC change elsewhere is no restart
    assert "not known" in why_at_gate(unknown, [restarting(R4)], limits, sites)


def test_the_last_server_in_service_of_a_site_is_not_taken_down() -> None:
    limits = Limits(workers=16, serial=8)
    a = Slot("a1", True, "Site-A", "")
    b = Slot("a2", True, "site-a", "")  # the same site: AD names are case-insensitive
    sites = site_sizes([a, b])
    assert may_restart(a, [], limits, sites)
    assert not may_restart(b, [restarting(a)], limits, sites)
    why = why_at_gate(b, [restarting(a)], limits, sites)
    assert why == "the other server(s) of AD site site-a are restarting"
    # A site the run knows one server of: nothing else there to keep up, so it goes.
    alone = Slot("b1", True, "Site-B", "")
    assert may_restart(alone, [restarting(a)], limits, site_sizes([a, b, alone]))


def test_the_first_that_may_start_goes_and_a_waiting_restart_holds_up_no_one() -> None:
    limits = Limits(workers=16, serial=1)
    sites = site_sizes([R1, R2, NIC])
    assert next_start([R2, NIC], [restarting(R1), R3], limits) == NIC
    assert next_start([R2], [restarting(R1), R3], limits) is None
    assert next_start([R2, NIC], [], limits) == R2
    # At the gate: the first in the run's order that may restart, past a DAG partner's wait.
    wide = Limits(workers=16, serial=2)
    assert next_restart([R2, R3], [restarting(R1), R2, R3], wide, sites) == R3
    assert next_restart([R2], [restarting(R1), R2], wide, sites) is None
    assert next_restart([R2, R3], [R2, R3], wide, sites) == R2


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
    """Drive a schedule as apply does (start what may start; let the hosts at their gate that
    may restart take their slot; then one running host moves on, in any order: a preparing
    host reaches its gate, a host in its slot or changing finishes): every host runs, and at no
    moment are the limits broken."""
    assert isinstance(rnd, random.Random)
    limits = Limits(workers, serial)
    sites = site_sizes(slots)
    waiting, done = list(slots), []
    running: dict[str, Slot] = {}
    at_gate: list[Slot] = []
    while waiting or running:
        while (slot := next_start(waiting, running.values(), limits)) is not None:
            waiting.remove(slot)
            running[slot.host] = slot
        while (slot := next_restart(at_gate, running.values(), limits, sites)) is not None:
            at_gate.remove(slot)
            running[slot.host] = dataclasses.replace(slot, restarting=True)
        assert running, "nothing runs and nothing may start: the run would hang"
        now = list(running.values())
        down = [r for r in now if r.restarting]
        assert len(now) <= workers and len(down) <= serial
        assert sum(1 for r in now if r.preparing) <= serial  # changed, not yet restarted
        dags = [r.dag.casefold() for r in down if r.dag]
        assert len(dags) == len(set(dags))
        assert len(down) <= 1 or all(r.dag is not None for r in down)
        for site, size in sites.items():
            out = sum(1 for r in down if r.site.casefold() == site)
            assert size <= 1 or out < size
        movable = [r for r in now if not (r.preparing and r in at_gate)]
        assert movable, "every host waits at its gate and none may restart: the run would hang"
        moving = movable[rnd.randrange(len(movable))]
        if moving.preparing:
            at_gate.append(moving)
            at_gate.sort(key=slots.index)
        else:
            done.append(running.pop(moving.host))
    assert sorted(s.host for s in done) == sorted(s.host for s in slots)
