"""What the facts would be after a step: the pure helpers each fix's predictor (``Step.predict``)
is made of.

A plan is judged as a whole before it is written (agent/planning/judge.py): every step's
predictor turns the facts the plan was made from into the facts as they would be after that
step, and the rules judge the result with the probes exfix already made. A predictor changes
only what its step's call changes, read from the step itself (its call's identity and its
changes' ``after`` values), so that what is predicted is what apply would run.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from typing import Protocol

from agent.model.command import CmdletCall, ParamValue
from agent.model.facts import DnsLookupSettings, HostFacts, NicFacts, SendConnectorFacts
from agent.model.finding_data import LookupSide
from agent.model.plan import Change, PlanValue


class PlannedStep(Protocol):
    """What a predictor reads of a step: a planner's Draft and a plan's Action both have it."""

    @property
    def kind(self) -> str: ...

    @property
    def call(self) -> CmdletCall: ...

    @property
    def changes(self) -> tuple[Change, ...]: ...


# predict(step, facts): the facts after the step.
Predict = Callable[[PlannedStep, HostFacts], HostFacts]


class PredictError(ValueError):
    """A step does not say what its predictor needs (a planner bug, not a fact)."""


def after(draft: PlannedStep, prop: str) -> PlanValue:
    """The value the step sets ``prop`` to."""
    for change in draft.changes:
        if change.property == prop:
            return change.after
    raise PredictError(f"step {draft.kind!r} changes no {prop!r}")


def parameter(draft: PlannedStep, name: str) -> ParamValue:
    try:
        return draft.call.param(name)
    except KeyError:
        raise PredictError(f"step {draft.kind!r} has no -{name}") from None


def texts(value: PlanValue | ParamValue) -> tuple[str, ...]:
    if isinstance(value, tuple):
        return tuple(str(v) for v in value)
    if value is None:
        return ()
    return (str(value),)


def flag(value: PlanValue | ParamValue) -> bool:
    if not isinstance(value, bool):
        raise PredictError(f"expected a flag, found {value!r}")
    return value


def index(value: ParamValue) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PredictError(f"expected an InterfaceIndex, found {value!r}")
    return value


def with_nic(facts: HostFacts, interface_index: int, change: Callable[[NicFacts], NicFacts]) -> HostFacts:
    """``facts`` with NIC ``interface_index`` changed (unchanged when there is no such NIC)."""
    nics = tuple(change(n) if n.interface_index == interface_index else n for n in facts.nics)
    return dataclasses.replace(facts, nics=nics)


def with_nic_servers(facts: HostFacts, interface_index: int, servers: tuple[str, ...]) -> HostFacts:
    """Set-DnsClientServerAddress -ServerAddresses: the NIC's whole list, IPv4 and IPv6."""

    def change(nic: NicFacts) -> NicFacts:
        v4 = tuple(s for s in servers if _family(s) == 4)
        v6 = tuple(s for s in servers if _family(s) == 6)
        return dataclasses.replace(nic, ipv4_dns_servers=v4, ipv6_dns_servers=v6)

    return with_nic(facts, interface_index, change)


def _family(address: str) -> int:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0].strip()).version
    except ValueError:
        return 4


def with_lookup(
    facts: HostFacts, side: LookupSide, *, adapter: bool | None = None, servers: tuple[str, ...] | None = None
) -> HostFacts:
    """One group of transport's DNS settings changed (unchanged without transport facts)."""
    transport = facts.transport
    if transport is None:
        return facts
    current = transport.external if side == "external" else transport.internal
    changed = DnsLookupSettings(
        adapter_enabled=current.adapter_enabled if adapter is None else adapter,
        servers=current.servers if servers is None else servers,
        adapter_guid=current.adapter_guid,
        protocol_option=current.protocol_option,
    )
    field = "external" if side == "external" else "internal"
    return dataclasses.replace(facts, transport=dataclasses.replace(transport, **{field: changed}))


def with_connectors(facts: HostFacts, connectors: tuple[SendConnectorFacts, ...]) -> HostFacts:
    """The organisation's send connectors replaced (for this host's view of them)."""
    return dataclasses.replace(facts, org=dataclasses.replace(facts.org, send_connectors=connectors))


def with_connector(
    facts: HostFacts, name: str, change: Callable[[SendConnectorFacts], SendConnectorFacts]
) -> HostFacts:
    wanted = name.strip().lower()
    return with_connectors(
        facts, tuple(change(c) if c.name.strip().lower() == wanted else c for c in facts.send_connectors)
    )
