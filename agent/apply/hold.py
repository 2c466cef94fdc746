"""Holding hosts before collecting them, so that apply may take the facts collected under the hold.

apply's stale check collects every planned host again because the facts a plan was made from
may be old: another exfix run, from any machine, or a person at the console may have changed
the host since. A caller that collects, plans and applies in one go (a playbook that applies:
agent/workflow/runner.py) closes the first gap by taking the hosts' locks (agent/apply/lock.py:
this machine's flock and the marker on the server) before it collects::

    with hold_hosts(targets, credentials, journal=path, purpose="playbook X") as held:
        report = scan_fleet(targets, ...)  # begun after the markers were taken
        plan = build_plan(...)
        apply_plan(plan, targets, credentials, approve=plan.digest, held=held, collected=facts)

While a host is held no other exfix run changes it, so the facts collected under the hold are
those the stale check would collect again: apply takes them instead (:func:`reusable`) for each
planned host the hold holds, and still recomputes every action's fingerprint from them (a
stored plan of another digest is refused when its host drifted since it was made). What no
lock keeps out, a person changing the server by hand between the collection and the change, is
what each step's before-read at execute time catches (agent/apply/steps.py): a value that is
not the one the plan expects stops the host before anything on it is changed.

The hold and the apply under it are one run of the journal: ``hold``/``taken`` (its hosts and
purpose) and the ``lock`` records, with an empty ``plan_digest`` (no plan exists yet); then
apply's ``start`` (with the digest and ``held_since``), ``unlock`` for the held hosts the plan
does not change, the ``stale-check`` records, and so on as in any apply. A hold that no apply
used lets go of its hosts at its end and journals ``end`` (detail ``applied``: false), so that
a marker its unlock could not remove is known to be over (lock.py's ended runs). The markers
are let go on every path: leaving the ``with`` block for any reason (an exception, Ctrl-C)
releases what is still held, and apply_plan lets go of them at its end as of its own.

A host that cannot be held (another run holds it, its marker cannot be reached) is left out
(RunLocks ``partial``): the caller's collection reports it as it would anyway, and if the plan
changes it, apply takes its locks as it does for any plan, refusing when another run holds it,
and collects it again for the stale check.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from agent.apply._context import EventHook, Recorder, open_host
from agent.apply.journal import Journal, JournalEntry, utc_now
from agent.apply.lock import Holder, LockTarget, RunLocks, ended_runs, this_machine
from agent.errors import UsageError, one_line
from agent.inventory import CredentialResolver
from agent.model.facts import HostFacts
from agent.model.target import HostTarget
from agent.planning.schedule import DEFAULT_APPLY_FORKS
from agent.transport.connection import HostConnection

# What the marker's ``plan`` holds while no plan exists (agent/apply/lock.py).
BEFORE_PLANNING = "before planning"


def reusable(
    planned: Iterable[str], held: Collection[str], collected: Mapping[str, HostFacts]
) -> dict[str, HostFacts]:
    """The facts apply's stale check may take instead of collecting again: those of each
    planned host that the run held before the caller began collecting (``held``: the hold's
    hosts) and that the collection reached. Any other planned host is collected again."""
    return {
        name: collected[name]
        for name in planned
        if name in held and name in collected and collected[name].host == name
    }


def _reach(target: HostTarget, credentials: CredentialResolver) -> HostConnection:
    # The credential resolved here, in the host's own worker: one that cannot be resolved
    # leaves that host out of the hold (a CredentialError), as a scan reports it for that host.
    return open_host(target, credentials.resolve(target))


class HostHold:
    """The locks of a set of hosts, taken before the caller collects them (module docstring).
    Made by :func:`hold_hosts`; a context manager whose end lets go of whatever is still held.
    One apply_plan may run under it (``held=``)."""

    def __init__(self, journal: Journal, owned: bool, rec: Recorder) -> None:
        self._journal = journal
        self._owned = owned
        self._rec = rec
        self._locks: RunLocks | None = None
        self.since = ""  # when every marker had been taken (UTC, ISO 8601)
        self._used = False
        self._released = False

    def _take(self, targets: Sequence[LockTarget], holder: Holder, forks: int) -> None:
        locks = RunLocks(self._record, self._journal.path, holder, targets,
                         ended=ended_runs(self._journal.path), forks=forks, partial=True)  # fmt: skip
        self._locks = locks.__enter__()
        self.since = utc_now()

    @property
    def _held(self) -> RunLocks:
        if self._locks is None:
            raise UsageError("the hosts are not held")
        return self._locks

    @property
    def run(self) -> str:
        return self._rec.run

    @property
    def operator(self) -> str:
        return self._rec.operator

    @property
    def ticket(self) -> str | None:
        return self._rec.ticket

    @property
    def journal(self) -> Path:
        return self._journal.path

    @property
    def hosts(self) -> frozenset[str]:
        """The hosts held now (both locks)."""
        return frozenset() if self._released else self._held.held

    @property
    def missed(self) -> Mapping[str, BaseException]:
        """The hosts that could not be held, and why."""
        return dict(self._held.missed)

    def _record(self, phase: str, result: str, **extra: Any) -> JournalEntry:
        # The run's recorder of the moment: the hold's before an apply, then apply's (with the
        # plan's digest), so that every unlock after apply's start names the plan.
        return self._rec.record(phase, result, **extra)

    def begin_apply(self, digest: str, on_event: EventHook | None, cancel: threading.Event) -> Recorder:
        """For apply_plan: the run's recorder for the plan of ``digest``. Raises UsageError
        when the hold served an apply already or was let go."""
        if self._used or self._released:
            raise UsageError("a hold of hosts serves one apply, before it is released")
        self._used = True
        self._rec = Recorder(self._journal, self._rec.run, self._rec.operator, self._rec.ticket, digest,
                             on_event, cancel)  # fmt: skip
        return self._rec

    def let_go(self, hosts: Collection[str] | None = None) -> None:
        """Release ``hosts`` (default: every host still held); the journal stays open."""
        self._held.release(hosts)

    def release(self, error: BaseException | None = None) -> None:
        """Let go of every host still held; the end of a hold no apply used is journaled
        (``failed`` with ``error``, the exception that ended it). Idempotent."""
        if self._released:
            return
        self._released = True
        try:
            if self._locks is not None:
                self._locks.release()
            if not self._used:
                why = None if error is None else one_line(f"{type(error).__name__}: {error}")
                self._rec.record("end", "ok" if error is None else "failed", error=why,
                                 detail={"applied": False})  # fmt: skip
        finally:
            if self._owned:
                self._journal.close()

    def __enter__(self) -> HostHold:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release(exc)


def hold_hosts(
    targets: Sequence[HostTarget],
    credentials: CredentialResolver,
    *,
    journal: Journal | str | os.PathLike[str],
    purpose: str,
    operator: str,
    ticket: str | None = None,
    on_event: EventHook | None = None,
    forks: int = DEFAULT_APPLY_FORKS,
) -> HostHold:
    """Take the locks of ``targets`` (``forks`` hosts at once) before the caller collects them,
    and return the hold (use it in a ``with`` block). ``purpose`` says why, in the marker, for
    another operator's refusal ("playbook dns-451-auto, ticket CHG0042"). A host that cannot be
    held is left out (:attr:`HostHold.missed`); nothing here refuses. Raises what opening the
    journal raises (UnsafePathError, exit 1), and KeyboardInterrupt with nothing held."""
    owned = not isinstance(journal, Journal)
    opened = Journal(journal) if not isinstance(journal, Journal) else journal
    # No plan yet, so no digest: the records until apply's start have an empty plan_digest.
    hold = HostHold(opened, owned, Recorder(opened, uuid.uuid4().hex, operator, ticket, "", on_event))
    try:
        hold._record("hold", "taken", detail={"purpose": purpose, "hosts": [t.name for t in targets]})
        holder = Holder(hold.run, operator, this_machine(), os.getpid(), f"{BEFORE_PLANNING}: {purpose}",
                        utc_now())  # fmt: skip
        # The Exchange version is not known before the scan: the marker's path is found under
        # the v15 Setup key, else the v14 one (lock.marker_of), as every exfix finds it.
        hold._take([LockTarget(t.name, None, functools.partial(_reach, t, credentials)) for t in targets],
                   holder, forks)  # fmt: skip
    except BaseException as exc:
        hold.release(exc)
        raise
    return hold


__all__ = ["BEFORE_PLANNING", "HostHold", "hold_hosts", "reusable"]
