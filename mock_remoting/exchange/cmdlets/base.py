"""What every emulated cmdlet is made of: its definition, the context it runs in, the registry
that a decorator fills beside each cmdlet function, and the helpers the areas share.

A cmdlet is a function of (context, bound parameters, pipeline input). Errors are the real
records (``records.py``): non-terminating ones go to ``ctx.error``; a terminating one is
raised as :class:`Terminating`.
"""

from __future__ import annotations

import fnmatch
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from psrpcore.types import ErrorCategory, ErrorRecord, PSObject

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import records
from mock_remoting.exchange.binding import COMMON, Kind, P, plain
from mock_remoting.exchange.mailflow import exchange_time
from mock_remoting.exchange.objects.exchange import domain_controller
from mock_remoting.exchange.state import HostState, Organization, stable_guid


class Terminating(Exception):
    """A terminating error: the pipeline (or, in a script, the statement) stops with ``record``."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(records.message_of(record))
        self.record = record


@dataclass
class Context:
    """One cmdlet's run: the host it runs on, where its output and errors go."""

    host: HostState
    org: Organization
    dns_address_map: Mapping[str, str]
    endpoint: Endpoint
    cancel: threading.Event
    cmdlet: str = ""
    output: list[Any] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)

    def emit(self, value: Any) -> None:
        self.output.append(value)

    def error(self, record: ErrorRecord) -> None:
        self.errors.append(record)

    def fail(self, record: ErrorRecord) -> NoReturn:
        raise Terminating(record)

    def cmdlet_error(
        self, message: str, error_id: str, category: ErrorCategory, exception_type: str, target: Any
    ) -> ErrorRecord:
        """An error of this compiled cmdlet: FullyQualifiedErrorId ``<error_id>,<its .NET class>``."""
        return records.error_record(
            message,
            f"{error_id},{records.cmdlet_type(self.cmdlet)}",
            category,
            exception_type=exception_type,
            activity=self.cmdlet,
            target=target,
        )

    def cim_error(self, message: str, error_id: str, category: ErrorCategory, target: Any) -> ErrorRecord:
        """An error of this CIM-based cmdlet: CIM cmdletization names the cmdlet, not a class."""
        return records.error_record(
            message,
            f"{error_id},{self.cmdlet}",
            category,
            exception_type="Microsoft.Management.Infrastructure.CimException",
            activity=self.cmdlet,
            target=target,
        )

    @property
    def exchange(self) -> records.ExchangeErrors:
        now = self.org.clock()
        return records.ExchangeErrors(
            self.host.name, self.host.spec.major >= 15, exchange_time(now), str(uuid.uuid4())
        )

    @property
    def dc(self) -> str:
        return domain_controller(self.org)


Runner = Callable[[Context, dict[str, Any], Sequence[Any]], None]


@dataclass(frozen=True)
class CmdletDef:
    """One cmdlet: where it is served, its parameters and the function that runs it."""

    name: str
    endpoints: tuple[Endpoint, ...]
    params: tuple[P, ...]
    run: Runner
    versions: tuple[int, ...] = (14, 15)
    input_param: str | None = None  # bound from pipeline input (by value or by property name)
    whole_input: bool = False  # True: one call receives all pipeline input as ``inputs``
    locks: bool = True  # False for cmdlets that block (Start-Sleep) or do network I/O

    @property
    def all_params(self) -> tuple[P, ...]:
        return self.params + COMMON


class Registry:
    """The cmdlets of one area, each registered by :meth:`cmdlet` on the function that runs it.

    ``cmdlets/__init__.py`` joins the areas' registries into the one table the hosts use.
    """

    def __init__(self) -> None:
        self._definitions: list[CmdletDef] = []

    def cmdlet(
        self,
        name: str,
        endpoint: Endpoint | tuple[Endpoint, ...],
        *params: P,
        versions: tuple[int, ...] = (14, 15),
        input_param: str | None = None,
        whole_input: bool = False,
        locks: bool = True,
    ) -> Callable[[Runner], Runner]:
        """Register the decorated function as cmdlet ``name``, served on ``endpoint`` (one or
        several), with ``params`` in that order (the common parameters are added). One function
        may carry several names."""
        endpoints = endpoint if isinstance(endpoint, tuple) else (endpoint,)

        def register(run: Runner) -> Runner:
            self._definitions.append(
                CmdletDef(name, endpoints, params, run, versions, input_param, whole_input, locks)
            )
            return run

        return register

    def __iter__(self) -> Iterator[CmdletDef]:
        return iter(self._definitions)


def cmdlet_table(registries: Iterable[Registry]) -> dict[str, CmdletDef]:
    """Lower-cased name -> definition over ``registries``; a name registered twice is a bug."""
    table: dict[str, CmdletDef] = {}
    for registry in registries:
        for definition in registry:
            key = definition.name.lower()
            if key in table:
                raise ValueError(f"cmdlet {definition.name} is registered twice")
            table[key] = definition
    return table


# Parameters several areas declare alike.
IDENTITY = P("Identity", Kind.STRING, position=0)
DOMAIN_CONTROLLER = P("DomainController", Kind.STRING)


# --- shared helpers --------------------------------------------------------------------------


def identity_matches(pattern: str, *names: str) -> bool:
    """PowerShell's name match: case-insensitive, with ``*`` and ``?`` wildcards."""
    pattern = pattern.strip().lower()
    for name in names:
        if "*" in pattern or "?" in pattern:
            if fnmatch.fnmatchcase(name.lower(), pattern):
                return True
        elif name.lower() == pattern:
            return True
    return False


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def find_host(ctx: Context, identity: str) -> HostState | None:
    """The organisation's server that ``identity`` names (name, FQDN or GUID)."""
    pattern = identity.strip().lower()
    if "*" not in pattern and "?" not in pattern:
        return ctx.org.identities().get(pattern)
    for host in ctx.org.hosts.values():
        if identity_matches(identity, host.name, host.fqdn, str(stable_guid("server", host.name))):
            return host
    return None


def all_properties(obj: Any) -> list[tuple[str, Any]]:
    """(name, value) of an object's adapted, then extended properties; the first of a name wins."""
    if not isinstance(obj, PSObject) or isinstance(obj, (str, int, float)):
        return []
    ps = obj.PSObject
    seen: dict[str, Any] = {}
    for prop in list(ps.adapted_properties) + list(ps.extended_properties):
        if prop.name not in seen:
            seen[prop.name] = prop.get_value(obj)
    return list(seen.items())


def property_value(obj: Any, name: str) -> Any:
    """The value of property ``name`` (any case), as a plain value; None when there is none."""
    for key, value in all_properties(obj):
        if key.lower() == name.lower():
            return plain(value) if isinstance(value, (str, int, float)) else value
    return None


def has_property(obj: Any, name: str) -> bool:
    return any(key.lower() == name.lower() for key, _ in all_properties(obj))
