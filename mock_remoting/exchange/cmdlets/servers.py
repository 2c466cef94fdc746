"""Exchange servers and their transport settings: Get-ExchangeServer, and
Get-/Set-TransportService on 15.x or Get-/Set-TransportServer on 14.x (Exchange 2010)."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Sequence
from typing import Any

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import records
from mock_remoting.exchange.binding import SHOULD_PROCESS, Kind, MvpEdit, P, apply_mvp, ip_values
from mock_remoting.exchange.cmdlets.base import (
    DOMAIN_CONTROLLER,
    IDENTITY,
    Context,
    Registry,
    identity_matches,
)
from mock_remoting.exchange.objects.exchange import exchange_server, mailbox_server, transport_server
from mock_remoting.exchange.scenario import PROTOCOL_OPTIONS
from mock_remoting.exchange.state import HostState

REGISTRY = Registry()

_IP_MVP = "Microsoft.Exchange.Data.MultiValuedProperty`1[System.Net.IPAddress]"


def _protocol(name: str) -> P:
    return P(name, Kind.ENUM, choices=PROTOCOL_OPTIONS, type_name="Microsoft.Exchange.Data.ProtocolOption")


_SET_TRANSPORT = (
    IDENTITY,
    DOMAIN_CONTROLLER,
    P("ExternalDNSAdapterEnabled", Kind.BOOL),
    P("ExternalDNSAdapterGuid", Kind.STRING),
    _protocol("ExternalDNSProtocolOption"),
    P("ExternalDNSServers", Kind.MVP, type_name=_IP_MVP),
    P("InternalDNSAdapterEnabled", Kind.BOOL),
    P("InternalDNSAdapterGuid", Kind.STRING),
    _protocol("InternalDNSProtocolOption"),
    P("InternalDNSServers", Kind.MVP, type_name=_IP_MVP),
    *SHOULD_PROCESS,
)


@REGISTRY.cmdlet(
    "Get-ExchangeServer", Endpoint.EXCHANGE, IDENTITY, DOMAIN_CONTROLLER, P("Status", Kind.SWITCH)
)
def get_exchange_server(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    for host in _servers(ctx, args.get("Identity")):
        ctx.emit(exchange_server(ctx.org, host))


def _servers(ctx: Context, identity: str | None) -> list[HostState]:
    """The servers ``-Identity`` names (every server without it), by name; none found for an
    identity is the not-found error record Exchange writes."""
    found = _named(ctx, identity)
    if found is None:
        hosts = sorted(ctx.org.hosts.values(), key=lambda h: h.name.lower())
        found = [h for h in hosts if identity is None or identity_matches(identity, h.name, h.fqdn)]
    if identity is not None and not found:
        ctx.error(ctx.exchange.not_found(ctx.cmdlet, identity, ctx.dc))
    return found


def _named(ctx: Context, identity: str | None) -> list[HostState] | None:
    """The server a wildcard-free name or FQDN names, by the organisation's index (a sort and
    a scan of every server per call made these cmdlets O(N log N) on a 10,000-host fleet);
    None for no identity or a wildcard, which the callers match against every server."""
    if identity is None or "*" in identity or "?" in identity:
        return None
    host = ctx.org.identities().get(identity.strip().lower())
    return [host] if host is not None and identity_matches(identity, host.name, host.fqdn) else []


@REGISTRY.cmdlet(
    "Get-MailboxServer", Endpoint.EXCHANGE, IDENTITY, DOMAIN_CONTROLLER, P("Status", Kind.SWITCH)
)
def get_mailbox_server(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    # Every lab server has the Mailbox role (Exchange 2016 and later have no other but Edge).
    for host in _servers(ctx, args.get("Identity")):
        ctx.emit(mailbox_server(ctx.org, host))


def _transport_hosts(ctx: Context) -> list[HostState]:
    modern = ctx.cmdlet.endswith("Service")
    return sorted(
        (h for h in ctx.org.hosts.values() if (h.spec.major >= 15) == modern), key=lambda h: h.name.lower()
    )


@REGISTRY.cmdlet("Get-TransportServer", Endpoint.EXCHANGE, IDENTITY, DOMAIN_CONTROLLER, versions=(14,))
@REGISTRY.cmdlet("Get-TransportService", Endpoint.EXCHANGE, IDENTITY, DOMAIN_CONTROLLER, versions=(15,))
def get_transport_service(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    identity = args.get("Identity")
    named = _named(ctx, identity)
    modern = ctx.cmdlet.endswith("Service")
    if named is not None:
        hosts = [h for h in named if (h.spec.major >= 15) == modern]
    else:
        hosts = [
            h for h in _transport_hosts(ctx) if identity is None or identity_matches(identity, h.name, h.fqdn)
        ]
    if identity is not None and not hosts:
        ctx.error(ctx.exchange.not_found(ctx.cmdlet, identity, ctx.dc))
    for host in hosts:
        ctx.emit(transport_server(ctx.org, host))


def _ip_list_or_fail(ctx: Context, name: str, value: tuple[str, ...] | MvpEdit) -> None:
    try:
        ip_values(value)
    except ValueError:
        shown = ",".join(value.add + value.remove) if isinstance(value, MvpEdit) else ",".join(value)
        ctx.fail(records.argument_transformation(ctx.cmdlet, name, shown, _IP_MVP))


@REGISTRY.cmdlet("Set-TransportServer", Endpoint.EXCHANGE, *_SET_TRANSPORT, versions=(14,))
@REGISTRY.cmdlet("Set-TransportService", Endpoint.EXCHANGE, *_SET_TRANSPORT, versions=(15,))
def set_transport_service(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    identity = args["Identity"]
    host = next((h for h in _transport_hosts(ctx) if identity_matches(identity, h.name, h.fqdn)), None)
    if host is None:
        ctx.fail(ctx.exchange.not_found(ctx.cmdlet, identity, ctx.dc))
    for name in ("ExternalDNSServers", "InternalDNSServers"):
        if name in args:
            _ip_list_or_fail(ctx, name, args[name])
    for name in ("ExternalDNSAdapterGuid", "InternalDNSAdapterGuid"):
        if name in args:
            try:
                uuid.UUID(args[name])
            except ValueError:
                ctx.fail(records.argument_transformation(ctx.cmdlet, name, args[name], "System.Guid"))
    if args.get("WhatIf"):
        return
    t = host.transport
    if "ExternalDNSServers" in args:
        t.external_dns_servers = [
            str(ipaddress.ip_address(v))
            for v in apply_mvp(t.external_dns_servers, args["ExternalDNSServers"])
        ]
    if "InternalDNSServers" in args:
        t.internal_dns_servers = [
            str(ipaddress.ip_address(v))
            for v in apply_mvp(t.internal_dns_servers, args["InternalDNSServers"])
        ]
    if "ExternalDNSAdapterEnabled" in args:
        t.external_dns_adapter_enabled = args["ExternalDNSAdapterEnabled"]
    if "InternalDNSAdapterEnabled" in args:
        t.internal_dns_adapter_enabled = args["InternalDNSAdapterEnabled"]
    if "ExternalDNSProtocolOption" in args:
        t.external_dns_protocol_option = args["ExternalDNSProtocolOption"]
    if "InternalDNSProtocolOption" in args:
        t.internal_dns_protocol_option = args["InternalDNSProtocolOption"]
    # Nothing else happens now: transport reads these at start (restart MSExchangeTransport).
