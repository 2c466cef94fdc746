"""apply_plan: approval, the stale check, the hosts in batches, verification, the report.

Order of a run (each step journaled):

0. under a hold (``held``, agent/apply/hold.py: a caller that took the hosts' locks before it
   collected and planned them, as a playbook that applies does), the hold's ``hold`` and
   ``lock`` records come first, in the same run;
1. ``start``;
2. refusals, before any host is touched (exit 4): the approved digest is not the plan's, the
   plan's content no longer hashes to its digest, a file of the bundle (a script, a page,
   plan.json itself) is not byte for byte what the approved content renders to, a planned host
   is not in the inventory, a disruptive step without ``allow_restart``;
3. the locks of every host with an automatic step (agent/apply/lock.py); another run holding
   one refuses the plan (exit 4). Under a hold, the held hosts the plan does not change are let
   go of first, and only the planned hosts the hold does not hold are locked here;
4. the stale check: every host with an automatic step is collected again and each action's
   fingerprint recomputed with :func:`agent.planning.fingerprint_for`; any difference refuses
   the whole plan (exit 4), a host that cannot be reached stops it too (exit 3), and so does
   a host that answers a collecting command with an error (exit 7; 3 wins when both happen);
   nothing has changed yet. A host held since before the caller collected it is not
   collected again: no other exfix run could change it in between, so its fingerprints are
   recomputed from the facts the caller collected (``collected``), journaled ``fresh`` or
   ``drifted`` with ``"facts": "reused"`` and ``held_since``; a person changing it by hand
   meanwhile is caught by each step's before-read (agent/apply/steps.py), before the change.
   Verification compares with the facts the stale check used, collected or reused;
5. the hosts (agent/apply/execute.py), up to ``forks`` at once (agent/planning/schedule.py).
   A host with a restart takes its restart slot only for the restart: its connection, its
   reads and its non-disruptive steps run as a worker while other servers restart; then it
   waits at its restart gate until no more than ``serial`` servers are out of mail flow, never
   two of one DAG nor the last of an AD site in service, and keeps the slot through the
   restart and its read-back (Running). At most ``serial`` hosts are preparing or waiting at
   their gate at once, so the hosts changed but not yet restarted stay few; the connection of
   the next ``serial`` such hosts in line is opened ahead (authenticated, one runspace pool,
   nothing read). Each host is verified (agent/apply/verify.py) once its steps are done, out
   of the slot. A host that fails is rolled back while the others go on; when more than
   ``max_fail`` hosts have failed, or on an interrupt, the hosts not started are ``skipped``,
   and a host waiting at its gate does not restart: what it changed is undone as for an
   interrupted host and it is ``skipped`` too ("the run stopped before its restart; its
   changes were undone"; ``rollback-failed`` if the undo fails). A failure is counted before
   the slot it held is free, so the host behind it learns that the run stopped, not that the
   slot is free;
6. the locks let go of (``unlock``), the hold's too, on every path; ``end`` with the exit code.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import getpass
import itertools
import os
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from agent.apply._context import EventHook, Recorder, collect, open_host
from agent.apply.execute import Gate, run_host
from agent.apply.hold import HostHold, reusable
from agent.apply.journal import Journal, utc_now
from agent.apply.lock import Holder, LockTarget, RunLocks, ended_runs, this_machine
from agent.apply.plan_file import PlanFile
from agent.apply.results import ApplyReport, HostApply, HostOutcome, StepResult
from agent.apply.steps import Go, Stop
from agent.apply.verify import failing, read_failing, verify_host, verify_queues
from agent.collect.org import OrgFactsCache
from agent.errors import (
    DigestMismatchError,
    HostError,
    HostLockedError,
    RefusedError,
    RemoteCommandError,
    RestartNotAllowedError,
    StalePlanError,
    StaleSetting,
    UnreachableError,
    UsageError,
    one_line,
)
from agent.fixes.fingerprint import fingerprint_for, stale_settings
from agent.fleet import run_fleet
from agent.inventory import CredentialResolver
from agent.model.command import Endpoint
from agent.model.credential import Credential
from agent.model.facts import HostFacts, QueueFacts
from agent.model.plan import HostPlan, Plan
from agent.model.target import HostTarget
from agent.planning import schedule
from agent.transport.connection import HostConnection

DEFAULT_VERIFY_TIMEOUT = 120.0


def current_operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in this environment (containers, services)
        return "unknown"


def apply_plan(
    plan: PlanFile | Plan,
    targets: Sequence[HostTarget],
    credentials: CredentialResolver,
    *,
    approve: str,
    allow_restart: bool = False,
    serial: int = 1,
    max_fail: int = 0,
    verify_timeout: float = DEFAULT_VERIFY_TIMEOUT,
    journal: Journal | str | os.PathLike[str] | None = None,
    operator: str | None = None,
    ticket: str | None = None,
    on_event: EventHook | None = None,
    cancel: threading.Event | None = None,
    forks: int = schedule.DEFAULT_APPLY_FORKS,
    break_lock: str | None = None,
    held: HostHold | None = None,
    collected: Mapping[str, HostFacts] | None = None,
) -> ApplyReport:
    """Apply an approved plan to ``targets`` (an inventory's hosts; the plan's hosts are looked
    up in it by name), verify it, and return the report.

    ``plan`` is a :class:`PlanFile` (read with :func:`read_plan_file`: its scripts on disk are
    checked too, and the journal defaults to ``journal.jsonl`` beside it) or a :class:`Plan`.
    ``on_event`` receives every journal record as it is written. Setting ``cancel`` stops the
    run as Ctrl-C does: the command in flight finishes, the host is rolled back, the hosts not
    started are skipped.

    Every host the run changes is locked for the whole run, before the stale check
    (agent/apply/lock.py): this machine's lock beside the journal, and the change marker on the
    server that another operator's exfix also needs. ``break_lock`` (a run id) first removes a
    marker that still names that run, left by an apply that was killed.

    ``held`` (agent/apply/hold.py: :func:`hold_hosts`): the caller took the hosts' locks before
    it collected and planned them; the run is the hold's (its journal, operator and ticket),
    keeps the hold's locks of the planned hosts, lets go of the others, and takes the usual
    locks of planned hosts the hold could not take. ``collected`` (inventory name -> facts),
    the facts the caller collected under the hold: the stale check takes them for every
    planned host the hold holds instead of collecting it again (it still compares every
    fingerprint), and verification compares with them. The hold's locks are let go of when
    the run ends, however it ends.

    Raises (nothing changed): DigestMismatchError, RestartNotAllowedError, StalePlanError,
    HostLockedError (another run holds a host), RefusedError (exit 4); UnreachableError (exit
    3) when a planned host cannot be reached for its lock or the stale check, RemoteCommandError
    (exit 7) when it answers a locking or collecting command with an error; UsageError for bad
    options. Every other outcome, failures
    and rollbacks included, is in the report (``report.exit_code``).
    """
    if serial < 1 or max_fail < 0 or verify_timeout < 0:
        raise UsageError("serial must be at least 1, max_fail and verify_timeout at least 0")
    plan_file = plan if isinstance(plan, PlanFile) else None
    the_plan = plan.plan if isinstance(plan, PlanFile) else plan
    if held is not None:
        return _apply_held(held, plan_file, the_plan, targets, credentials, collected or {}, approve=approve,
                           allow_restart=allow_restart, serial=serial, max_fail=max_fail,
                           verify_timeout=verify_timeout, journal=journal, operator=operator, ticket=ticket,
                           on_event=on_event, cancel=cancel, forks=forks, break_lock=break_lock)  # fmt: skip
    if collected:
        raise UsageError("collected facts are taken only from a hold of the hosts (held=)")
    if journal is None:
        if plan_file is None:
            raise UsageError("a journal path is needed when the plan is not read from a plan directory")
        journal = plan_file.default_journal
    owned = not isinstance(journal, Journal)
    opened = Journal(journal) if not isinstance(journal, Journal) else journal
    rec = Recorder(opened, uuid.uuid4().hex, operator or current_operator(), ticket, the_plan.digest,
                   on_event, cancel or threading.Event())  # fmt: skip
    started = utc_now()
    try:
        _record_start(rec, plan_file, the_plan, allow_restart, serial, max_fail, verify_timeout)
        by_name = _check_approval(rec, plan_file, the_plan, approve, allow_restart, targets)
        creds = {name: credentials.resolve(target) for name, target in by_name.items()}
        holder = Holder(rec.run, rec.operator, this_machine(), os.getpid(), the_plan.digest, started)
        locks = _take_locks(rec, opened, holder, _lock_targets(the_plan, by_name, creds), break_lock, forks)
        try:
            report, detail = _locked_run(rec, the_plan, by_name, creds, opened, started, ticket,
                                         allow_restart=allow_restart, serial=serial, max_fail=max_fail,
                                         verify_timeout=verify_timeout, forks=forks)  # fmt: skip
        finally:
            locks.release()
        rec.record("end", "ok" if report.exit_code == 0 else "failed", detail=detail)
        return report
    finally:
        if owned:
            opened.close()


def _apply_held(
    held: HostHold, plan_file: PlanFile | None, the_plan: Plan, targets: Sequence[HostTarget],
    credentials: CredentialResolver, collected: Mapping[str, HostFacts], *, approve: str, allow_restart: bool,
    serial: int, max_fail: int, verify_timeout: float, journal: Journal | str | os.PathLike[str] | None,
    operator: str | None, ticket: str | None, on_event: EventHook | None, cancel: threading.Event | None,
    forks: int, break_lock: str | None,
) -> ApplyReport:  # fmt: skip
    """apply_plan under a hold of its hosts (agent/apply/hold.py): the hold's run, journal,
    operator and ticket; its locks for the planned hosts it holds (the others let go of at
    once), the usual locks for the planned hosts it does not hold; and, for the held ones, the
    facts the caller collected under the hold in place of the stale check's collection."""
    path = journal.path if isinstance(journal, Journal) else None if journal is None else Path(journal)
    if path is not None and path != held.journal:
        raise UsageError(f"a run under a hold of hosts writes the hold's journal ({held.journal})")
    if (operator is not None and operator != held.operator) or (ticket is not None and ticket != held.ticket):
        raise UsageError("a run under a hold of hosts has the hold's operator and ticket")
    rec = held.begin_apply(the_plan.digest, on_event, cancel or threading.Event())
    started = utc_now()
    extra = None
    try:
        _record_start(rec, plan_file, the_plan, allow_restart, serial, max_fail, verify_timeout,
                      held_since=held.since)  # fmt: skip
        by_name = _check_approval(rec, plan_file, the_plan, approve, allow_restart, targets)
        creds = {name: credentials.resolve(target) for name, target in by_name.items()}
        wanted = _lock_targets(the_plan, by_name, creds)
        mine = held.hosts
        # The hosts held that this plan does not change are let go of before anything else.
        held.let_go(mine - {t.host for t in wanted})
        holder = Holder(rec.run, rec.operator, this_machine(), os.getpid(), the_plan.digest, started)
        extra = _take_locks(rec, held.journal, holder, [t for t in wanted if t.host not in mine], break_lock,
                            forks)  # fmt: skip
        reuse = reusable((t.host for t in wanted), mine, collected)
        report, detail = _locked_run(rec, the_plan, by_name, creds, rec.journal, started, rec.ticket,
                                     allow_restart=allow_restart, serial=serial, max_fail=max_fail,
                                     verify_timeout=verify_timeout, forks=forks,
                                     reused=_Reused(reuse, held.since))  # fmt: skip
    finally:
        if extra is not None:
            extra.release()
        held.let_go()
    rec.record("end", "ok" if report.exit_code == 0 else "failed", detail=detail)
    return report


