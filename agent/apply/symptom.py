"""The symptom checked as an admin checks it after a fix, beside the queues draining.

1. **The lookups that failed, re-run on the host.** For each queue that was failing before the
   change, the names its delivery needs: the next hop's A record (a next hop inside the
   organisation), or an external domain's MX record and every lookup of the domain and of its
   mail hosts that the host-side probe saw fail before the change (collect probes the MX, A and
   AAAA of each failing domain and of its mail exchangers: agent/collect/host_probe.py).
   Each is asked again with Resolve-DnsName on the host, against each DNS server transport uses
   for that next hop *now* (agent/rules/next_hop.py): a server the change took off the path is
   not asked, one it put there is. A lookup resolves when the server answers it with records,
   or, for a record delivery can do without, says authoritatively that it does not exist
   (NOERROR without data): the domain's own MX, A and AAAA (a domain without MX is mailed at
   its A record, RFC 5321 section 5.1, and one with MX needs no A) and a mail host's AAAA (it
   is reached over IPv4). The A record of a mail host, or of an internal next hop, must exist.
   A next hop whose recipient lookups are not the Transport service's (smart hosts, Front End
   Transport) has nothing to re-run: "not available", with the reason.
2. **SEND events to the next hop.** ``Get-MessageTrackingLog -Server <server> -Start <change
   time> -EventId SEND -ResultSize Unlimited`` (learn.microsoft.com, Get-MessageTrackingLog;
   SEND: "a message was sent by SMTP to a different server", "Message tracking in Exchange
   Server"). An event is for a next hop when one of its Recipients is in the external domain,
   or its ServerHostname is the internal next hop. The start is passed as ISO 8601 UTC, which
   PowerShell converts to DateTime with the invariant culture whatever the server's regional
   settings (about_Type_Conversion). A cmdlet the endpoint refuses (the account's RBAC roles
   do not include Message Tracking, so the remote session has no such command; or any other
   error record) makes the check "not available" with the error: never a failure.

A host is verified only when every check that could be made passes (:func:`verified`).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.apply.results import CheckStatus, ProbeCheck, QueueChange, TrackingCheck
from agent.collect import _values as v
from agent.collect import host_probe
from agent.errors import one_line
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import HostFacts, QueueFacts, QueueScope, normalize_name
from agent.model.probe import DnsQueryResult, Outcome, Vantage
from agent.model.remote import RemoteObject
from agent.rules.next_hop import next_hop_lookup
from agent.transport.connection import HostConnection

TRACKING_CMDLET = "Get-MessageTrackingLog"
# Outcomes that are a failure of the lookup itself; NODATA is an answer (see the docstring).
_FAILED = frozenset({Outcome.NXDOMAIN, Outcome.SERVFAIL, Outcome.REFUSED, Outcome.TIMEOUT, Outcome.ERROR})
# A DNS host name (RFC 1123 labels, at least two). An internal queue's NextHopDomain may instead
# name an AD site ("site:Default-First-Site-Name; version:15"), a DAG or a server version
# group: no one name to look up, nor a host a SEND event went to.
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)


def is_host_name(name: str) -> bool:
    return bool(_HOST_NAME.match(normalize_name(name)))


def _not_a_host(hop: str) -> str:
    return (
        f"the next hop {hop!r} is not a host name (an AD site, a DAG or a version group): "
        "there is no one name to look up for it"
    )


@dataclass(frozen=True, slots=True)
class Lookup:
    """One name a failing queue needs: what to ask, and what the host got before the change."""

    next_hop: str
    qname: str
    rdtype: str
    before: str | None  # the worst host-side outcome before the change; None: not asked then
    must_exist: bool = False  # True: an authoritative "no such record" is no answer either


@dataclass(frozen=True, slots=True)
class SentEvent:
    """One SEND line of the message tracking log, the fields the check reads."""

    timestamp: datetime.datetime | None
    connector: str
    server_hostname: str
    recipients: tuple[str, ...]


# --- the lookups ---------------------------------------------------------------------------


def resolves(result: DnsQueryResult, *, must_exist: bool = False) -> bool:
    if result.outcome is Outcome.ANSWER:
        return True
    return result.outcome is Outcome.NODATA and not must_exist


def _host_probes(facts: HostFacts) -> tuple[DnsQueryResult, ...]:
    return tuple(p for p in facts.probes if p.vantage is Vantage.HOST)


def _worst(probes: Iterable[DnsQueryResult]) -> str | None:
    outcomes = [p.outcome for p in probes]
    failed = [o for o in outcomes if o in _FAILED]
    if failed:
        return failed[0].value
    return outcomes[0].value if outcomes else None


def _mx_hosts(probes: Iterable[DnsQueryResult], domain: str) -> tuple[str, ...]:
    out = []
    for probe in probes:
        if normalize_name(probe.qname) == domain and probe.rdtype.upper() == "MX":
            for record in probe.records:
                host = normalize_name(record.split()[-1]) if record.split() else ""
                if host:
                    out.append(host)
    return tuple(dict.fromkeys(out))


def lookups_for(before: HostFacts, queue: QueueFacts) -> tuple[Lookup, ...]:
    """The names ``queue`` (failing before the change) needs, as the module docstring says."""
    probes = _host_probes(before)
    hop = normalize_name(queue.next_hop_domain)

    def lookup(qname: str, rdtype: str) -> Lookup:
        asked = [p for p in probes if normalize_name(p.qname) == qname and p.rdtype.upper() == rdtype]
        must_exist = rdtype == "A" and qname != hop if queue.scope is QueueScope.EXTERNAL else rdtype == "A"
        return Lookup(queue.next_hop_domain, qname, rdtype, _worst(asked), must_exist)

    if queue.scope is not QueueScope.EXTERNAL:
        return (lookup(hop, "A"),)
    names = {hop, *_mx_hosts(probes, hop)}
    out = [lookup(hop, "MX")]
    for probe in probes:
        key = (normalize_name(probe.qname), probe.rdtype.upper())
        if key[0] in names and probe.outcome in _FAILED and key != (hop, "MX"):
            out.append(lookup(*key))
    return tuple(dict.fromkeys(out))


def probe_checks(
    conn: HostConnection, before: HostFacts, after: HostFacts, watched: Sequence[QueueFacts]
) -> tuple[ProbeCheck, ...]:
    """Each watched queue's lookups re-run on the host against the servers transport uses for
    its next hop now (``after``'s settings and connectors). Where the domain's MX answers now,
    its mail hosts' A (and AAAA) are asked too, as delivery asks them next."""
    out: list[ProbeCheck] = []
    for queue in watched:
        hop = queue.next_hop_domain
        if queue.scope is not QueueScope.EXTERNAL and not is_host_name(hop):
            why = _not_a_host(hop)
            out.append(ProbeCheck(hop, hop, "A", None, None, None, CheckStatus.NOT_AVAILABLE, why))
            continue
        path = next_hop_lookup(after, queue)
        pending = list(lookups_for(before, queue))
        seen = {(item.qname, item.rdtype) for item in pending}
        while pending:
            item = pending.pop(0)
            if not path.servers:
                out.append(ProbeCheck(hop, item.qname, item.rdtype, None, item.before, None,
                                      CheckStatus.NOT_AVAILABLE, path.how))  # fmt: skip
                continue
            for server in path.servers:
                got = _ask(conn, server, item.qname, item.rdtype)
                ok = resolves(got, must_exist=item.must_exist)
                out.append(ProbeCheck(hop, item.qname, item.rdtype, server, item.before, got.outcome.value,
                                      CheckStatus.PASS if ok else CheckStatus.FAIL, got.detail))  # fmt: skip
                if item.rdtype != "MX" or item.qname != normalize_name(hop):
                    continue
                for record in got.records:
                    mail_host = normalize_name(record.split()[-1])
                    for rdtype in ("A", "AAAA"):
                        if mail_host and (mail_host, rdtype) not in seen:
                            seen.add((mail_host, rdtype))
                            pending.append(Lookup(hop, mail_host, rdtype, None, rdtype == "A"))
    return tuple(out)


def _ask(conn: HostConnection, server: str, qname: str, rdtype: str) -> DnsQueryResult:
    call = host_probe.probe_call(server, qname, rdtype)
    result = conn.invoke(call)
    return host_probe.parse(call, result.objects, result.errors)


# --- the message tracking log ---------------------------------------------------------------


def iso_utc(when: datetime.datetime) -> str:
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tracking_call(server: str, start: datetime.datetime) -> CmdletCall:
    return CmdletCall(
        Endpoint.EXCHANGE,
        TRACKING_CMDLET,
        (("Server", server), ("Start", iso_utc(start)), ("EventId", "SEND"), ("ResultSize", "Unlimited")),
    )


def _timestamp(value: object) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    text = v.text(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def parse_events(objects: Iterable[RemoteObject]) -> tuple[SentEvent, ...]:
    """The SEND events among Get-MessageTrackingLog's output (other events are left out)."""
    out = []
    for obj in v.objects(objects):
        if v.text(obj.get("EventId")).strip().upper() != "SEND":
            continue
        out.append(
            SentEvent(
                timestamp=_timestamp(obj.get("Timestamp")),
                connector=v.text(obj.get("ConnectorId")).strip(),
                server_hostname=v.text(obj.get("ServerHostname")).strip(),
                recipients=v.texts(obj.get("Recipients")),
            )
        )
    return tuple(out)


def _for_hop(event: SentEvent, queue: QueueFacts) -> bool:
    hop = normalize_name(queue.next_hop_domain)
    if queue.scope is QueueScope.EXTERNAL:
        return any(normalize_name(r.rpartition("@")[2]) == hop for r in event.recipients)
    return normalize_name(event.server_hostname) == hop


def tracking_check(queue: QueueFacts, events: Sequence[SentEvent]) -> TrackingCheck:
    """The SEND events to ``queue``'s next hop among ``events`` (all since the change)."""
    hop = queue.next_hop_domain
    if queue.scope is not QueueScope.EXTERNAL and not is_host_name(hop):
        return TrackingCheck(
            hop, CheckStatus.NOT_AVAILABLE, reason=_not_a_host(hop) + ", nor a host SEND events go to"
        )
    if queue.message_count == 0:
        return TrackingCheck(
            hop,
            CheckStatus.NOT_AVAILABLE,
            reason="the queue held no message before the change: nothing was to be sent",
        )
    mine = sorted(
        (e for e in events if _for_hop(e, queue)),
        key=lambda e: e.timestamp or datetime.datetime.max.replace(tzinfo=datetime.timezone.utc),
    )
    if not mine:
        return TrackingCheck(hop, CheckStatus.FAIL, reason=f"no SEND event to {hop} since the change")
    first = mine[0]
    return TrackingCheck(
        hop,
        CheckStatus.PASS,
        count=len(mine),
        first=None if first.timestamp is None else first.timestamp.isoformat(),
        connector=first.connector or None,
        server_hostname=first.server_hostname or None,
    )


def tracking_checks(
    conn: HostConnection, server: str, start: datetime.datetime, watched: Sequence[QueueFacts]
) -> tuple[TrackingCheck, ...]:
    """One Get-MessageTrackingLog of ``server`` since ``start``, judged per watched queue."""
    if not watched:
        return ()
    result = conn.invoke(tracking_call(server, start))
    if result.errors:
        first = result.errors[0]
        reason = one_line(f"{TRACKING_CMDLET} is not available here: {first.message}")
        return tuple(
            TrackingCheck(q.next_hop_domain, CheckStatus.NOT_AVAILABLE, reason=reason) for q in watched
        )
    events = parse_events(result.objects)
    return tuple(tracking_check(q, events) for q in watched)


def not_available(watched: Sequence[QueueFacts], reason: str) -> tuple[TrackingCheck, ...]:
    return tuple(
        TrackingCheck(q.next_hop_domain, CheckStatus.NOT_AVAILABLE, reason=one_line(reason)) for q in watched
    )


# --- the verdict ---------------------------------------------------------------------------


def verified(
    queues: Sequence[QueueChange],
    probes: Sequence[ProbeCheck],
    tracking: Sequence[TrackingCheck],
    *,
    error: str | None,
    still: bool,
    new: bool,
) -> bool:
    """True only when every check that could be made passes: the queues drained, no re-run
    lookup fails, no next hop lacks its SEND events; and nothing else stands against it (an
    error while verifying, a finding the plan addressed still reported (``still``), a finding
    the change created (``new``)). A check that was not available counts for nothing, either
    way, except a queue that could not be read: its draining is the first thing to show."""
    if error is not None or still or new:
        return False
    if not all(q.drained for q in queues):
        return False
    checks = [*(p.status for p in probes), *(t.status for t in tracking)]
    return CheckStatus.FAIL not in checks
