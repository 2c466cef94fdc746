"""The DnsClient module's interface cmdlets: Get-/Set-DnsClient,
Get-/Set-DnsClientServerAddress, Register-DnsClient and Clear-DnsClientCache.
(Resolve-DnsName, which sends real queries, is ``resolve.py``.)"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from psrpcore.types import ErrorCategory

from mock_remoting.backend import Endpoint
from mock_remoting.dns.world import NO_REPLY
from mock_remoting.exchange import records
from mock_remoting.exchange.binding import SHOULD_PROCESS, Kind, P
from mock_remoting.exchange.cmdlets.base import Context, Registry
from mock_remoting.exchange.cmdlets.nics import NIC_SELECT, select_nics
from mock_remoting.exchange.objects.windows import dns_client, dns_server_address

REGISTRY = Registry()

# Register-DnsClient and Clear-DnsClientCache act on the whole host, not on one interface.
_HOST_WIDE = (
    P("CimSession", Kind.ANY),
    P("ThrottleLimit", Kind.INT),
    P("AsJob", Kind.SWITCH),
    *SHOULD_PROCESS,
)


@REGISTRY.cmdlet(
    "Get-DnsClient",
    Endpoint.OS,
    *NIC_SELECT,
    P("ConnectionSpecificSuffix", Kind.STRINGS),
    P("RegisterThisConnectionsAddress", Kind.BOOL),
    P("UseSuffixWhenRegistering", Kind.BOOL),
)
def get_dns_client(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    for nic in select_nics(ctx, args, "MSFT_DNSClient", require=False):
        if (
            "RegisterThisConnectionsAddress" in args
            and nic.register != args["RegisterThisConnectionsAddress"]
        ):
            continue
        ctx.emit(dns_client(ctx.host, nic))


@REGISTRY.cmdlet(
    "Set-DnsClient",
    Endpoint.OS,
    *NIC_SELECT,
    P("ConnectionSpecificSuffix", Kind.STRING, aliases=("Suffix",)),
    P("RegisterThisConnectionsAddress", Kind.BOOL),
    P("UseSuffixWhenRegistering", Kind.BOOL),
    P("ResetConnectionSpecificSuffix", Kind.SWITCH, aliases=("ResetSuffix",)),
    P("PassThru", Kind.SWITCH),
    *SHOULD_PROCESS,
    input_param="InputObject",
)
def set_dns_client(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if args.get("ResetConnectionSpecificSuffix") and "ConnectionSpecificSuffix" in args:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    nics = select_nics(ctx, args, "MSFT_DNSClient", require=True)
    if args.get("WhatIf"):
        return
    for nic in nics:
        if "RegisterThisConnectionsAddress" in args:
            nic.register = args["RegisterThisConnectionsAddress"]
        if "UseSuffixWhenRegistering" in args:
            nic.use_suffix = args["UseSuffixWhenRegistering"]
        if "ConnectionSpecificSuffix" in args:
            nic.suffix = args["ConnectionSpecificSuffix"]
        if args.get("ResetConnectionSpecificSuffix"):
            nic.suffix = ""
        if args.get("PassThru"):
            ctx.emit(dns_client(ctx.host, nic))


FAMILIES = {"ipv4": 2, "ipv6": 23, "2": 2, "23": 23}


@REGISTRY.cmdlet(
    "Get-DnsClientServerAddress",
    Endpoint.OS,
    *NIC_SELECT,
    P("AddressFamily", Kind.STRING, aliases=("Family",)),
)
def get_dns_client_server_address(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    families: tuple[int, ...] = (2, 23)
    if "AddressFamily" in args:
        family = FAMILIES.get(str(args["AddressFamily"]).lower())
        if family is None:
            ctx.fail(
                records.enum_mismatch(
                    ctx.cmdlet, "AddressFamily", args["AddressFamily"], "AddressFamily", ["IPv4", "IPv6"]
                )
            )
        families = (family,)
    for nic in select_nics(ctx, args, "MSFT_DNSClientServerAddress", require=False):
        for family in families:
            ctx.emit(dns_server_address(nic, family))


@REGISTRY.cmdlet(
    "Set-DnsClientServerAddress",
    Endpoint.OS,
    *NIC_SELECT,
    P("ServerAddresses", Kind.STRINGS, aliases=("Addresses",)),
    P("ResetServerAddresses", Kind.SWITCH, aliases=("ResetAddresses",)),
    P("Validate", Kind.SWITCH),
    P("PassThru", Kind.SWITCH),
    *SHOULD_PROCESS,
    input_param="InputObject",
)
def set_dns_client_server_address(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if args.get("ResetServerAddresses") and "ServerAddresses" in args:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    nics = select_nics(ctx, args, "MSFT_DNSClientServerAddress", require=True)
    v4: list[str] = []
    v6: list[str] = []
    for text in args.get("ServerAddresses", ()):
        try:
            ip = ipaddress.ip_address(text.strip())
        except ValueError:
            ctx.fail(
                ctx.cim_error(
                    f'The parameter ServerAddresses has an invalid value "{text}": '
                    "it is not a valid IP address.",
                    "Windows System Error 87",
                    ErrorCategory.InvalidArgument,
                    text,
                )
            )
        (v4 if ip.version == 4 else v6).append(str(ip))
    if args.get("Validate"):
        for server in v4 + v6:
            if ctx.org.world.answer(server, ctx.org.world.ad_domain, "SOA").rcode == NO_REPLY:
                ctx.error(
                    ctx.cim_error(
                        f"The DNS server {server} did not respond to validation; "
                        "the server addresses were not changed.",
                        "Windows System Error 1460",
                        ErrorCategory.OperationTimeout,
                        server,
                    )
                )
                return
    if args.get("WhatIf"):
        return
    for nic in nics:
        if args.get("ResetServerAddresses"):
            nic.dns_servers = list(nic.dhcp_dns_servers)
            nic.ipv6_dns_servers = []
        elif "ServerAddresses" in args:
            nic.dns_servers = v4
            nic.ipv6_dns_servers = v6
        if args.get("PassThru"):
            ctx.emit(dns_server_address(nic, 2))
    # The transport service keeps the servers it read at start: restart MSExchangeTransport
    # after this ("Bad NIC Settings Cause Internal Messages to Queue with 451 4.4.0 DNS query
    # failed", exchangemaster).



@REGISTRY.cmdlet("Register-DnsClient", Endpoint.OS, *_HOST_WIDE)
def register_dns_client(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    # Dynamic update of the host's A record with every NIC that registers itself (state.py,
    # Nic.registers); a NIC with "Register this connection's addresses in DNS" off contributes
    # nothing (KB3007623), and the update replaces what the name held: an address of a NIC
    # whose registration was turned off leaves the record.
    if args.get("WhatIf"):
        return
    ctx.org.world.register(ctx.host.fqdn, ctx.host.registered_addresses())


@REGISTRY.cmdlet("Clear-DnsClientCache", Endpoint.OS, *_HOST_WIDE)
def clear_dns_client_cache(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if not args.get("WhatIf"):
        ctx.host.dns_cache_clears += 1
        ctx.host.dns_cache.clear()