def _record_start(
    rec: Recorder, plan_file: PlanFile | None, the_plan: Plan, allow_restart: bool, serial: int,
    max_fail: int, verify_timeout: float, *, held_since: str | None = None,
) -> None:  # fmt: skip
    detail: dict[str, object] = {
        "plan": None if plan_file is None else str(plan_file.path),
        "source": None if the_plan.source is None else the_plan.source.to_dict(),
        "hosts": [h.host for h in the_plan.hosts],
        "allow_restart": allow_restart, "serial": serial, "max_fail": max_fail,
        "verify_timeout": verify_timeout,
    }  # fmt: skip
    if held_since is not None:
        detail["held_since"] = held_since
    rec.record("start", "ok", detail=detail)


def _take_locks(
    rec: Recorder, journal: Journal | Path, holder: Holder, targets: Sequence[LockTarget],
    break_lock: str | None, forks: int,
) -> RunLocks:  # fmt: skip
    """The run's locks of ``targets``, taken; a host that refuses (HostLockedError) or cannot
    be locked (the marker could not be read or made) refuses the run, nothing changed."""
    path = journal.path if isinstance(journal, Journal) else journal
    locks = RunLocks(rec.record, path, holder, targets, break_lock=break_lock, ended=ended_runs(path),
                     forks=forks)  # fmt: skip
    try:
        locks.__enter__()
    except HostLockedError as error:
        raise _refuse(rec, error, error.host) from None
    except (HostError, RemoteCommandError) as error:
        # The marker could not be read or made: nothing was changed, as for the stale check.
        raise _refuse(rec, error, getattr(error, "host", None)) from None
    return locks


