"""Which host apply may start next (pure): changes in parallel, restarts rolling.

Apply runs this scheduler (agent/apply/run.py); the review page shows the order it gives
(:func:`simulate`), which is why it sits in planning, below both in the pipeline.

A host whose steps do not interrupt mail flow (NIC settings, the DNS client cache, a firewall
rule) can be changed beside any other: those run up to ``workers`` at once. A host with a
disruptive step (the MSExchangeTransport restart) is out of mail flow while it runs, so:

- at most ``serial`` such hosts run at once (``exfix apply --serial``);
- never two members of one database availability group: a DAG's members carry each other's
  database copies and shadow redundancy ("Shadow redundancy in Exchange Server",
  learn.microsoft.com: a message is kept on another server of the DAG or AD site until it is
  delivered), so a DAG keeps its members in service one restart at a time. A member whose
  DAG could not be read (``dag`` None) is restarted with no other restart beside it;
- never the last server in service of an AD site: where this apply knows several servers of a
  site, one of them always stays in mail flow. A site of which it knows one server only has
  nothing else to keep up; that server is restarted when its turn comes.

A host is out of mail flow while its steps run (the restart, read back Running); its
verification afterwards (its queues drain, it is collected again) runs as a worker of its own
that is not disruptive: a server whose transport runs again is back in mail flow, and a host
that is not verified keeps its changes, so the next restart waits for nothing of it.

Hosts start in the order given (the plan's), except that one which must wait lets the ones
behind it start: a restart waiting for its DAG partner does not hold up NIC changes elsewhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from agent.fixes import registry
from agent.model.plan import HostPlan, Plan


@dataclass(frozen=True, slots=True)
class Slot:
    """One host's run, as the scheduler sees it."""

    host: str
    disruptive: bool
    site: str = ""
    dag: str | None = ""  # "" not a DAG member; None not known


@dataclass(frozen=True, slots=True)
class Limits:
    workers: int  # hosts at once, of any kind (exfix apply --forks)
    serial: int  # hosts out of mail flow at once (exfix apply --serial)


def site_sizes(slots: Collection[Slot]) -> Counter[str]:
    """How many servers of each AD site this run knows (the hosts it changes)."""
    return Counter(s.site.casefold() for s in slots)


def may_start(slot: Slot, running: Collection[Slot], limits: Limits, sites: Counter[str]) -> bool:
    """Whether ``slot`` may start beside ``running`` (module docstring)."""
    if len(running) >= limits.workers:
        return False
    if not slot.disruptive:
        return True
    restarting = [r for r in running if r.disruptive]
    if len(restarting) >= limits.serial:
        return False
    if restarting and (slot.dag is None or any(r.dag is None for r in restarting)):
        return False
    if slot.dag and any(r.dag is not None and r.dag.casefold() == slot.dag.casefold() for r in restarting):
        return False
    site = slot.site.casefold()
    down = sum(1 for r in restarting if r.site.casefold() == site)
    return sites[site] <= 1 or down + 1 < sites[site]


def next_start(
    waiting: Sequence[Slot], running: Collection[Slot], limits: Limits, sites: Counter[str]
) -> Slot | None:
    """The first of ``waiting`` that may start now, or None."""
    return next((s for s in waiting if may_start(s, running, limits, sites)), None)


def why_waiting(slot: Slot, running: Collection[Slot], limits: Limits, sites: Counter[str]) -> str:
    """One line: what ``slot`` waits for (for the journal and the progress line)."""
    restarting = [r for r in running if r.disruptive]
    if len(running) >= limits.workers:
        return f"{limits.workers} host(s) in progress (--forks)"
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
    """One host's turn in a simulated run: its place in the start order, and when it starts and
    ends (seconds after the run's first start) if every host takes the time given."""

    slot: Slot
    position: int  # 1-based
    at: float
    ends: float


def simulate(slots: Sequence[Slot], limits: Limits, duration: Callable[[Slot], float]) -> tuple[Start, ...]:
    """The run apply makes of ``slots`` if each takes ``duration(slot)`` seconds: the same
    :func:`next_start` apply asks whenever a host finishes, hosts that end together freeing
    their places together. Raises ValueError when a host could never start (limits below 1)."""
    if limits.workers < 1 or limits.serial < 1:
        raise ValueError(f"limits must be at least 1: {limits}")
    sites = site_sizes(slots)
    waiting = list(slots)
    running: list[tuple[float, Slot]] = []
    out: list[Start] = []
    now = 0.0
    while waiting or running:
        while (slot := next_start(waiting, [r for _, r in running], limits, sites)) is not None:
            waiting.remove(slot)
            ends = now + max(0.0, duration(slot))
            out.append(Start(slot, len(out) + 1, now, ends))
            running.append((ends, slot))
        if not running:  # nothing runs and nothing may start: only limits below 1 do that
            raise ValueError(f"{waiting[0].host} can never start under {limits}")
        now = min(ends for ends, _ in running)
        running = [(ends, r) for ends, r in running if ends > now]
    return tuple(out)


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
    whatever the DAGs and sites are."""
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
