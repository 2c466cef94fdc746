"""Microsoft.PowerShell.Utility: Select-Object (-Property, -ExpandProperty, -First) and
Start-Sleep (blocks until done or cancelled)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psrpcore.types import ErrorCategory, PSCustomObject, PSNoteProperty, PSObject

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import records
from mock_remoting.exchange.binding import Kind, P
from mock_remoting.exchange.cmdlets.base import (
    Context,
    Registry,
    all_properties,
    as_list,
    has_property,
    identity_matches,
    property_value,
)

REGISTRY = Registry()


@REGISTRY.cmdlet(
    "Start-Sleep",
    Endpoint.OS,
    P("Seconds", Kind.DOUBLE, position=0),
    P("Milliseconds", Kind.INT),
    locks=False,  # it blocks: the fleet's lock is not held meanwhile
)
def start_sleep(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if "Seconds" in args and "Milliseconds" in args:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    seconds = args["Seconds"] if "Seconds" in args else args.get("Milliseconds", 0) / 1000.0
    if "Seconds" not in args and "Milliseconds" not in args:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Seconds"]))
    ctx.cancel.wait(max(0.0, float(seconds)))


# Select-Object is in both runspaces: Exchange's restricted session exposes it too.
@REGISTRY.cmdlet(
    "Select-Object",
    (Endpoint.OS, Endpoint.EXCHANGE),
    P("Property", Kind.STRINGS, position=0),
    P("ExpandProperty", Kind.STRING),
    P("First", Kind.INT),
    P("InputObject", Kind.ANY),
    whole_input=True,  # -First counts over the whole input, not per object
)
def select_object(ctx: Context, args: dict[str, Any], inputs: Sequence[Any]) -> None:
    items = as_list(args.get("InputObject")) or list(inputs)
    if "First" in args:
        items = items[: max(0, args["First"])]
    expand = args.get("ExpandProperty")
    wanted = args.get("Property")
    for item in items:
        if expand is not None:
            if not has_property(item, expand):
                ctx.error(
                    ctx.cmdlet_error(
                        f'Property "{expand}" cannot be found.',
                        "ExpandPropertyNotFound",
                        ErrorCategory.InvalidArgument,
                        "System.Management.Automation.PSArgumentException",
                        item.PSObject.to_string if isinstance(item, PSObject) else str(item),
                    )
                )
                continue
            value = property_value(item, expand)
            if isinstance(value, list):
                for element in value:
                    ctx.emit(element)
            elif value is not None:
                ctx.emit(value)
            continue
        if not wanted:
            ctx.emit(item)
            continue
        props = all_properties(item)
        selected = PSCustomObject()
        original = item.PSObject.type_names if isinstance(item, PSObject) else ["System.Object"]
        selected.PSObject.type_names = [
            f"Selected.{original[0]}",
            "System.Management.Automation.PSCustomObject",
            "System.Object",
        ]
        for pattern in wanted:
            hits = [(k, v) for k, v in props if identity_matches(pattern, k)] or (
                [] if "*" in pattern else [(pattern, None)]
            )
            for key, value in hits:
                if not any(p.name == key for p in selected.PSObject.extended_properties):
                    selected.PSObject.extended_properties.append(PSNoteProperty(key, value))
        ctx.emit(selected)