@dataclasses.dataclass(frozen=True, slots=True)
class _Reused:
    """Facts the stale check takes instead of collecting: per host, collected under the run's
    hold of it, taken ``since`` (agent/apply/hold.py)."""

    facts: Mapping[str, HostFacts]
    since: str


def _lock_targets(
    plan: Plan, targets: Mapping[str, HostTarget], creds: Mapping[str, Credential]
) -> list[LockTarget]:
    """The hosts the run changes: each unit with an automatic step, through its server."""
    out = []
    for unit in plan.units:
        if unit.automatic:
            reach = functools.partial(open_host, targets[unit.host], creds[unit.host])
            out.append(LockTarget(unit.host, unit.exchange_version, reach))
    return out


def _locked_run(
    rec: Recorder, the_plan: Plan, by_name: dict[str, HostTarget], creds: dict[str, Credential],
    opened: Journal, started: str, ticket: str | None, *, allow_restart: bool, serial: int, max_fail: int,
    verify_timeout: float, forks: int, reused: _Reused | None = None,
) -> tuple[ApplyReport, dict[str, object]]:  # fmt: skip
    """Everything apply does while it holds the hosts' locks: the report, and the ``end``
    record's detail (written once the locks are let go)."""
    fresh = _check_fresh(rec, the_plan, by_name, creds, forks, reused)
    watched = _watched(the_plan, by_name, creds, fresh, forks)
    orgs, verified = _run_organizations(rec, the_plan, by_name, creds, fresh, watched,
                                        verify_timeout=verify_timeout, forks=forks)  # fmt: skip
    failed = sum(1 for o in orgs if o.outcome in (HostOutcome.ROLLED_BACK, HostOutcome.ROLLBACK_FAILED))
    hosts = _run_hosts(rec, the_plan, by_name, creds, fresh, serial=serial, max_fail=max_fail,
                       verify_timeout=verify_timeout, forks=forks, failures=failed,
                       verified=verified)  # fmt: skip
    report = ApplyReport(
        plan_digest=the_plan.digest, run=rec.run, journal=str(opened.path), operator=rec.operator,
        ticket=ticket, started=started, finished=utc_now(), hosts=hosts,
        interrupted=rec.cancel.is_set(), organizations=_verified_units(the_plan, orgs, hosts),
    )  # fmt: skip
    outcomes = {h.host: h.outcome.value for h in hosts}
    detail: dict[str, object] = {"exit_code": report.exit_code, "hosts": outcomes}
    if orgs:
        detail["organizations"] = {o.host: o.outcome.value for o in orgs}
    return report, detail


