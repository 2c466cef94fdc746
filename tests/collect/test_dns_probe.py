"""The orchestrator-side DNS probe against the lab's DNS responders over loopback sockets."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.rcode
import pytest

from agent.collect.dns_probe import (
    DomainProbeRequest,
    ServerProbeRequest,
    Target,
    TargetRefused,
    probe_domain,
    probe_domains,
    probe_server,
    probe_servers,
    query,
    resolve_target,
    run_bounded,
)
from agent.model.probe import DnsQueryResult, DomainProbe, MxHost, Outcome, ServerProbe, Vantage
from mock_remoting.dns.responder import DnsResponders
from support.dns_world import dns_scenario, dns_world

pytestmark = pytest.mark.lab

# More A records than fit in a 1232-byte EDNS reply: the probe must retry over TCP.
SCENARIO = dns_scenario(a_records={"big.fabrikam.com": [f"198.51.100.{i}" for i in range(1, 121)]})

T = 0.3  # per-query timeout for servers that never answer
AD = "contoso.local"
EX01 = "ex01.contoso.local"


@pytest.fixture(scope="module")
def dns_lab() -> Iterator[DnsResponders]:
    world = dns_world(SCENARIO)
    world.register(EX01, ["10.0.0.21"])
    with DnsResponders(world) as responders:
        yield responders


@pytest.fixture()
def amap(dns_lab: DnsResponders) -> dict[str, str]:
    return dns_lab.address_map


def outcomes(results: tuple[DnsQueryResult, ...]) -> list[tuple[str, str, Outcome]]:
    return [(r.qname, r.rdtype, r.outcome) for r in results]


# --- one query ----------------------------------------------------------------------------


def test_query_records_vantage_and_where_it_went(amap: dict[str, str]) -> None:
    result = query("10.0.0.10", EX01, "a", address_map=amap)
    assert result.vantage is Vantage.ORCHESTRATOR
    assert result.server == "10.0.0.10"
    assert result.queried == amap["10.0.0.10"]
    assert (result.qname, result.rdtype, result.outcome, result.records) == (EX01, "A", Outcome.ANSWER,
                                                                            ("10.0.0.21",))
    assert result.elapsed_ms is not None and result.elapsed_ms >= 0


@pytest.mark.parametrize("server, qname, rdtype, outcome", [
    ("10.0.0.10", "_ldap._tcp.dc._msdcs.contoso.local", "SRV", Outcome.ANSWER),
    ("10.0.0.10", "ex99.contoso.local", "A", Outcome.NXDOMAIN),
    ("10.0.0.10", EX01, "AAAA", Outcome.NODATA),
    ("10.0.0.11", "fabrikam.com", "MX", Outcome.SERVFAIL),
    ("8.8.8.8", "nomail.example", "MX", Outcome.NODATA),
    ("192.0.2.1", "fabrikam.com", "MX", Outcome.SERVFAIL),
    ("10.0.0.99", "fabrikam.com", "MX", Outcome.TIMEOUT),
    ("198.51.100.53", "mx1.fabrikam.com", "AAAA", Outcome.TIMEOUT),
    ("198.51.100.53", "mx1.fabrikam.com", "A", Outcome.ANSWER),
])
def test_every_outcome_from_the_lab(amap: dict[str, str], server: str, qname: str, rdtype: str,
                                    outcome: Outcome) -> None:
    result = query(server, qname, rdtype, address_map=amap, timeout=T if outcome is Outcome.TIMEOUT else 2)
    assert result.outcome is outcome, result
    assert result.queried == amap[server]
    if outcome is Outcome.TIMEOUT:
        assert "no reply" in result.detail


def test_truncated_reply_is_retried_over_tcp(amap: dict[str, str]) -> None:
    result = query("8.8.8.8", "big.fabrikam.com", "A", address_map=amap)
    assert result.outcome is Outcome.ANSWER and len(result.records) == 120


class RcodeServer:
    """A one-purpose UDP server on loopback that answers every query with one rcode."""

    def __init__(self, rcode: dns.rcode.Rcode) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.rcode = rcode
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            response = dns.message.make_response(dns.message.from_wire(wire))
            response.set_rcode(self.rcode)
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.mark.parametrize("rcode, outcome, detail", [
    (dns.rcode.REFUSED, Outcome.REFUSED, ""),
    (dns.rcode.NOTIMP, Outcome.ERROR, "rcode NOTIMP"),
    (dns.rcode.FORMERR, Outcome.ERROR, "rcode FORMERR"),
])
def test_refused_and_other_rcodes(rcode: dns.rcode.Rcode, outcome: Outcome, detail: str) -> None:
    server = RcodeServer(rcode)
    try:
        result = query("10.0.0.53", "fabrikam.com", "MX", address_map={"10.0.0.53": server.address})
    finally:
        server.close()
    assert result.outcome is outcome
    assert result.detail == detail


# --- where queries go ---------------------------------------------------------------------


def test_unmapped_address_is_never_queried_when_a_map_is_given(dns_lab: DnsResponders,
                                                                 amap: dict[str, str]) -> None:
    before = dns_lab.counters
    # 10.0.0.77 is in no map: sending to it would trip the suite's network guard.
    result = query("10.0.0.77", "fabrikam.com", "MX", address_map=amap)
    assert result.outcome is Outcome.ERROR
    assert result.queried == "" and result.elapsed_ms is None
    assert "10.0.0.77 is not in exfix_dns_address_map" in result.detail
    probe = probe_server("10.0.0.77", AD, EX01, "fabrikam.com", address_map=amap)
    assert all(r.outcome is Outcome.ERROR for r in probe.results)
    assert probe.queried == "" and not probe.responded
    domain = probe_domain("fabrikam.com", ["10.0.0.77"], address_map=amap)
    assert domain.server is None and domain.mail_host is None
    assert dns_lab.counters == before


def test_resolve_target() -> None:
    amap = {"10.0.0.10": "127.0.0.1:53123", "2001:DB8::53": "[::1]:5353", "8.8.8.8": "127.0.0.2"}
    assert resolve_target("10.0.0.10", amap) == Target("10.0.0.10", "127.0.0.1", 53123)
    assert resolve_target(" 10.0.0.10 ", amap).queried == "127.0.0.1:53123"
    assert resolve_target("2001:db8::53", amap) == Target("2001:db8::53", "::1", 5353)
    assert resolve_target("2001:db8::53", amap).queried == "[::1]:5353"
    assert resolve_target("8.8.8.8", amap) == Target("8.8.8.8", "127.0.0.2", 53)
    # Loopback needs no mapping; without a map every address is queried as itself on port 53.
    assert resolve_target("127.0.0.1", amap) == Target("127.0.0.1", "127.0.0.1", 53)
    assert resolve_target("10.0.0.77", {}) == Target("10.0.0.77", "10.0.0.77", 53)
    with pytest.raises(TargetRefused, match="not in exfix_dns_address_map"):
        resolve_target("10.0.0.77", amap)
    with pytest.raises(TargetRefused, match="not an IP address"):
        resolve_target("dns.contoso.local", {})
    for bad in ("dns.example:53", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:x", "[::1]x", ""):
        with pytest.raises(TargetRefused):
            resolve_target("10.0.0.10", {"10.0.0.10": bad})


def test_bad_map_entry_and_bad_server_are_errors_not_exceptions() -> None:
    result = query("10.0.0.10", "fabrikam.com", "MX", address_map={"10.0.0.10": "dns.example:53"})
    assert result.outcome is Outcome.ERROR and "not ip:port" in result.detail
    result = query("$(Get-Process)", "fabrikam.com", "MX", address_map={})
    assert result.outcome is Outcome.ERROR and "not an IP address" in result.detail


@pytest.mark.parametrize("qname, rdtype", [
    ("x" * 64 + ".contoso.local", "A"),  # a label longer than 63 octets
    ("a..b.contoso.local", "A"),
    ("ok.contoso.local", "NOT-A-TYPE"),
    ("ok.contoso.local", "\x1b[31m"),
])
def test_unaskable_questions_are_errors(amap: dict[str, str], qname: str, rdtype: str) -> None:
    result = query("10.0.0.10", qname, rdtype, address_map=amap)
    assert result.outcome is Outcome.ERROR
    assert result.detail.startswith("cannot ask for") and "\n" not in result.detail


@pytest.mark.parametrize("qname", ["$(rm -rf /).contoso.local", "`whoami`;x.contoso.local",
                                   "ünïcödé.contoso.local", "'\"; --.fabrikam.com", "\n.contoso.local"])
def test_hostile_names_get_a_real_answer(amap: dict[str, str], qname: str) -> None:
    result = query("10.0.0.10", qname, "A", address_map=amap)
    assert result.outcome in (Outcome.NXDOMAIN, Outcome.NODATA, Outcome.ERROR)
    assert result.qname == qname


# --- server probes ------------------------------------------------------------------------


def test_probe_internal_forwarding_server(amap: dict[str, str]) -> None:
    probe = probe_server("10.0.0.10", AD, EX01, "fabrikam.com", address_map=amap)
    assert probe.queried == amap["10.0.0.10"]
    assert outcomes(probe.results) == [
        ("_ldap._tcp.dc._msdcs.contoso.local", "SRV", Outcome.ANSWER),
        (EX01, "A", Outcome.ANSWER),
        ("fabrikam.com", "MX", Outcome.ANSWER),
    ]
    # One record per domain controller, in no set order (an RRset is a set).
    assert probe.srv is not None and sorted(probe.srv.records) == [
        "0 100 389 dc01.contoso.local.", "0 100 389 dc02.contoso.local."]
    assert probe.internal is not None and probe.internal.records == ("10.0.0.21",)
    assert probe.resolves_ad and probe.resolves_public and probe.responded


def test_probe_internal_server_without_forwarders(amap: dict[str, str]) -> None:
    probe = probe_server("10.0.0.11", AD + ".", EX01, "fabrikam.com", address_map=amap)
    assert probe.resolves_ad and not probe.resolves_public
    assert probe.public is not None and probe.public.outcome is Outcome.SERVFAIL


def test_probe_public_server(amap: dict[str, str]) -> None:
    probe = probe_server("8.8.8.8", AD, EX01, "webonly.example", address_map=amap)
    assert outcomes(probe.results) == [
        ("_ldap._tcp.dc._msdcs.contoso.local", "SRV", Outcome.NXDOMAIN),
        (EX01, "A", Outcome.NXDOMAIN),
        ("webonly.example", "MX", Outcome.NODATA),
        ("webonly.example", "A", Outcome.ANSWER),  # no MX: the A record stands in
    ]
    assert not probe.resolves_ad and probe.resolves_public
    assert probe.public is not None and probe.public.rdtype == "A"


def test_probe_unreachable_and_servfail_servers(amap: dict[str, str]) -> None:
    silent = probe_server("10.0.0.99", AD, EX01, "fabrikam.com", address_map=amap, timeout=T)
    assert [r.outcome for r in silent.results] == [Outcome.TIMEOUT] * 3
    assert not silent.responded and silent.queried == amap["10.0.0.99"]
    failing = probe_server("192.0.2.1", AD, EX01, "fabrikam.com", address_map=amap)
    assert [r.outcome for r in failing.results] == [Outcome.SERVFAIL] * 3
    assert failing.responded and not failing.resolves_ad


# --- domain probes ------------------------------------------------------------------------


def test_probe_domain_follows_the_lowest_preference_mx(amap: dict[str, str]) -> None:
    probe = probe_domain("fabrikam.com", ["8.8.8.8"], address_map=amap)
    assert probe.server == "8.8.8.8"
    assert probe.mx == (MxHost(10, "mx1.fabrikam.com"), MxHost(20, "mx2.fabrikam.com"))
    assert probe.mail_host == "mx1.fabrikam.com"
    assert probe.ipv4 == ("203.0.113.10",) and probe.ipv6 == ("2001:db8::10",)
    assert outcomes(probe.results) == [
        ("fabrikam.com", "MX", Outcome.ANSWER),
        ("mx1.fabrikam.com", "A", Outcome.ANSWER),
        ("mx1.fabrikam.com", "AAAA", Outcome.ANSWER),
    ]


def test_probe_domain_passes_over_failing_servers(amap: dict[str, str]) -> None:
    probe = probe_domain("fabrikam.com", ["10.0.0.99", "192.0.2.1", "10.0.0.99", "10.0.0.10", "8.8.8.8"],
                         address_map=amap, timeout=T)
    assert probe.servers == ("10.0.0.99", "192.0.2.1", "10.0.0.10", "8.8.8.8")
    assert probe.server == "10.0.0.10"
    assert [(r.server, r.rdtype, r.outcome) for r in probe.results] == [
        ("10.0.0.99", "MX", Outcome.TIMEOUT),
        ("192.0.2.1", "MX", Outcome.SERVFAIL),
        ("10.0.0.10", "MX", Outcome.ANSWER),
        ("10.0.0.10", "A", Outcome.ANSWER),
        ("10.0.0.10", "AAAA", Outcome.ANSWER),
    ]
    assert probe.mx_result is not None and probe.mx_result.server == "10.0.0.10"


def test_probe_domain_whose_dns_ignores_aaaa(amap: dict[str, str]) -> None:
    recursive = probe_domain("tailspin.example", ["8.8.8.8"], address_map=amap)
    assert recursive.mail_host == "mail.tailspin.example"
    assert recursive.ipv4 == ("203.0.113.20",)
    assert recursive.aaaa is not None and recursive.aaaa.outcome is Outcome.SERVFAIL
    direct = probe_domain("fabrikam.com", ["198.51.100.53"], address_map=amap, timeout=T)
    assert direct.ipv4 == ("203.0.113.10",)
    assert direct.aaaa is not None and direct.aaaa.outcome is Outcome.TIMEOUT


def test_probe_domain_without_mx(amap: dict[str, str]) -> None:
    web = probe_domain("webonly.example", ["8.8.8.8"], address_map=amap)
    assert web.mx == () and web.mail_host == "webonly.example"
    assert web.ipv4 == ("203.0.113.30",) and web.has_mail_dns
    none = probe_domain("nomail.example", ["8.8.8.8"], address_map=amap)
    assert outcomes(none.results) == [
        ("nomail.example", "MX", Outcome.NODATA),
        ("nomail.example", "A", Outcome.NODATA),
        ("nomail.example", "AAAA", Outcome.NODATA),
    ]
    assert not none.has_mail_dns
    missing = probe_domain("nowhere.example", ["8.8.8.8"], address_map=amap)
    assert missing.server == "8.8.8.8" and missing.mx_result is not None
    assert missing.mx_result.outcome is Outcome.NXDOMAIN and not missing.has_mail_dns


def test_probe_domain_when_no_server_answers(amap: dict[str, str]) -> None:
    probe = probe_domain("fabrikam.com", ["10.0.0.99", "10.0.0.11"], address_map=amap, timeout=T)
    assert probe.server is None and probe.mail_host is None and probe.a is None
    assert [r.outcome for r in probe.results] == [Outcome.TIMEOUT, Outcome.SERVFAIL]
    assert probe.mx_result is not None and probe.mx_result.outcome is Outcome.SERVFAIL
    assert probe_domain("fabrikam.com", [], address_map=amap).results == ()


# --- snapshots ----------------------------------------------------------------------------


def test_probes_round_trip_through_json(amap: dict[str, str]) -> None:
    server = probe_server("8.8.8.8", AD, EX01, "webonly.example", address_map=amap)
    assert ServerProbe.from_dict(json.loads(json.dumps(server.to_dict()))) == server
    domain = probe_domain("fabrikam.com", ["10.0.0.99", "8.8.8.8"], address_map=amap, timeout=T)
    again = DomainProbe.from_dict(json.loads(json.dumps(domain.to_dict())))
    assert again == domain and again.mail_host == "mx1.fabrikam.com"
    assert json.loads(json.dumps(domain.to_dict()))["results"][0]["vantage"] == "orchestrator"


# --- many probes --------------------------------------------------------------------------


def test_probe_servers_dedupes_and_keeps_order(dns_lab: DnsResponders, amap: dict[str, str]) -> None:
    dns_lab.reset_counters()
    requests = [ServerProbeRequest(s, AD, EX01, "fabrikam.com")
                for s in ("10.0.0.10", "8.8.8.8", "10.0.0.10", "192.0.2.1", "10.0.0.11", "8.8.8.8")]
    results = probe_servers(requests, address_map=amap, max_workers=3)
    assert [r.server for r in results] == ["10.0.0.10", "8.8.8.8", "192.0.2.1", "10.0.0.11"]
    assert all(results[r].server == r.server for r in requests)
    assert dns_lab.query_count("10.0.0.10", "SRV") == 1 and dns_lab.query_count("8.8.8.8", "SRV") == 1
    domains = probe_domains([DomainProbeRequest("fabrikam.com", ("8.8.8.8",)),
                             DomainProbeRequest("tailspin.example", ("10.0.0.10",))],
                            address_map=amap, max_workers=2)
    assert [p.mail_host for p in domains.values()] == ["mx1.fabrikam.com", "mail.tailspin.example"]


def test_run_bounded_runs_concurrently_within_the_bound() -> None:
    lock = threading.Lock()
    active = peak = 0
    pair = threading.Barrier(2, timeout=10)  # only passes when two items run at the same time

    def work(item: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            pair.wait()
        finally:
            with lock:
                active -= 1
        return item * 10

    assert run_bounded(work, [1, 2, 3, 4, 5, 6, 1], max_workers=2) == {
        1: 10, 2: 20, 3: 30, 4: 40, 5: 50, 6: 60}
    assert peak == 2
    assert run_bounded(work, [], max_workers=4) == {}
