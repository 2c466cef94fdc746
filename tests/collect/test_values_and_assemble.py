from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.collect import _values as v
from agent.collect import assemble
from agent.model.facts import is_public_address
from agent.model.remote import RemoteObject
from support.facts_builders import (
    ERRORRETRY_ERROR,
    host,
    internal_queue,
    lookup,
    mapi_nic,
    queue,
    replication_nic,
    transport,
)

ENUM = RemoteObject(("Microsoft.Exchange.Data.ProtocolOption", "System.Enum"), {}, "UseTcpOnly")


def test_shapes() -> None:
    assert v.text(ENUM) == "UseTcpOnly"
    assert v.text(RemoteObject(("x",), {"Name": "EX01"})) == "EX01"
    assert v.text(None, "d") == "d" and v.text(True) == "True" and v.text(("a", "b")) == "a, b"
    assert [v.boolean(x) for x in (True, "True", "false", "$true", 1, 0, "maybe", None, 7)] == [
        True,
        True,
        False,
        True,
        True,
        False,
        None,
        None,
        None,
    ]
    assert [v.integer(x) for x in (5, "12", "1,024", 3.0, True, "x", None)] == [
        5,
        12,
        1024,
        3,
        None,
        None,
        None,
    ]
    assert v.texts(None) == () and v.texts("a") == ("a",) and v.texts(("a", "", ENUM)) == ("a", "UseTcpOnly")
    assert v.texts("10.0.0.1, 10.0.0.2 10.0.0.3", split=True) == ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    assert v.unique(["A", "b", "a", "B", "c"]) == ("A", "b", "c")


def test_cim_type_names_match_in_any_namespace_case() -> None:
    for prefix in ("ROOT/StandardCimv2/", "root/StandardCimv2/", "root/standardcimv2/"):
        obj = RemoteObject((f"Microsoft.Management.Infrastructure.CimInstance#{prefix}MSFT_DNSClient",))
        assert v.type_matches(obj, "MSFT_DNSClient")
        assert not v.type_matches(obj, "MSFT_DNSClientServerAddress")


_any: Any = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(), st.binary()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.builds(lambda t, p: RemoteObject((t,), {"Name": p}, None), st.text(), inner),
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(_any)
def test_readers_never_raise(value: Any) -> None:
    v.text(value)
    v.boolean(value)
    v.integer(value)
    v.texts(value)
    v.texts(value, split=True)


def test_public_addresses() -> None:
    assert is_public_address("8.8.8.8") and is_public_address("198.51.100.53")
    assert is_public_address("2001:4860:4860::8888")
    for private in (
        "10.0.0.10",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "fe80::1%12",
        "fec0:0:0:ffff::1",
        "fd00::53",
        "::ffff:10.0.0.1",
        "not-an-ip",
        "",
    ):
        assert not is_public_address(private), private


def test_configured_servers_and_failing_domains() -> None:
    nics = (
        mapi_nic(ipv4_dns_servers=("10.0.0.10", "10.0.0.11")),
        replication_nic(ipv4_dns_servers=("10.0.0.11",)),
    )
    settings_ = transport(
        external=lookup(False, ("8.8.8.8",)), internal=lookup(False, ("10.0.0.10", "10.0.0.12"))
    )
    assert assemble.configured_dns_servers(nics, settings_) == (
        "10.0.0.10",
        "10.0.0.11",
        "8.8.8.8",
        "10.0.0.12",
    )
    queues = (
        queue("EX01\\1", next_hop="Fabrikam.com", last_error=ERRORRETRY_ERROR),
        queue("EX01\\2", next_hop="fabrikam.com", last_error=ERRORRETRY_ERROR),
        queue("EX01\\3", next_hop="*", last_error=ERRORRETRY_ERROR),
        queue("EX01\\4", next_hop="ok.example", status="Ready", messages=0),
        internal_queue(),
    )
    assert assemble.failing_remote_domains(queues) == ("fabrikam.com",)


def test_host_facts_records_the_collection_status() -> None:
    facts = host(remote_domains=(" Fabrikam.com ", "fabrikam.com", ""))
    assert facts.remote_domains == ("fabrikam.com",)
    assert facts.status.transport_noun.value == "TransportService"
    assert facts.status.collected("queues")