_Refusal = RefusedError | HostError | RemoteCommandError


def _refuse(rec: Recorder, error: _Refusal, host: str | None = None) -> _Refusal:
    rec.record("refused", type(error).__name__, host=host, error=str(error))
    return error


def _check_approval(
    rec: Recorder, plan_file: PlanFile | None, plan: Plan, approve: str, allow_restart: bool,
    targets: Sequence[HostTarget],
) -> dict[str, HostTarget]:  # fmt: skip
    if plan_file is not None:
        problem = plan_file.approval_problem(approve)
    elif approve.strip().lower() != plan.digest:
        problem = f"the approved digest {approve.strip()[:64]!r} is not this plan's digest {plan.digest}"
    elif plan.compute_digest() != plan.digest:
        problem = f"the plan's content hashes to {plan.compute_digest()}, not to its digest {plan.digest}"
    else:
        problem = None
    if problem is not None:
        raise _refuse(rec, DigestMismatchError(f"refused, nothing changed: {problem}"))
    known = {t.name: t for t in targets}
    by_name: dict[str, HostTarget] = {}
    for host in plan.units:
        if not host.automatic:
            continue
        target = known.get(host.host)
        if target is None:
            raise _refuse(
                rec,
                RefusedError(
                    f"refused, nothing changed: host {host.host!r} of the plan is not in the inventory"
                ),
                host.host,
            )
        by_name[host.host] = target
    # The servers an organisation change is for are verified afterwards (their queues to the
    # domain must drain); one the inventory no longer holds cannot be, and is reported so.
    for unit in plan.organizations:
        by_name.update((s, known[s]) for s in unit.servers if s in known and unit.automatic)
    if not allow_restart:
        for host in plan.units:
            for action in host.automatic:
                if action.disruptive:
                    raise _refuse(rec, RestartNotAllowedError(
                        f"refused, nothing changed: step {action.id} on {host.host} restarts "
                        "MSExchangeTransport and interrupts mail flow; give --allow-restart to allow it"
                    ), host.host)  # fmt: skip
    return by_name


def _check_fresh(
    rec: Recorder, plan: Plan, targets: Mapping[str, HostTarget], creds: Mapping[str, Credential], forks: int,
    reused: _Reused | None = None,
) -> dict[str, HostFacts]:  # fmt: skip
    """Every host with an automatic step, its facts as they are now: collected again, or, where
    ``reused`` has them, those collected under this run's hold of the host (no other exfix
    run could change it since; agent/apply/hold.py). Each action's fingerprint is compared
    with them either way."""
    hosts = [h for h in plan.units if h.automatic]
    orgs = OrgFactsCache()  # the organisation's send connectors once, not once per host
    repeat = plan.probe_repeat
    taken = {} if reused is None else reused.facts

    def facts_of(host: HostPlan) -> HostFacts:
        known = taken.get(host.host)
        return known if known is not None else collect(targets[host.host], creds[host.host], orgs,
                                                       probe_repeat=repeat)  # fmt: skip

    runs = run_fleet(hosts, facts_of, forks=forks)
    fresh: dict[str, HostFacts] = {}
    unreachable: list[tuple[str, BaseException]] = []
    drift: list[StaleSetting] = []
    for run in runs:
        host = run.host
        if run.error is not None or run.value is None:
            error = run.error or RuntimeError("no facts")
            result = "command-failed" if isinstance(error, RemoteCommandError) else "unreachable"
            rec.record("stale-check", result, host=host.host, error=one_line(str(error)))
            unreachable.append((host.host, error))
            continue
        facts = run.value
        fresh[host.host] = facts
        stale = [a for a in host.automatic if fingerprint_for(a.depends_on, facts) != a.fingerprint]
        found = [item for a in stale for item in stale_settings(host.host, a, facts)]
        # "actions" keeps the journal's first form (id and slices, as text); "drift" is the same
        # per setting, as StalePlanError.drift carries it.
        detail = {
            "actions": [f"{a.id} ({', '.join(_ref(r) for r in a.depends_on)})" for a in stale],
            "drift": [item.to_dict() for item in found],
        }
        if host.host in taken and reused is not None:
            # Not collected again: the facts the caller collected while this run held the host.
            since = {"facts": "reused", "held_since": reused.since}
            rec.record("stale-check", "drifted" if stale else "fresh", host=host.host,
                       detail={**detail, **since} if stale else since)  # fmt: skip
        else:
            rec.record("stale-check", "drifted" if stale else "fresh", host=host.host,
                       detail=detail if stale else None)  # fmt: skip
        drift.extend(found)
    if drift:
        error = StalePlanError(tuple(drift))
        rec.record("refused", type(error).__name__, error=str(error),
                   detail={"drift": [item.to_dict() for item in error.drift]})
        raise error
    if unreachable:
        # A host exfix could not talk to outranks one that answered with an error (exit 3
        # before 7, agent.errors.EXIT_PRECEDENCE).
        name, error = next(
            (item for item in unreachable if not isinstance(item[1], RemoteCommandError)), unreachable[0]
        )
        suffix = "apply checked no host for drift and changed nothing"
        if isinstance(error, RemoteCommandError):
            raise _refuse(rec, RemoteCommandError(name, error.cmdlet, f"{error.reason}; {suffix}"))
        reason = (
            error.reason if isinstance(error, HostError) else one_line(f"{type(error).__name__}: {error}")
        )
        raise _refuse(rec, UnreachableError(name, f"{reason}; {suffix}"))
    return fresh


