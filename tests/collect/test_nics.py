from __future__ import annotations

from agent.collect import nics
from agent.model.facts import NicFacts
from agent.model.probe import DnsQueryResult, Outcome, Vantage
from agent.model.remote import RemoteObject

CIM = "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/"


def dns_client(index: object, alias: str, register: object) -> RemoteObject:
    return RemoteObject(
        (CIM + "MSFT_DNSClient",),
        {
            "InterfaceIndex": index,
            "InterfaceAlias": alias,
            "RegisterThisConnectionsAddress": register,
            "UseSuffixWhenRegistering": "False",
            "ConnectionSpecificSuffix": None,
        },
    )


def server_address(index: int, family: object, addresses: object) -> RemoteObject:
    return RemoteObject(
        ("Microsoft.Management.Infrastructure.CimInstance#root/StandardCimv2/MSFT_DNSClientServerAddress",),
        {
            "InterfaceIndex": index,
            "InterfaceAlias": "x",
            "AddressFamily": family,
            "ServerAddresses": addresses,
        },
    )


def ip_config(index: int, alias: str, v4: tuple[str, ...], gateway: str | None) -> RemoteObject:
    addresses = tuple(
        RemoteObject((CIM + "MSFT_NetIPAddress",), {"IPAddress": a, "AddressFamily": 2}, a) for a in v4
    )
    routes = (
        (RemoteObject((CIM + "MSFT_NetRoute",), {"NextHop": gateway, "DestinationPrefix": "0.0.0.0/0"}),)
        if gateway
        else None
    )
    return RemoteObject(
        ("NetIPConfiguration",),
        {
            "InterfaceIndex": index,
            "InterfaceAlias": alias,
            "IPv4Address": addresses,
            "IPv4DefaultGateway": routes,
            "IPv6DefaultGateway": None,
        },
    )


def two_nics() -> tuple[NicFacts, ...]:
    return nics.parse(
        (dns_client(12, "Ethernet0", True), dns_client("14", "Replication", "False")),
        (
            server_address(12, 2, ("10.0.0.10", "10.0.0.11", "10.0.0.10")),
            server_address(12, 23, ()),
            server_address(14, "IPv4", None),
        ),
        (
            ip_config(12, "Ethernet0", ("10.0.0.21",), "10.0.0.1"),
            ip_config(14, "Replication", ("192.168.50.21",), None),
        ),
    )


def test_calls() -> None:
    assert [c.cmdlet for c in nics.calls()] == [
        "Get-DnsClient",
        "Get-DnsClientServerAddress",
        "Get-NetIPConfiguration",
    ]
    assert all(c.endpoint.value == "os" for c in nics.calls())


def test_join_by_interface_index_with_odd_shapes() -> None:
    mapi, replication = two_nics()
    assert mapi.interface_index == 12 and mapi.interface_alias == "Ethernet0"
    assert mapi.register_this_connections_address is True
    assert mapi.use_suffix_when_registering is False
    assert mapi.ipv4_dns_servers == ("10.0.0.10", "10.0.0.11")  # the duplicate dropped, order kept
    assert mapi.ipv6_dns_servers == ()
    assert mapi.ipv4_addresses == ("10.0.0.21",) and mapi.ipv4_default_gateways == ("10.0.0.1",)
    assert replication.interface_index == 14 and replication.register_this_connections_address is False
    assert replication.default_gateways == () and replication.dns_servers == ()


def test_address_family_forms() -> None:
    assert [nics.address_family(v) for v in (2, 23, "2", "IPv6", "InterNetwork", None, 7)] == [
        2,
        23,
        2,
        23,
        2,
        None,
        None,
    ]


def test_family_missing_sorts_by_form_and_config_servers_fill_in() -> None:
    config = RemoteObject(
        ("NetIPConfiguration",),
        {
            "InterfaceIndex": 3,
            "InterfaceAlias": "LAN",
            "DNSServer": (server_address(3, None, ("10.1.1.1", "fd00::53")),),
            "IPv4Address": "10.1.1.5/24",
        },
    )
    (nic,) = nics.parse((), (), (config,))
    assert nic.ipv4_dns_servers == ("10.1.1.1",) and nic.ipv6_dns_servers == ("fd00::53",)
    assert nic.ipv4_addresses == ("10.1.1.5",)
    assert nic.register_this_connections_address is None


def test_objects_without_index_and_non_objects_are_skipped() -> None:
    assert nics.parse((RemoteObject(("x",), {"InterfaceAlias": "ghost"}), None, "text"), (), ()) == ()


def test_mapi_choice_by_gateway_and_a_record() -> None:
    found = nics.choose_mapi_nic(two_nics(), "ex01.contoso.local", ("10.0.0.21",))
    assert found.interface_index == 12
    assert found.reason == (
        "it has the default gateway 10.0.0.1 and holds 10.0.0.21, the address ex01.contoso.local resolves to"
    )


def test_mapi_choice_by_gateway_alone() -> None:
    found = nics.choose_mapi_nic(two_nics(), "ex01.contoso.local", ())
    assert found.interface_index == 12
    assert "only NIC with a default gateway (10.0.0.1)" in found.reason
    stale = nics.choose_mapi_nic(two_nics(), "ex01.contoso.local", ("10.9.9.9",))
    assert stale.interface_index == 12 and "no NIC holds 10.9.9.9" in stale.reason


def test_a_record_wins_when_two_nics_have_gateways() -> None:
    both = nics.parse(
        (),
        (),
        (
            ip_config(12, "Ethernet0", ("10.0.0.21",), "10.0.0.1"),
            ip_config(15, "Backup", ("10.5.0.21",), "10.5.0.1"),
        ),
    )
    found = nics.choose_mapi_nic(both, "ex01.contoso.local", ("10.0.0.21",))
    assert found.interface_index == 12
    ambiguous = nics.choose_mapi_nic(both, "ex01.contoso.local", ())
    assert ambiguous.interface_index is None and ambiguous.reason.startswith("ambiguous")


def test_single_nic_and_no_nic() -> None:
    (only,) = nics.parse((dns_client(5, "LAN", True),), (), ())
    assert nics.choose_mapi_nic((only,), "h", ()).interface_index == 5
    assert nics.choose_mapi_nic((), "h", ()).interface_index is None


def test_fqdn_addresses_from_probes() -> None:
    def a(qname: str, outcome: Outcome, records: tuple[str, ...]) -> DnsQueryResult:
        return DnsQueryResult(Vantage.HOST, "10.0.0.10", "10.0.0.10", qname, "A", outcome, records)

    probes = (
        a("EX01.contoso.local.", Outcome.ANSWER, ("10.0.0.21",)),
        a("other", Outcome.ANSWER, ("1.1.1.1",)),
        a("ex01.contoso.local", Outcome.ANSWER, ("10.0.0.21", "10.0.0.22")),
        a("ex01.contoso.local", Outcome.NXDOMAIN, ()),
    )
    assert nics.fqdn_addresses(probes, "ex01.contoso.local") == ("10.0.0.21", "10.0.0.22")
