"""What both review pages show, computed once: the fleet's units grouped by identical change,
apply's schedule, the healthy hosts, the counts. review_html.py and review_md.py only render
a :class:`Review`; neither groups, orders or counts anything itself.

Grouping: two units are in one group when apply would make the same changes on both: the
same steps (kind, automatic or manual, whether it interrupts mail flow) with the same property
changes, before and after. A step's description names host specifics (a NIC's alias, the
server), so it is not part of the key; the per-host detail under the group shows it. Units with
findings but no step group by their rules and what stands in each one's way; units with
neither are the healthy ones, listed in one line.

The schedule is agent.planning.schedule's, the very scheduler apply runs, for the apply command
the pages print (apply's default limits).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from agent.fixes import registry
from agent.model.findings import Level
from agent.model.plan import RESTART_KIND, Action, Blocker, HostPlan, Plan, Resolution
from agent.planning.render import RenderedHost, without_undo
from agent.planning.schedule import DEFAULT_LIMITS, FleetSchedule, Limits, Turn, fleet_schedule
from agent.report.display import change_before, format_value, plural

NAMES_SHOWN = 10  # names in a sentence; the rest are counted


def minutes(seconds: float) -> str:
    """An estimate in words: 'about 2 minutes', 'about 4 hours 10 minutes'."""
    total = round(seconds / 60)
    if seconds and total == 0:
        return "under a minute"
    hours, mins = divmod(total, 60)
    parts = ([plural(hours, "hour")] if hours else []) + (
        [plural(mins, "minute")] if mins or not hours else []
    )
    return "about " + " ".join(parts)


@dataclass(frozen=True, slots=True)
class GroupStep:
    """One step as every unit of its group has it."""

    kind: str
    changes: tuple[str, ...]  # "Property: before -> after"
    undo: tuple[str, ...]  # "Property: after -> before", what rollback.ps1 puts back
    no_undo: str | None  # why the step has no undo step, where its fix says so
    disruptive: bool
    manual: bool

    @property
    def restart(self) -> bool:
        return self.kind == RESTART_KIND

    @property
    def text(self) -> str:
        """The step in a few words for the group's title."""
        if self.restart:
            return "then restart MSExchangeTransport" + (" (by a person)" if self.manual else "")
        # One setting reads best as itself; a step that sets several (a new connector) by its
        # kind, the table under the title shows every setting.
        what = self.changes[0] if len(self.changes) == 1 else self.kind
        if len(self.changes) > 1:
            what += f" ({len(self.changes)} settings)"
        return what + (" (MANUAL)" if self.manual else "")


@dataclass(frozen=True, slots=True)
class HostEntry:
    """A unit under its group: its plan, its turn in apply's run, its scripts' sha256."""

    plan: HostPlan
    turn: Turn | None  # None: apply changes nothing here
    risks: tuple[str, ...] = ()  # the risk sentences its steps' fixes declare (Step.risk)

    @property
    def name(self) -> str:
        return self.plan.organization if self.plan.level is Level.ORGANIZATION else self.plan.host

    @property
    def anchor(self) -> str:
        # directory: the plan's safe, unique name (letters, digits, '.', '_', '-').
        return f"host-{self.plan.directory}"


@dataclass(frozen=True, slots=True)
class Group:
    number: int
    steps: tuple[GroupStep, ...]
    hosts: tuple[HostEntry, ...]
    rules: tuple[str, ...]  # the rules of the findings on its units
    remaining: tuple[str, ...]  # for a group without steps: "rule: what stands in its way"
    covered: bool = False  # without steps of its own, but an organisation change is for its servers
    partial: bool = False  # without steps: a fact area could not be collected on its servers

    @property
    def anchor(self) -> str:
        return f"group-{self.number}"

    @property
    def organization(self) -> bool:
        return any(h.plan.level is Level.ORGANIZATION for h in self.hosts)

    @property
    def count(self) -> str:
        if self.organization:
            return plural(len(self.hosts), "organisation")
        return plural(len(self.hosts), "server")

    @property
    def summary(self) -> str:
        """'40 servers: RegisterThisConnectionsAddress: False -> True; register-dns-client, then
        restart MSExchangeTransport'."""
        automatic = list(self.steps)
        if not automatic:
            if self.partial and not self.hosts[0].plan.findings:
                return f"{self.count}: no finding, but not everything was looked at (see Not judged)"
            if self.covered and not self.remaining:
                own, them = ("its", "it") if len(self.hosts) == 1 else ("their", "them")
                return f"{self.count}: no step of {own} own; the organisation change is for {them}"
            return f"{self.count}: no step by exfix; {'; '.join(self.remaining) or 'findings remain'}"
        parts = [s.text for s in automatic]
        text = "; ".join(p for p, s in zip(parts, automatic, strict=True) if not s.restart)
        restart = next((p for p, s in zip(parts, automatic, strict=True) if s.restart), None)
        if restart:
            text = f"{text}, {restart}" if text else restart.removeprefix("then ")
        return f"{self.count}: {text}"

    @property
    def restarts(self) -> bool:
        return any(s.disruptive and not s.manual for s in self.steps)

    @property
    def outage_s(self) -> int | None:
        """Estimated seconds each of its units is out of mail flow (the same for all: the same
        steps)."""
        turns = [h.turn for h in self.hosts if h.turn is not None]
        return turns[0].outage_s if turns else 0

    @property
    def rollback(self) -> tuple[GroupStep, ...]:
        """The automatic steps with something to undo, in the order rollback.ps1 undoes them
        (last first)."""
        return tuple(s for s in reversed(self.steps) if not s.manual and s.undo)


