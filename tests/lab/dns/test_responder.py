"""The lab's DNS responders, queried over real loopback sockets with unmodified dnspython."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from mock_remoting.dns.responder import DnsResponders
from mock_remoting.dns.world import DnsWorld
from support.dns_world import dns_scenario, dns_world

pytestmark = pytest.mark.lab

# Enough addresses that the answer exceeds 512 bytes: UDP without EDNS must truncate.
SCENARIO = dns_scenario(a_records={"big.contoso.local": [f"10.0.5.{i}" for i in range(1, 61)]})

SRV = "_ldap._tcp.dc._msdcs.contoso.local"
SHORT = 0.3  # seconds: how long a test waits for a server that must stay silent


@pytest.fixture(scope="module")
def world() -> DnsWorld:
    return dns_world(SCENARIO)


@pytest.fixture(scope="module")
def responders(world: DnsWorld) -> Iterator[DnsResponders]:
    with DnsResponders(world, tcp_idle_timeout=2.0) as running:
        yield running


def where(responders: DnsResponders, server: str) -> tuple[str, int]:
    host, port = responders.address_map[server].rsplit(":", 1)
    return host, int(port)


def udp(responders: DnsResponders, server: str, qname: str, rdtype: str, *,
        timeout: float = 2.0, **make: object) -> dns.message.Message:
    host, port = where(responders, server)
    query = dns.message.make_query(qname, rdtype, **make)  # type: ignore[arg-type]
    return dns.query.udp(query, host, port=port, timeout=timeout)


def tcp(responders: DnsResponders, server: str, qname: str, rdtype: str, *,
        timeout: float = 2.0) -> dns.message.Message:
    host, port = where(responders, server)
    return dns.query.tcp(dns.message.make_query(qname, rdtype), host, port=port, timeout=timeout)


def resolver(responders: DnsResponders, server: str, timeout: float = 2.0) -> dns.resolver.Resolver:
    host, port = where(responders, server)
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [host]
    res.port = port
    res.timeout = res.lifetime = timeout
    res.cache = None
    return res


def texts(message: dns.message.Message) -> list[str]:
    return sorted(rdata.to_text() for rrset in message.answer for rdata in rrset)


def test_address_map_has_one_loopback_port_per_server(responders: DnsResponders, world: DnsWorld) -> None:
    mapping = responders.address_map
    assert list(mapping) == list(world.server_addresses)
    ports = set()
    for value in mapping.values():
        host, port = value.rsplit(":", 1)
        assert host == "127.0.0.1"
        ports.add(int(port))
    assert len(ports) == len(mapping)


def test_internal_server_answers_the_ad_zone(responders: DnsResponders) -> None:
    for server in ("10.0.0.10", "10.0.0.11"):
        answer = resolver(responders, server).resolve(SRV, "SRV")
        assert sorted(r.to_text() for r in answer) == [
            "0 100 389 dc01.contoso.local.", "0 100 389 dc02.contoso.local."]
        reply = udp(responders, server, "owa.contoso.local", "A")
        assert texts(reply) == ["10.0.0.30"]
        assert reply.flags & dns.flags.AA and reply.flags & dns.flags.QR and reply.flags & dns.flags.RA
        assert reply.rcode() == dns.rcode.NOERROR


def test_internal_with_and_without_forwarding(responders: DnsResponders) -> None:
    forwarded = udp(responders, "10.0.0.10", "fabrikam.com", "MX")
    assert texts(forwarded) == ["10 mx1.fabrikam.com.", "20 mx2.fabrikam.com."]
    assert not forwarded.flags & dns.flags.AA  # a recursive answer is not authoritative
    assert udp(responders, "10.0.0.10", "nowhere.example", "A").rcode() == dns.rcode.NXDOMAIN
    assert udp(responders, "10.0.0.11", "fabrikam.com", "MX").rcode() == dns.rcode.SERVFAIL
    with pytest.raises(dns.resolver.NoNameservers):  # dnspython's form of SERVFAIL everywhere
        resolver(responders, "10.0.0.11").resolve("fabrikam.com", "MX")


def test_public_server(responders: DnsResponders) -> None:
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver(responders, "8.8.8.8").resolve(SRV, "SRV")
    assert udp(responders, "8.8.8.8", "owa.contoso.local", "A").rcode() == dns.rcode.NXDOMAIN
    answer = resolver(responders, "8.8.8.8").resolve("mx1.fabrikam.com", "AAAA")
    assert [r.to_text() for r in answer] == ["2001:db8::10"]
    with pytest.raises(dns.resolver.NoAnswer):  # NODATA
        resolver(responders, "8.8.8.8").resolve("fabrikam.com", "TXT")


def test_registration_is_visible_over_the_wire(responders: DnsResponders, world: DnsWorld) -> None:
    assert udp(responders, "10.0.0.10", "ex42.contoso.local", "A").rcode() == dns.rcode.NXDOMAIN
    world.register("ex42.contoso.local", ["10.0.0.42"])
    try:
        assert texts(udp(responders, "10.0.0.10", "ex42.contoso.local", "A")) == ["10.0.0.42"]
        assert texts(tcp(responders, "10.0.0.11", "EX42.Contoso.Local.", "A")) == ["10.0.0.42"]
    finally:
        world.register("ex42.contoso.local", [])


def test_ignore_aaaa_server_drops_aaaa_only(responders: DnsResponders) -> None:
    with pytest.raises(dns.exception.Timeout):
        udp(responders, "198.51.100.53", "mx1.fabrikam.com", "AAAA", timeout=SHORT)
    assert texts(udp(responders, "198.51.100.53", "mx1.fabrikam.com", "A")) == ["203.0.113.10"]
    assert udp(responders, "198.51.100.53", SRV, "SRV").rcode() == dns.rcode.NXDOMAIN


def test_zone_ignoring_aaaa_gives_servfail_from_recursive_servers(responders: DnsResponders) -> None:
    for server in ("8.8.8.8", "10.0.0.10"):
        assert udp(responders, server, "mail.tailspin.example", "AAAA").rcode() == dns.rcode.SERVFAIL
        assert texts(udp(responders, server, "mail.tailspin.example", "A")) == ["203.0.113.20"]


def test_servfail_server(responders: DnsResponders) -> None:
    for name, rdtype in ((SRV, "SRV"), ("fabrikam.com", "MX")):
        assert udp(responders, "192.0.2.1", name, rdtype).rcode() == dns.rcode.SERVFAIL
        assert tcp(responders, "192.0.2.1", name, rdtype).rcode() == dns.rcode.SERVFAIL


def test_unreachable_server_times_out_on_udp_and_tcp(responders: DnsResponders) -> None:
    with pytest.raises(dns.exception.Timeout):
        udp(responders, "10.0.0.99", SRV, "SRV", timeout=SHORT)
    with pytest.raises(dns.exception.Timeout):
        tcp(responders, "10.0.0.99", SRV, "SRV", timeout=SHORT)
    with pytest.raises(dns.resolver.LifetimeTimeout):
        resolver(responders, "10.0.0.99", timeout=SHORT).resolve(SRV, "SRV")


def test_tcp_answers_and_keeps_the_connection(responders: DnsResponders) -> None:
    reply = tcp(responders, "10.0.0.10", SRV, "SRV")
    assert len(texts(reply)) == 2
    # Two queries on one connection (RFC 7766 6.2.1).
    host, port = where(responders, "8.8.8.8")
    with socket.create_connection((host, port), timeout=2) as sock:
        for qname in ("fabrikam.com", "mx1.fabrikam.com"):
            query = dns.message.make_query(qname, "A")
            dns.query.send_tcp(sock, query)
            answer, _ = dns.query.receive_tcp(sock, expiration=time.time() + 2)
            assert answer.id == query.id
            assert answer.question == query.question


def test_truncation_without_edns_and_tcp_fallback(responders: DnsResponders) -> None:
    plain = udp(responders, "10.0.0.10", "big.contoso.local", "A")
    assert plain.flags & dns.flags.TC
    assert len(plain.to_wire()) <= 512
    full = tcp(responders, "10.0.0.10", "big.contoso.local", "A")
    assert len(texts(full)) == 60 and not full.flags & dns.flags.TC
    # EDNS with a large buffer gets everything over UDP, and the reply carries EDNS too.
    edns = udp(responders, "10.0.0.10", "big.contoso.local", "A", use_edns=0, payload=4096)
    assert not edns.flags & dns.flags.TC and len(texts(edns)) == 60 and edns.edns == 0
    # The stub resolver retries over TCP on its own.
    res = resolver(responders, "10.0.0.10")
    res.use_edns(-1)
    assert len(res.resolve("big.contoso.local", "A")) == 60


def test_reply_echoes_id_question_and_case(responders: DnsResponders) -> None:
    reply = udp(responders, "10.0.0.10", "OwA.CoNtOsO.LoCaL", "A")
    assert reply.question[0].name.to_text() == "OwA.CoNtOsO.LoCaL."
    assert reply.answer[0].name.to_text() == "OwA.CoNtOsO.LoCaL."


def test_edns_version_other_than_zero_is_badvers(responders: DnsResponders) -> None:
    reply = udp(responders, "10.0.0.10", "owa.contoso.local", "A", use_edns=1)
    assert reply.rcode() == dns.rcode.BADVERS


def test_counters_per_server_and_type(world: DnsWorld) -> None:
    with DnsResponders(world) as running:
        udp(running, "10.0.0.10", SRV, "SRV")
        udp(running, "10.0.0.10", "owa.contoso.local", "A")
        tcp(running, "10.0.0.10", "owa.contoso.local", "A")
        with pytest.raises(dns.exception.Timeout):
            udp(running, "10.0.0.99", SRV, "SRV", timeout=SHORT)
        assert running.counters == {"10.0.0.10": {"SRV": 1, "A": 2}, "10.0.0.99": {"SRV": 1}}
        assert running.query_count("10.0.0.10") == 3
        assert running.query_count("10.0.0.10", "a") == 2
        running.reset_counters()
        assert running.counters == {}


def raw_exchange(responders: DnsResponders, server: str, payload: bytes) -> bytes | None:
    host, port = where(responders, server)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(SHORT)
        sock.sendto(payload, (host, port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def test_garbage_and_hostile_names_never_stop_the_server(responders: DnsResponders) -> None:
    # Garbage with a header: FORMERR echoing the id. Too short, or a response: silence.
    reply = raw_exchange(responders, "10.0.0.10", b"\x12\x34\x01\x00" + b"\xff" * 40)
    assert reply is not None and reply[:2] == b"\x12\x34"
    assert dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR
    assert raw_exchange(responders, "10.0.0.10", b"\x00") is None
    assert raw_exchange(responders, "10.0.0.10", b"\x12\x34\x81\x80" + bytes(8)) is None

    hostile = [
        dns.name.Name([b"$(rm -rf /)", b"`whoami`;", b"contoso", b"local", b""]),
        dns.name.Name([b"\x00\x1b[31m\n", b"contoso", b"local", b""]),
        dns.name.Name(["ünïcödé".encode(), b"contoso", b"local", b""]),
        dns.name.Name([b"a.b", b"contoso", b"local", b""]),  # a dot inside a label
        dns.name.root,
    ]
    for name in hostile:
        for rdtype in ("A", "AAAA", "SRV", "TYPE65280", "ANY"):
            answer = udp(responders, "10.0.0.10", name, rdtype)  # type: ignore[arg-type]
            assert answer.rcode() == dns.rcode.NXDOMAIN, (name, rdtype)
    # Still serving.
    assert texts(udp(responders, "10.0.0.10", "owa.contoso.local", "A")) == ["10.0.0.30"]


def test_half_sent_tcp_messages_do_not_block_others(responders: DnsResponders) -> None:
    host, port = where(responders, "10.0.0.10")
    with socket.create_connection((host, port), timeout=2) as stuck:
        stuck.sendall(b"\x00\x40\x12")  # promises 64 bytes, sends one
        assert texts(tcp(responders, "10.0.0.10", "owa.contoso.local", "A")) == ["10.0.0.30"]


def test_silent_tcp_connection_is_closed_after_the_idle_timeout(world: DnsWorld) -> None:
    with DnsResponders(world, tcp_idle_timeout=0.2) as running:
        host, port = where(running, "10.0.0.99")
        with socket.create_connection((host, port), timeout=5) as sock:
            dns.query.send_tcp(sock, dns.message.make_query(SRV, "SRV"))
            started = time.monotonic()
            assert sock.recv(10) == b""  # closed by the server without a word
            assert time.monotonic() - started < 4.5


def test_stop_is_fast_and_frees_the_ports(world: DnsWorld) -> None:
    running = DnsResponders(world)
    mapping = running.start()
    host, port = where(running, "10.0.0.99")
    hanging = socket.create_connection((host, port), timeout=5)
    try:
        started = time.monotonic()
        running.stop()
        assert time.monotonic() - started < 5
        assert hanging.recv(10) == b""
        with pytest.raises(OSError):
            socket.create_connection((host, port), timeout=1).close()
    finally:
        hanging.close()
    running.stop()  # twice is fine
    assert running.address_map == {}
    assert set(mapping) == set(world.server_addresses)
    # It can start again.
    with running:
        assert texts(udp(running, "8.8.8.8", "fabrikam.com", "MX")) == [
            "10 mx1.fabrikam.com.", "20 mx2.fabrikam.com."]


def test_a_repeated_query_gets_the_same_bytes_as_the_first_with_its_own_id(world: DnsWorld) -> None:
    # The responders keep each query text's parse and reply (DnsResponders._respond): the
    # tenth asking of a question must get what a fresh server sends to the first. As a DNS
    # message: dnspython shuffles the records of an RRset when it renders one, and their
    # order carries no meaning (RFC 2181 section 5); a kept reply repeats its first order.
    questions = [("10.0.0.10", SRV, "SRV", 0), ("10.0.0.10", "OwA.contoso.local", "A", -1),
                 ("8.8.8.8", "fabrikam.com", "MX", 0), ("10.0.0.10", "nowhere.example", "A", 0),
                 ("10.0.0.11", "fabrikam.com", "MX", 0), ("10.0.0.10", "big.contoso.local", "A", -1)]
    for server, qname, rdtype, edns in questions:
        query = dns.message.make_query(qname, rdtype, use_edns=edns)
        with DnsResponders(world) as fresh:
            first = raw_exchange(fresh, server, query.to_wire())
        with DnsResponders(world) as running:
            replies = []
            for query_id in (7, 7, 0xBEEF, 1):
                query.id = query_id
                reply = raw_exchange(running, server, query.to_wire())
                assert reply is not None and reply[:2] == query_id.to_bytes(2, "big")
                replies.append(reply)
            assert running.query_count(server) == 4
        assert first is not None
        assert len({reply[2:] for reply in replies}) == 1, (qname, rdtype)
        assert dns.message.from_wire(replies[0]) == dns.message.from_wire(replies[0][:2] + first[2:])
        assert sorted(replies[0]) == sorted(replies[0][:2] + first[2:])  # the same bytes, in some order
