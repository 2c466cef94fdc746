"""Queues: Get-Queue and Retry-Queue.

Only Retry-Queue (and a transport restart, ``services.py``) attempts delivery; Get-Queue reads
the queues the mail-flow model keeps (``mailflow.py``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from typing import Any

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import records
from mock_remoting.exchange.binding import SHOULD_PROCESS, Kind, P
from mock_remoting.exchange.cmdlets.base import IDENTITY, Context, Registry, find_host, property_value
from mock_remoting.exchange.mailflow import run_attempt
from mock_remoting.exchange.objects.exchange import queue_object
from mock_remoting.exchange.state import HostState, Queue

REGISTRY = Registry()



def _queue_filter(ctx: Context, text: str) -> Callable[[HostState, Queue], bool]:
    """OPATH filters of the form ``Prop -op value [-and ...]`` (what admins pass to Get-Queue)."""
    clauses = re.split(r"\s+-and\s+", text.strip().strip("{}").strip(), flags=re.IGNORECASE)
    tests: list[Callable[[HostState, Queue], bool]] = []
    for clause in clauses:
        match = re.match(
            r"^\s*(\w+)\s+-(eq|ne|gt|ge|lt|le|like|notlike)\s+(?:'([^']*)'|\"([^\"]*)\"|(\S+))\s*$",
            clause,
            re.IGNORECASE,
        )
        if not match:
            ctx.fail(
                ctx.exchange.invalid_argument(ctx.cmdlet, f"Invalid filter syntax: '{text}'.", target=text)
            )
        prop, op = match.group(1), match.group(2).lower()
        wanted = next(g for g in match.group(3, 4, 5) if g is not None)

        def test(host: HostState, queue: Queue, prop: str = prop, op: str = op, wanted: str = wanted) -> bool:
            obj = queue_object(host, queue)
            value = property_value(obj, prop)
            if isinstance(value, int) and not isinstance(value, bool) and re.match(r"^-?\d+$", wanted):
                left: Any = int(value)
                right: Any = int(wanted)
            else:
                left, right = str(value if value is not None else "").lower(), wanted.lower()
            if op == "like":
                return fnmatch.fnmatchcase(str(left), str(right))
            if op == "notlike":
                return not fnmatch.fnmatchcase(str(left), str(right))
            compare: dict[str, bool] = {
                "eq": left == right,
                "ne": left != right,
                "gt": left > right,
                "ge": left >= right,
                "lt": left < right,
                "le": left <= right,
            }
            return compare[op]

        tests.append(test)
    return lambda host, queue: all(t(host, queue) for t in tests)


def _resolve_queues(ctx: Context, identity: str) -> list[tuple[HostState, Queue]]:
    server, sep, rest = identity.rpartition("\\")
    host = ctx.host if not sep else find_host(ctx, server)
    if host is None:
        return []
    key = rest.strip().lower()
    return [(host, q) for q in host.queues if str(q.number) == key or q.next_hop.lower() == key]


def _chosen_queues(ctx: Context, args: dict[str, Any]) -> list[tuple[HostState, Queue]]:
    """The queues -Identity names (none: a not-found error), else the queues of -Server (this
    host by default) that -Filter keeps."""
    if "Identity" in args:
        found = _resolve_queues(ctx, args["Identity"])
        if not found:
            ctx.error(ctx.exchange.not_found(ctx.cmdlet, args["Identity"], ctx.host.fqdn))
        return found
    host = ctx.host if "Server" not in args else find_host(ctx, args["Server"])
    if host is None:
        ctx.fail(ctx.exchange.not_found(ctx.cmdlet, args["Server"], ctx.dc))
    if "Filter" not in args:
        return [(host, q) for q in host.queues]
    keep = _queue_filter(ctx, args["Filter"])
    return [(host, q) for q in host.queues if keep(host, q)]


# Both cmdlets choose queues by identity, or by server and filter.
_QUEUE_SELECT = (IDENTITY, P("Server", Kind.STRING), P("Filter", Kind.STRING))


@REGISTRY.cmdlet("Get-Queue", Endpoint.EXCHANGE, *_QUEUE_SELECT, P("ResultSize", Kind.INT))
def get_queue(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if "Identity" in args and "Server" in args:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    found = _chosen_queues(ctx, args)
    limit = args.get("ResultSize")
    for host, queue in found[: limit if isinstance(limit, int) and limit > 0 else 1000]:
        ctx.emit(queue_object(host, queue))


@REGISTRY.cmdlet(
    "Retry-Queue",
    Endpoint.EXCHANGE,
    *_QUEUE_SELECT,
    P("Resubmit", Kind.BOOL),
    *SHOULD_PROCESS,
    input_param="Identity",
)
def retry_queue(ctx: Context, args: dict[str, Any], inputs: Sequence[Any]) -> None:
    if "Identity" not in args and "Filter" not in args:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Identity"]))
    if "Identity" in args and "Filter" in args:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    found = _chosen_queues(ctx, args)
    if args.get("WhatIf"):
        return
    for host, queue in found:
        run_attempt(ctx.org, host, queue)
