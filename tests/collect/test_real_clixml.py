"""The parsers over real Export-Clixml captures from Exchange 2016 and 2019 lab servers
(microsoft/CSS-Exchange test data, read in place from ../shared/fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.collect import edge_config, exchange_server, nics, send_connectors
from agent.model.facts import TransportNoun
from agent.model.remote import RemoteObject
from agent.transport.clixml import read_clixml_file
from support import clixml_loader

Loader = Callable[[Path], tuple[RemoteObject, ...]]


@pytest.fixture(scope="module")
def real(fixtures_dir: Path) -> Path:
    return fixtures_dir / "real-clixml"


# Both readings of the captures: pypsrp's deserializer (through the small test helper) and
# exfix's own CLIXML converter that every transport uses. The parsers must not care.
@pytest.fixture(params=["pypsrp", "exfix"])
def load_clixml(request: pytest.FixtureRequest) -> Loader:
    return clixml_loader.load_clixml if request.param == "pypsrp" else read_clixml_file


def test_get_dns_client_e16(real: Path, load_clixml: Loader) -> None:
    (nic,) = nics.parse(load_clixml(real / "E16/OS/GetDnsClient.xml"), (), ())
    assert (nic.interface_index, nic.interface_alias, nic.register_this_connections_address) == (
        2,
        "Ethernet",
        True,
    )
    assert nic.use_suffix_when_registering is False


def test_get_dns_client_e19_lower_case_cim_namespace(real: Path, load_clixml: Loader) -> None:
    objects = load_clixml(real / "E19/OS/GetDNSClient.xml")
    assert objects[0].type_names[0].startswith("Microsoft.Management.Infrastructure.CimInstance#root/")
    (nic,) = nics.parse(objects, (), ())
    assert (nic.interface_index, nic.interface_alias, nic.register_this_connections_address) == (
        7,
        "Ethernet",
        True,
    )


def test_get_net_ip_configuration_with_nested_cim_objects(real: Path, load_clixml: Loader) -> None:
    configs = load_clixml(real / "E16/OS/GetNetIPConfiguration.xml")
    (nic,) = nics.parse(load_clixml(real / "E16/OS/GetDnsClient.xml"), (), configs)
    assert nic.ipv4_addresses == ("192.168.5.11",)
    assert nic.ipv4_default_gateways == ("192.168.5.1",)
    assert nic.ipv4_dns_servers == (
        "192.168.5.10",
    )  # from the nested DNSServer objects (numeric AddressFamily)
    assert nic.ipv6_dns_servers == ()
    assert nic.interface_guid == "5abd3c7a-9ce5-40ea-a66c-6f51c013accc"
    chosen = nics.choose_mapi_nic((nic,), "Solo-E16A.Solo.local", ("192.168.5.11",))
    assert chosen.interface_index == 2
    assert chosen.reason == (
        "it has the default gateway 192.168.5.1 and holds 192.168.5.11, "
        "the address Solo-E16A.Solo.local resolves to"
    )


def test_dns_client_server_address_objects_as_get_dns_client_server_address_returns_them(
    real: Path, load_clixml: Loader
) -> None:
    (config,) = load_clixml(real / "E16/OS/GetNetIPConfiguration.xml")
    server_rows = config.get("DNSServer")
    (nic,) = nics.parse((), server_rows + server_rows, ())  # real captures repeat rows
    assert nic.ipv4_dns_servers == ("192.168.5.10",)


def test_get_exchange_server_e16(real: Path, load_clixml: Loader) -> None:
    facts = exchange_server.parse(load_clixml(real / "E16/Exchange/GetExchangeServer.xml"), host="solo-e16a")
    assert facts.name == "SOLO-E16A"
    assert facts.fqdn == "Solo-E16A.Solo.local"
    assert facts.domain == "Solo.local"
    assert facts.ad_site == "Default-First-Site-Name"
    assert facts.version == "15.1.2375.7"
    assert facts.admin_display_version == "Version 15.1 (Build 2375.7)"
    assert facts.transport_noun is TransportNoun.TRANSPORT_SERVICE
    assert facts.roles == ("Mailbox",)  # ServerRole arrives as an enum object whose ToString is the name
    assert facts.edition == "StandardEvaluation"


def test_get_send_connector_e19(real: Path, load_clixml: Loader) -> None:
    (connector,) = send_connectors.parse(load_clixml(real / "E19/Exchange/GetSendConnector.xml"))
    assert connector.name == "Mail to O365"
    assert connector.address_spaces == ("SMTP:*;1",)
    assert connector.smart_hosts == ("microsoft-com.mail.protection.outlook.com",)
    assert connector.dns_routing_enabled is False
    assert connector.use_external_dns_servers_enabled is False
    assert connector.source_transport_servers == ("WIN-CTD3L0RGEN4",)  # ADObjectId: ToString is the name
    assert connector.enabled is True and connector.cost == 1 and connector.is_internet
    assert connector.frontend_proxy_enabled is False  # <B N="FrontendProxyEnabled">false</B>


def test_edge_transport_config_e16(real: Path) -> None:
    text = (real / "E16/Exchange/EdgeTransport.exe.config").read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    assert edge_config.parse_dns_fault_tolerance(text) == "Lenient"
    assert edge_config.read_file(text, host="solo-e16a", path="C:\\x").well_formed
    facts = edge_config.parse((text,), host="solo-e16a", path="C:\\x\\Bin\\EdgeTransport.exe.config")  # type: ignore[arg-type]
    assert facts.key_present and facts.is_lenient


def test_the_real_edge_transport_config_made_malformed_names_its_line(real: Path) -> None:
    # The real file with the fault exfix meets in the field: a hand edit with typographic quotes
    # pasted from a web page. The position is the file's own (its BOM and declaration included).
    text = (real / "E16/Exchange/EdgeTransport.exe.config").read_bytes().decode("utf-8")
    lines = text.split("\n")
    number = next(i for i, line in enumerate(lines, 1) if 'key="DnsFaultTolerance"' in line)
    edited = lines[number - 1].replace('value="Lenient"', "value=\u201dNormal\u201d")
    lines[number - 1] = edited
    error = edge_config.read_file("\n".join(lines), host="solo-e16a", path="C:\\x").xml_error
    assert error is not None and error.message == "not well-formed (invalid token)"
    assert (error.line, error.column) == (number, edited.index("\u201d") + 1)
    assert error.text == edited