def _ref(ref: object) -> str:
    area = getattr(ref, "area", None)
    key = getattr(ref, "key", "")
    name = area.value if area is not None else str(ref)
    return f"{name} {key}".strip()


def _run_hosts(
    rec: Recorder,
    plan: Plan,
    targets: Mapping[str, HostTarget],
    creds: Mapping[str, Credential],
    fresh: Mapping[str, HostFacts],
    *,
    serial: int,
    max_fail: int,
    verify_timeout: float,
    forks: int,
    failures: int = 0,
    verified: Mapping[str, HostApply] | None = None,
) -> tuple[HostApply, ...]:
    """The hosts, up to ``forks`` at once, in the order agent/planning/schedule.py decides: a
    host with a restart prepares outside the restart slot and waits at its gate for it
    (:class:`_Rollout`); ``failures``: the organisation units that failed already;
    ``verified``: hosts with no step of their own, verified after an organisation change that
    was for them."""
    results: dict[str, HostApply] = {}
    for host in plan.hosts:
        if not host.automatic:
            for action in host.manual:
                rec.record("manual", "not-run", host=host.host, action=action.id,
                           detail={"description": action.description})  # fmt: skip
            after_org = (verified or {}).get(host.host)
            results[host.host] = after_org or HostApply(host.host, HostOutcome.NOTHING_TO_DO)
            rec.record("host", HostOutcome.NOTHING_TO_DO.value, host=host.host,
                       detail=None if after_org is None else {"verified": after_org.verified})  # fmt: skip
    pending = [h for h in plan.hosts if h.automatic]
    slots = {h.host: _slot(h, fresh[h.host]) for h in pending}
    rollout = _Rollout(rec, slots, schedule.Limits(workers=forks, serial=serial), max_fail, failures)

    def change(host: HostPlan, warmed: Future[HostConnection] | None) -> HostApply | _Changed:
        result: HostApply | _Changed | None = None
        try:
            gate = functools.partial(rollout.gate, host.host) if slots[host.host].disruptive else None
            connect = _connector(targets[host.host], creds[host.host], warmed)
            result = _change_host(rec, host, connect, gate)
            return result
        finally:
            rollout.changed(host.host, result)

    def check(changed: _Changed) -> HostApply:
        host = changed.host
        try:
            return _verify_changed(rec, changed, targets[host.host], creds[host.host], fresh[host.host],
                                   verify_timeout, plan.probe_repeat)  # fmt: skip
        finally:
            rollout.verified(host.host)

    # The hosts not started, those with a restart and the others, each in the plan's order:
    # whether a host may start depends only on which of the two it is (schedule.may_start), so
    # the first of each is all the scheduler needs to see, however long the fleet.
    waiting = {kind: collections.deque(h for h in pending if slots[h.host].disruptive is kind)
               for kind in (True, False)}  # fmt: skip
    order = {h.host: i for i, h in enumerate(pending)}
    running: set[Future[HostApply | _Changed]] = set()
    checking: set[Future[HostApply]] = set()
    # The connections of the next hosts with a restart in line, opened while they wait for a
    # place to prepare (at most --serial of them): authenticated, their first runspace pool
    # open, nothing read and nothing changed.
    warm: dict[str, Future[HostConnection]] = {}
    with (
        ThreadPoolExecutor(max_workers=forks, thread_name_prefix="exfix-apply") as pool,
        ThreadPoolExecutor(max_workers=serial, thread_name_prefix="exfix-connect") as connecting,
        rollout.lock,
    ):
        try:
            while waiting[True] or waiting[False] or running or checking:
                why = rollout.stop_reason()
                if why is not None:
                    for host in sorted((*waiting[True], *waiting[False]), key=lambda h: order[h.host]):
                        results[host.host] = HostApply(host.host, HostOutcome.SKIPPED, error=why)
                        rec.record("host", HostOutcome.SKIPPED.value, host=host.host, error=why)
                    waiting[True].clear()
                    waiting[False].clear()
                while True:
                    heads = sorted((q[0] for q in waiting.values() if q), key=lambda h: order[h.host])
                    slot = rollout.next_start([slots[h.host] for h in heads])
                    if slot is None:
                        break
                    host = waiting[slot.disruptive].popleft()
                    future = pool.submit(change, host, warm.pop(host.host, None))
                    running.add(future)
                    future.add_done_callback(rollout.wake)
                for host in itertools.islice(waiting[True], serial):
                    if host.host not in warm:
                        target, credential = targets[host.host], creds[host.host]
                        warm[host.host] = connecting.submit(_warm_up, host, target, credential)
                for future in [f for f in running if f.done()]:
                    running.remove(future)
                    result = future.result()
                    if isinstance(result, _Changed):
                        verifying = pool.submit(check, result)
                        checking.add(verifying)
                        verifying.add_done_callback(rollout.wake)
                    else:
                        results[result.host] = result
                for verifying in [f for f in checking if f.done()]:
                    checking.remove(verifying)
                    checked = verifying.result()
                    results[checked.host] = checked
                if running or checking:
                    # Woken by a host that finished, moved into its slot or out of it; the
                    # timeout only notices an interrupt (the signal handler sets the flag alone).
                    rollout.lock.wait(timeout=_POLL_S)
        except BaseException as exc:
            # A second Ctrl-C in this thread, or a bug: no host at its gate may wait for a
            # slot that nothing will give any more, and none goes on to restart.
            rollout.halt("interrupted" if isinstance(exc, KeyboardInterrupt) else "the run failed")
            raise
        finally:
            for left in warm.values():  # hosts skipped before they started: their pools removed
                left.add_done_callback(_close_warmed)
    return tuple(results[h.host] for h in plan.hosts)


