"""Services: Get-Service and Restart-Service (MSExchangeTransport and Dnscache).

Restarting MSExchangeTransport makes transport read its DNS configuration again and retry
every queue of the host (``mailflow.restart_transport``); when EdgeTransport.exe.config does not
load, the service stops and does not start again, and Restart-Service says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psrpcore.types import ErrorCategory

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import records
from mock_remoting.exchange.binding import SHOULD_PROCESS, Kind, P
from mock_remoting.exchange.cmdlets.base import Context, Registry, as_list, identity_matches, property_value
from mock_remoting.exchange.mailflow import restart_transport
from mock_remoting.exchange.objects.windows import SERVICES, service

REGISTRY = Registry()

_NAME = P("Name", Kind.STRINGS, position=0, aliases=("ServiceName",))


def _service_names(ctx: Context, names: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for pattern in names:
        hits = [
            key
            for key, (service_name, display) in SERVICES.items()
            if identity_matches(pattern, service_name, display)
        ]
        if not hits and "*" not in pattern:
            ctx.error(
                ctx.cmdlet_error(
                    f"Cannot find any service with service name '{pattern}'.",
                    "NoServiceFoundForGivenName",
                    ErrorCategory.ObjectNotFound,
                    "Microsoft.PowerShell.Commands.ServiceCommandException",
                    pattern,
                )
            )
        chosen += [h for h in hits if h not in chosen]
    return chosen


def _running(ctx: Context, key: str) -> bool:
    return ctx.host.transport_running if key == "msexchangetransport" else True


@REGISTRY.cmdlet(
    "Get-Service", Endpoint.OS, _NAME, P("DisplayName", Kind.STRINGS), P("ComputerName", Kind.STRINGS)
)
def get_service(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    keys = _service_names(ctx, args.get("Name") or ("*",))
    for key in keys:
        ctx.emit(service(key, _running(ctx, key)))


@REGISTRY.cmdlet(
    "Restart-Service",
    Endpoint.OS,
    _NAME,
    P("InputObject", Kind.ANY),
    P("Force", Kind.SWITCH),
    P("PassThru", Kind.SWITCH),
    P("DisplayName", Kind.STRINGS),
    *SHOULD_PROCESS,
    input_param="InputObject",
)
def restart_service(ctx: Context, args: dict[str, Any], inputs: Sequence[Any]) -> None:
    names = list(args.get("Name", ()))
    for item in as_list(args.get("InputObject")):
        names.append(str(property_value(item, "ServiceName") or property_value(item, "Name") or item))
    if not names:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Name"]))
    keys = _service_names(ctx, names)
    if args.get("WhatIf"):
        return
    for key in keys:
        if key == "msexchangetransport":
            if not restart_transport(ctx.org, ctx.host):
                # Restart-Service's own error when the service stopped but did not start again
                # (ServiceCommandException, "StartServiceFailed"): here, because
                # EdgeTransport.exe.config does not load (mailflow.restart_transport).
                name, display = SERVICES[key]
                ctx.error(
                    ctx.cmdlet_error(
                        f"Failed to start service '{display} ({name})'.",
                        "StartServiceFailed",
                        ErrorCategory.OpenError,
                        "Microsoft.PowerShell.Commands.ServiceCommandException",
                        name,
                    )
                )
                continue
        else:
            # The DNS Client service keeps its cache in memory: a restart starts it empty.
            ctx.host.dns_cache_clears += 1
            ctx.host.dns_cache.clear()
        if args.get("PassThru"):
            ctx.emit(service(key, True))
