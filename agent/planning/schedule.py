"""Which host apply may start next, and when a host may restart (pure): changes in parallel,
restarts rolling.

Apply runs this scheduler (agent/apply/run.py); the review page shows the order it gives
(:func:`simulate`), which is why it sits in planning, below both in the pipeline.

A host whose steps do not interrupt mail flow (NIC settings, the DNS client cache, a firewall
rule) can be changed beside any other: those run up to ``workers`` at once. A host with a
disruptive step (the MSExchangeTransport restart) runs in two parts. Its *preparation* (the
connection, every read, the non-disruptive steps before its first disruptive one, the
restart's own before-read) runs as a worker like any other, while other servers restart; then
it waits at its *restart gate* for its restart slot, and keeps the slot through the restart,
its read-back (Running) and any undo that needs (:func:`may_restart`):

- at most ``serial`` hosts hold a restart slot at once (``exfix apply --serial``): at most
  that many servers are out of mail flow;
- never two members of one database availability group: a DAG's members carry each other's
  database copies and shadow redundancy ("Shadow redundancy in Exchange Server",
  learn.microsoft.com: a message is kept on another server of the DAG or AD site until it is
  delivered), so a DAG keeps its members in service one restart at a time. A member whose
  DAG could not be read (``dag`` None) is restarted with no other restart beside it;
- never the last server in service of an AD site: where this apply knows several servers of a
  site, one of them always stays in mail flow. A site of which it knows one server only has
  nothing else to keep up; that server is restarted when its turn comes.

A host with a restart starts its preparation only while fewer than ``serial`` such hosts are
started and not yet in their slot (preparing, or prepared and waiting at the gate:
:func:`may_start`), so the hosts changed but not yet restarted stay as few as the restarts
allowed at once: one server is prepared while another restarts. When the run stops (more than
--max-fail hosts failed, or an interrupt), a host at its gate does not restart: its changes
are undone and it is skipped (agent/apply/steps.py). A host waiting at its gate holds its
worker.

A host leaves its slot when its steps are done; its verification afterwards (its queues drain,
it is collected again) runs as a worker of its own that is not disruptive: a server whose
transport runs again is back in mail flow, and a host that is not verified keeps its changes,
so the next restart waits for nothing of it.

Hosts start in the order given (the plan's), except that one which must wait lets the ones
behind it start: a restart waiting for its turn does not hold up NIC changes elsewhere. At the
gate, the first host (in that order) that may restart goes; with preparations of different
lengths a host may reach its gate, and restart, before one that started earlier.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from agent.fixes import registry
from agent.model.plan import HostPlan, Plan


@dataclass(frozen=True, slots=True)
class Slot:
    """One host's run, as the scheduler sees it. ``disruptive``: the host has a disruptive
    step; ``restarting``: it holds its restart slot now (out of mail flow). A running host
    with a restart that is not ``restarting`` is preparing, or waiting at its gate."""

    host: str
    disruptive: bool
    site: str = ""
    dag: str | None = ""  # "" not a DAG member; None not known
    restarting: bool = False

    @property
    def preparing(self) -> bool:
        return self.disruptive and not self.restarting


@dataclass(frozen=True, slots=True)
class Limits:
    workers: int  # hosts at once, of any kind (exfix apply --forks)
    serial: int  # hosts out of mail flow at once, and hosts prepared for it (exfix apply --serial)


def site_sizes(slots: Collection[Slot]) -> Counter[str]:
    """How many servers of each AD site this run knows (the hosts it changes)."""
    return Counter(s.site.casefold() for s in slots)


def may_start(slot: Slot, running: Collection[Slot], limits: Limits) -> bool:
    """Whether ``slot`` (not started) may start beside ``running`` (module docstring): a free
    worker, and for a host with a restart fewer than ``serial`` hosts preparing or at their
    gate."""
    if len(running) >= limits.workers:
        return False
    return not slot.disruptive or sum(1 for r in running if r.preparing) < limits.serial


def may_restart(slot: Slot, running: Collection[Slot], limits: Limits, sites: Counter[str]) -> bool:
    """Whether ``slot``, at its restart gate, may take its restart slot beside the hosts of
    ``running`` that hold one (module docstring): ``serial``, the DAG and the AD site."""
    restarting = [r for r in running if r.restarting and r.host != slot.host]
    if len(restarting) >= limits.serial:
        return False
    if restarting and (slot.dag is None or any(r.dag is None for r in restarting)):
        return False
    if slot.dag and any(r.dag is not None and r.dag.casefold() == slot.dag.casefold() for r in restarting):
        return False
    site = slot.site.casefold()
    down = sum(1 for r in restarting if r.site.casefold() == site)
    return sites[site] <= 1 or down + 1 < sites[site]


def next_start(waiting: Sequence[Slot], running: Collection[Slot], limits: Limits) -> Slot | None:
    """The first of ``waiting`` (not started) that may start now, or None."""
    return next((s for s in waiting if may_start(s, running, limits)), None)


def next_restart(
    at_gate: Sequence[Slot], running: Collection[Slot], limits: Limits, sites: Counter[str]
) -> Slot | None:
    """The first of ``at_gate`` (in the run's order) that may take its restart slot now, or None."""
    return next((s for s in at_gate if may_restart(s, running, limits, sites)), None)


def why_waiting(slot: Slot, running: Collection[Slot], limits: Limits) -> str:
    """One line: what ``slot``, not started, waits for (for the journal and the progress line)."""
    if len(running) >= limits.workers:
        return f"{limits.workers} host(s) in progress (--forks)"
    return f"{limits.serial} host(s) prepared for a restart or waiting for one (--serial)"


def why_at_gate(slot: Slot, running: Collection[Slot], limits: Limits, sites: Counter[str]) -> str:
    """One line: what ``slot``, at its restart gate, waits for."""
    restarting = [r for r in running if r.restarting and r.host != slot.host]
    if len(restarting) >= limits.serial:
        return f"{limits.serial} restart(s) in progress (--serial)"
    if slot.dag is None or any(r.dag is None for r in restarting):
        return "a restart in progress, and a DAG membership that is not known"
    same = [r.host for r in restarting if r.dag and slot.dag and r.dag.casefold() == slot.dag.casefold()]
    if same:
        return f"{', '.join(same)} of DAG {slot.dag} is restarting"
    return f"the other server(s) of AD site {slot.site} are restarting"


@dataclass(frozen=True, slots=True)
class Start:
    """One host's turn in a simulated run: its place in the order, and when its turn starts and
    ends (seconds after the run's first start) if every host takes the time given. For a host
    with a restart the turn is its restart slot (``at``: when it takes it); ``prepared`` is
    when it started its preparation."""

    slot: Slot
    position: int  # 1-based
    at: float
    ends: float
    prepared: float = 0.0


def simulate(
    slots: Sequence[Slot],
    limits: Limits,
    duration: Callable[[Slot], float],
    prepare: Callable[[Slot], float] = lambda s: 0.0,
) -> tuple[Start, ...]:
    """The run apply makes of ``slots`` if each host's turn takes ``duration(slot)`` seconds
    (for a host with a restart: its slot), and a host with a restart prepares for
    ``prepare(slot)`` seconds before its gate: the same :func:`next_start` and
    :func:`next_restart` apply asks whenever a host moves on, hosts that end together freeing
    their places together. Raises ValueError when a host could never start (limits below 1)."""
    if limits.workers < 1 or limits.serial < 1:
        raise ValueError(f"limits must be at least 1: {limits}")
    sites = site_sizes(slots)
    waiting = list(slots)
    order = {s.host: i for i, s in enumerate(slots)}
    running: dict[str, Slot] = {}
    ends: dict[str, float] = {}  # a host's turn ends, or its preparation does
    started: dict[str, float] = {}
    at_gate: list[Slot] = []
    out: list[Start] = []
    now = 0.0

    def turn(slot: Slot, prepared: float) -> None:
        ends[slot.host] = now + max(0.0, duration(slot))
        out.append(Start(slot, 0, now, ends[slot.host], prepared))

    while waiting or running:
        moved = True
        while moved:
            moved = False
            while (slot := next_start(waiting, running.values(), limits)) is not None:
                waiting.remove(slot)
                running[slot.host] = slot
                started[slot.host] = now
                moved = True
                if slot.disruptive:
                    ends[slot.host] = now + max(0.0, prepare(slot))
                else:
                    turn(slot, now)
            for host in [h for h, r in running.items() if r.preparing and ends[h] <= now]:
                if running[host] not in at_gate:
                    at_gate.append(running[host])
                    moved = True
            at_gate.sort(key=lambda s: order[s.host])
            while (slot := next_restart(at_gate, running.values(), limits, sites)) is not None:
                at_gate.remove(slot)
                running[slot.host] = dataclasses.replace(slot, restarting=True)
                turn(slot, started[slot.host])
                moved = True
        if not running:  # nothing runs and nothing may start: only limits below 1 do that
            raise ValueError(f"{waiting[0].host} can never start under {limits}")
        busy = [ends[h] for h, r in running.items() if not (r.preparing and ends[h] <= now)]
        if not busy:  # every running host waits at its gate: no rule leaves that without a way out
            raise ValueError(f"{at_gate[0].host} can never restart under {limits}")
        now = min(busy)
        for host in [h for h, r in running.items() if not r.preparing and ends[h] <= now]:
            del running[host]
    # The order turns begin in; hosts whose turns begin together in the run's order.
    out.sort(key=lambda s: (s.at, order[s.slot.host]))
    return tuple(dataclasses.replace(s, position=n) for n, s in enumerate(out, start=1))


# Hosts apply changes at once (exfix apply --forks; a scan's default is larger,
# agent.scan.DEFAULT_FORKS). A plan that fails alike on every host (a value the hosts refuse)
# reaches at most this many before --max-fail stops the hosts not started; 16 keeps that few
# while changes that need no restart still go 16 times as fast as one at a time.
DEFAULT_APPLY_FORKS = 16
# exfix apply's --forks and --serial defaults (agent/cli/apply.py; a test keeps them equal): the
# apply command the review pages print gives neither, so this is the run it makes.
DEFAULT_LIMITS = Limits(workers=DEFAULT_APPLY_FORKS, serial=1)


@dataclass(frozen=True, slots=True)
class Turn:
    """One unit's place in apply's run of a plan."""

    host: str  # the host name; for an organisation unit, the organisation
    position: int  # 1-based, organisation units first
    disruptive: bool  # apply takes it out of mail flow (the MSExchangeTransport restart)
    outage_s: int | None  # estimated seconds out of mail flow (0: none; None: not estimated)
    at: float  # seconds after apply's first change, if every restart takes its estimate
    ends: float
    organization: bool = False


@dataclass(frozen=True, slots=True)
class FleetSchedule:
    """The order in which apply changes a plan's units with the given limits: the organisation
    units one at a time, then the hosts with an automatic step as :func:`simulate` runs them."""

    limits: Limits
    turns: tuple[Turn, ...]
    untouched: tuple[str, ...]  # hosts with no automatic step: apply changes nothing there

    @property
    def restarts(self) -> tuple[Turn, ...]:
        return tuple(t for t in self.turns if t.disruptive)

    @property
    def outage_s(self) -> int:
        """Estimated seconds out of mail flow, summed over the hosts (those with an estimate)."""
        return sum(t.outage_s or 0 for t in self.turns)

    @property
    def unestimated(self) -> tuple[str, ...]:
        return tuple(t.host for t in self.turns if t.outage_s is None)

    @property
    def duration_s(self) -> float:
        """When the last restart ends, if each takes its estimate (changes without a restart
        count as taking no time)."""
        return max((t.ends for t in self.turns), default=0.0)


def outage_estimate(host: HostPlan) -> int | None:
    """Estimated seconds ``host`` is out of mail flow during apply: the declared estimate of each
    automatic disruptive step (FixSpec Step.outage_estimate_s), summed; None when one has none."""
    total = 0
    for action in host.automatic:
        if action.disruptive:
            estimate = registry.step(action.kind)[1].outage_estimate_s
            if estimate is None:
                return None
            total += estimate
    return total


def fleet_schedule(plan: Plan, limits: Limits = DEFAULT_LIMITS) -> FleetSchedule:
    """apply's run of ``plan``. plan.json records no DAG or AD site, so each host's DAG counts as
    not known (``dag`` None: its restart runs with no other restart beside it); with
    ``serial`` 1 that is no restriction beyond serial's own, so the order is the one apply makes
    whatever the DAGs and sites are. A turn with a restart is its restart slot, taking the
    restart's estimate; the preparation before it (the reads and the steps without a restart)
    counts as taking no time, as the changes without a restart do: apply runs it while the
    server before it restarts, so it adds nothing to the outage and, as long as it is shorter
    than a restart (a real restart takes minutes), nothing to the run's length."""
    turns: list[Turn] = []
    now = 0.0
    for unit in plan.organizations:
        if unit.automatic:
            outage = outage_estimate(unit)
            ends = now + (outage or 0)
            turns.append(Turn(unit.organization, len(turns) + 1, any(a.disruptive for a in unit.automatic),
                              outage, now, ends, organization=True))  # fmt: skip
            now = ends
    pending = [h for h in plan.hosts if h.automatic]
    outages = {h.host: outage_estimate(h) for h in pending}
    slots = [Slot(h.host, any(a.disruptive for a in h.automatic), "", None) for h in pending]
    first = len(turns)
    for start in simulate(slots, limits, lambda s: float(outages[s.host] or 0)):
        turns.append(Turn(start.slot.host, first + start.position, start.slot.disruptive,
                          outages[start.slot.host], now + start.at, now + start.ends))  # fmt: skip
    return FleetSchedule(limits, tuple(turns), tuple(h.host for h in plan.hosts if not h.automatic))
