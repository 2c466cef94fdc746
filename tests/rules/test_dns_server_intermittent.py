"""dns-server-intermittent, and how the other rules judge a server that fails some attempts,
from plain facts (tests/support/facts_builders.py)."""

from __future__ import annotations

import dataclasses

from agent.evaluate import evaluate
from agent.model.probe import Outcome, Vantage, server_stats
from agent.rules import dns_server_intermittent, dns_server_unreachable, nic_external_dns_server
from support import facts_builders as fb

A, S, T = Outcome.ANSWER, Outcome.SERVFAIL, Outcome.TIMEOUT


def test_a_server_that_fails_half_its_attempts_is_intermittent_with_counts_rate_and_latency() -> None:
    facts = fb.host(probes=fb.rounds(fb.INTERNAL_DNS, (A, S, A, S), elapsed_ms=3.0))
    (finding,) = dns_server_intermittent.evaluate(facts)
    assert finding.subject == "DNS server 10.0.0.10"
    data = finding.data
    assert isinstance(data, dns_server_intermittent.IntermittentDnsServer)
    assert (data.attempts, data.failures, data.failure_percent) == (12, 6, 50)
    assert data.latency_avg_us == 3000 and data.latency_max_us == 3000
    assert data.configured_on == ("NIC 'Ethernet0' (InterfaceIndex 12)",) and data.vantages == ("host",)
    text = fb.values(finding)
    assert "6/12 (50%)" in text and "avg 3 ms" in text
    assert "outcomes=('answer', 'servfail', 'answer', 'servfail')" in text
    assert "SRV _ldap._tcp.dc._msdcs.contoso.local" in text
    assert "failed 6 of 12 queries (50%)" in finding.summary


def test_one_round_never_makes_the_finding_even_when_it_failed() -> None:
    facts = fb.host(probes=fb.rounds(fb.INTERNAL_DNS, (S,)))
    assert dns_server_intermittent.evaluate(facts) == ()


def test_a_server_failing_every_attempt_or_none_is_not_intermittent() -> None:
    assert dns_server_intermittent.evaluate(fb.host(probes=fb.rounds(fb.INTERNAL_DNS, (A, A, A)))) == ()
    assert dns_server_intermittent.evaluate(fb.host(probes=fb.rounds(fb.INTERNAL_DNS, (T, T, T)))) == ()


def test_a_question_always_failing_beside_one_always_answered_is_not_flakiness() -> None:
    """Internal DNS without forwarders: SRV answers every time, the public MX fails every time.
    Some attempts fail and some do not, yet no question is mixed: not intermittent."""
    probes = []
    for attempt in (1, 2, 3):
        for p in fb.server_probes(fb.INTERNAL_DNS, public=Outcome.SERVFAIL):
            probes.append(dataclasses.replace(p, attempt=attempt))
    facts = fb.host(probes=probes)
    (stats,) = server_stats(facts.probes)
    assert stats.failures == 3 and stats.attempts == 9 and not stats.intermittent
    assert dns_server_intermittent.evaluate(facts) == ()


def test_each_vantage_is_judged_on_its_own_attempts() -> None:
    """The host always times out and exfix always gets answers: that is a path difference (a
    firewall), not a flaky server; a mix within the orchestrator's attempts is."""
    steady_split = fb.rounds(fb.INTERNAL_DNS, (T, T)) + fb.rounds(
        fb.INTERNAL_DNS, (A, A), vantage=Vantage.ORCHESTRATOR
    )
    assert dns_server_intermittent.evaluate(fb.host(probes=steady_split)) == ()
    flaky_from_exfix = fb.rounds(fb.INTERNAL_DNS, (A, A)) + fb.rounds(
        fb.INTERNAL_DNS, (A, T, A), vantage=Vantage.ORCHESTRATOR
    )
    (finding,) = dns_server_intermittent.evaluate(fb.host(probes=flaky_from_exfix))
    assert finding.data.vantages == ("orchestrator",)  # type: ignore[attr-defined]
    assert finding.data.failures == 3 and finding.data.attempts == 9  # type: ignore[attr-defined]


def test_a_server_nothing_uses_is_not_judged() -> None:
    probes = fb.server_probes(fb.INTERNAL_DNS) + fb.rounds("10.0.0.77", (A, S))
    assert dns_server_intermittent.evaluate(fb.host(probes=probes)) == ()


def test_repeated_attempts_keep_the_other_rules_from_misjudging_a_flaky_server() -> None:
    """A server that dropped the first round is unreachable on one round's evidence, and one
    that SERVFAILed it cannot resolve the AD domain; a later round that answered clears both."""
    dropped_once = fb.host(probes=fb.rounds(fb.INTERNAL_DNS, (T,)))
    (unreachable,) = dns_server_unreachable.evaluate(dropped_once)
    assert ("rounds", 1) in unreachable.evidence[0].values
    assert dns_server_unreachable.evaluate(fb.host(probes=fb.rounds(fb.INTERNAL_DNS, (T, A, T)))) == ()
    assert nic_external_dns_server.evaluate(fb.host(probes=fb.rounds(fb.INTERNAL_DNS, (S,))))
    assert nic_external_dns_server.evaluate(fb.host(probes=fb.rounds(fb.INTERNAL_DNS, (S, A, S)))) == ()
    # Only the intermittent finding remains, and it explains the flapping queue.
    facts = fb.host(
        probes=fb.rounds(fb.INTERNAL_DNS, (S, A, S)),
        queues=(fb.queue("EX01\\3", next_hop="fabrikam.com", last_error=fb.SERVFAIL_ERROR),),
    )
    findings = evaluate(facts)
    rules = sorted(f.rule_id for f in findings)
    assert rules == ["dns-server-intermittent", "queue-dns-failure"]
    (symptom,) = [f for f in findings if f.rule_id == "queue-dns-failure"]
    (cause,) = [f for f in findings if f.rule_id == "dns-server-intermittent"]
    assert symptom.explained_by == (cause.id,)


def test_the_evidence_shows_a_repeated_question_once_per_vantage() -> None:
    (finding,) = dns_server_unreachable.evaluate(fb.host(probes=fb.rounds(fb.INTERNAL_DNS, (T, T, T))))
    probes = [e for e in finding.evidence if e.source == "Resolve-DnsName"]
    assert len(probes) == 3
    assert all(("attempts", 3) in e.values for e in probes)
    assert all(("outcomes", ("timeout", "timeout", "timeout")) in e.values for e in probes)
