"""Get-DnsClientCache: the host's DNS client cache (MSFT_DNSClientCache), as the lab keeps it
(HostState.dns_cache: the negative entries a scenario declares). Clear-DnsClientCache, which
empties it, is with the other DnsClient cmdlets (dnsclient.py).

The filters are the cmdlet's own (learn.microsoft.com: Get-DnsClientCache): -Entry (position
0), -Name (alias RecordName), -Type (a record type by name or number) and -Status (Success,
NotExist, NoRecords, or the number). As for every CIM cmdlet, a filter that matches nothing is
an ObjectNotFound error naming the property; without filters an empty cache returns nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psrpcore.types import ErrorCategory

from mock_remoting.backend import Endpoint
from mock_remoting.exchange.binding import Kind, P
from mock_remoting.exchange.cmdlets.base import Context, Registry
from mock_remoting.exchange.objects.windows import dns_client_cache
from mock_remoting.exchange.state import CACHE_STATUS, CACHE_TYPE, CachedAnswer

REGISTRY = Registry()

_STATUS_WORDS = {**{k.lower(): v for k, v in CACHE_STATUS.items()}, "success": 0}
_TYPE_WORDS = {k.lower(): v for k, v in CACHE_TYPE.items()}


def _numbers(ctx: Context, prop: str, values: Sequence[str], words: dict[str, int]) -> set[int]:
    out: set[int] = set()
    for value in values:
        text = str(value).strip()
        number = int(text) if text.isdigit() else words.get(text.lower())
        if number is None:
            ctx.fail(
                ctx.cim_error(
                    f'Cannot convert value "{text}" to type "Microsoft.PowerShell.Cmdletization.'
                    f'GeneratedTypes.DnsClientCache.{prop}".',
                    "ParameterArgumentTransformationError",
                    ErrorCategory.InvalidArgument,
                    text,
                )
            )
        out.add(number)
    return out


def _matches(
    entry: CachedAnswer, names: list[str], types: set[int] | None, statuses: set[int] | None
) -> bool:
    if names and entry.name not in names:
        return False
    if types is not None and CACHE_TYPE[entry.rdtype] not in types:
        return False
    return statuses is None or entry.status in statuses


@REGISTRY.cmdlet(
    "Get-DnsClientCache",
    Endpoint.OS,
    P("Entry", Kind.STRINGS, position=0),
    P("Name", Kind.STRINGS, aliases=("RecordName",)),
    P("Type", Kind.STRINGS),
    P("Status", Kind.STRINGS),
    P("Section", Kind.STRINGS),
    P("TimeToLive", Kind.UINTS),
    P("DataLength", Kind.UINTS),
    P("Data", Kind.STRINGS),
    P("CimSession", Kind.ANY),
    P("ThrottleLimit", Kind.INT),
    P("AsJob", Kind.SWITCH),
)
def get_dns_client_cache(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    names = [n.strip().lower().rstrip(".") for n in (*args.get("Entry", ()), *args.get("Name", ()))]
    types = _numbers(ctx, "Type", args["Type"], _TYPE_WORDS) if "Type" in args else None
    statuses = _numbers(ctx, "Status", args["Status"], _STATUS_WORDS) if "Status" in args else None
    found = [e for e in ctx.host.dns_cache if _matches(e, names, types, statuses)]
    filtered = [p for p in ("Entry", "Name", "Type", "Status") if p in args]
    if not found and filtered:
        prop = filtered[0]
        value = ", ".join(str(v) for v in args[prop])
        ctx.error(
            ctx.cim_error(
                f"No MSFT_DNSClientCache objects found with property '{prop}' equal to '{value}'.  "
                "Verify the value of the property and retry.",
                f"CmdletizationQuery_NotFound_{prop}",
                ErrorCategory.ObjectNotFound,
                value,
            )
        )
        return
    for entry in found:
        ctx.emit(dns_client_cache(entry))
