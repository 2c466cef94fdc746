"""Get-Queue's rates in the lab (IncomingRate, OutgoingRate, Velocity), and a queue held in
Ready while its DNS lookups time out (queue key ready_while_dns_times_out)."""

from __future__ import annotations

from typing import Any

from lab.exchange._exchange_support import EX, OS, make_fleet, ok, prop, retry_all
from mock_remoting.exchange import EmulatedHost

NEXT_HOP = "fabrikam.com"


def _get_queue(host: EmulatedHost, identity: str) -> Any:
    rows = ok(host, EX, "Get-Queue", ("Server", "EX01"))
    (obj,) = [q for q in rows if prop(q, "Identity") == identity]
    return obj


def test_a_queue_whose_lookups_time_out_waits_in_ready_and_drains_after_the_fix() -> None:
    fleet = make_fleet("queues-stuck-ready")
    host = fleet.host("EX01")
    view = host.queue(NEXT_HOP)
    assert (view.status, view.queued, view.last_error, view.retry_count) == ("Ready", 12, None, 0)
    obj = _get_queue(host, view.identity)
    # 3 arrived in the minute, none left: per 5 s averaged over 60 s, Velocity = out - in.
    assert (prop(obj, "IncomingRate"), prop(obj, "OutgoingRate"), prop(obj, "Velocity")) == (0.25, 0.0, -0.25)
    assert prop(obj, "MessageCount") == 12 and prop(obj, "LastError") is None
    retry_all(host)  # still nothing moves; more mail arrived
    assert (host.queue(NEXT_HOP).status, host.queue(NEXT_HOP).queued) == ("Ready", 15)

    ok(host, OS, "Set-DnsClientServerAddress", ("InterfaceIndex", 4), ("ServerAddresses", "10.0.0.10"))
    ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    drained = host.queue(NEXT_HOP)
    assert (drained.status, drained.queued, drained.delivered) == ("Ready", 0, 18)
    obj = _get_queue(host, drained.identity)
    assert prop(obj, "OutgoingRate") == 1.5 and prop(obj, "Velocity") == 1.25  # 18 left, 3 came


def test_without_the_key_the_same_timeouts_put_the_queue_in_retry() -> None:
    fleet = make_fleet("dns-server-unreachable")
    view = fleet.host("EX01").queue(NEXT_HOP)
    assert view.status == "Retry" and view.last_error is not None and "ErrorTimeout" in view.last_error