def _close_warmed(future: Future[HostConnection]) -> None:
    if future.exception() is None:
        future.result().close()


def _warm_up(host: HostPlan, target: HostTarget, credential: Credential) -> HostConnection:
    """A connection to ``host`` with the runspace pool of its first step's endpoint open: the
    connection's share of its preparation, done while it waits for a place. On a real server
    an idle pool may be dropped before the host starts (Exchange drops one after about 2
    minutes, pypsrp #203); the transport then opens it again on the first read."""
    first = host.automatic[0]
    endpoint = (first.read_back or first.call).endpoint
    conn = open_host(target, credential)
    try:
        (conn.exchange if endpoint is Endpoint.EXCHANGE else conn.os).open()
    except BaseException:
        conn.close()
        raise
    return conn


def _connector(
    target: HostTarget, credential: Credential, warmed: Future[HostConnection] | None
) -> Callable[[], HostConnection]:
    """The host's connection factory: the warmed connection first (once it is open; if opening
    it failed, a new one, which meets the same problem on the host's first call and reports it
    there), then new connections (after a Reconnect)."""
    pending = [warmed] if warmed is not None else []

    def connect() -> HostConnection:
        while pending:
            try:
                return pending.pop().result()
            except Exception:  # the host's own first call says what is wrong
                break
        return open_host(target, credential)

    return connect


# How often a waiting thread looks at the cancel flag (Ctrl-C sets it from the signal handler,
# which wakes no one): the longest a host at its gate goes on waiting after an interrupt.
_POLL_S = 0.1


