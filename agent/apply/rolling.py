"""Which host apply may start next (pure): changes in parallel, restarts rolling.

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

Hosts start in the order given (the plan's), except that one which must wait lets the ones
behind it start: a restart waiting for its DAG partner does not hold up NIC changes elsewhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass


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
