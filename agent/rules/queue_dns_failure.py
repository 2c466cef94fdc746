"""queue-dns-failure: queues in Retry (or holding messages) whose LastError is a 4.4.0 DNS
failure, and queues stuck in Ready (messages, no LastError, OutgoingRate 0 and Velocity not
positive: nothing left in Exchange's last minute) on a host where a DNS server in use does not
answer: an unreachable server leaves mail in Ready rather than Retry. The symptom the admin
sees; the cause findings on the same host that explain it are
linked in agent/evaluate.py.

Queues are grouped by scope, one finding each:

- ``internal``: next hops inside the organisation (other AD sites, DAG, delivery groups);
- ``all-external``: every external queue fails (at least two, none delivering);
- ``domain``: otherwise, one finding per failing remote domain.
"""

from __future__ import annotations

from agent.model.facts import CollectionArea, HostFacts, QueueFacts, QueueScope, normalize_name
from agent.model.finding_data import QueueSymptom, SymptomScope
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.rules import _common as c
from agent.rules.metadata import RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="queue-dns-failure",
    title="Mail is queued because DNS lookups fail",
    severity=Severity.HIGH,
    kind=RuleKind.SYMPTOM,
    explanation=(
        "Messages are waiting in the Exchange server's queues because the DNS lookup needed to deliver them "
        "failed ('451 4.4.0 DNS query failed'). This finding says which queues, what kind of DNS error, and "
        "whether internal servers, all internet domains or only some domains are affected. It is a symptom: "
        "the other findings on the same server say what causes it and how to fix it. After a fix, retrying "
        "the queues delivers the waiting mail."
    ),
    references=(
        "https://learn.microsoft.com/powershell/module/exchange/get-queue",
        "https://learn.microsoft.com/powershell/module/exchange/retry-queue",
        "KB3007623",
    ),
    fix_id=None,
    data=QueueSymptom,
    reads=(CollectionArea.QUEUES,),
)


# The error class of a queue stuck in Ready: it has no LastError to classify.
STUCK = "StuckInReady"


def _kind(queue: QueueFacts) -> str:
    return STUCK if queue.stuck_in_ready else queue.last_error.kind.value


def _finding(
    facts: HostFacts, scope: SymptomScope, subject: str, queues: tuple[QueueFacts, ...], what: str
) -> Finding:
    kinds = tuple(dict.fromkeys(_kind(q) for q in queues))
    domains = tuple(dict.fromkeys(q.next_hop_domain for q in queues if q.next_hop_domain))
    messages = sum(q.message_count for q in queues)
    listed = ", ".join(
        f"{q.identity} ({q.status}, {q.message_count} msg, "
        f"{q.last_error.dns_code or _kind(q)})"
        for q in queues
    )
    evidence = [c.queue_evidence(q) for q in queues]
    if any(q.stuck_in_ready for q in queues):
        silent = c.silent_servers(facts)
        why = ("a lookup through them hangs instead of failing, so messages wait in Ready with no "
               "LastError rather than in Retry")  # fmt: skip
        evidence.append(EvidenceItem(
            source="probe rounds",
            subject="DNS servers in use that did not answer",
            values=(("servers", silent), ("why it counts", why)),
        ))  # fmt: skip
    return c.finding(
        METADATA,
        facts,
        subject=subject,
        summary=f"{len(queues)} queue(s) to {what} fail with DNS errors ({', '.join(kinds)}), "
        f"{messages} message(s): "
        f"{listed}",
        evidence=tuple(evidence),
        data=QueueSymptom(
            scope=scope,
            queues=tuple(q.identity for q in queues),
            error_classes=kinds,
            domains=domains,
            message_count=messages,
        ),
    )


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    out: list[Finding] = []
    internal = c.failing_queues(facts, QueueScope.INTERNAL) + c.stuck_queues(facts, QueueScope.INTERNAL)
    if internal:
        what = "internal next hops"
        out.append(_finding(facts, SymptomScope.INTERNAL, what, internal, what))
    external = c.failing_queues(facts, QueueScope.EXTERNAL) + c.stuck_queues(facts, QueueScope.EXTERNAL)
    if not external:
        return tuple(out)
    if len(external) >= 2 and not c.delivering_external(facts):
        what = "all external domains"
        out.append(_finding(facts, SymptomScope.ALL_EXTERNAL, what, external, what))
        return tuple(out)
    by_domain: dict[str, list[QueueFacts]] = {}
    for queue in external:
        by_domain.setdefault(normalize_name(queue.next_hop_domain) or "(no next hop domain)", []).append(
            queue
        )
    for domain, queues in by_domain.items():
        out.append(_finding(facts, SymptomScope.DOMAIN, domain, tuple(queues), domain))
    return tuple(out)
