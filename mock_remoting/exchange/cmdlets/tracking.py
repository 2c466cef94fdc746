"""Get-MessageTrackingLog: the host's message tracking log (mailflow.py writes a SEND event for
each message a delivery attempt sends).

Parameters as the cmdlet documents them (Get-MessageTrackingLog, learn.microsoft.com; Exchange
2010 to 2019): -Server, -Start and -End (DateTime), -EventId, -Source, -Recipients,
-ResultSize (a number or Unlimited). PowerShell converts a string argument to DateTime with
the invariant culture, so ``2026-12-01T10:00:00Z`` (ISO 8601, UTC) binds on any server
whatever its regional settings ("about_Type_Conversion"); the lab accepts that form and the
en-US ``M/d/yyyy H:mm:ss``. The output's field names are the log's own without dashes
(Timestamp, EventId, Source, ConnectorId, ServerHostname, ServerIp, ClientHostname, Recipients,
MessageId), newest last, as the log file is written.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import records
from mock_remoting.exchange.binding import Kind, P
from mock_remoting.exchange.cmdlets.base import Context, Registry, as_list, find_host
from mock_remoting.exchange.objects.dotnet import dotnet, string_array
from mock_remoting.exchange.state import TrackingEvent

REGISTRY = Registry()

TYPES = (
    "Microsoft.Exchange.Management.TransportLogSearchTasks.MessageTrackingEvent",
    "System.Object",
)
_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y")


def _when(ctx: Context, name: str, value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    text = str(value).strip()
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _FORMATS:
            try:
                parsed = datetime.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            ctx.fail(records.argument_transformation(ctx.cmdlet, name, text, "System.DateTime"))
    # The lab's servers keep their clocks in UTC: a time without an offset is UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def _event_object(event: TrackingEvent) -> Any:
    return dotnet(
        TYPES,
        [
            ("Timestamp", event.timestamp),
            ("ClientIp", None),
            ("ClientHostname", event.client_hostname),
            ("ServerIp", event.server_ip or None),
            ("ServerHostname", event.server_hostname),
            ("SourceContext", None),
            ("ConnectorId", event.connector_id),
            ("Source", event.source),
            ("EventId", event.event_id),
            ("MessageId", event.message_id),
            ("Recipients", string_array(event.recipients)),
            ("RecipientCount", len(event.recipients)),
        ],
    )


@REGISTRY.cmdlet(
    "Get-MessageTrackingLog",
    Endpoint.EXCHANGE,
    P("Server", Kind.STRING),
    P("Start", Kind.ANY),
    P("End", Kind.ANY),
    P("EventId", Kind.STRING),
    P("Source", Kind.STRING),
    P("Recipients", Kind.STRINGS),
    P("ResultSize", Kind.ANY),
    P("DomainController", Kind.STRING),
)
def get_message_tracking_log(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    host = ctx.host if "Server" not in args else find_host(ctx, args["Server"])
    if host is None:
        ctx.fail(ctx.exchange.not_found(ctx.cmdlet, args["Server"], ctx.dc))
    start = _when(ctx, "Start", args["Start"]) if "Start" in args else None
    end = _when(ctx, "End", args["End"]) if "End" in args else None
    event_id = str(args.get("EventId", "")).strip().upper()
    source = str(args.get("Source", "")).strip().upper()
    wanted = {r.strip().lower() for r in as_list(args.get("Recipients"))}
    size = args.get("ResultSize", 1000)
    limit = None if str(size).strip().lower() == "unlimited" else int(size)
    emitted = 0
    for event in host.tracking:
        if start is not None and event.timestamp < start:
            continue
        if end is not None and event.timestamp >= end:
            continue
        if event_id and event.event_id != event_id:
            continue
        if source and event.source != source:
            continue
        if wanted and not wanted & {r.lower() for r in event.recipients}:
            continue
        if limit is not None and emitted >= limit:
            break
        ctx.emit(_event_object(event))
        emitted += 1
