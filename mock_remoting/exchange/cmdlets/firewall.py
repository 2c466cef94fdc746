"""The NetSecurity module's rule cmdlets: Get-NetFirewallRule, Get-NetFirewallPortFilter,
Get-NetFirewallAddressFilter, New-/Remove-/Enable-/Disable-NetFirewallRule, over the host's
rules, and Get-NetFirewallProfile over its profiles (mock_remoting/exchange/firewall.py says
which of them decide its DNS traffic).

A host whose scenario has ``firewall_readable: false`` refuses Get-NetFirewallRule as the CIM
provider refuses a session without the right: "Access is denied." (a CimException), which is
what exfix's collector must survive as one failed fact area."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psrpcore.types import ErrorCategory, ErrorRecord

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import records
from mock_remoting.exchange.binding import SHOULD_PROCESS, Kind, P
from mock_remoting.exchange.cmdlets.base import Context, Registry, identity_matches
from mock_remoting.exchange.firewall import PROFILES, FirewallRule
from mock_remoting.exchange.objects.firewall import (
    address_filter,
    firewall_profile,
    firewall_rule,
    port_filter,
)

REGISTRY = Registry()
_GENERATED = "Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetSecurity"

_CIM = (
    P("CimSession", Kind.ANY, aliases=("Session",)),
    P("ThrottleLimit", Kind.INT),
    P("AsJob", Kind.SWITCH),
    P("PolicyStore", Kind.STRING),
)
_BOOLS = {"true": True, "false": False}


def _readable(ctx: Context) -> None:
    if not ctx.host.spec.firewall_readable:
        ctx.fail(ctx.cim_error("Access is denied. ", "Windows System Error 5", ErrorCategory.PermissionDenied,
                               "MSFT_NetFirewallRule"))  # fmt: skip


def _not_found(ctx: Context, prop: str, value: str) -> ErrorRecord:
    return ctx.cim_error(
        f"No MSFT_NetFirewallRule objects found with property '{prop}' equal to '{value}'.  Verify the value "
        "of the property and retry.",
        f"CmdletizationQuery_NotFound_{prop}",
        ErrorCategory.ObjectNotFound,
        value,
    )


def _select(ctx: Context, args: dict[str, Any]) -> list[FirewallRule]:
    """Rules by -Name / -DisplayName (wildcards), then the other filters; a name that matches
    nothing is a non-terminating ObjectNotFound error, as CIM cmdletization writes it."""
    rules = list(ctx.host.firewall_rules)
    for prop, attr in (("Name", "name"), ("DisplayName", "display_name")):
        if prop in args:
            chosen: list[FirewallRule] = []
            for pattern in args[prop]:
                hits = [r for r in rules if identity_matches(pattern, getattr(r, attr))]
                if not hits and "*" not in pattern and "?" not in pattern:
                    ctx.error(_not_found(ctx, prop, pattern))
                chosen += [r for r in hits if r not in chosen]
            rules = chosen
    if "Direction" in args:
        rules = [r for r in rules if r.direction.lower() == str(args["Direction"]).lower()]
    if "Action" in args:
        rules = [r for r in rules if r.action.lower() == str(args["Action"]).lower()]
    if "Enabled" in args:
        wanted = _BOOLS.get(str(args["Enabled"]).lower())
        rules = [r for r in rules if r.enabled is wanted]
    return rules


_SELECT = (
    P("Name", Kind.STRINGS, position=0, aliases=("ID",)),
    P("DisplayName", Kind.STRINGS),
    P("Direction", Kind.ENUM, choices=("Inbound", "Outbound"), type_name=f"{_GENERATED}.Direction"),
    P("Action", Kind.ENUM, choices=("NotConfigured", "Allow", "Block"), type_name=f"{_GENERATED}.Action"),
    P("Enabled", Kind.ENUM, choices=("True", "False"), type_name=f"{_GENERATED}.Enabled"),
    P("All", Kind.SWITCH),
    *_CIM,
)


@REGISTRY.cmdlet("Get-NetFirewallRule", Endpoint.OS, *_SELECT)
def get_net_firewall_rule(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    _readable(ctx)
    for rule in _select(ctx, args):
        ctx.emit(firewall_rule(rule))


@REGISTRY.cmdlet("Get-NetFirewallPortFilter", Endpoint.OS, P("All", Kind.SWITCH), *_CIM)
def get_net_firewall_port_filter(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    _readable(ctx)
    for rule in ctx.host.firewall_rules:
        ctx.emit(port_filter(rule))


@REGISTRY.cmdlet("Get-NetFirewallAddressFilter", Endpoint.OS, P("All", Kind.SWITCH), *_CIM)
def get_net_firewall_address_filter(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    _readable(ctx)
    for rule in ctx.host.firewall_rules:
        ctx.emit(address_filter(rule))


def _set_enabled(ctx: Context, args: dict[str, Any], enabled: bool) -> None:
    if "Name" not in args and "DisplayName" not in args:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Name"]))
    rules = _select(ctx, args)
    if args.get("WhatIf"):
        return
    for rule in rules:
        if rule.group_policy:
            # A GPO's rule lives in the GPO, not in the PersistentStore these cmdlets change.
            ctx.error(_not_found(ctx, "Name", rule.name))
            continue
        rule.enabled = enabled
        if args.get("PassThru"):
            ctx.emit(firewall_rule(rule))


_CHANGE = (
    P("Name", Kind.STRINGS, position=0, aliases=("ID",)),
    P("DisplayName", Kind.STRINGS),
    P("PassThru", Kind.SWITCH),
    *_CIM,
    *SHOULD_PROCESS,
)


@REGISTRY.cmdlet("Enable-NetFirewallRule", Endpoint.OS, *_CHANGE)
def enable_net_firewall_rule(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    _set_enabled(ctx, args, True)


@REGISTRY.cmdlet("Disable-NetFirewallRule", Endpoint.OS, *_CHANGE)
def disable_net_firewall_rule(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    _set_enabled(ctx, args, False)


@REGISTRY.cmdlet("Remove-NetFirewallRule", Endpoint.OS, *_CHANGE)
def remove_net_firewall_rule(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if "Name" not in args and "DisplayName" not in args:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Name"]))
    rules = _select(ctx, args)
    if args.get("WhatIf"):
        return
    for rule in rules:
        ctx.host.firewall_rules.remove(rule)


@REGISTRY.cmdlet(
    "New-NetFirewallRule",
    Endpoint.OS,
    P("Name", Kind.STRING, aliases=("ID",)),
    P("DisplayName", Kind.STRING, position=0),
    P("Direction", Kind.ENUM, choices=("Inbound", "Outbound"), type_name=f"{_GENERATED}.Direction"),
    P("Action", Kind.ENUM, choices=("NotConfigured", "Allow", "Block"), type_name=f"{_GENERATED}.Action"),
    P("Enabled", Kind.ENUM, choices=("True", "False"), type_name=f"{_GENERATED}.Enabled"),
    P("Profile", Kind.STRINGS),
    P("Protocol", Kind.STRING),
    P("RemotePort", Kind.STRINGS),
    P("RemoteAddress", Kind.STRINGS),
    P("Description", Kind.STRING),
    *_CIM,
    *SHOULD_PROCESS,
)
def new_net_firewall_rule(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if "DisplayName" not in args:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["DisplayName"]))
    name = str(args.get("Name") or args["DisplayName"])
    if any(r.name.lower() == name.lower() for r in ctx.host.firewall_rules):
        ctx.fail(ctx.cim_error("Cannot create a file when that file already exists. ",
                               "Windows System Error 183", ErrorCategory.ResourceExists, name))  # fmt: skip
    asked = [str(item).strip().lower() for item in args.get("Profile") or ["Any"]]
    profiles = tuple(p for p in PROFILES if p.lower() in asked)
    rule = FirewallRule(
        name=name,
        display_name=str(args["DisplayName"]),
        direction=str(args.get("Direction", "Inbound")),  # New-NetFirewallRule's default: Inbound
        action=str(args.get("Action", "Allow")),
        enabled=str(args.get("Enabled", "True")).lower() == "true",
        profile=profiles or ("Any",),
        protocol={"udp": "UDP", "tcp": "TCP"}.get(str(args.get("Protocol", "Any")).lower(), "Any"),
        remote_port=tuple(str(p) for p in args.get("RemotePort") or ["Any"]),
        remote_address=tuple(str(a) for a in args.get("RemoteAddress") or ["Any"]),
    )
    if args.get("WhatIf"):
        return
    ctx.host.firewall_rules.append(rule)
    ctx.emit(firewall_rule(rule))


@REGISTRY.cmdlet(
    "Get-NetFirewallProfile",
    Endpoint.OS,
    P("Name", Kind.STRINGS, position=0, aliases=("Profile",)),
    P("All", Kind.SWITCH),
    *_CIM,
)
def get_net_firewall_profile(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    """The profiles (all, or by -Name); a name that is no profile is ObjectNotFound."""
    _readable(ctx)
    profiles = list(ctx.host.firewall_profiles)
    if "Name" in args:
        chosen = []
        for pattern in args["Name"]:
            hits = [p for p in profiles if identity_matches(pattern, p.name)]
            if not hits and "*" not in pattern and "?" not in pattern:
                ctx.error(ctx.cim_error(
                    f"No MSFT_NetFirewallProfile objects found with property 'Name' equal to '{pattern}'.  "
                    "Verify the value of the property and retry.",
                    "CmdletizationQuery_NotFound_Name", ErrorCategory.ObjectNotFound, pattern,
                ))  # fmt: skip
            chosen += [p for p in hits if p not in chosen]
        profiles = chosen
    for profile in profiles:
        ctx.emit(firewall_profile(profile))
