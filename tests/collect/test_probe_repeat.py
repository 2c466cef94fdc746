"""--probe-repeat in the collector: both probes ask each server's standard questions in every
round, number the attempts, keep each one, and ask the remote domains' questions once."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from agent.collect import runner
from agent.collect.runner import CollectOptions
from agent.model.command import CmdletCall
from agent.model.facts import ProbeTargets
from agent.model.probe import PROBE_REPEAT_MAX, Outcome, Vantage, server_stats
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