class _Rollout:
    """Where every host of the run stands, as the scheduler sees it, under one lock: the hosts
    running (preparing, at their gate, in their restart slot, changing, being verified), those
    at their gate, and the failures so far. The main loop (:func:`_run_hosts`) starts hosts;
    each host's own thread waits at its gate (:meth:`gate`) and gives its slot back
    (:meth:`changed`), so a slot passes from one host to the next without a round through the
    main loop, and a failure is counted before the slot it held is free: a host at its gate
    behind a host that failed learns that the run stopped, never that the slot is free."""

    def __init__(
        self, rec: Recorder, slots: Mapping[str, schedule.Slot], limits: schedule.Limits, max_fail: int,
        failures: int,
    ) -> None:  # fmt: skip
        self.lock = threading.Condition()
        self._rec = rec
        self._slots = slots
        self._order = {name: i for i, name in enumerate(slots)}
        self._limits = limits
        self._sites = schedule.site_sizes(slots.values())
        self._max_fail = max_fail
        self._failures = failures
        self._running: dict[str, schedule.Slot] = {}
        self._at_gate: list[schedule.Slot] = []
        self._halted: str | None = None

    def halt(self, why: str) -> None:
        with self.lock:
            self._halted = why
            self.lock.notify_all()

    def stop_reason(self) -> str | None:
        """Why the run stops (no host starts, and none at its gate restarts), or None."""
        if self._halted is not None:
            return self._halted
        if self._rec.cancel.is_set():
            return "interrupted"
        if self._failures > self._max_fail:
            return f"more than {self._max_fail} host(s) failed"
        return None

    def next_start(self, waiting: Sequence[schedule.Slot]) -> schedule.Slot | None:
        """The host to start now (the caller holds the lock), counted as running."""
        slot = schedule.next_start(waiting, self._running.values(), self._limits)
        if slot is not None:
            self._running[slot.host] = slot
        return slot

    def wake(self, _: object = None) -> None:
        with self.lock:
            self.lock.notify_all()

    def gate(self, host: str) -> Go | Stop:
        """In ``host``'s thread, at its restart gate: wait for its restart slot (Go) or for the
        run to stop (Stop)."""
        slot = self._slots[host]
        with self.lock:
            self._at_gate.append(slot)
            self._at_gate.sort(key=lambda s: self._order[s.host])
            try:
                while True:
                    why = self.stop_reason()
                    if why is not None:
                        return Stop(why)
                    first = schedule.next_restart(self._at_gate, self._running.values(), self._limits,
                                                  self._sites)  # fmt: skip
                    if first is not None and first.host == host:
                        self._running[host] = dataclasses.replace(slot, restarting=True)
                        return Go(cancelled=self._rec.cancel.is_set())
                    self.lock.wait(timeout=_POLL_S)
            finally:
                self._at_gate.remove(slot)
                self.lock.notify_all()  # a place for a host to prepare, or the next at the gate

    def changed(self, host: str, result: HostApply | _Changed | None) -> None:
        """``host``'s steps are over: a failure is counted, then its slot is given back; a host
        to verify stays running (as a worker out of mail flow)."""
        with self.lock:
            if isinstance(result, HostApply) and result.outcome in (
                HostOutcome.ROLLED_BACK, HostOutcome.ROLLBACK_FAILED
            ):  # fmt: skip
                self._failures += 1
            if isinstance(result, _Changed):
                self._running[host] = dataclasses.replace(self._slots[host], disruptive=False)
            else:
                self._running.pop(host, None)
            self.lock.notify_all()

    def verified(self, host: str) -> None:
        with self.lock:
            self._running.pop(host, None)
            self.lock.notify_all()


def _slot(host: HostPlan, facts: HostFacts) -> schedule.Slot:
    disruptive = any(a.disruptive for a in host.automatic)
    return schedule.Slot(host.host, disruptive, facts.exchange.ad_site, facts.exchange.dag)


@dataclasses.dataclass(frozen=True, slots=True)
class _Changed:
    """A host whose steps all ran and read back as planned, waiting for its verification."""

    host: HostPlan
    steps: tuple[StepResult, ...]
    changed_at: datetime.datetime


def _change_host(
    rec: Recorder, host: HostPlan, connect: Callable[[], HostConnection], gate: Gate | None = None
) -> HostApply | _Changed:
    """The host's steps (rolled back on a failure; ``gate``: its restart gate): its final
    result, or _Changed."""
    # The SEND events that show the fix worked are those after the change (the tracking log's
    # -Start); the time is this machine's, in UTC.
    changed_at = datetime.datetime.now(datetime.timezone.utc)
    result = run_host(rec, host, connect, gate)
    if result.outcome is not HostOutcome.DONE:
        rec.record("host", result.outcome.value, host=host.host, error=result.error)
        return HostApply(host.host, result.outcome, result.steps, None, error=result.error)
    return _Changed(host, result.steps, changed_at)


def _verify_changed(
    rec: Recorder, changed: _Changed, target: HostTarget, credential: Credential, before: HostFacts,
    verify_timeout: float, probe_repeat: int,
) -> HostApply:  # fmt: skip
    host = changed.host
    check = verify_host(rec, host, before, lambda: open_host(target, credential),
                        lambda: collect(target, credential, probe_repeat=probe_repeat),
                        timeout=verify_timeout, changed_at=changed.changed_at)  # fmt: skip
    rec.record("host", HostOutcome.DONE.value, host=host.host, error=check.error,
               detail={"verified": check.verified, "new_findings": [f.id for f in check.new]})  # fmt: skip
    return HostApply(host.host, HostOutcome.DONE, changed.steps, check.verified, check.queues,
                     check.remaining, error=check.error, new_findings=check.new, probes=check.probes,
                     tracking=check.tracking)  # fmt: skip