@dataclass(frozen=True, slots=True)
class Script:
    unit: HostEntry
    name: str
    path: str  # hosts/<directory>/<name>
    sha256: str | None
    text: str

    @property
    def lines(self) -> tuple[str, ...]:
        lines = self.text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return tuple(lines)


@dataclass(frozen=True, slots=True)
class Review:
    plan: Plan
    plan_json: str
    apply_command: str
    groups: tuple[Group, ...]  # units with a step or a finding, organisations first
    healthy: tuple[str, ...]  # hosts with no finding and no step
    schedule: FleetSchedule
    scripts: tuple[Script, ...]
    findings: int
    automatic: int
    changed: int  # hosts with an automatic step
    shared: bool  # an organisation unit has an automatic step
    manual: int
    advisories: int
    prevented: int
    refused: int
    outstanding: int
    partial: tuple[str, ...]
    no_undo: tuple[str, ...]
    rules: tuple[tuple[str, tuple[HostEntry, ...]], ...]  # rule -> the units where it fired
    order: tuple[tuple[Turn, HostEntry], ...]  # the schedule's turns with their units
    servers: tuple[tuple[HostEntry, Group | None], ...]  # every unit by name, with its group

    @property
    def change_groups(self) -> int:
        """Groups of servers that apply changes."""
        return sum(1 for g in self.groups if g.steps and not g.organization)

    @property
    def restarting(self) -> tuple[str, ...]:
        return tuple(t.host for t in self.schedule.restarts)

    @property
    def limits(self) -> Limits:
        return self.schedule.limits


def apply_command(plan: Plan, plan_json: str) -> str:
    """The exact command that applies this plan (``--allow-restart`` when a step restarts
    MSExchangeTransport). The path is quoted for a POSIX shell or PowerShell alike."""
    restart = " --allow-restart" if any(a.disruptive and not a.manual for a in plan.actions) else ""
    return f"exfix apply {shlex.quote(plan_json)} --approve {plan.digest}{restart}"


def _step(action: Action) -> GroupStep:
    return GroupStep(
        kind=action.kind,
        changes=tuple(
            f"{c.property}: {change_before(action, c)} \u2192 {format_value(c.after)}" for c in action.changes
        ),
        undo=tuple(
            f"{c.property}: {format_value(c.after)} \u2192 {format_value(c.before)}" for c in action.changes
        )
        if action.rollback
        else (),
        no_undo=registry.step(action.kind)[1].no_undo if not action.rollback else None,
        disruptive=action.disruptive,
        manual=action.manual,
    )


# What stands in the way of a finding no step addresses, in the reader's words.
BLOCKER_TEXT: Mapping[Blocker, str] = {
    Blocker.VARIABLE: "a value only you can choose",
    Blocker.REFUSED: "exfix left its step out: it would break something else",
    Blocker.MANUAL: "a manual step",
    Blocker.ADVICE: "outside what exfix changes",
    Blocker.CAUSE: "its cause is not fixed",
}


def _key(unit: HostPlan) -> tuple[object, ...]:
    if unit.actions:
        return (
            unit.level.value,
            tuple(
                (a.kind, a.manual, a.disruptive, tuple((c.property, c.before, c.after) for c in a.changes))
                for a in unit.actions
            ),
        )
    blockers = tuple(sorted({(o.rule_id, o.blocker.value) for o in unit.outstanding}))
    rules = tuple(sorted({f.rule_id for f in unit.findings}))
    return (unit.level.value, "remaining", blockers, rules, bool(unit.failed_areas))


