"""What every step of one apply (or rollback) run shares: the journal, who runs it, the cancel
flag, and how a host is reached."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from agent.apply.journal import Journal, JournalEntry, utc_now
from agent.collect.org import OrgFactsCache
from agent.collect.runner import DEFAULT_PUBLIC_NAME, CollectOptions, collect_host
from agent.model.command import CmdletCall
from agent.model.credential import Credential
from agent.model.facts import HostFacts
from agent.model.plan import call_to_dict
from agent.model.target import HostTarget
from agent.transport.connection import HostConnection, connect

EventHook = Callable[[JournalEntry], None]


@dataclass
class Recorder:
    """Writes journal records for one run and passes each to ``on_event``."""

    journal: Journal
    run: str
    operator: str
    ticket: str | None
    plan_digest: str
    on_event: EventHook | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    undoes: str | None = None  # rollback runs: the apply run they undo

    def record(self, phase: str, result: str, *, host: str | None = None, action: str | None = None,
               **extra: Any) -> JournalEntry:  # fmt: skip
        if self.undoes is not None:
            extra.setdefault("undoes", self.undoes)
        entry = JournalEntry(
            time=utc_now(), run=self.run, operator=self.operator, ticket=self.ticket,
            plan_digest=self.plan_digest, host=host, action=action, phase=phase, result=result,
            extra={k: v for k, v in extra.items() if v is not None},
        )  # fmt: skip
        self.journal.write(entry)
        if self.on_event is not None:
            self.on_event(entry)
        return entry


def call_json(call: CmdletCall | None) -> dict[str, Any] | None:
    return None if call is None else call_to_dict(call)


def open_host(target: HostTarget, credential: Credential) -> HostConnection:
    """A new connection to ``target`` under its own host deadline (exfix_host_timeout)."""
    return connect(target, credential)


def collect(
    target: HostTarget, credential: Credential, orgs: OrgFactsCache | None = None, *, probe_repeat: int = 1
) -> HostFacts:
    """Every fact about ``target``, as ``exfix scan`` collects them, on a connection of its own
    (the organisation's facts through ``orgs`` when several hosts are collected at once), with
    as many probe rounds as the plan's findings rest on (Plan.probe_repeat)."""
    options = CollectOptions(
        public_name=target.probe_public_name or DEFAULT_PUBLIC_NAME,
        dns_address_map=target.dns_address_map,
        probe_repeat=probe_repeat,
    )
    with open_host(target, credential) as conn:
        return collect_host(conn, target.name, options, orgs)


@contextlib.contextmanager
def sigint_cancels(cancel: threading.Event) -> Iterator[None]:
    """While the block runs, the first SIGINT (Ctrl-C) sets ``cancel`` instead of raising, so
    the command in flight finishes and apply rolls the host back in order; a second SIGINT
    raises KeyboardInterrupt as usual (apply still records and rolls back what it can).
    Only the main thread can own signal handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
