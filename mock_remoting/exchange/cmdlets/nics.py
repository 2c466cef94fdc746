"""Choosing network interfaces the way the CIM-based NIC cmdlets do (InterfaceAlias,
InterfaceIndex or InputObject), shared by ``dnsclient.py`` and ``netip.py``."""

from __future__ import annotations

from typing import Any

from psrpcore.types import ErrorCategory, ErrorRecord

from mock_remoting.exchange import records
from mock_remoting.exchange.binding import Kind, P
from mock_remoting.exchange.cmdlets.base import Context, as_list, identity_matches, property_value
from mock_remoting.exchange.state import Nic

# The selector parameters every NIC cmdlet takes.
NIC_SELECT = (
    P("InterfaceAlias", Kind.STRINGS, position=0, aliases=("ifAlias",)),
    P("InterfaceIndex", Kind.UINTS, aliases=("ifIndex",)),
    P("InputObject", Kind.ANY),
    P("CimSession", Kind.ANY, aliases=("Session",)),
    P("ThrottleLimit", Kind.INT),
    P("AsJob", Kind.SWITCH),
)


def select_nics(ctx: Context, args: dict[str, Any], cim_class: str, require: bool) -> list[Nic]:
    """Interfaces chosen by InterfaceAlias / InterfaceIndex / InputObject. Set-* need exactly
    one selector; Get-* default to every interface."""
    selectors = [name for name in ("InterfaceAlias", "InterfaceIndex", "InputObject") if name in args]
    if require and not selectors:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["InterfaceAlias"]))
    if len(selectors) > 1:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    nics = ctx.host.nics
    if not selectors:
        return list(nics)
    chosen: list[Nic] = []
    if "InterfaceAlias" in args:
        for alias in args["InterfaceAlias"]:
            hits = [n for n in nics if identity_matches(alias, n.alias)]
            if not hits:
                ctx.error(_cim_not_found(ctx, cim_class, "InterfaceAlias", alias))
            chosen += [n for n in hits if n not in chosen]
    elif "InterfaceIndex" in args:
        for index in args["InterfaceIndex"]:
            nic = ctx.host.nic_by_index(index)
            if nic is None:
                ctx.error(_cim_not_found(ctx, cim_class, "InterfaceIndex", str(index)))
            elif nic not in chosen:
                chosen.append(nic)
    else:
        for item in as_list(args["InputObject"]):
            index = property_value(item, "InterfaceIndex")
            nic = ctx.host.nic_by_index(int(index)) if isinstance(index, int) else None
            if nic is None:
                ctx.fail(
                    records.argument_transformation(
                        ctx.cmdlet, "InputObject", item, "Microsoft.Management.Infrastructure.CimInstance[]"
                    )
                )
            if nic not in chosen:
                chosen.append(nic)
    return chosen


def _cim_not_found(ctx: Context, cim_class: str, prop: str, value: str) -> ErrorRecord:
    return ctx.cim_error(
        f"No {cim_class} objects found with property '{prop}' equal to '{value}'.  Verify the value of the "
        "property and retry.",
        f"CmdletizationQuery_NotFound_{prop}",
        ErrorCategory.ObjectNotFound,
        value,
    )
