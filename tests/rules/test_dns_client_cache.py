"""dns-client-cache-negative on plain facts: a negative DNS client cache entry for a name a
failing queue needs, contrasted with what the configured servers answer now; and its fix,
clear-dns-client-cache (planned from the finding, predicted to leave the cache empty)."""

from __future__ import annotations

import dataclasses

from agent.evaluate import evaluate, judge
from agent.fixes import clear_dns_client_cache as fix
from agent.model.command import Endpoint
from agent.model.facts import AreaIssue, CollectionArea, DnsCacheEntry, HostFacts, QueueFacts
from agent.model.finding_data import ClearDnsClientCache
from agent.model.plan import HostVars
from agent.model.probe import DnsQueryResult, Outcome, Vantage
from agent.rules import dns_client_cache_negative as rule
from support.facts_builders import INTERNAL_DNS, NXDOMAIN_ERROR, host, probe, queue, server_probes

MX = 15
A = 1

FAILING = queue("EX01\\12", next_hop="fabrikam.com", last_error=NXDOMAIN_ERROR, messages=9)
DELIVERING = queue("EX01\\13", next_hop="tailspintoys.com", status="Ready", messages=0)
# What the configured server answers now: the MX, and the mail host's A and AAAA.
ANSWERS = (
    probe(INTERNAL_DNS, "fabrikam.com", "MX", records=("10 mx1.fabrikam.com.",)),
    probe(INTERNAL_DNS, "fabrikam.com", "A", Outcome.NODATA),
    probe(INTERNAL_DNS, "mx1.fabrikam.com", "A", records=("203.0.113.10",)),
    probe(INTERNAL_DNS, "mx1.fabrikam.com", "AAAA", Outcome.NODATA),
)


def negative(entry: str, record_type: int = MX, status: int = 9003, ttl: int = 840) -> DnsCacheEntry:
    return DnsCacheEntry(entry=entry, name=entry, record_type=record_type, status=status, time_to_live=ttl)


def facts(
    *cache: DnsCacheEntry,
    probes: tuple[DnsQueryResult, ...] = ANSWERS,
    queues: tuple[QueueFacts, ...] = (FAILING, DELIVERING),
) -> HostFacts:
    return host(queues=queues, extra_probes=probes, dns_cache=cache, remote_domains=("fabrikam.com",))


def test_a_negative_entry_the_servers_now_answer_is_found_with_both_sides_as_evidence() -> None:
    (found,) = rule.evaluate(facts(negative("fabrikam.com"), negative("contoso.com", A)))
    assert found.rule_id == "dns-client-cache-negative" and found.subject == "fabrikam.com"
    assert found.fix_id == "clear-dns-client-cache"
    assert "NotExist (9003) for MX fabrikam.com with 840 s to live" in found.summary
    assert "10.0.0.10 now answers it (10 mx1.fabrikam.com.)" in found.summary
    sources = [e.source for e in found.evidence]
    assert sources == ["Get-Queue", "Get-DnsClientCache", "Resolve-DnsName"]
    cache = found.evidence[1]
    assert cache.value("Type") == "15 (MX)" and cache.value("Status") == "9003 (NotExist)"
    assert cache.value("TimeToLive") == 840 and cache.value("Entry") == "fabrikam.com"
    assert found.evidence[2].value("records") == ("10 mx1.fabrikam.com.",)
    assert found.data == ClearDnsClientCache("fabrikam.com", ("EX01\\12",), ("fabrikam.com",), ("MX",),
                                             (9003,), (840,))  # fmt: skip


def test_a_mail_hosts_no_records_entry_counts_and_names_are_compared_without_case_or_dot() -> None:
    (found,) = rule.evaluate(facts(negative("MX1.Fabrikam.com.", A, status=9501, ttl=60)))
    assert found.data == ClearDnsClientCache("fabrikam.com", ("EX01\\12",), ("MX1.Fabrikam.com.",), ("A",),
                                             (9501,), (60,))  # fmt: skip
    assert "NoRecords (9501)" in found.summary


