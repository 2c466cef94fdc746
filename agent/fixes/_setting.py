"""A property change, declared once: what object holds the setting, how it is written and read
back, and each property's value before and after. :func:`setting_draft` turns the declaration
into the four parts of a Draft that must agree with each other (the call, the read-back, the
rollback and the changes), so no planner writes them out by hand.

The rollback writes each property's before value back, with two rules:

- an empty multi-valued property is written back as ``$null``: Set-TransportService clears a
  list that way (Set-TransportService docs, -ExternalDNSServers / -InternalDNSServers), and
  apply's read-back treats an empty list and Nil as the same setting (agent/apply/readback.py);
- a property whose before value is unknown (None: Get-DnsClient reported none) is not written
  back, because exfix would be inventing the value it restores; with no property left there is
  no rollback call.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.fixes._draft import Draft
from agent.model.command import CmdletCall, Endpoint, ParamValue
from agent.model.plan import Change, FactRef, PlanValue

Params = tuple[tuple[str, ParamValue], ...]


@dataclass(frozen=True, slots=True)
class Setting:
    """Where settings live: the Set- cmdlet that writes them, the Get- cmdlet that reads them
    back, the parameters that name the object on both (``identity``), and parameters that name
    what inside the object is set, on the Set- call only (``selector``: Set-ExfixAppSetting's
    ``-Key``)."""

    endpoint: Endpoint
    set_cmdlet: str
    read_cmdlet: str
    identity: Params
    selector: Params = ()

    @classmethod
    def of(cls, endpoint: Endpoint, noun: str, *identity: tuple[str, ParamValue]) -> Setting:
        """The usual pair: Set-<noun> writes, Get-<noun> reads back, both given ``identity``."""
        return cls(endpoint, f"Set-{noun}", f"Get-{noun}", identity)


@dataclass(frozen=True, slots=True)
class PropertyChange:
    """One property from ``before`` to ``after``. ``property`` is the name the change shows and
    the read-back compares; ``parameter`` the Set- parameter that carries the value, when it is
    not named after the property (Set-ExfixAppSetting ``-Value``)."""

    property: str
    before: PlanValue
    after: PlanValue
    parameter: str | None = None


@dataclass(frozen=True, slots=True)
class SettingChange:
    """Properties of one object changed by one Set- call."""

    setting: Setting
    properties: tuple[PropertyChange, ...]

    def __post_init__(self) -> None:
        if not self.properties:
            raise ValueError("a setting change changes at least one property")

    @property
    def call(self) -> CmdletCall:
        s = self.setting
        values = tuple((_parameter(p), p.after) for p in self.properties)
        return CmdletCall(s.endpoint, s.set_cmdlet, s.identity + s.selector + values)

    @property
    def read_back(self) -> CmdletCall:
        return CmdletCall(self.setting.endpoint, self.setting.read_cmdlet, self.setting.identity)

    @property
    def rollback(self) -> tuple[CmdletCall, ...]:
        s = self.setting
        values = tuple((_parameter(p), _restored(p.before)) for p in self.properties if p.before is not None)
        if not values:
            return ()
        return (CmdletCall(s.endpoint, s.set_cmdlet, s.identity + s.selector + values),)

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(Change(p.property, p.before, p.after) for p in self.properties)


def _parameter(change: PropertyChange) -> str:
    return change.parameter or change.property


def _restored(before: PlanValue) -> ParamValue:
    return None if before == () else before


def setting_draft(
    change: SettingChange,
    *,
    kind: str,
    fix_id: str,
    description: str,
    restart_required: bool,
    finding_ids: tuple[str, ...],
    depends_on: tuple[FactRef, ...],
    manual: bool = False,
) -> Draft:
    """The Draft that makes ``change``: its call, read-back, rollback and changes all from the
    one declaration; the rest is the planner's."""
    return Draft(
        kind=kind,
        fix_id=fix_id,
        call=change.call,
        description=description,
        changes=change.changes,
        read_back=change.read_back,
        rollback=change.rollback,
        restart_required=restart_required,
        finding_ids=finding_ids,
        depends_on=depends_on,
        manual=manual,
    )
