"""Plain data for the step machine's tests: a three-step host plan, a simulated host that
answers the machine's commands (and can be told to fail any of them), and the machine's
commands written short, so a test can spell out the exact sequence it expects."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.apply.steps import (
    CLOSING_RESTART,
    Ack,
    Answer,
    AwaitSlot,
    Broken,
    Cancel,
    Command,
    Done,
    Execute,
    Go,
    HostRun,
    Interrupted,
    ReadBack,
    Reconnect,
    Record,
    Result,
    Rollback,
    Stop,
    next_step,
)
from agent.model.command import CmdletCall, Endpoint
from agent.model.plan import RESTART_KIND, TRANSPORT_SERVICE, Action, Change, HostPlan, restart_transport_call
from agent.model.remote import RemoteError, RemoteObject
from agent.transport.base import CommandResult

HOST = "ex01.contoso.local"
_FINGERPRINT = "0" * 64

GET_TRANSPORT = CmdletCall(Endpoint.EXCHANGE, "Get-TransportService", (("Identity", "EX01"),))
GET_CONNECTOR = CmdletCall(Endpoint.EXCHANGE, "Get-SendConnector", (("Identity", "Internet"),))
GET_SERVICE = CmdletCall(Endpoint.OS, "Get-Service", (("Name", TRANSPORT_SERVICE),))


def action(
    id: str, kind: str, call: CmdletCall, read_back: CmdletCall | None, changes: tuple[Change, ...],
    rollback: tuple[CmdletCall, ...], *, restart_required: bool = False, manual: bool = False,
) -> Action:  # fmt: skip
    return Action(
        id=id, kind=kind, fix_id=kind, call=call, description=f"{id} as the planner describes it",
        changes=changes, read_back=read_back, rollback=rollback,
        disruptive=kind == RESTART_KIND, restart_required=restart_required, manual=manual,
        finding_ids=(), depends_on=(), fingerprint=_FINGERPRINT,
    )  # fmt: skip


# The plan of transport-external-dns-unresolvable: external lookups to the servers the admin
# chose (takes effect at the next transport restart), the connector to use them, the restart.
A1 = action(
    "01-set-transport-external-dns", "set-transport-external-dns",
    CmdletCall(Endpoint.EXCHANGE, "Set-TransportService",
               (("Identity", "EX01"), ("ExternalDNSAdapterEnabled", False),
                ("ExternalDNSServers", ("8.8.8.8",)))),
    GET_TRANSPORT,
    (Change("ExternalDNSAdapterEnabled", True, False), Change("ExternalDNSServers", (), ("8.8.8.8",))),
    (CmdletCall(Endpoint.EXCHANGE, "Set-TransportService",
                (("Identity", "EX01"), ("ExternalDNSAdapterEnabled", True), ("ExternalDNSServers", None))),),
    restart_required=True,
)  # fmt: skip
A2 = action(
    "02-use-external-dns-on-connector", "use-external-dns-on-connector",
    CmdletCall(Endpoint.EXCHANGE, "Set-SendConnector",
               (("Identity", "Internet"), ("UseExternalDNSServersEnabled", True))),
    GET_CONNECTOR,
    (Change("UseExternalDNSServersEnabled", False, True),),
    (CmdletCall(Endpoint.EXCHANGE, "Set-SendConnector",
                (("Identity", "Internet"), ("UseExternalDNSServersEnabled", False))),),
)  # fmt: skip
A3 = action(
    "03-restart-transport", RESTART_KIND, restart_transport_call(), GET_SERVICE,
    (Change("Status", None, "Running"),), (),
)  # fmt: skip
MANUAL = action(
    "04-set-dns-fault-tolerance", "set-dns-fault-tolerance",
    CmdletCall(Endpoint.OS, "Set-Content", (("Path", "EdgeTransport.exe.config"),)), None, (), (),
    manual=True,
)  # fmt: skip
ACTIONS = (A1, A2, A3)


def host_plan(actions: Iterable[Action] = ACTIONS) -> HostPlan:
    return HostPlan(HOST, "ex01", HOST, "15.2.1118.7", (), tuple(actions), (), _FINGERPRINT)


def short(action_id: str | None) -> str:
    if action_id is None:
        return "-"
    return "restart" if action_id == CLOSING_RESTART else action_id[:2]


def key(command: Command) -> tuple[str, ...]:
    """A command written short: ("read", "01"), ("before", "ok", "01"), ("undo", "02"), ..."""
    if isinstance(command, Record):
        if command.action is None:
            return (command.phase, command.result)
        return (command.phase, command.result, short(command.action))
    if isinstance(command, ReadBack):
        return ("read", short(command.action))
    if isinstance(command, Execute):
        return ("execute", short(command.action))
    if isinstance(command, Rollback):
        return ("undo", short(command.action))
    if isinstance(command, Reconnect):
        return ("reconnect",)
    if isinstance(command, Cancel):
        return ("cancel",)
    if isinstance(command, AwaitSlot):
        return ("await", short(command.action))
    return ("done", command.outcome.value)


# --- what a test expects, in segments ---------------------------------------------------------


def applied(s: str) -> list[tuple[str, ...]]:
    return [("read", s), ("before", "ok", s), ("execute", "started", s), ("execute", s), ("execute", "ok", s),
            ("read", s), ("verify", "ok", s)]  # fmt: skip


def undone(s: str) -> list[tuple[str, ...]]:
    """Found changed, undone, read back as before."""
    return [("read", s), ("rollback", "started", s), ("undo", s), ("rollback", "ok", s), ("read", s),
            ("rollback-verify", "ok", s)]  # fmt: skip


def unchanged(s: str) -> list[tuple[str, ...]]:
    return [("read", s), ("rollback", "unchanged", s)]


def undo_of(s: str) -> list[tuple[str, ...]]:
    """The undo of a step that ran as planned (the restart has no undo)."""
    return [("rollback", "no-undo", s)] if s == "03" else undone(s)


CLOSING = [("rollback", "started", "restart"), ("undo", "restart"), ("rollback", "ok", "restart"),
           ("read", "restart"), ("rollback-verify", "ok", "restart")]  # fmt: skip
STEPS = ("01", "02", "03")


# --- the simulated host -----------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """Answer a command with ``result`` instead of its natural answer; ``happened``: the
    command took effect all the same (a call that ran before the connection dropped)."""

    result: Result
    happened: bool = False


def answer(**values: Any) -> Answer:
    return Answer(CommandResult(objects=(RemoteObject(("Simulated",), values),)))


DENIED = Answer(CommandResult(errors=(
    RemoteError("Access is denied.", "AccessDenied,X", "PermissionDenied"),
)))
DROPPED = Broken("ex01.contoso.local: connection reset by peer")


def initial_values(actions: Iterable[Action]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for a in actions:
        for change in a.changes:
            values[change.property] = change.before
    values["Status"] = "Running"  # the plan does not collect it (before None); the service runs
    return values


@dataclass
class SimHost:
    """Answers the machine's commands as a host and a journal would. Reads return the current
    values; an Execute sets its action's ``after`` values, a Rollback its ``before`` values,
    a restart (the step or the closing one) starts the service. ``faults`` are keyed by
    (short command, occurrence) or by the command's position in the run (0-based);
    ``cancel_after`` names commands after which the cancel flag is set; ``gate`` answers the
    restart gate (AwaitSlot) as apply's scheduler would."""

    actions: tuple[Action, ...] = ACTIONS
    faults: Mapping[tuple[tuple[str, ...], int] | int, Fault] = field(default_factory=dict)
    cancel_after: frozenset[tuple[tuple[str, ...], int] | int] = frozenset()
    values: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    gate: Go | Stop = field(default_factory=Go)
    commands: list[Command] = field(default_factory=list)
    journal: list[Record] = field(default_factory=list)
    _seen: Counter[tuple[str, ...]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.values = {**initial_values(self.actions), **self.values}
        self.initial = dict(self.values)

    def perform(self, command: Command) -> Result:
        position = len(self.commands)
        self.commands.append(command)
        short_key = key(command)
        self._seen[short_key] += 1
        which = (short_key, self._seen[short_key])
        fault = self.faults.get(which) or self.faults.get(position)
        if fault is not None and not _fits(fault.result, command):
            fault = None
        natural: Result = Ack()
        if fault is None or fault.happened:
            natural = self._effect(command)
        result = natural if fault is None else fault.result
        if which in self.cancel_after or position in self.cancel_after:
            self.cancelled = True
        if isinstance(result, (Ack, Answer, Broken, Go)):
            result = dataclasses.replace(result, cancelled=self.cancelled)
        return result

    def _effect(self, command: Command) -> Result:
        if isinstance(command, Record):
            self.journal.append(command)
        elif isinstance(command, Cancel):
            self.cancelled = True
        elif isinstance(command, AwaitSlot):
            return self.gate
        elif isinstance(command, ReadBack):
            return answer(**self.values)
        elif isinstance(command, (Execute, Rollback)):
            by_id = {a.id: a for a in self.actions}
            if command.call.cmdlet == "Restart-Service":
                self.values["Status"] = "Running"
            elif command.action in by_id:
                which = "after" if isinstance(command, Execute) else "before"
                for change in by_id[command.action].changes:
                    self.values[change.property] = getattr(change, which)
            return Answer(CommandResult())
        return Ack()

    def plan_after(self) -> dict[str, Any]:
        out = dict(self.initial)
        for a in self.actions:
            if not a.manual:
                out.update({c.property: c.after for c in a.changes})
        return out


def _fits(result: Result, command: Command) -> bool:
    """Broken and Answer are what a call can be answered with; anything may be interrupted."""
    if isinstance(result, Interrupted):
        return True
    return isinstance(command, (ReadBack, Execute, Rollback)) == isinstance(result, (Answer, Broken))


def run(state: HostRun, host: SimHost, limit: int = 1000) -> Done:
    """Drive the machine against ``host`` as the IO loop does; the commands are in
    ``host.commands`` (and the Done last)."""
    result: Result = Ack(cancelled=host.cancelled)
    for _ in range(limit):
        state, command = next_step(state, result)
        if isinstance(command, Done):
            host.commands.append(command)
            return command
        result = host.perform(command)
    raise AssertionError(f"the machine did not finish within {limit} commands")


def trace(host: SimHost) -> list[tuple[str, ...]]:
    return [key(c) for c in host.commands]
