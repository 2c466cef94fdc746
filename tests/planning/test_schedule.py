"""The schedule the review pages show (agent/planning/schedule.py): apply's own scheduler run
over a plan, with plain data. The scheduler's rules themselves are tested in
tests/apply/test_rolling.py."""

from __future__ import annotations

import dataclasses

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.cli.apply import apply as apply_command
from agent.evaluate import evaluate
from agent.fixes import registry
from agent.fixes.spec import FixSpecError, Step
from agent.model.plan import RESTART_KIND, Plan
from agent.planning import build_plan
from agent.planning.schedule import (
    DEFAULT_LIMITS,
    Limits,
    Slot,
    fleet_schedule,
    may_restart,
    outage_estimate,
    simulate,
    site_sizes,
)
from support.facts_builders import host, mapi_nic, replication_nic


def _fleet(*registration_off: bool) -> Plan:
    fleet = [
        host(name=f"ex{n:02d}.contoso.local",
             nics=(mapi_nic(register_this_connections_address=not off), replication_nic()))
        for n, off in enumerate(registration_off, start=1)
    ]  # fmt: skip
    return build_plan(fleet, {f.host: evaluate(f) for f in fleet}, {})


def test_the_default_limits_are_apply_s_defaults() -> None:
    options = {p.name: p.default for p in apply_command.params if isinstance(p, click.Option)}
    assert Limits(workers=options["forks"], serial=options["serial"]) == DEFAULT_LIMITS


def test_the_restart_declares_its_outage_and_a_plan_sums_it_per_host() -> None:
    _, restart = registry.step(RESTART_KIND)
    assert restart.outage_estimate_s == 120
    with pytest.raises(FixSpecError):
        Step("restart-something", outage_estimate_s=0)
    plan = _fleet(True, False, True)
    assert [outage_estimate(h) for h in plan.hosts] == [120, 0, 120]
    # A disruptive step without a declared estimate is not guessed: the host has none.
    first = plan.hosts[0]
    unknown = dataclasses.replace(first.actions[0], disruptive=True)
    assert outage_estimate(dataclasses.replace(first, actions=(unknown, *first.actions[1:]))) is None


def test_a_plan_s_restarts_run_one_at_a_time_in_its_order_beside_the_other_changes() -> None:
    plan = _fleet(True, True, False, True)
    schedule = fleet_schedule(plan)
    assert [t.host for t in schedule.turns] == [f"ex0{n}.contoso.local" for n in (1, 2, 4)]
    assert [t.position for t in schedule.turns] == [1, 2, 3]
    assert [(t.at, t.ends) for t in schedule.turns] == [(0, 120), (120, 240), (240, 360)]
    assert schedule.untouched == ("ex03.contoso.local",)
    assert schedule.outage_s == 360 and schedule.duration_s == 360 and schedule.unestimated == ()
    # plan.json records no DAG: a restart runs alone even where --serial would allow more.
    wide = fleet_schedule(plan, Limits(workers=16, serial=4))
    assert [(t.at, t.ends) for t in wide.turns] == [(0, 120), (120, 240), (240, 360)]


def test_simulate_starts_the_changes_without_restart_beside_the_restarts() -> None:
    """r2 starts preparing once n1 frees a worker, then waits at its gate, holding that worker,
    until r1's slot is free (so n2 and n3 start after it: the promise of a host waiting at its
    gate is that it holds its worker)."""
    slots = [Slot("r1", True), Slot("n1", False), Slot("r2", True), Slot("n2", False), Slot("n3", False)]
    run = simulate(slots, Limits(workers=2, serial=1), lambda s: 10.0 if s.disruptive else 1.0)
    assert [(s.slot.host, s.at) for s in run] == [("r1", 0), ("n1", 0), ("r2", 10), ("n2", 10), ("n3", 11)]
    assert [s.prepared for s in run if s.slot.disruptive] == [0, 1]
    with pytest.raises(ValueError):
        simulate(slots, Limits(workers=0, serial=1), lambda s: 1.0)


def test_simulate_prepares_the_next_restart_while_one_restarts() -> None:
    """With preparations that take time, the next host's preparation overlaps the restart
    before it: three restarts of 10 s each prepared for 4 s take 4 + 30 s, not 3 x 14 s; a
    preparation longer than a restart is what the chain then waits for."""
    slots = [Slot(f"r{n}", True) for n in (1, 2, 3)]
    run = simulate(slots, Limits(workers=16, serial=1), lambda s: 10.0, lambda s: 4.0)
    assert [(s.slot.host, s.prepared, s.at, s.ends) for s in run] == [
        ("r1", 0, 4, 14), ("r2", 4, 14, 24), ("r3", 14, 24, 34),
    ]  # fmt: skip
    slow = simulate(slots, Limits(workers=16, serial=1), lambda s: 2.0, lambda s: 5.0)
    assert [(s.prepared, s.at) for s in slow] == [(0, 5), (5, 10), (10, 15)]


HOSTS = st.tuples(st.booleans(), st.sampled_from(["A", "B", "C"]), st.sampled_from(["", "D1", "D2", None]),
                  st.integers(1, 5))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.lists(HOSTS, min_size=1, max_size=25),
    st.integers(1, 6),
    st.integers(1, 4),
)
def test_a_simulated_run_keeps_every_rule_at_every_moment(
    hosts: list[tuple[bool, str, str | None, int]], workers: int, serial: int
) -> None:
    slots = [Slot(f"h{n}", d, site, dag) for n, (d, site, dag, _) in enumerate(hosts)]
    took = {f"h{n}": float(t) for n, (_, _, _, t) in enumerate(hosts)}
    limits = Limits(workers, serial)
    run = simulate(slots, limits, lambda s: took[s.host], lambda s: took[s.host] / 2)
    assert sorted(s.slot.host for s in run) == sorted(took)  # each once
    sites = site_sizes(slots)
    for start in run:
        moment = start.at
        # A worker from its start (a host with a restart: its preparation) to its end.
        busy = [o for o in run if (o.prepared if o.slot.disruptive else o.at) <= moment < o.ends]
        assert len(busy) <= workers, (start, busy)
        assert sum(1 for o in run if o.slot.disruptive and o.prepared <= moment < o.at) <= serial
        if start.slot.disruptive:
            before = [o for o in run if o.slot.disruptive and o.position < start.position]
            down = [dataclasses.replace(o.slot, restarting=True) for o in before if o.at <= moment < o.ends]
            assert may_restart(start.slot, down, limits, sites), (start, down)
