"""Helpers for the in-process Exchange emulation tests (no sockets): build a fleet from a
scenario, run cmdlets through ``EmulatedHost.invoke`` and read properties off the output."""

from __future__ import annotations

import datetime
import threading
from pathlib import Path
from typing import Any

from psrpcore.types import PSObject

from mock_remoting.backend import Endpoint, InvocationResult
from mock_remoting.dns.world import DnsWorld
from mock_remoting.exchange import EmulatedHost, Fleet, command, load_scenario
from mock_remoting.exchange.records import message_of

EX = Endpoint.EXCHANGE
OS = Endpoint.OS
FIXED = datetime.datetime(2025, 1, 15, 10, 0, 0, tzinfo=datetime.timezone.utc)


def fixed_clock() -> datetime.datetime:
    return FIXED


def make_fleet(
    scenario: str | Path, *, hosts: int | None = None, address_map: dict[str, str] | None = None
) -> Fleet:
    loaded = load_scenario(scenario, hosts=hosts)
    world = DnsWorld.from_scenario(loaded.dns, loaded.organization, source=str(loaded.source))
    return Fleet(loaded, world, address_map or {}, clock=fixed_clock)


def invoke(
    host: EmulatedHost, endpoint: Endpoint, name: str, *params: tuple[str | None, Any]
) -> InvocationResult:
    return host.invoke(endpoint, [command(name, *params)], threading.Event())


def ok(host: EmulatedHost, endpoint: Endpoint, name: str, *params: tuple[str | None, Any]) -> list[Any]:
    """Run one cmdlet that must succeed without errors; returns its output."""
    result = invoke(host, endpoint, name, *params)
    assert result.failure is None, message_of(result.failure)
    assert not result.errors, [message_of(e) for e in result.errors]
    return result.output


def prop(obj: Any, name: str) -> Any:
    assert isinstance(obj, PSObject), obj
    for p in list(obj.PSObject.adapted_properties) + list(obj.PSObject.extended_properties):
        if p.name == name:
            return p.get_value(obj)
    raise KeyError(name)


def adapted_names(obj: PSObject) -> list[str]:
    return [p.name for p in obj.PSObject.adapted_properties]


def failure(result: InvocationResult) -> tuple[str, str, str]:
    """(message, FullyQualifiedErrorId, category name) of the terminating error."""
    record = result.failure
    assert record is not None, "expected the pipeline to fail"
    return message_of(record), str(record.FullyQualifiedErrorId), record.CategoryInfo.Category.name


def error(result: InvocationResult, index: int = 0) -> tuple[str, str, str]:
    record = result.errors[index]
    return message_of(record), str(record.FullyQualifiedErrorId), record.CategoryInfo.Category.name


def snapshot(fleet: Fleet) -> list[tuple[str, str, int, int, str | None, int]]:
    return [
        (q.identity, q.status, q.queued, q.delivered, q.last_error, q.retry_count)
        for h in fleet.hosts
        for q in h.queues
    ]


def retry_all(host: EmulatedHost) -> None:
    for view in host.queues:
        ok(host, EX, "Retry-Queue", ("Identity", view.identity))
