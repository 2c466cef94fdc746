"""Verifying the symptom after a host's changes: do its failing queues drain?

The changes were already read back one by one; this checks what they were for. For each queue
that was failing when apply checked the plan (status Retry, or messages waiting with a
LastError), apply:

1. reads the queues again and runs ``Retry-Queue -Identity <queue>`` on each such queue that
   still holds messages (only Retry-Queue and a transport restart re-attempt delivery, and
   a send connector change alone restarts nothing);
2. polls Get-Queue until every one of them is empty (or gone: Exchange removes an empty
   queue after a while) or ``--verify-timeout`` passes;
3. asks Get-MessageTrackingLog for the SEND events since the change, per watched next hop;
4. collects and evaluates the host again;
5. re-runs on the host the lookups each watched queue needed (agent/apply/symptom.py).

Queues are matched by NextHopDomain, not by Identity: a queue's number is given by the
transport process and changes when MSExchangeTransport restarts.

The host is ``verified`` when every such queue drained, every re-run lookup resolves, every
next hop whose SEND events could be read has some (a check that is not available, with its
reason, counts for nothing either way), no finding the plan addressed is still reported, no
queue-dns-failure finding is left, and no finding is reported that the host did not have
before the change (a fix that creates a new fault is no fix: issue 9, class 5; the
findings before are those of the facts apply's stale check collected). Otherwise the host keeps
its changes (they read back as planned; undoing them would not bring the mail back either) and
is reported ``verified: false`` with the findings that remain and, among them, the new ones;
apply then exits 5.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.apply import symptom
from agent.apply._context import Recorder
from agent.apply.results import CheckStatus, ProbeCheck, QueueChange, QueueStatus, TrackingCheck
from agent.collect import queues as queue_collector
from agent.errors import HostError, RemoteCommandError, one_line
from agent.evaluate import judge
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import HostFacts, QueueErrorKind, QueueFacts, QueueScope
from agent.model.findings import Finding
from agent.model.plan import HostPlan
from agent.model.remote import RemoteObject
from agent.transport.connection import HostConnection

SYMPTOM_RULE = "queue-dns-failure"
POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Verification:
    verified: bool
    queues: tuple[QueueChange, ...]
    remaining: tuple[Finding, ...]
    error: str | None = None
    new: tuple[Finding, ...] = ()  # the remaining findings the host did not have before the change
    probes: tuple[ProbeCheck, ...] = ()  # the lookups the failing queues needed, re-run on the host
    tracking: tuple[TrackingCheck, ...] = ()  # SEND events to each watched next hop since the change


def failing(queue: QueueFacts) -> bool:
    return queue.status.lower() == "retry" or (
        queue.message_count > 0 and queue.last_error.kind is not QueueErrorKind.NONE
    )


def status_of(queue: QueueFacts) -> QueueStatus:
    return QueueStatus(
        identity=queue.identity,
        next_hop=queue.next_hop_domain,
        status=queue.status,
        message_count=queue.message_count,
        last_error=queue.last_error.raw or None,
    )


def _match(queues: Sequence[QueueFacts], next_hop: str) -> QueueFacts | None:
    for queue in queues:
        if queue.next_hop_domain.lower() == next_hop.lower():
            return queue
    return None


def _read_queues(conn: HostConnection, server: str) -> tuple[QueueFacts, ...]:
    out: list[RemoteObject] = []
    for call in queue_collector.calls(server):
        out.extend(conn.run(call))
    return queue_collector.parse(tuple(out))


def read_failing(conn: HostConnection, server: str) -> tuple[QueueFacts, ...]:
    """The queues of ``server`` (an Exchange server name or FQDN: Get-Queue -Server takes
    either) that fail now: what a verification watches."""
    return tuple(q for q in _read_queues(conn, server) if failing(q))


def verify_host(
    rec: Recorder,
    plan: HostPlan,
    before: HostFacts,
    connect: Callable[[], HostConnection],
    collect: Callable[[], HostFacts] | None,
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    changed_at: datetime.datetime | None = None,
) -> Verification:
    """The host's failing queues (in ``before``) retried and watched until they drain, then
    the host collected and evaluated again (``collect``), its SEND events since ``changed_at``
    read and the lookups its queues needed re-run."""
    watched = [q for q in before.queues if failing(q)]
    judged = judge(before)
    known = frozenset(f.id for f in judged.findings)
    # A rule not judged before the change (one of its areas failed then) can find something
    # afterwards that was there all along: that is no finding the change created.
    unjudged = frozenset(j.rule_id for j in judged.not_judged)
    return verify_queues(rec, plan, before.exchange.name, watched, connect, collect, timeout=timeout,
                         clock=clock, sleep=sleep, known=known, unjudged=unjudged, before=before,
                         changed_at=changed_at)  # fmt: skip


def verify_queues(
    rec: Recorder,
    plan: HostPlan,
    server: str,
    watched: Sequence[QueueFacts],
    connect: Callable[[], HostConnection],
    collect: Callable[[], HostFacts] | None,
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    known: frozenset[str] | None = None,
    unjudged: frozenset[str] = frozenset(),
    before: HostFacts | None = None,
    changed_at: datetime.datetime | None = None,
) -> Verification:
    """``watched`` (the queues of ``server`` that failed before the change) retried and
    polled until they drain; then, given ``collect``, the host evaluated again, and with
    ``known`` (the ids of the findings before the change) any finding not among them is new,
    unless its rule is one of ``unjudged`` (not judged before the change).
    Without ``collect`` (a server none of whose own settings changed: an organisation change
    was for it) the symptom alone decides: its watched queues drain and none of its queues
    still fails with a DNS error.
    With ``changed_at`` the SEND events since then are read (Get-MessageTrackingLog); with
    ``before`` (the facts before the change) and ``collect``, the lookups each watched queue
    needed are re-run on the host (agent/apply/symptom.py)."""
    host = plan.host
    tracking: tuple[TrackingCheck, ...] = ()
    probes: tuple[ProbeCheck, ...] = ()
    retried: set[str] = set()
    latest: tuple[QueueFacts, ...] = ()
    checked = False
    error: str | None = None
    try:
        with connect() as conn:
            latest = _read_queues(conn, server)
            checked = True
            for queue in watched:
                now = _match(latest, queue.next_hop_domain)
                if now is None or now.message_count == 0:
                    continue
                call = CmdletCall(Endpoint.EXCHANGE, "Retry-Queue", (("Identity", now.identity),))
                result = conn.invoke(call)
                outcome = "failed" if result.errors else "ok"
                rec.record("queues", f"retry-{outcome}", host=host, call={"cmdlet": call.cmdlet,
                           "identity": now.identity, "next_hop": now.next_hop_domain},
                           error=one_line(result.errors[0].message) if result.errors else None)  # fmt: skip
                retried.add(queue.next_hop_domain.lower())
            deadline = clock() + timeout
            while not rec.cancel.is_set():
                pending = [q for q in watched if not _drained(latest, q.next_hop_domain)]
                if not pending or clock() >= deadline:
                    break
                sleep(min(POLL_SECONDS, max(0.0, deadline - clock())))
                latest = _read_queues(conn, server)
            if changed_at is not None:
                tracking = _tracking(conn, server, changed_at, watched)
    except (HostError, RemoteCommandError) as exc:  # Get-Queue may answer an ErrorRecord
        error = one_line(str(exc))
    if changed_at is not None and not tracking:
        tracking = symptom.not_available(watched, f"the queues could not be read: {error}")
    changes = tuple(
        QueueChange(
            next_hop=q.next_hop_domain,
            before=status_of(q),
            after=None if (m := _match(latest, q.next_hop_domain)) is None or not checked else status_of(m),
            retried=q.next_hop_domain.lower() in retried,
            checked=checked,
        )
        for q in watched
    )
    remaining: tuple[Finding, ...] = ()
    still_failing = False
    addressed = {f for a in plan.automatic for f in a.finding_ids}
    if collect is None:
        still_failing = checked and any(q.failing_dns for q in latest)
        why = "the server's own settings were not changed, nor collected again"
        probes = _probes_not_available(watched, why)
    else:
        try:
            after = collect()
            probes = _probes(connect, before, after, watched)
            judged = judge(after)
            remaining = judged.findings
            # A rule that could not be judged now (one of its fact areas failed) is no proof that
            # its finding is gone: the change is not verified, and the reason says why.
            rules = {f.split("|", 1)[0] for f in addressed} | {SYMPTOM_RULE}
            now_unjudged = [j for j in judged.not_judged if j.rule_id in rules]
            if now_unjudged:
                first = now_unjudged[0]
                error = error or one_line(f"{first.rule_id} could not be judged again: {first.reason}")
        except (HostError, RemoteCommandError) as exc:
            error = error or one_line(str(exc))
    still = [f for f in remaining if f.id in addressed or f.rule_id == SYMPTOM_RULE]
    new = tuple(
        f for f in remaining if known is not None and f.id not in known and f.rule_id not in unjudged
    )
    verified = symptom.verified(changes, probes, tracking, error=error, still=bool(still) or still_failing,
                                new=bool(new))  # fmt: skip
    rec.record(
        "queues", "verified" if verified else "not-verified", host=host, error=error,
        detail={"queues": [c.to_dict() for c in changes],
                "remaining_findings": [f.id for f in remaining],
                "new_findings": [f.id for f in new],
                "probes": [p.to_dict() for p in probes],
                "tracking": [t.to_dict() for t in tracking]},
    )  # fmt: skip
    return Verification(verified, changes, remaining, error, new, probes, tracking)


def _tracking(
    conn: HostConnection, server: str, changed_at: datetime.datetime, watched: Sequence[QueueFacts]
) -> tuple[TrackingCheck, ...]:
    """The SEND events check; a transport failure while reading the log makes it not available
    (the log is evidence for the fix, not a condition of it)."""
    try:
        return symptom.tracking_checks(conn, server, changed_at, watched)
    except (HostError, RemoteCommandError) as exc:
        return symptom.not_available(watched, f"{symptom.TRACKING_CMDLET} could not be read: {exc}")


def _probes_not_available(watched: Sequence[QueueFacts], reason: str) -> tuple[ProbeCheck, ...]:
    why = one_line(reason)
    return tuple(
        ProbeCheck(q.next_hop_domain, q.next_hop_domain, _first_type(q), None, None, None,
                   CheckStatus.NOT_AVAILABLE, why)
        for q in watched
    )  # fmt: skip


def _first_type(queue: QueueFacts) -> str:
    """The record a next hop's delivery asks for first: A inside the organisation, else MX."""
    return "A" if queue.scope is QueueScope.INTERNAL else "MX"


def _probes(
    connect: Callable[[], HostConnection], before: HostFacts | None, after: HostFacts,
    watched: Sequence[QueueFacts],
) -> tuple[ProbeCheck, ...]:  # fmt: skip
    if before is None:
        return _probes_not_available(watched, "the facts before the change are not known")
    if not watched:
        return ()
    try:
        with connect() as conn:
            return symptom.probe_checks(conn, before, after, watched)
    except (HostError, RemoteCommandError) as exc:
        # The host could not be asked again: the lookups are unknown, so not verified either.
        why = one_line(f"the lookups could not be re-run: {exc}")
        return tuple(
            ProbeCheck(q.next_hop_domain, q.next_hop_domain, _first_type(q), None, None, None,
                       CheckStatus.FAIL, why)
            for q in watched
        )  # fmt: skip


def _drained(queues: Sequence[QueueFacts], next_hop: str) -> bool:
    queue = _match(queues, next_hop)
    return queue is None or queue.message_count == 0
