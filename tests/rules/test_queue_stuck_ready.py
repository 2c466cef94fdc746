"""queue-dns-failure and queues stuck in Ready (messages, no LastError, nothing going out),
from plain facts (tests/support/facts_builders.py)."""

from __future__ import annotations

from agent.evaluate import evaluate
from agent.model.facts import HostFacts, QueueFacts
from agent.model.finding_data import QueueSymptom, SymptomScope
from agent.model.probe import Outcome
from agent.rules import queue_dns_failure
from support import facts_builders as fb

STILL = (0.25, 0.0, -0.25)  # IncomingRate, OutgoingRate, Velocity: mail comes, none leaves
MOVING = (0.25, 0.25, 0.0)


def stuck(identity: str = "EX01\\4", next_hop: str = "fabrikam.com") -> QueueFacts:
    return fb.queue(identity, next_hop=next_hop, status="Ready", messages=12, rates=STILL)


def silent_host(*queues: QueueFacts) -> HostFacts:
    """The MAPI NIC's only server never answers."""
    return fb.host(
        nics=(fb.mapi_nic(ipv4_dns_servers=("10.0.0.99",)), fb.replication_nic()),
        probes=fb.unreachable("10.0.0.99"),
        queues=queues,
    )


def test_a_still_ready_queue_on_a_host_whose_dns_server_is_silent_is_the_symptom_linked_to_it() -> None:
    facts = silent_host(stuck())
    findings = evaluate(facts)
    (symptom,) = [f for f in findings if f.rule_id == "queue-dns-failure"]
    (cause,) = [f for f in findings if f.rule_id == "dns-server-unreachable"]
    assert symptom.explained_by == (cause.id,)
    data = symptom.data
    assert isinstance(data, QueueSymptom)
    assert data.scope is SymptomScope.DOMAIN and data.error_classes == ("StuckInReady",)
    assert data.queues == ("EX01\\4",) and data.message_count == 12
    text = fb.values(symptom)
    assert "Status=Ready" in text and "OutgoingRate=0" in text and "Velocity=-0.25" in text
    assert "IncomingRate=0.25" in text and "servers=('10.0.0.99',)" in text


def test_internal_and_all_external_scopes_count_stuck_queues_too() -> None:
    facts = silent_host(
        stuck("EX01\\1", "fabrikam.com"),
        stuck("EX01\\2", "tailspintoys.com"),
        fb.queue("EX01\\3", next_hop="site-b", delivery_type="SmtpRelayToRemoteAdSite", category="Internal",
                 status="Ready", messages=4, rates=STILL),
    )  # fmt: skip
    found = queue_dns_failure.evaluate(facts)
    scopes = sorted(f.data.scope.value for f in found if isinstance(f.data, QueueSymptom))
    assert scopes == ["all-external", "internal"]


def test_a_still_queue_is_no_dns_symptom_when_every_dns_server_answers() -> None:
    """A slow remote SMTP server also leaves mail in Ready: without a DNS server that does
    not answer, exfix does not call it a DNS failure."""
    assert queue_dns_failure.evaluate(fb.host(queues=(stuck(),))) == ()


def test_moving_draining_or_unmeasured_queues_are_not_stuck() -> None:
    for rates in (MOVING, (0.0, 0.0, 0.1), (None, None, None)):
        queue = fb.queue("EX01\\4", next_hop="fabrikam.com", status="Ready", messages=12, rates=rates)
        assert queue_dns_failure.evaluate(silent_host(queue)) == (), rates


def test_a_flaky_server_that_drops_queries_makes_still_queues_count() -> None:
    facts = fb.host(
        probes=fb.rounds(fb.INTERNAL_DNS, (Outcome.ANSWER, Outcome.TIMEOUT)),
        queues=(stuck(),),
    )
    rules = sorted(f.rule_id for f in evaluate(facts))
    assert rules == ["dns-server-intermittent", "queue-dns-failure"]
