"""The lab's intermittent DNS server (``fail_fraction``/``fail_mode``): the pattern, the world,
the responders over real loopback sockets, and the mail flow that flaps with it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.collect import dns_probe
from agent.errors import ScenarioError
from agent.model.probe import Outcome
from lab.exchange._exchange_support import make_fleet, retry_all, snapshot
from mock_remoting.dns.responder import DnsResponders
from mock_remoting.dns.world import DnsWorld, fails_at
from mock_remoting.exchange.scenario import load_scenario, scenario_path
from support.dns_world import dns_scenario, dns_world

SRV = "_ldap._tcp.dc._msdcs.contoso.local"


def flaky_world(fraction: float, mode: str) -> DnsWorld:
    doc = copy.deepcopy(dns_scenario())
    doc["dns"]["servers"]["10.0.0.10"].update(fail_fraction=fraction, fail_mode=mode)
    return dns_world(doc, source="scenarios/test.yaml")


@pytest.mark.parametrize(
    ("fraction", "failing"),
    [(0.5, [2, 4, 6, 8]), (1 / 3, [3, 6]), (0.25, [4, 8]), (0.75, [2, 3, 4, 6, 7, 8]), (0.0, [])],
)
def test_the_pattern_fails_the_set_fraction_evenly(fraction: float, failing: list[int]) -> None:
    assert [k for k in range(1, 9) if fails_at(fraction, k)] == failing


def test_serve_fails_each_question_on_its_own_schedule_and_answer_stays_steady() -> None:
    world = flaky_world(0.5, "servfail")
    srv = [world.serve("10.0.0.10", SRV, "SRV").rcode for _ in range(4)]
    assert srv == ["NOERROR", "SERVFAIL", "NOERROR", "SERVFAIL"]
    # Another question, or the same name in another spelling of case, counts separately / alike.
    assert world.serve("10.0.0.10", "dc01.contoso.local", "A").rcode == "NOERROR"
    assert world.serve("10.0.0.10", SRV.upper() + ".", "SRV").rcode == "NOERROR"  # the 5th SRV
    # What the server would answer is unchanged: answer() neither counts nor fails.
    assert all(world.answer("10.0.0.10", SRV, "SRV").rcode == "NOERROR" for _ in range(3))
    # A steady server is never affected.
    assert [world.serve("8.8.8.8", "fabrikam.com", "MX").rcode for _ in range(4)] == ["NOERROR"] * 4
    assert world.fail_fraction("10.0.0.10") == 0.5 and world.fail_fraction("8.8.8.8") == 0.0


def test_drop_mode_stays_silent() -> None:
    world = flaky_world(0.5, "drop")
    assert [world.serve("10.0.0.10", SRV, "SRV").rcode for _ in range(2)] == ["NOERROR", "NO_REPLY"]


@pytest.mark.parametrize(
    ("entry", "key", "problem"),
    [
        ({"fail_fraction": 1}, "fail_fraction", "up to (not including) 1"),
        ({"fail_fraction": "half"}, "fail_fraction", "expected a fraction"),
        ({"fail_fraction": True}, "fail_fraction", "expected a fraction"),
        ({"fail_mode": "slow"}, "fail_mode", "'slow' is not one of: drop, servfail"),
    ],
)
def test_bad_settings_are_errors_naming_the_key(entry: dict[str, Any], key: str, problem: str) -> None:
    doc = copy.deepcopy(dns_scenario())
    doc["dns"]["servers"]["10.0.0.10"].update(entry)
    with pytest.raises(ScenarioError) as caught:
        dns_world(doc, source="scenarios/test.yaml")
    assert f"dns.servers.10.0.0.10.{key}" in str(caught.value) and problem in str(caught.value)


@pytest.fixture()
def dropping() -> Iterator[DnsResponders]:
    with DnsResponders(flaky_world(0.5, "drop")) as responders:
        yield responders


def test_over_the_wire_every_second_query_gets_no_reply(dropping: DnsResponders) -> None:
    outcomes = [
        dns_probe.query("10.0.0.10", SRV, "SRV", address_map=dropping.address_map, timeout=0.3,
                        attempt=k).outcome
        for k in range(1, 5)
    ]  # fmt: skip
    assert outcomes == [Outcome.ANSWER, Outcome.TIMEOUT, Outcome.ANSWER, Outcome.TIMEOUT]


def _only_flaky_server_scenario(tmp_path: Path) -> Path:
    data = yaml.safe_load(scenario_path("dns-server-intermittent").read_text(encoding="utf-8"))
    data["expect"] = {"rules": []}
    data["hosts"] = [data["hosts"][0]]
    data["send_connectors"][0]["source_transport_servers"] = ["EX01"]
    data["hosts"][0].pop("expect")
    data["hosts"][0]["nics"][0]["dns_servers"] = ["10.0.0.11"]
    # One query in three fails: with MX, A and AAAA each on its own turn, some attempts find
    # all three answered and deliver, others hit a failing turn.
    data["dns"]["servers"]["10.0.0.11"]["fail_fraction"] = 1 / 3
    path = tmp_path / "only-flaky.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_queue_that_depends_on_the_flaky_server_alone_flaps_between_retry_and_ready(tmp_path: Path) -> None:
    fleet = make_fleet(_only_flaky_server_scenario(tmp_path))
    (host,) = fleet.hosts
    statuses = []
    for _ in range(8):
        external = [row for row in snapshot(fleet) if row[0].endswith("\\1")]
        statuses.append((external[0][1], bool(external[0][4] and "ServerFailure" in external[0][4]),
                         external[0][3]))
        retry_all(host)
    # At load every lookup is a first query and delivers; from then on each of MX, A and
    # AAAA fails on its own third turn, so some attempts go through (the delivered count
    # jumps) and others stop at a ServerFailure: the queue flaps, as the rule says.
    assert statuses == [
        ("Ready", False, 8), ("Ready", False, 10), ("Retry", True, 10), ("Retry", True, 10),
        ("Retry", True, 10), ("Retry", True, 10), ("Ready", False, 20), ("Retry", True, 20),
    ]


def test_expect_probe_repeat_is_read_and_checked() -> None:
    assert load_scenario("dns-server-intermittent").expect_probe_repeat == 4
    assert load_scenario("healthy").expect_probe_repeat == 1