def test_the_orchestrators_answer_is_proof_enough_where_the_host_could_not_probe() -> None:
    probes = (probe(INTERNAL_DNS, "fabrikam.com", "MX", records=("10 mx1.fabrikam.com.",),
                    vantage=Vantage.ORCHESTRATOR),)  # fmt: skip
    (found,) = rule.evaluate(facts(negative("fabrikam.com"), probes=probes))
    assert found.evidence[-1].vantage == "orchestrator"


def test_an_entry_the_servers_agree_with_is_not_stale() -> None:
    # The servers say NXDOMAIN too: the cache is right, and the domain's own DNS is the matter.
    nx = (probe(INTERNAL_DNS, "fabrikam.com", "MX", Outcome.NXDOMAIN),)
    assert rule.evaluate(facts(negative("fabrikam.com"), probes=nx)) == ()
    # An answer for another type of the same name says nothing of the cached MX.
    a_only = (probe(INTERNAL_DNS, "fabrikam.com", "A", records=("203.0.113.9",)),)
    assert rule.evaluate(facts(negative("fabrikam.com"), probes=a_only)) == ()


def test_positive_entries_other_names_and_delivering_queues_do_not_fire() -> None:
    assert rule.evaluate(facts(negative("fabrikam.com", status=0))) == ()
    assert rule.evaluate(facts(negative("tailspintoys.com"))) == ()
    assert rule.evaluate(facts(negative("fabrikam.com"), queues=(DELIVERING,))) == ()
    assert rule.evaluate(facts()) == ()
    # A snapshot without the cache (written before exfix read it) knows nothing of it.
    assert rule.evaluate(host(queues=(FAILING,), extra_probes=ANSWERS)) == ()


def test_it_explains_the_queue_symptom_and_is_not_judged_without_the_cache() -> None:
    found = {f.rule_id: f for f in evaluate(facts(negative("fabrikam.com")))}
    assert set(found) == {"queue-dns-failure", "dns-client-cache-negative"}
    assert found["queue-dns-failure"].explained_by == (found["dns-client-cache-negative"].id,)
    issue = AreaIssue(CollectionArea.DNS_CACHE, "Get-DnsClientCache: Access denied")
    lost = dataclasses.replace(facts(), status=dataclasses.replace(facts().status, issues=(issue,)))
    (skipped,) = judge(lost).not_judged
    assert skipped.rule_id == "dns-client-cache-negative" and skipped.areas == ("dns_cache",)


def test_the_fix_flushes_the_cache_without_rollback_and_reads_the_entry_back() -> None:
    state = facts(negative("fabrikam.com"))
    (found,) = rule.evaluate(state)
    planned = fix.plan(found, state, HostVars())
    (draft,) = planned.drafts
    assert draft.call.endpoint is Endpoint.OS and draft.call.cmdlet == "Clear-DnsClientCache"
    assert draft.call.parameters == ()
    assert draft.rollback == () and not draft.restart_required and not draft.disruptive
    assert "has no undo, and needs none" in draft.description
    assert "MX fabrikam.com (NotExist)" in draft.description
    assert draft.read_back is not None and draft.read_back.parameters == (
        ("Entry", "fabrikam.com"), ("Type", "MX"), ("Status", "NotExist"))  # fmt: skip
    assert [(c.property, c.before, c.after) for c in draft.changes] == [("Status", 9003, None)]
    assert fix.SPEC.disrupts_mail_flow is False
    # After the step the cache is empty, and the finding is gone from the predicted facts.
    (step,) = fix.SPEC.steps
    assert step.predict is not None
    after = step.predict(draft, state)
    assert after.dns_cache == () and rule.evaluate(after) == ()


def test_the_standard_probes_alone_never_prove_a_cache_entry_stale() -> None:
    # The server answers the public probe name: an entry for a name no failing queue needs is
    # never judged, however stale.
    probes = server_probes(INTERNAL_DNS)
    assert rule.evaluate(facts(negative("microsoft.com"), probes=probes)) == ()