def _watched(
    plan: Plan,
    targets: Mapping[str, HostTarget],
    creds: Mapping[str, Credential],
    fresh: Mapping[str, HostFacts],
    forks: int,
) -> dict[str, tuple[QueueFacts, ...]]:
    """The queues that fail now on each server an organisation change is for (one Get-Queue
    each, before anything changes; the servers the stale check collected already are read from
    its facts): what its verification watches. A server that cannot be read is left out, and
    not verified."""
    own = {h.host for h in plan.hosts if h.automatic}
    names = list(dict.fromkeys(
        s for u in plan.organizations if u.automatic for s in u.servers if s in targets and s not in own
    ))  # fmt: skip

    def read(name: str) -> tuple[QueueFacts, ...]:
        if name in fresh:
            return tuple(q for q in fresh[name].queues if failing(q))
        with open_host(targets[name], creds[name]) as conn:
            return read_failing(conn, plan.host(name).fqdn)

    return {run.host: run.value for run in run_fleet(names, read, forks=forks) if run.value is not None}


def _run_organizations(
    rec: Recorder,
    plan: Plan,
    targets: Mapping[str, HostTarget],
    creds: Mapping[str, Credential],
    fresh: Mapping[str, HostFacts],
    watched: Mapping[str, tuple[QueueFacts, ...]],
    *,
    verify_timeout: float,
    forks: int,
) -> tuple[tuple[HostApply, ...], dict[str, HostApply]]:
    """Each organisation unit, one at a time, through its server; then the servers it was for
    that have no step of their own, verified by the symptom (their queues drain). Returns the
    units' results (``host``: the organisation) and those servers' verifications."""
    results: list[HostApply] = []
    verified: dict[str, HostApply] = {}
    own = {h.host for h in plan.hosts if h.automatic}
    for unit in plan.organizations:
        if not unit.automatic:
            results.append(HostApply(unit.organization, HostOutcome.NOTHING_TO_DO))
            continue
        if rec.cancel.is_set():
            results.append(HostApply(unit.organization, HostOutcome.SKIPPED, error="interrupted"))
            continue
        target, credential = targets[unit.host], creds[unit.host]
        changed_at = datetime.datetime.now(datetime.timezone.utc)
        result = run_host(rec, unit, lambda: open_host(target, credential))  # noqa: B023 - called at once
        rec.record("organization", result.outcome.value, host=unit.host, error=result.error,
                   detail={"organization": unit.organization, "servers": len(unit.servers)})  # fmt: skip
        if result.outcome is not HostOutcome.DONE:
            failed = HostApply(unit.organization, result.outcome, result.steps, None, error=result.error)
            results.append(failed)
            continue
        # The servers it was for, concurrently (reads and Retry-Queue only): a shared change
        # may concern a whole fleet.
        others = [s for s in unit.servers if s not in own]

        def check(server: str) -> HostApply:
            return _verify_only(rec, plan.host(server), targets.get(server), creds.get(server),
                                watched.get(server), verify_timeout, changed_at)  # noqa: B023 - run at once

        checks = [r.value if r.value is not None else _unverified(r.host, r.error) for r in
                  run_fleet(others, check, forks=forks)]  # fmt: skip
        verified.update((c.host, c) for c in checks)
        results.append(HostApply(unit.organization, HostOutcome.DONE, result.steps,
                                 error=next((c.error for c in checks if c.error), None)))  # fmt: skip
    return tuple(results), verified


def _verified_units(
    plan: Plan, orgs: Sequence[HostApply], hosts: Sequence[HostApply]
) -> tuple[HostApply, ...]:
    """An organisation unit that ran is verified when every server it was for is: by its own
    steps' verification, or by the check after the unit for a server with none."""
    by_host = {h.host: h for h in hosts}
    out = []
    for unit, result in zip(plan.organizations, orgs, strict=True):
        if result.outcome is not HostOutcome.DONE:
            out.append(result)
            continue
        checks = [by_host[s].verified for s in unit.servers if s in by_host]
        verified = bool(checks) and all(c is True for c in checks)
        out.append(dataclasses.replace(result, verified=verified))
    return tuple(out)


def _unverified(host: str, error: BaseException | None) -> HostApply:
    why = one_line(f"not verified: {error}" if error is not None else "not verified")
    return HostApply(host, HostOutcome.NOTHING_TO_DO, verified=False, error=why)


def _verify_only(
    rec: Recorder, host: HostPlan, target: HostTarget | None, credential: Credential | None,
    watched: tuple[QueueFacts, ...] | None, verify_timeout: float,
    changed_at: datetime.datetime | None = None,
) -> HostApply:  # fmt: skip
    """A server with no step of its own, after the organisation change that was for it: the
    symptom decides (its failing queues drain, none still fails with a DNS error)."""
    if target is None or credential is None or watched is None:
        why = "not verified: the server's queues could not be read before the change"
        return HostApply(host.host, HostOutcome.NOTHING_TO_DO, verified=False, error=why)
    check = verify_queues(rec, host, host.fqdn, watched, lambda: open_host(target, credential), None,
                          timeout=verify_timeout, changed_at=changed_at)  # fmt: skip
    return HostApply(host.host, HostOutcome.NOTHING_TO_DO, (), check.verified, check.queues, check.remaining,
                     error=check.error, probes=check.probes, tracking=check.tracking)  # fmt: skip


__all__ = ["DEFAULT_VERIFY_TIMEOUT", "apply_plan", "current_operator"]
