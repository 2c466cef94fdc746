"""Send connectors: Get-, New-, Set- and Remove-SendConnector.

Send connectors are organisation-wide (they live in AD): every host's Exchange endpoint shows
and changes the same list, and a connector routes mail only for its SourceTransportServers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import records
from mock_remoting.exchange.binding import SHOULD_PROCESS, Kind, MvpEdit, P, apply_mvp
from mock_remoting.exchange.cmdlets.base import (
    DOMAIN_CONTROLLER,
    IDENTITY,
    Context,
    Registry,
    find_host,
    identity_matches,
)
from mock_remoting.exchange.objects.exchange import send_connector
from mock_remoting.exchange.scenario import AUTH_MECHANISMS, format_address_space, parse_address_space
from mock_remoting.exchange.state import SendConnector

REGISTRY = Registry()

# What New- and Set-SendConnector both take.
_CONNECTOR = (
    P("AddressSpaces", Kind.MVP, type_name="Microsoft.Exchange.Data.MultiValuedProperty`1[AddressSpace]"),
    P("SmartHosts", Kind.MVP, type_name="Microsoft.Exchange.Data.MultiValuedProperty`1[SmartHost]"),
    P("DNSRoutingEnabled", Kind.BOOL),
    P("UseExternalDNSServersEnabled", Kind.BOOL),
    P("FrontendProxyEnabled", Kind.BOOL),
    P(
        "SmartHostAuthMechanism",
        Kind.ENUM,
        choices=AUTH_MECHANISMS,
        type_name="Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig+AuthMechanisms",
    ),
    P(
        "SourceTransportServers",
        Kind.MVP,
        type_name="Microsoft.Exchange.Data.MultiValuedProperty`1[ServerIdParameter]",
    ),
    P("Enabled", Kind.BOOL),
    P("Port", Kind.INT),
    P("Comment", Kind.STRING),
    P("Force", Kind.SWITCH),
    DOMAIN_CONTROLLER,
    *SHOULD_PROCESS,
)
_USAGES = ("Custom", "Internal", "Internet", "Partner")


@REGISTRY.cmdlet("Get-SendConnector", Endpoint.EXCHANGE, IDENTITY, DOMAIN_CONTROLLER)
def get_send_connector(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    identity = args.get("Identity")
    found = [
        c for c in ctx.org.connectors if identity is None or identity_matches(identity, c.name, str(c.guid))
    ]
    if identity is not None and not found:
        ctx.error(ctx.exchange.not_found(ctx.cmdlet, identity, ctx.dc))
    for connector in found:
        ctx.emit(send_connector(ctx.org, connector, ctx.host.spec.major))


SMART_HOSTS_NEED_NO_DNS = (
    "The SmartHosts parameter can only be used when DNS routing is disabled: set DNSRoutingEnabled to $false "
    "in the same command that sets SmartHosts."
)
NO_DNS_NEEDS_SMART_HOSTS = (
    "When DNSRoutingEnabled is set to $false, you must specify at least one smart host in the SmartHosts "
    "parameter."
)


def _connector_changes(ctx: Context, args: dict[str, Any], connector: SendConnector | None) -> dict[str, Any]:
    """Validate the connector parameters of New-/Set-SendConnector; returns attribute changes."""
    changes: dict[str, Any] = {}
    if "SmartHosts" in args:
        smart_hosts = (
            list(args["SmartHosts"])
            if not isinstance(args["SmartHosts"], MvpEdit)
            else apply_mvp(connector.smart_hosts if connector else [], args["SmartHosts"])
        )
        if smart_hosts and args.get("DNSRoutingEnabled") is not False:
            # Exchange insists on both in one call (EXCHANGE_FACTS: "setting SmartHosts requires
            # DNSRoutingEnabled $false in the same call").
            ctx.fail(
                ctx.exchange.data_validation(
                    ctx.cmdlet, SMART_HOSTS_NEED_NO_DNS, target=",".join(smart_hosts)
                )
            )
        for host in smart_hosts:
            if not re.match(r"^\[?[A-Za-z0-9_.:-]+\]?$", host):
                ctx.fail(
                    ctx.exchange.invalid_argument(
                        ctx.cmdlet,
                        f"The smart host '{host}' isn't a valid host name or IP address.",
                        target=host,
                    )
                )
        changes["smart_hosts"] = smart_hosts
    if "DNSRoutingEnabled" in args:
        changes["dns_routing_enabled"] = args["DNSRoutingEnabled"]
    dns_routing = changes.get("dns_routing_enabled", connector.dns_routing_enabled if connector else True)
    smart = changes.get("smart_hosts", connector.smart_hosts if connector else [])
    if not dns_routing and not smart:
        ctx.fail(ctx.exchange.data_validation(ctx.cmdlet, NO_DNS_NEEDS_SMART_HOSTS))
    if dns_routing and smart:
        ctx.fail(ctx.exchange.data_validation(ctx.cmdlet, SMART_HOSTS_NEED_NO_DNS, target=",".join(smart)))
    if "AddressSpaces" in args:
        texts = apply_mvp(
            [format_address_space(s) for s in connector.address_spaces] if connector else [],
            args["AddressSpaces"],
        )
        spaces = []
        for text in texts:
            space = parse_address_space(text)
            if space is None:
                ctx.fail(
                    ctx.exchange.invalid_argument(
                        ctx.cmdlet,
                        f"The address space '{text}' isn't valid. Use the form SMTP:contoso.com;1.",
                        target=text,
                    )
                )
            spaces.append(space)
        if not spaces:
            ctx.fail(ctx.exchange.data_validation(ctx.cmdlet, "The AddressSpaces property can't be empty."))
        changes["address_spaces"] = spaces
    if "SourceTransportServers" in args:
        names = apply_mvp(
            connector.source_transport_servers if connector else [], args["SourceTransportServers"]
        )
        resolved = []
        for name in names:
            host = find_host(ctx, name)
            if host is None:
                ctx.fail(ctx.exchange.not_found(ctx.cmdlet, name, ctx.dc))
            resolved.append(host.name)
        changes["source_transport_servers"] = resolved
    simple = {
        "UseExternalDNSServersEnabled": "use_external_dns_servers_enabled",
        "FrontendProxyEnabled": "frontend_proxy_enabled",
        "Enabled": "enabled",
        "Port": "port",
        "Comment": "comment",
        "SmartHostAuthMechanism": "smart_host_auth_mechanism",
    }
    for param, attribute in simple.items():
        if param in args:
            changes[attribute] = args[param]
    if "Port" in args and not 1 <= args["Port"] <= 65535:
        ctx.fail(
            ctx.exchange.data_validation(
                ctx.cmdlet,
                f"The value {args['Port']} for Port is out of range (1-65535).",
                target=args["Port"],
            )
        )
    return changes


@REGISTRY.cmdlet(
    "New-SendConnector",
    Endpoint.EXCHANGE,
    *_CONNECTOR,
    P("Name", Kind.STRING, position=0),
    P(
        "Usage",
        Kind.ENUM,
        choices=_USAGES,
        type_name="Microsoft.Exchange.Management.SystemConfigurationTasks.NewSendConnector+UsageType",
    ),
    *(P(usage, Kind.SWITCH) for usage in _USAGES),
)
def new_send_connector(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    name = args["Name"]
    usages = [u for u in _USAGES if args.get(u)]
    if len(usages) + (1 if "Usage" in args else 0) > 1:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    if not name.strip():
        ctx.fail(ctx.exchange.data_validation(ctx.cmdlet, "The Name property can't be empty."))
    if ctx.org.connector(name) is not None:
        ctx.fail(ctx.exchange.already_exists(ctx.cmdlet, f"CN={name},CN=Connections", ctx.dc))
    changes = _connector_changes(ctx, args, None)
    if args.get("WhatIf"):
        return
    now = ctx.org.clock()
    connector = SendConnector(
        name=name,
        guid=uuid.uuid4(),
        address_spaces=changes["address_spaces"],
        source_transport_servers=changes.get("source_transport_servers", [ctx.host.name]),
        dns_routing_enabled=changes.get("dns_routing_enabled", True),
        smart_hosts=changes.get("smart_hosts", []),
        use_external_dns_servers_enabled=changes.get("use_external_dns_servers_enabled", False),
        smart_host_auth_mechanism=changes.get("smart_host_auth_mechanism", "None"),
        enabled=changes.get("enabled", True),
        port=changes.get("port", 25),
        comment=changes.get("comment", ""),
        usage=args.get("Usage") or (usages[0] if usages else None),
        created=now,
        changed=now,
        frontend_proxy_enabled=changes.get("frontend_proxy_enabled", False),
    )
    ctx.org.connectors.append(connector)
    ctx.emit(send_connector(ctx.org, connector, ctx.host.spec.major))


def _connector_or_fail(ctx: Context, identity: str) -> SendConnector:
    connector = ctx.org.connector(identity)
    if connector is None:
        ctx.fail(ctx.exchange.not_found(ctx.cmdlet, identity, ctx.dc))
    return connector


@REGISTRY.cmdlet(
    "Set-SendConnector",
    Endpoint.EXCHANGE,
    *_CONNECTOR,
    IDENTITY,
    P("Name", Kind.STRING),
    input_param="Identity",
)
def set_send_connector(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    connector = _connector_or_fail(ctx, args["Identity"])
    changes = _connector_changes(ctx, args, connector)
    if "Name" in args:
        other = ctx.org.connector(args["Name"])
        if other is not None and other is not connector:
            ctx.fail(ctx.exchange.already_exists(ctx.cmdlet, f"CN={args['Name']},CN=Connections", ctx.dc))
        changes["name"] = args["Name"]
    if args.get("WhatIf"):
        return
    for attribute, value in changes.items():
        setattr(connector, attribute, value)
    connector.changed = ctx.org.clock()


@REGISTRY.cmdlet(
    "Remove-SendConnector",
    Endpoint.EXCHANGE,
    IDENTITY,
    DOMAIN_CONTROLLER,
    *SHOULD_PROCESS,
    input_param="Identity",
)
def remove_send_connector(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    connector = _connector_or_fail(ctx, args["Identity"])
    if args.get("WhatIf"):
        return
    ctx.org.connectors.remove(connector)
