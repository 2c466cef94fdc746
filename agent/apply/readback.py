"""Reading an action's properties back, and comparing them with what the plan says.

apply reads every changed property through the action's ``read_back`` call three times: before
the change (the before-state it journals and restores on rollback), after it (must equal the
plan's ``after``) and after a rollback (must equal the before-state again). The same property
arrives in more than one shape, so values are normalised first; each normalisation below is a
representation difference, never a different value:

- booleans as bool or as the text "True"/"False" (CLIXML from ``-OutputFormat XML``);
- multi-valued properties as a tuple, a list, one string or Nil; an empty list and Nil are the
  same empty setting (Set-TransportService clears a list with ``$null``);
- Get-DnsClientServerAddress returns one object per address family; the NIC's servers are
  their ServerAddresses joined, IPv4 (AddressFamily 2) first, as the configured servers
  (NicFacts.dns_servers, agent/model/dns_servers.py: without the fec0:0:0:ffff::1-3
  placeholders Windows shows for an IPv6 stack with no server, empty entries and repeats);
- an IP smart host shows in brackets (``[203.0.113.10]``, Get-SendConnector docs: SmartHosts);
- a service status as its name or its ServiceControllerStatus number (4 is Running);
- names, addresses and enum values compare case-insensitively, as Exchange and Windows do.

Order is kept: the order of DNS servers is the order they are asked in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.collect import _values as v
from agent.errors import CmdletError
from agent.model import dns_servers
from agent.model.command import CmdletCall
from agent.model.plan import Change, PlanValue
from agent.model.remote import RemoteError, RemoteObject
from agent.transport.base import CommandResult

Values = tuple[tuple[str, PlanValue], ...]

# System.ServiceProcess.ServiceControllerStatus
_SERVICE_STATUS = {1: "Stopped", 2: "StartPending", 3: "StopPending", 4: "Running", 5: "ContinuePending",
                   6: "PausePending", 7: "Paused"}  # fmt: skip


class ReadBackError(Exception):
    """The read-back answered something apply cannot compare (e.g. two different objects)."""


@dataclass(frozen=True, slots=True)
class State:
    """An action's properties as read. ``present`` is False when the object does not exist
    (a send connector not created yet): every value is then None."""

    values: Values
    present: bool = True

    def value(self, name: str) -> PlanValue:
        for key, value in self.values:
            if key == name:
                return value
        raise KeyError(name)


def _not_found(error: RemoteError) -> bool:
    # Get-SendConnector: ManagementObjectNotFoundException; CIM cmdlets:
    # CmdletizationQuery_NotFound_*; both may carry the ObjectNotFound category.
    fqid = (error.fully_qualified_error_id or "").lower()
    return "notfound" in fqid or error.category == "ObjectNotFound"


def state_from_result(
    host: str, read_back: CmdletCall, changes: Sequence[Change], result: CommandResult
) -> State:
    """The State of ``changes``' properties in what ``read_back`` returned. Raises CmdletError
    for an error that is not "the object does not exist", ReadBackError for output apply
    cannot compare. Pure: the step machine calls it on the answer the IO loop reports."""
    if result.errors:
        if not result.objects and all(_not_found(e) for e in result.errors):
            return State(tuple((c.property, None) for c in changes), present=False)
        first = result.errors[0]
        raise CmdletError(
            host, read_back.cmdlet, first.message, first.fully_qualified_error_id, first.category
        )
    if not result.objects:
        return State(tuple((c.property, None) for c in changes), present=False)
    return State(tuple((c.property, property_value(result.objects, c)) for c in changes))


def planned(changes: Sequence[Change], which: str) -> Values:
    """The plan's ``before`` or ``after`` values of ``changes``."""
    return tuple((c.property, c.before if which == "before" else c.after) for c in changes)


def property_value(objects: Sequence[RemoteObject], change: Change) -> PlanValue:
    if change.property == "ServerAddresses" and all(o.get("AddressFamily") is not None for o in objects):
        ordered = sorted(objects, key=lambda o: v.integer(o.get("AddressFamily"), 0) or 0)
        servers: list[str] = []
        for obj in ordered:
            servers.extend(v.texts(obj.get("ServerAddresses")))
        return dns_servers.configured(servers)
    found = {normalize(change, obj.get(change.property)) for obj in objects}
    if len(found) != 1:
        raise ReadBackError(f"{change.property}: the read-back returned {len(objects)} objects that disagree")
    return found.pop()


def _template(change: Change) -> PlanValue:
    return change.after if change.after is not None else change.before


def normalize(change: Change, raw: Any) -> PlanValue:
    """``raw`` in the shape of the plan's values for this property."""
    like = _template(change)
    if raw is None:
        return () if isinstance(like, tuple) else None
    if change.property == "Status":
        number = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        return _SERVICE_STATUS.get(number, str(number)) if number is not None else v.text(raw)
    if isinstance(like, bool):
        return v.boolean(raw)
    if isinstance(like, int):
        return v.integer(raw)
    if isinstance(like, tuple):
        items = tuple(v.text(item).strip() for item in v.items(raw))
        if change.property == "SmartHosts":
            items = tuple(i[1:-1] if i.startswith("[") and i.endswith("]") else i for i in items)
        return tuple(i for i in items if i)
    return v.text(raw)


def same(expected: PlanValue, actual: PlanValue) -> bool:
    """``actual`` (normalised) is ``expected``: case-insensitive text, lists in order, and an
    empty list equal to no value."""
    if isinstance(expected, tuple) or isinstance(actual, tuple):
        left: tuple[str | int, ...] | None = expected if isinstance(expected, tuple) else (
            () if expected is None else None
        )
        right: tuple[str | int, ...] | None = actual if isinstance(actual, tuple) else (
            () if actual is None else None
        )
        if left is None or right is None or len(left) != len(right):
            return False
        return all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.strip().casefold() == actual.strip().casefold()
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return expected == actual


def differences(expected: Values, actual: State) -> tuple[str, ...]:
    """``property: expected X, read Y`` for every property that differs (empty: all equal)."""
    out = []
    for name, want in expected:
        got = actual.value(name)
        if not same(want, got):
            out.append(f"{name}: expected {show(want)}, read {show(got)}")
    return tuple(out)


def show(value: PlanValue) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(i) for i in value) + "]"
    if value is None:
        return "(none)"
    return repr(value)
