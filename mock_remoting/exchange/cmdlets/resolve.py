"""Resolve-DnsName: real DNS queries from the host to the lab responders (``dnsclient.py`` of
the exchange package sends them), answered as DnsRecord objects or the real error records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psrpcore.types import ErrorCategory, ErrorRecord

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import dnsclient
from mock_remoting.exchange.binding import Kind, P
from mock_remoting.exchange.cmdlets.base import Context, Registry
from mock_remoting.exchange.objects.windows import dns_record

REGISTRY = Registry()

RESOLVE_TYPES = ("A", "AAAA", "A_AAAA", "MX", "NS", "SOA", "SRV", "TXT", "CNAME", "PTR", "ANY")


@REGISTRY.cmdlet(
    "Resolve-DnsName",
    Endpoint.OS,
    P("Name", Kind.STRING, position=0),
    P(
        "Type",
        Kind.ENUM,
        position=1,
        choices=RESOLVE_TYPES,
        type_name="Microsoft.DnsClient.Commands.RecordType",
    ),
    P("Server", Kind.STRINGS),
    *(
        P(switch, Kind.SWITCH)
        for switch in (
            "DnsOnly",
            "QuickTimeout",
            "NoHostsFile",
            "NoRecursion",
            "CacheOnly",
            "TcpOnly",
            "NoIdn",
            "LlmnrNetbiosOnly",
            "LlmnrFallback",
            "LlmnrOnly",
            "DnssecOk",
            "DnssecCd",
        )
    ),
    locks=False,  # it waits on the network: the fleet's lock is not held meanwhile
)
def resolve_dns_name(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    name = args["Name"]
    rtype = args.get("Type", "A_AAAA")
    with ctx.org.lock:
        servers = list(args.get("Server") or ctx.host.mapi_nic.servers)
    address_map = ctx.dns_address_map
    wanted = ("A", "AAAA") if rtype == "A_AAAA" else (rtype,)
    found: list[Any] = []
    failure: str | None = None
    for qtype in wanted:
        answer = dnsclient.ClientAnswer("TIMEOUT")
        for server in servers:  # the Windows resolver moves on only when a server is silent
            if ctx.cancel.is_set():
                return
            with ctx.org.lock:
                blocked = ctx.host.dns_blocked(server, tcp_only=bool(args.get("TcpOnly")))
            if blocked:
                # The host's firewall drops the query (mock_remoting/exchange/firewall.py): the
                # client hears nothing and times out, while the responder itself is up.
                answer = dnsclient.ClientAnswer("TIMEOUT")
                continue
            answer = dnsclient.query(
                address_map,
                server,
                name,
                "ANY" if qtype == "ANY" else qtype,
                timeout=1.0 if args.get("QuickTimeout") else dnsclient.QUERY_TIMEOUT,
            )
            if answer.status != "TIMEOUT":
                break
        if answer.status == "NOERROR":
            found += [r for r in answer.records]
        elif failure is None:
            failure = answer.status
    if failure is not None and not found:
        ctx.error(_resolve_error(ctx, name, failure))
    for record in found:
        obj = dns_record(record)
        if obj is not None:
            ctx.emit(obj)


def _resolve_error(ctx: Context, name: str, status: str) -> ErrorRecord:
    message, code, category = {
        "NXDOMAIN": (
            "DNS name does not exist",
            "DNS_ERROR_RCODE_NAME_ERROR",
            ErrorCategory.ResourceUnavailable,
        ),
        "SERVFAIL": (
            "DNS server failure",
            "DNS_ERROR_RCODE_SERVER_FAILURE",
            ErrorCategory.ResourceUnavailable,
        ),
        "REFUSED": ("DNS request refused", "DNS_ERROR_RCODE_REFUSED", ErrorCategory.ResourceUnavailable),
        "TIMEOUT": (
            "This operation returned because the timeout period expired",
            "ERROR_TIMEOUT",
            ErrorCategory.OperationTimeout,
        ),
    }.get(status, ("DNS server failure", "DNS_ERROR_RCODE_SERVER_FAILURE", ErrorCategory.ResourceUnavailable))
    return ctx.cmdlet_error(
        f"{name} : {message}", code, category, "System.ComponentModel.Win32Exception", name
    )
