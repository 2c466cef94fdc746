"""``exfix rollback JOURNAL``: undo a journaled apply from the journal alone.

From the apply run (the last one in the journal unless ``run`` names another), every action
whose ``execute`` record says ``started`` and that no later record shows undone (a
``rollback-verify``/``ok``, or a ``rollback`` that found it ``unchanged`` or with ``no-undo``)
is undone, last first, by the same step machine as apply's own rollback (agent/apply/steps.py):
read first; run the journaled rollback calls only where the property is not at the journaled
before-state; read again and compare; one MSExchangeTransport restart at the end when the
apply restarted it and a restored setting only takes effect at the next one.

The journal is a file someone hands exfix, so its calls are read as strictly as plan.json's
and only the cmdlets exfix's plans use to undo are accepted (:data:`UNDO_CMDLETS`).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.apply._context import EventHook, Recorder, open_host
from agent.apply.execute import undo
from agent.apply.journal import Journal, JournalEntry, read_journal, utc_now
from agent.apply.lock import Holder, LockTarget, RunLocks, ended_runs, this_machine
from agent.apply.results import HostRollback, RollbackReport
from agent.apply.run import current_operator
from agent.apply.steps import UndoItem
from agent.errors import (
    FactsFileError,
    HostError,
    HostLockedError,
    RefusedError,
    RemoteCommandError,
    RestartNotAllowedError,
    UsageError,
)
from agent.fixes.registry import KINDS
from agent.inventory import CredentialResolver
from agent.model.command import CmdletCall
from agent.model.credential import Credential
from agent.model.plan import (
    Change,
    PlanSource,
    SourceKind,
    call_from_dict,
    change_from_dict,
    value_from_json,
)
from agent.model.target import HostTarget

UNDO_CMDLETS = frozenset(
    c.lower()
    for c in (
        "Set-DnsClient", "Set-DnsClientServerAddress", "Set-TransportService", "Set-TransportServer",
        "Set-SendConnector", "Remove-SendConnector", "Restart-Service",
        # The firewall fixes' undo: the block rule on again, the allow rule exfix added removed.
        "Enable-NetFirewallRule", "Remove-NetFirewallRule",
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class JournaledApply:
    """What a journal says about one apply run."""

    run: str
    plan_digest: str
    source: PlanSource | None
    pending: tuple[tuple[str, tuple[UndoItem, ...]], ...]  # host -> items, in execution order
    restart_ran: tuple[str, ...]  # hosts where the apply started a transport restart
    touched: tuple[str, ...] = ()  # every host the run's records name

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(h for h, _ in self.pending)


def _last_apply(entries: Sequence[JournalEntry]) -> str | None:
    """The last apply run that changed something (ran a step); else the last apply run. A
    refused run or one with nothing to do is never the one to undo when another is."""
    runs = [e.run for e in entries if e.phase == "start" and e.result == "ok" and e.get("undoes") is None]
    changed = {e.run for e in entries if e.phase == "execute" and e.get("undoes") is None}
    acting = [r for r in runs if r in changed]
    return acting[-1] if acting else (runs[-1] if runs else None)


def read_apply(path: str | os.PathLike[str], run: str | None = None) -> JournaledApply:
    """The apply run ``run`` (default: the last) of journal ``path`` and what is left to undo."""
    source = str(path)
    entries = read_journal(path)
    chosen = run or _last_apply(entries)
    if chosen is None:
        raise FactsFileError(source, "holds no apply run")
    mine = [e for e in entries if e.run == chosen and e.get("undoes") is None]
    if not any(e.phase == "start" for e in mine):
        raise FactsFileError(source, f"holds no apply run {chosen!r}")
    start = next(e for e in mine if e.phase == "start")
    undone = {
        (e.host, e.action)
        for e in entries
        if (e.run == chosen or e.get("undoes") == chosen)
        and ((e.phase == "rollback" and e.result in ("unchanged", "no-undo"))
             or (e.phase == "rollback-verify" and e.result == "ok"))
    }  # fmt: skip
    befores = {(e.host, e.action): e for e in mine if e.phase == "before" and e.result == "ok"}
    pending: dict[str, list[UndoItem]] = {}
    restart_ran: set[str] = set()
    for entry in mine:
        if (
            entry.phase != "execute"
            or entry.result != "started"
            or entry.host is None
            or entry.action is None
        ):
            continue
        before = befores.get((entry.host, entry.action))
        if before is None:
            problem = f"action {entry.action!r} on {entry.host!r} ran with no before-state record"
            raise FactsFileError(source, problem, key="before")
        item = _item(source, before)
        if item.is_restart:
            restart_ran.add(entry.host)
        if (entry.host, entry.action) in undone:
            continue
        pending.setdefault(entry.host, []).append(item)
    return JournaledApply(
        run=chosen,
        plan_digest=start.plan_digest,
        source=_source(start),
        pending=tuple((h, tuple(items)) for h, items in pending.items()),
        restart_ran=tuple(sorted(restart_ran)),
        touched=tuple(dict.fromkeys(e.host for e in mine if e.host is not None)),
    )


def _source(start: JournalEntry) -> PlanSource | None:
    raw = (start.get("detail") or {}).get("source")
    if not isinstance(raw, dict):
        return None
    try:
        return PlanSource(SourceKind(raw.get("kind")), str(raw.get("value")))
    except ValueError:
        return None


def _item(source: str, entry: JournalEntry) -> UndoItem:
    where = f"{entry.host}/{entry.action}"
    detail: Any = entry.get("detail")
    if not isinstance(detail, dict):
        raise FactsFileError(source, "a before record without its detail", key=where)
    kind = detail.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise FactsFileError(source, "unknown action kind", key=f"{where}.kind")
    read_raw = detail.get("read_back")
    read_back = (
        None if read_raw is None else call_from_dict(read_raw, source=source, key=f"{where}.read_back")
    )
    if read_back is not None and not read_back.cmdlet.lower().startswith("get-"):
        raise FactsFileError(source, f"{read_back.cmdlet} is not a read", key=f"{where}.read_back")
    rollback: list[CmdletCall] = []
    for i, raw in enumerate(_list(source, detail.get("rollback"), f"{where}.rollback")):
        call = call_from_dict(raw, source=source, key=f"{where}.rollback[{i}]")
        if call.cmdlet.lower() not in UNDO_CMDLETS:
            raise FactsFileError(source, f"{call.cmdlet} is not a cmdlet exfix undoes with",
                                 key=f"{where}.rollback[{i}]")  # fmt: skip
        rollback.append(call)
    changes: list[Change] = [
        change_from_dict(raw, source=source, key=f"{where}.changes[{i}]")
        for i, raw in enumerate(_list(source, detail.get("changes"), f"{where}.changes"))
    ]
    before_raw = entry.get("before")
    before = None
    if before_raw is not None:
        if not isinstance(before_raw, dict) or set(before_raw) != {c.property for c in changes}:
            raise FactsFileError(source, "the before-state does not name the changed properties",
                                 key=f"{where}.before")  # fmt: skip
        before = tuple(
            (c.property, value_from_json(before_raw[c.property], source=source, key=f"{where}.before.{p}"))
            for c in changes
            for p in (c.property,)
        )
    return UndoItem(entry.action or "", kind, read_back, tuple(changes), tuple(rollback), before,
                    bool(detail.get("restart_required")))  # fmt: skip


def _list(source: str, value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise FactsFileError(source, "must be a list", key=key)
    return value


def rollback_journal(
    path: str | os.PathLike[str],
    targets: Sequence[HostTarget],
    credentials: CredentialResolver,
    *,
    run: str | None = None,
    hosts: Sequence[str] = (),
    allow_restart: bool = False,
    operator: str | None = None,
    ticket: str | None = None,
    on_event: EventHook | None = None,
    break_lock: str | None = None,
) -> RollbackReport:
    """Undo what apply run ``run`` (default: the journal's last) changed and did not undo, on
    every host or on ``hosts``; journaled in the same file. Raises RefusedError (exit 4,
    nothing changed) for a host not in the inventory, RestartNotAllowedError when the undo needs
    the MSExchangeTransport restart and ``allow_restart`` is False, HostLockedError (exit 4)
    when another run holds a host (``break_lock``: remove a marker a killed run left, as for
    apply), FactsFileError (exit 1) for a journal it cannot trust."""
    applied = read_apply(path, run)
    unknown = [h for h in hosts if h not in applied.touched]
    if unknown:
        raise UsageError(f"host {unknown[0]!r} does not appear in apply run {applied.run}")
    chosen = [(h, items) for h, items in applied.pending if not hosts or h in hosts]
    known = {t.name: t for t in targets}
    for host, _ in chosen:
        if host not in known:
            raise RefusedError(
                f"refused, nothing changed: host {host!r} of the journal is not in the inventory"
            )
    for host, items in chosen:
        needs_restart = host in applied.restart_ran and any(i.restart_required and i.rollback for i in items)
        if needs_restart and not allow_restart:
            raise RestartNotAllowedError(
                f"refused, nothing changed: undoing the changes on {host} needs a MSExchangeTransport "
                "restart (it was restarted with them) and interrupts mail flow; "
                "give --allow-restart to allow it"
            )
    with Journal(path) as journal:
        rec = Recorder(journal, uuid.uuid4().hex, operator or current_operator(), ticket,
                       applied.plan_digest, on_event, undoes=applied.run)  # fmt: skip
        rec.record("start", "rollback", detail={"hosts": [h for h, _ in chosen]})
        # Each host is locked as apply locks it (agent/apply/lock.py) while it is undone: no apply
        # or other rollback changes it meanwhile. The marker of the run being undone is taken
        # over when that run ended (its end is journaled) or its process is gone.
        holder = Holder(rec.run, rec.operator, this_machine(), os.getpid(), applied.plan_digest, utc_now())
        creds = {host: credentials.resolve(known[host]) for host, _ in chosen}
        lock = functools.partial(
            RunLocks, rec.record, journal.path, holder, break_lock=break_lock, action="rollback",
            ended=ended_runs(journal.path), takeover=applied.run,
        )  # fmt: skip
        results = _undo_hosts(rec, applied, chosen, known, creds, lock)
        refused = [r for r in results if r.refused is not None]
        if refused and len(refused) == len(results):
            error = refused[0].refused
            assert error is not None
            rec.record("refused", type(error).__name__, host=error.host, error=str(error))
            raise error
        report = RollbackReport(applied.run, rec.run, applied.plan_digest, str(journal.path),
                                tuple(r.result for r in results))  # fmt: skip
        rec.record("end", "ok" if report.exit_code == 0 else "failed", detail={"exit_code": report.exit_code})
        return report


@dataclass(frozen=True, slots=True)
class _Undone:
    result: HostRollback
    refused: HostLockedError | HostError | RemoteCommandError | None = None


def _undo_hosts(
    rec: Recorder, applied: JournaledApply, chosen: Sequence[tuple[str, Sequence[Any]]],
    known: Mapping[str, HostTarget], creds: Mapping[str, Credential], lock: Callable[..., RunLocks],
) -> list[_Undone]:  # fmt: skip
    results = []
    for host, items in chosen:
        if rec.cancel.is_set():
            # Ctrl-C during an earlier host's undo: the rest is left as the journal says.
            results.append(_Undone(HostRollback(host, (), error="interrupted before this host was started")))
            continue
        reach = functools.partial(open_host, known[host], creds[host])
        locks = lock([LockTarget(host, None, reach)])
        try:
            locks.__enter__()
        except (HostLockedError, HostError, RemoteCommandError) as error:
            # Not undone, and not touched: the next rollback (or a person) finds it as it was.
            rec.record("host", "rollback-failed", host=host, error=str(error))
            results.append(_Undone(HostRollback(host, (), error=str(error)), error))
            continue
        try:
            done = undo(rec, host, items, reach, restart_ran=host in applied.restart_ran)
        finally:
            locks.release()
        result = HostRollback(host, done.steps, error=done.error)
        rec.record("host", "rolled-back" if result.ok else "rollback-failed", host=host)
        results.append(_Undone(result))
    return results
