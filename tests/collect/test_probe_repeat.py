"""--probe-repeat in the collector: both probes ask each server's standard questions in every
round, number the attempts, keep each one, and ask the remote domains' questions once."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.collect import dns_probe, runner
from agent.collect.runner import CollectOptions
from agent.model.command import CmdletCall
from agent.model.facts import ProbeTargets
from agent.model.probe import PROBE_REPEAT_MAX, DnsQueryResult, Outcome, Vantage, server_stats
from agent.model.remote import RemoteError, RemoteObject
from agent.transport.base import CommandResult
from mock_remoting.dns.responder import DnsResponders
from support.dns_world import dns_scenario, dns_world

TARGETS = ProbeTargets.for_domain("contoso.local", "ex01.contoso.local", "fabrikam.com")
SERVFAIL = "DNS_ERROR_RCODE_SERVER_FAILURE,Microsoft.DnsClient.Commands.ResolveDnsName"


class FlakyResolver:
    """Resolve-DnsName on a host whose every second lookup fails with a server failure (per
    question, as the lab's intermittent server does): answers carry no records (NODATA)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str]] = []

    def run(self, call: CmdletCall, *, timeout: float | None = None) -> tuple[RemoteObject, ...]:
        raise AssertionError("the probes invoke, they never run")

    def invoke(self, call: CmdletCall, *, timeout: float | None = None) -> CommandResult:
        key = (str(call.param("Server")), str(call.param("Name")), str(call.param("Type")))
        self.asked.append(key)
        if self.asked.count(key) % 2 == 0:
            return CommandResult(errors=(RemoteError("DNS server failure", SERVFAIL),))
        return CommandResult()


def test_bad_repeat_counts_are_refused() -> None:
    for bad in (0, PROBE_REPEAT_MAX + 1, -1):
        with pytest.raises(ValueError, match="probe_repeat must be 1 to 10"):
            CollectOptions(probe_repeat=bad)


def test_the_host_probe_asks_every_round_and_the_domains_once() -> None:
    host = FlakyResolver()
    options = CollectOptions(probe_repeat=3, probe_interval=0.0)
    results = list(runner._host_probes(host, TARGETS, ("10.0.0.10",), ("tailspin.example",), options))
    standard = [r for r in results if r.qname != "tailspin.example"]
    assert [(r.rdtype, r.attempt) for r in standard] == [
        ("SRV", 1), ("A", 1), ("MX", 1), ("SRV", 2), ("A", 2), ("MX", 2), ("SRV", 3), ("A", 3), ("MX", 3)
    ]
    srv = [r.outcome for r in standard if r.rdtype == "SRV"]
    assert srv == [Outcome.NODATA, Outcome.SERVFAIL, Outcome.NODATA]
    domain = [(r.rdtype, r.attempt) for r in results if r.qname == "tailspin.example"]
    assert domain == [("MX", 1), ("A", 1), ("AAAA", 1)]
    (stats,) = server_stats(tuple(results))
    assert stats.vantage is Vantage.HOST and stats.rounds == 3 and stats.intermittent
    # 9 standard + 3 domain queries; each standard question failed its 2nd attempt.
    assert (stats.attempts, stats.failures) == (12, 3)


def test_one_round_is_what_exfix_always_did() -> None:
    host = FlakyResolver()
    results = list(runner._host_probes(host, TARGETS, ("10.0.0.10",), (), CollectOptions()))
    assert [r.attempt for r in results] == [1, 1, 1] and len(host.asked) == 3


@pytest.fixture()
def flaky() -> Iterator[DnsResponders]:
    doc = copy.deepcopy(dns_scenario())
    doc["dns"]["servers"]["10.0.0.10"].update(fail_fraction=0.5, fail_mode="servfail")
    with DnsResponders(dns_world(doc, source="scenarios/test.yaml")) as responders:
        yield responders


def test_the_orchestrator_probe_keeps_each_attempt_over_the_wire(flaky: DnsResponders) -> None:
    options = CollectOptions(dns_address_map=tuple(flaky.address_map.items()), probe_repeat=4,
                             probe_interval=0.0, probe_timeout=0.5)  # fmt: skip
    servers = ("10.0.0.10", "8.8.8.8")
    results = tuple(runner._orchestrator_probes("contoso.local", TARGETS, servers, (), options))
    srv = [r for r in results if r.server == "10.0.0.10" and r.rdtype == "SRV"]
    assert [(r.attempt, r.outcome) for r in srv] == [
        (1, Outcome.ANSWER), (2, Outcome.SERVFAIL), (3, Outcome.ANSWER), (4, Outcome.SERVFAIL)
    ]
    stats = {s.server: s for s in server_stats(results)}
    assert stats["10.0.0.10"].failure_rate == 0.5 and stats["10.0.0.10"].intermittent
    assert stats["10.0.0.10"].latency_avg_ms is not None
    assert stats["8.8.8.8"].failures == 0 and stats["8.8.8.8"].attempts == 12


# -- the orchestrator's answers shared by the hosts of one run (dns_probe.ProbeCache) --------

OTHER = ProbeTargets.for_domain("contoso.local", "ex02.contoso.local", "fabrikam.com")


def _without_latency(results: tuple[DnsQueryResult, ...]) -> list[DnsQueryResult]:
    # The lab rotates the records of an answer (round robin, as DNS servers do): their order
    # differs between any two queries, shared or not.
    return [dataclasses.replace(r, elapsed_ms=None, records=tuple(sorted(r.records))) for r in results]


def test_hosts_of_one_run_share_each_question_and_round_but_not_their_own_name() -> None:
    """Against the steady servers: what two hosts get through the run's cache is what each
    gets asking alone (the measured latency aside), the shared questions are sent once per
    round, and each host's own A record is asked for that host."""
    servers = ("10.0.0.10", "8.8.8.8")
    domains = ("fabrikam.com",)
    with DnsResponders(dns_world(dns_scenario(), source="scenarios/test.yaml")) as responders:
        options = CollectOptions(dns_address_map=tuple(responders.address_map.items()), probe_repeat=2,
                                 probe_interval=0.0, probe_timeout=0.5)  # fmt: skip

        def probes(targets: ProbeTargets, cache: dns_probe.ProbeCache | None) -> tuple[DnsQueryResult, ...]:
            asked = runner._orchestrator_probes("contoso.local", targets, servers, domains, options, cache)
            return tuple(asked)

        alone = [probes(TARGETS, None), probes(OTHER, None)]
        sent_alone = responders.query_count("10.0.0.10")
        responders.reset_counters()
        cache = dns_probe.ProbeCache()
        shared = [probes(TARGETS, cache), probes(OTHER, cache)]
        sent_shared = responders.query_count("10.0.0.10")
        own_names = responders.query_count("10.0.0.10", "A")
    assert [_without_latency(r) for r in shared] == [_without_latency(r) for r in alone]
    assert {r.attempt for r in shared[1]} == {1, 2}
    # Per host alone: SRV, A, MX in each of two rounds, the domain's MX, A and AAAA once.
    assert sent_alone == 2 * (2 * 3 + 3)
    # Shared: the domain's MX in round 1 is the public name's MX asked a moment before (one
    # question, once), and the second host adds only its own A record, in each round.
    assert sent_shared == (2 * 3 + 3 - 1) + 2
    assert own_names == 2 * 2 + 1  # both hosts' own names in two rounds, the MX host once
    # The second host got the first one's answers themselves, latency included.
    first_srv = [r for r in shared[0] if r.rdtype == "SRV"]
    assert first_srv == [r for r in shared[1] if r.rdtype == "SRV"]


def test_hosts_asking_at_once_send_one_query_and_an_intermittent_server_is_one_sample(
    flaky: DnsResponders,
) -> None:
    cache = dns_probe.ProbeCache()
    address_map = flaky.address_map

    def ask(attempt: int) -> DnsQueryResult:
        return dns_probe.query("10.0.0.10", "_ldap._tcp.dc._msdcs.contoso.local", "SRV",
                               address_map=address_map, timeout=0.5, attempt=attempt,
                               cache=cache)  # fmt: skip

    with ThreadPoolExecutor(max_workers=8) as pool:
        first = list(pool.map(ask, [1] * 16))
        second = list(pool.map(ask, [2] * 16))
    assert flaky.query_count("10.0.0.10", "SRV") == 2  # one per round, whoever asked
    assert len({id(r) for r in first}) == 1 and len({id(r) for r in second}) == 1
    # The server fails every second query: every host sees the same answer, then failure.
    assert (first[0].attempt, first[0].outcome) == (1, Outcome.ANSWER)
    assert (second[0].attempt, second[0].outcome) == (2, Outcome.SERVFAIL)


def test_the_same_question_under_another_address_map_is_asked_again() -> None:
    """The key holds where the query really goes: a server one host's map leaves out (refused,
    nothing sent) is still asked for a host whose map routes it."""
    cache = dns_probe.ProbeCache()
    with DnsResponders(dns_world(dns_scenario(), source="scenarios/test.yaml")) as responders:
        mapped = responders.address_map
        unmapped = {k: v for k, v in mapped.items() if k != "10.0.0.10"}

        def ask(address_map: dict[str, str]) -> DnsQueryResult:
            return dns_probe.query("10.0.0.10", "fabrikam.com", "MX", address_map=address_map,
                                   timeout=0.5, cache=cache)  # fmt: skip

        refused = ask(unmapped)
        answered = ask(mapped)
    assert refused.outcome is Outcome.ERROR and "not in exfix_dns_address_map" in refused.detail
    assert answered.outcome is Outcome.ANSWER and answered.queried == mapped["10.0.0.10"]


def test_hosts_asking_the_same_question_share_one_value() -> None:
    # A finished host keeps its servers' stats for the report: a fleet's equal questions are one
    # value, its own name's A its own, and the stats read exactly as they did.
    def host(name: str, own: Outcome) -> tuple[DnsQueryResult, ...]:
        return (
            DnsQueryResult(Vantage.HOST, "10.0.0.10", name, "_ldap._tcp.dc._msdcs.contoso.local.", "SRV",
                           Outcome.ANSWER, elapsed_ms=1.5),
            DnsQueryResult(Vantage.HOST, "10.0.0.10", name, f"{name}.", "A", own, elapsed_ms=2.0),
            DnsQueryResult(Vantage.HOST, "10.0.0.10", name, "FABRIKAM.com", "mx", Outcome.SERVFAIL),
        )  # fmt: skip

    (one,) = server_stats(host("ex01.contoso.local", Outcome.ANSWER))
    (two,) = server_stats(host("ex02.contoso.local", Outcome.NXDOMAIN))
    assert [(q.qname, q.rdtype, q.outcomes) for q in two.questions] == [
        ("_ldap._tcp.dc._msdcs.contoso.local", "SRV", (Outcome.ANSWER,)),
        ("ex02.contoso.local", "A", (Outcome.NXDOMAIN,)),
        ("fabrikam.com", "MX", (Outcome.SERVFAIL,)),
    ]
    assert one.questions[0] is two.questions[0] and one.questions[2] is two.questions[2]
    assert one.questions[1] != two.questions[1]
    assert (two.attempts, two.failures, two.latency_avg_ms) == (3, 1, 1.8)