def _remaining(unit: HostPlan) -> tuple[str, ...]:
    items = {(o.rule_id, BLOCKER_TEXT[o.blocker]) for o in unit.outstanding}
    return tuple(f"{rule}: {why}" for rule, why in sorted(items))


def build_review(plan: Plan, scripts: Mapping[str, RenderedHost] | None, plan_json: str,
                 limits: Limits = DEFAULT_LIMITS) -> Review:  # fmt: skip
    """The review of ``plan``; ``scripts`` by unit directory (agent.planning.render_plan; None:
    the review without its scripts, as the command line's text shows it), ``plan_json`` the
    path of plan.json as the apply command names it."""
    schedule = fleet_schedule(plan, limits)
    turns = {(t.organization, t.host): t for t in schedule.turns}
    entries = {}
    for u in plan.units:
        name = u.organization if u.level is Level.ORGANIZATION else u.host
        risks = tuple(dict.fromkeys(r for a in u.actions if (r := registry.step(a.kind)[1].risk) is not None))
        entries[u.directory] = HostEntry(u, turns.get((u.level is Level.ORGANIZATION, name)), risks)
    by_turn = {(e.turn.organization, e.turn.host): e for e in entries.values() if e.turn is not None}
    grouped: dict[tuple[object, ...], list[HostPlan]] = {}
    healthy: list[str] = []
    for unit in plan.units:
        if not unit.actions and not unit.findings and not unit.failed_areas and unit.level is Level.HOST:
            healthy.append(unit.host)
        elif unit.actions or unit.findings or unit.failed_areas:
            grouped.setdefault(_key(unit), []).append(unit)
    shared_for = {s for o in plan.organizations if o.automatic for s in o.servers}
    groups = []
    # The groups that change something first, the largest first; the plan's order inside each.
    ordered = sorted(grouped.values(), key=lambda us: (us[0].level is not Level.ORGANIZATION,
                                                        not us[0].actions, -len(us)))  # fmt: skip
    for number, units in enumerate(ordered, start=1):
        groups.append(
            Group(
                number=number,
                steps=tuple(_step(a) for a in units[0].actions),
                hosts=tuple(entries[u.directory] for u in units),
                rules=tuple(sorted({f.rule_id for u in units for f in u.findings})),
                remaining=() if units[0].actions else _remaining(units[0]),
                covered=not units[0].actions and all(u.host in shared_for for u in units),
                partial=not units[0].actions and bool(units[0].failed_areas),
            )
        )
    by_rule: dict[str, list[HostEntry]] = {}
    for unit in plan.units:
        for rule in dict.fromkeys(f.rule_id for f in unit.findings):
            by_rule.setdefault(rule, []).append(entries[unit.directory])
    script_list = []
    for unit in plan.units:
        if scripts is None:
            break
        digests = dict(unit.scripts)
        for name, text in scripts[unit.directory].texts().items():
            script_list.append(Script(entries[unit.directory], name, f"hosts/{unit.directory}/{name}",
                                      digests.get(name), text))  # fmt: skip
    consequences = [c for u in plan.units for c in u.consequences]
    group_of = {h.plan.directory: g for g in groups for h in g.hosts}
    servers = tuple(
        sorted(((e, group_of.get(d)) for d, e in entries.items()), key=lambda p: p[0].name.casefold())
    )
    return Review(
        plan=plan,
        plan_json=plan_json,
        apply_command=apply_command(plan, plan_json),
        groups=tuple(groups),
        healthy=tuple(healthy),
        schedule=schedule,
        scripts=tuple(script_list),
        findings=sum(len(u.findings) for u in plan.units),
        automatic=sum(1 for a in plan.actions if not a.manual),
        changed=sum(1 for h in plan.hosts if h.automatic),
        shared=any(o.automatic for o in plan.organizations),
        manual=sum(1 for a in plan.actions if a.manual),
        advisories=sum(len(u.advisories) for u in plan.units),
        prevented=sum(1 for c in consequences if c.resolution is Resolution.PREVENTED),
        refused=sum(1 for c in consequences if c.resolution is Resolution.REFUSED),
        outstanding=sum(len(u.outstanding) for u in plan.units),
        partial=tuple(h.host for h in plan.hosts if h.failed_areas),
        no_undo=without_undo(a for a in plan.actions if not a.manual),
        rules=tuple((rule, tuple(hosts)) for rule, hosts in sorted(by_rule.items())),
        order=tuple((t, by_turn[(t.organization, t.host)]) for t in schedule.turns),
        servers=servers,
    )
