"""The lab's DNS world: scenario validation and the answer table of mock_remoting/README.md."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from agent.errors import ScenarioError
from mock_remoting.dns.world import DnsAnswer, DnsRecord, DnsWorld
from support.dns_world import dns_scenario, dns_world

SCENARIO = dns_scenario()

SRV = "_ldap._tcp.dc._msdcs.contoso.local"


def make_world(mutate: Any = None) -> DnsWorld:
    doc = copy.deepcopy(SCENARIO)
    if mutate is not None:
        mutate(doc)
    return dns_world(doc, source="scenarios/test.yaml")


@pytest.fixture()
def world() -> DnsWorld:
    return make_world()


def datas(answer: DnsAnswer) -> list[str]:
    return sorted(record.data for record in answer.records)


def test_servers_and_kinds(world: DnsWorld) -> None:
    assert world.ad_domain == "contoso.local"
    assert world.server_addresses == (
        "10.0.0.10", "10.0.0.11", "8.8.8.8", "10.0.0.99", "192.0.2.1", "198.51.100.53")
    assert world.kind("10.0.0.10") == "internal"
    assert world.kind("198.51.100.53") == "ignore-aaaa"
    # An address with no DNS server behind it never answers.
    assert world.kind("10.9.9.9") == "unreachable"
    assert world.answer("10.9.9.9", SRV, "SRV").rcode == "NO_REPLY"
    assert not world.has_server("10.9.9.9")
    assert world.internet_zones == ("fabrikam.com", "tailspin.example", "webonly.example", "nomail.example")


def test_ad_zone_from_internal_servers(world: DnsWorld) -> None:
    for server in ("10.0.0.10", "10.0.0.11"):
        srv = world.answer(server, SRV, "SRV")
        assert srv.rcode == "NOERROR"
        assert datas(srv) == ["0 100 389 dc01.contoso.local.", "0 100 389 dc02.contoso.local."]
        assert {r.name for r in srv.records} == {SRV + "."}
        assert world.answer(server, "dc02.contoso.local", "A").records == (
            DnsRecord("dc02.contoso.local.", "A", 3600, "10.0.0.11"),)
        assert datas(world.answer(server, "owa.contoso.local", "A")) == ["10.0.0.30"]
        # Exists but has no AAAA: NODATA. Unknown name: NXDOMAIN. Empty non-terminal: NODATA.
        assert world.answer(server, "owa.contoso.local", "AAAA") == DnsAnswer("NOERROR", ())
        assert world.answer(server, "ex99.contoso.local", "A").rcode == "NXDOMAIN"
        assert world.answer(server, "_msdcs.contoso.local", "A") == DnsAnswer("NOERROR", ())
        assert world.answer(server, "contoso.local", "SOA").records[0].data.startswith(
            "dc01.contoso.local. hostmaster.contoso.local. ")
        assert datas(world.answer(server, "contoso.local", "NS")) == [
            "dc01.contoso.local.", "dc02.contoso.local."]


def test_names_are_case_insensitive_and_trailing_dot_optional(world: DnsWorld) -> None:
    for name in ("OWA.Contoso.Local", "owa.contoso.local.", "  owa.CONTOSO.local.  "):
        assert datas(world.answer("10.0.0.10", name, "a")) == ["10.0.0.30"]
    assert world.answer("8.8.8.8", "FABRIKAM.COM.", "mx").rcode == "NOERROR"


def test_internal_forwarding(world: DnsWorld) -> None:
    forwarded = world.answer("10.0.0.10", "fabrikam.com", "MX")
    assert forwarded == world.answer("8.8.8.8", "fabrikam.com", "MX")
    assert datas(forwarded) == ["10 mx1.fabrikam.com.", "20 mx2.fabrikam.com."]
    assert world.answer("10.0.0.10", "unknown.example", "A").rcode == "NXDOMAIN"
    # Without forwarders an AD DNS server cannot resolve the internet at all.
    assert world.answer("10.0.0.11", "fabrikam.com", "MX").rcode == "SERVFAIL"
    assert world.answer("10.0.0.11", "unknown.example", "A").rcode == "SERVFAIL"
    assert world.forwards("10.0.0.10") and not world.forwards("10.0.0.11")


def test_public_server_knows_nothing_of_the_ad_domain(world: DnsWorld) -> None:
    assert world.answer("8.8.8.8", SRV, "SRV").rcode == "NXDOMAIN"
    assert world.answer("8.8.8.8", "owa.contoso.local", "A").rcode == "NXDOMAIN"
    assert datas(world.answer("8.8.8.8", "mx1.fabrikam.com", "AAAA")) == ["2001:db8::10"]
    assert world.answer("8.8.8.8", "unknown.example", "A").rcode == "NXDOMAIN"


def test_nodata_inside_a_zone(world: DnsWorld) -> None:
    # A domain with no mail DNS at all: MX and A are NODATA, not NXDOMAIN.
    assert world.answer("8.8.8.8", "nomail.example", "MX") == DnsAnswer("NOERROR", ())
    assert world.answer("8.8.8.8", "nomail.example", "A") == DnsAnswer("NOERROR", ())
    assert world.answer("8.8.8.8", "mx2.fabrikam.com", "AAAA") == DnsAnswer("NOERROR", ())
    assert world.answer("8.8.8.8", "fabrikam.com", "SOA").rcode == "NOERROR"


def test_misbehaving_servers(world: DnsWorld) -> None:
    for name, rdtype in ((SRV, "SRV"), ("fabrikam.com", "MX"), ("x.example", "A")):
        assert world.answer("192.0.2.1", name, rdtype) == DnsAnswer("SERVFAIL", ())
        assert world.answer("10.0.0.99", name, rdtype) == DnsAnswer("NO_REPLY", ())
    ignore = "198.51.100.53"
    assert world.answer(ignore, "mx1.fabrikam.com", "AAAA").rcode == "NO_REPLY"
    assert datas(world.answer(ignore, "mx1.fabrikam.com", "A")) == ["203.0.113.10"]
    assert world.answer(ignore, SRV, "SRV").rcode == "NXDOMAIN"
    assert world.answer(ignore, "owa.contoso.local", "AAAA").rcode == "NXDOMAIN"


def test_zone_ignoring_aaaa_makes_recursive_servers_fail(world: DnsWorld) -> None:
    for server in ("8.8.8.8", "10.0.0.10"):
        assert world.answer(server, "mail.tailspin.example", "AAAA").rcode == "SERVFAIL"
        assert datas(world.answer(server, "mail.tailspin.example", "A")) == ["203.0.113.20"]
        assert datas(world.answer(server, "tailspin.example", "MX")) == ["10 mail.tailspin.example."]
    assert world.answer("198.51.100.53", "mail.tailspin.example", "AAAA").rcode == "NO_REPLY"


def test_register_is_dynamic_and_replaces(world: DnsWorld) -> None:
    assert not world.is_registered("ex01.contoso.local")
    assert world.answer("10.0.0.10", "ex01.contoso.local", "A").rcode == "NXDOMAIN"
    world.register("EX01.contoso.local.", ["10.0.0.21"])
    assert world.is_registered("ex01.contoso.local")
    answer = world.answer("10.0.0.11", "ex01.contoso.local", "A")
    assert answer.records == (DnsRecord("ex01.contoso.local.", "A", 1200, "10.0.0.21"),)
    world.register("ex01.contoso.local", ["10.0.0.22", "10.0.0.22"])
    assert datas(world.answer("10.0.0.10", "ex01.contoso.local", "A")) == ["10.0.0.22"]
    assert world.answer("8.8.8.8", "ex01.contoso.local", "A").rcode == "NXDOMAIN"
    world.register("ex01.contoso.local", [])
    assert not world.is_registered("ex01.contoso.local")
    assert world.answer("10.0.0.10", "ex01.contoso.local", "A").rcode == "NXDOMAIN"


def test_register_creates_empty_non_terminals(world: DnsWorld) -> None:
    world.register("ex01.site1.contoso.local", ["10.0.1.21"])
    assert world.answer("10.0.0.10", "site1.contoso.local", "A") == DnsAnswer("NOERROR", ())


@pytest.mark.parametrize("fqdn, addresses", [
    ("ex01.fabrikam.com", ["10.0.0.21"]),
    ("contoso.local", ["10.0.0.21"]),
    ("ex01.contoso.local", ["not-an-ip"]),
    ("ex01.contoso.local", ["2001:db8::1"]),
    ("ex01.contoso.local", "10.0.0.21"),
])
def test_register_refuses_bad_input(world: DnsWorld, fqdn: str, addresses: Any) -> None:
    with pytest.raises(ValueError):
        world.register(fqdn, addresses)


def test_register_is_thread_safe(world: DnsWorld) -> None:
    def worker(index: int) -> None:
        for round_ in range(50):
            world.register(f"ex{index}.contoso.local", [f"10.1.{index}.{round_ % 250 + 1}"])
            world.answer("10.0.0.10", f"ex{(index + 1) % 8}.contoso.local", "A")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(world.is_registered(f"ex{i}.contoso.local") for i in range(8))


HOSTILE = ["", ".", "..", "a..b", "$(Get-Process).contoso.local", "`whoami`;\n.contoso.local",
           "\x1b[31mred\x1b[0m", "ünïcödé.contoso.local", "x" * 5000, "\\000.contoso.local", "'\"; DROP"]


@pytest.mark.parametrize("qname", HOSTILE)
def test_hostile_names_never_raise(world: DnsWorld, qname: str) -> None:
    for server in (*world.server_addresses, "not an address", ""):
        for rdtype in ("A", "AAAA", "SRV", "TYPE65280", "", "\n"):
            answer = world.answer(server, qname, rdtype)
            assert answer.rcode in ("NOERROR", "NXDOMAIN", "SERVFAIL", "NO_REPLY")


def test_unknown_types_are_nodata_for_existing_names(world: DnsWorld) -> None:
    assert world.answer("10.0.0.10", "owa.contoso.local", "TXT") == DnsAnswer("NOERROR", ())
    assert world.answer("10.0.0.10", "owa.contoso.local", "MX") == DnsAnswer("NOERROR", ())


# --- validation ---------------------------------------------------------------------------


def set_in(path: str, value: Any) -> Any:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


_DELETE = object()


@pytest.mark.parametrize("path, value, key, words", [
    ("dns/servers/10.0.0.99/kind", "flaky", "dns.servers.10.0.0.99.kind", "not one of"),
    ("dns/servers/10.0.0.99", "unreachable", "dns.servers.10.0.0.99", "expected a mapping"),
    ("dns/servers/10.0.0.99/forward", True, "dns.servers.10.0.0.99.forward", "only an internal"),
    ("dns/servers/10.0.0.10/forward", "yes", "dns.servers.10.0.0.10.forward", "true or false"),
    ("dns/servers/10.0.0.10/forwarders", ["8.8.8.8"], "dns.servers.10.0.0.10.forwarders", "unknown key"),
    ("dns/servers/dns.contoso.local", {"kind": "public"}, "dns.servers.dns.contoso.local", "IP address"),
    ("dns/servers", _DELETE, "dns.servers", "missing"),
    ("dns/zones", {}, "dns.zones", "unknown key"),
    ("dns/internal_records/owa.contoso.local", ["10.0.0.300"], "dns.internal_records.owa.contoso.local.0",
     "IPv4"),
    ("dns/internal_records/owa.fabrikam.com", ["10.0.0.3"], "dns.internal_records.owa.fabrikam.com",
     "outside the AD domain"),
    ("dns/internal_records/owa.contoso.local", "10.0.0.30", "dns.internal_records.owa.contoso.local",
     "expected a list"),
    ("dns/internet/fabrikam.com/mx/0/preference", -1, "dns.internet.fabrikam.com.mx.0.preference",
     "0 to 65535"),
    ("dns/internet/fabrikam.com/mx/0/preference", True, "dns.internet.fabrikam.com.mx.0.preference",
     "0 to 65535"),
    ("dns/internet/fabrikam.com/mx/0/host", "bad host!", "dns.internet.fabrikam.com.mx.0.host", "DNS name"),
    ("dns/internet/fabrikam.com/a/mx1.tailspin.example", ["203.0.113.1"],
     "dns.internet.fabrikam.com.a.mx1.tailspin.example", "outside the zone"),
    ("dns/internet/fabrikam.com/aaaa/mx1.fabrikam.com", ["203.0.113.1"],
     "dns.internet.fabrikam.com.aaaa.mx1.fabrikam.com.0", "IPv6"),
    ("dns/internet/fabrikam.com/ignore_aaaa", "no", "dns.internet.fabrikam.com.ignore_aaaa", "true or false"),
    ("dns/internet/corp.contoso.local", {}, "dns.internet.corp.contoso.local", "overlaps the AD domain"),
    ("organization/ad_domain", _DELETE, "organization.ad_domain", "missing"),
    ("organization/ad_domain", "not a domain", "organization.ad_domain", "DNS name"),
    ("organization/domain_controllers", [], "organization.domain_controllers", "at least one"),
    ("organization/domain_controllers/0/address", "10.0.0", "organization.domain_controllers.0.address",
     "IPv4"),
    ("organization/domain_controllers/1/name", "dc02.fabrikam.com", "organization.domain_controllers.1.name",
     "not a host in the AD domain"),
])
def test_validation_names_the_key(path: str, value: Any, key: str, words: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        make_world(set_in(path, value))
    error = caught.value
    assert error.key == key
    assert error.path == "scenarios/test.yaml"
    assert words in error.problem
    text = str(error)
    assert "\n" not in text and text.startswith(f"scenarios/test.yaml: key {key!r}: ")


def test_validation_of_whole_sections() -> None:
    with pytest.raises(ScenarioError, match="expected a mapping") as caught:
        DnsWorld.from_scenario(["servers"], SCENARIO["organization"], source="s.yaml")  # type: ignore[arg-type]
    assert caught.value.key == "dns"
    with pytest.raises(ScenarioError) as caught:
        DnsWorld.from_scenario(SCENARIO["dns"], None, source="s.yaml")  # type: ignore[arg-type]
    assert caught.value.key == "organization"


def test_hostile_scenario_values_give_one_line_errors() -> None:
    with pytest.raises(ScenarioError) as caught:
        make_world(set_in("dns/servers/10.0.0.99/kind", "bad\n\x1b[31m$(rm -rf /)`x`"))
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)


def test_minimal_scenario_and_ipv6_server() -> None:
    world = DnsWorld.from_scenario(
        {"servers": {"2001:DB8::53": {"kind": "public"}, "10.0.0.10": {"kind": "internal"}}},
        {"ad_domain": "Corp.Example.", "domain_controllers": [{"name": "dc1.corp.example",
                                                              "address": "10.0.0.10"}]},
        source="s.yaml")
    assert world.ad_domain == "corp.example"
    assert world.server_addresses == ("2001:db8::53", "10.0.0.10")
    assert world.kind("2001:db8:0::53") == "public"
    # forward defaults to true: an AD DNS server resolves the internet unless told otherwise.
    assert world.forwards("10.0.0.10")
    assert world.answer("10.0.0.10", "_ldap._tcp.dc._msdcs.corp.example", "SRV").records[0].data == (
        "0 100 389 dc1.corp.example.")
