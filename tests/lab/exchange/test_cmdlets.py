"""The emulated cmdlets in process: real type and property names, real error records,
parameter binding, -WhatIf, version gating and the NoLanguage Exchange endpoint."""

from __future__ import annotations

import os
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from psrpcore.types import serialize

from lab.exchange._exchange_support import (
    EX,
    OS,
    adapted_names,
    error,
    failure,
    invoke,
    make_fleet,
    ok,
    prop,
    snapshot,
)
from mock_remoting.backend import Command, Endpoint, RawClixml
from mock_remoting.exchange import command

NOT_RECOGNIZED = (
    "The term '{}' is not recognized as the name of a cmdlet, function, script file, or operable "
    "program. Check the spelling of the name, or if a path was included, verify that the path is "
    "correct and try again."
)


@pytest.fixture
def ex01():
    return make_fleet("healthy").host("EX01")


def test_exchange_server_has_the_real_type_and_shape(ex01) -> None:
    servers = ok(ex01, EX, "Get-ExchangeServer")
    assert [prop(s, "Name") for s in servers] == ["EX01", "EX02"]
    server = servers[0]
    assert server.PSObject.type_names[0] == "Microsoft.Exchange.Data.Directory.Management.ExchangeServer"
    assert prop(server, "AdminDisplayVersion") == "Version 15.2 (Build 1118.7)"
    assert prop(server, "Fqdn") == "ex01.contoso.local"
    assert prop(server, "IsE15OrLater") is True
    assert "Name" in adapted_names(server) and not server.PSObject.extended_properties
    one = ok(ex01, EX, "Get-ExchangeServer", ("Identity", "ex02"))
    assert [prop(s, "Name") for s in one] == ["EX02"]


def test_transport_service_and_send_connector_shapes(ex01) -> None:
    (service, _) = ok(ex01, EX, "Get-TransportService")
    assert (
        service.PSObject.type_names[0]
        == "Microsoft.Exchange.Data.Directory.SystemConfiguration.TransportServer"
    )
    assert prop(service, "ExternalDNSAdapterEnabled") is True
    servers = prop(service, "ExternalDNSServers")
    assert list(servers) == [] and servers.PSObject.type_names[0].startswith(
        "Microsoft.Exchange.Data.MultiValuedProperty`1[[System.Net.IPAddress"
    )
    assert prop(service, "ExternalDNSProtocolOption") == "Any"  # enums as strings over remote PowerShell

    (connector,) = ok(ex01, EX, "Get-SendConnector")
    assert (
        connector.PSObject.type_names[0]
        == "Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig"
    )
    assert list(prop(connector, "AddressSpaces")) == ["SMTP:*;1"]
    assert list(prop(connector, "SourceTransportServers")) == ["EX01", "EX02"]
    assert prop(connector, "DNSRoutingEnabled") is True
    assert prop(connector, "UseExternalDNSServersEnabled") is False
    assert prop(connector, "MaxMessageSize") == "35 MB (36,700,160 bytes)"


def test_queue_fields(ex01) -> None:
    queues = ok(ex01, EX, "Get-Queue")
    assert [prop(q, "Identity") for q in queues] == ["EX01\\1", "EX01\\2", "EX01\\3"]
    first = queues[0]
    assert first.PSObject.type_names[:2] == [
        "Microsoft.Exchange.Data.QueueViewer.PropertyBagBasedQueueInfo",
        "Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo",
    ]
    for name in (
        "DeliveryType",
        "NextHopDomain",
        "NextHopCategory",
        "NextHopConnector",
        "Status",
        "MessageCount",
        "LastError",
        "RetryCount",
        "LastRetryTime",
        "NextRetryTime",
        "Velocity",
        "RiskLevel",
    ):
        assert name in adapted_names(first)
    assert prop(first, "DeliveryType") == "DnsConnectorDelivery"
    assert prop(first, "NextHopCategory") == "External"
    assert prop(queues[2], "NextHopCategory") == "Internal"
    assert prop(queues[2], "DeliveryType") == "SmtpRelayToMailboxDeliveryGroup"
    other = ok(ex01, EX, "Get-Queue", ("Server", "EX02"))
    assert [prop(q, "Identity") for q in other] == ["EX02\\1", "EX02\\2"]
    both = invoke(ex01, EX, "Get-Queue", ("Identity", "EX01\\1"), ("Server", "EX01"))
    assert failure(both)[1] == "AmbiguousParameterSet,Microsoft.Exchange.Management.QueueViewerTasks.GetQueue"


def test_version_decides_transport_cmdlets() -> None:
    modern = make_fleet("healthy").host("EX01")
    legacy = make_fleet("exchange-2010").host("EX2010")
    ok(modern, EX, "Get-TransportService")
    ok(legacy, EX, "Get-TransportServer")
    for host, missing in (
        (modern, "Get-TransportServer"),
        (modern, "Set-TransportServer"),
        (legacy, "Get-TransportService"),
        (legacy, "Set-TransportService"),
    ):
        message, fqid, category = failure(invoke(host, EX, missing, ("Identity", "x")))
        assert message == NOT_RECOGNIZED.format(missing)
        assert fqid == "CommandNotFoundException" and category == "ObjectNotFound"
    (legacy_server,) = ok(legacy, EX, "Get-ExchangeServer")
    assert prop(legacy_server, "AdminDisplayVersion") == "Version 14.3 (Build 123.4)"
    (setup,) = ok(
        legacy, OS, "Get-ItemProperty", ("Path", "HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v14\\Setup")
    )
    assert prop(setup, "MsiInstallPath") == "C:\\Program Files\\Microsoft\\Exchange Server\\V14\\"


def test_endpoints_serve_their_own_cmdlets_only(ex01) -> None:
    message, fqid, _ = failure(invoke(ex01, EX, "Get-DnsClient"))
    assert fqid == "CommandNotFoundException" and "'Get-DnsClient'" in message
    assert failure(invoke(ex01, OS, "Get-Queue"))[1] == "CommandNotFoundException"
    assert failure(invoke(ex01, OS, "Invoke-Expression", (None, "calc")))[1] == "CommandNotFoundException"


def test_exchange_endpoint_is_no_language(ex01) -> None:
    result = ex01.invoke(
        EX, [Command("Get-Queue | Select-Object Identity", is_script=True)], threading.Event()
    )
    message, fqid, _ = failure(result)
    assert message == (
        "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode."
    )
    assert fqid == "ScriptsNotAllowed"
    assert not result.output


def test_unknown_parameter_is_the_real_binding_error(ex01) -> None:
    message, fqid, category = failure(
        invoke(ex01, EX, "Set-SendConnector", ("Identity", "Internet"), ("SmartHost", "192.0.2.1"))
    )
    # 'SmartHost' is a prefix of SmartHosts and SmartHostAuthMechanism: PowerShell calls it ambiguous
    assert fqid.startswith("AmbiguousParameter,")
    assert "-SmartHosts -SmartHostAuthMechanism" in message
    message, fqid, category = failure(
        invoke(
            ex01,
            OS,
            "Set-DnsClient",
            ("InterfaceIndex", 4),
            ("ConnectionSpecificSuffixSearchList", "contoso.local"),
        )
    )
    assert (
        message
        == "A parameter cannot be found that matches parameter name 'ConnectionSpecificSuffixSearchList'."
    )
    assert fqid == "NamedParameterNotFound,Set-DnsClient"
    assert category == "InvalidArgument"
    message, fqid, _ = failure(invoke(ex01, EX, "Get-Queue", ("Bogus", 1)))
    assert fqid == "NamedParameterNotFound,Microsoft.Exchange.Management.QueueViewerTasks.GetQueue"


def test_parameter_prefixes_aliases_and_positions(ex01) -> None:
    ok(ex01, OS, "Set-DnsClient", ("ifIndex", 4), ("Register", False))  # alias and unique prefix
    assert ex01.state.nic_by_index(4).register is False
    ok(
        ex01, OS, "Set-DnsClient", (None, "Ethernet"), ("RegisterThisConnectionsAddress", "True")
    )  # positional
    assert ex01.state.nic_by_index(4).register is True
    message, fqid, _ = failure(
        invoke(ex01, OS, "Set-DnsClient", ("InterfaceIndex", 4), ("RegisterThisConnectionsAddress", "yes"))
    )
    assert fqid == "ParameterArgumentTransformationError,Set-DnsClient"
    assert "Boolean parameters accept only Boolean values and numbers" in message
    assert failure(invoke(ex01, OS, "Get-Service", (None, "a"), (None, "b")))[1].startswith(
        "PositionalParameterNotFound,"
    )


def test_set_dns_client_without_an_interface_selector(ex01) -> None:
    for cmdlet in ("Set-DnsClient", "Set-DnsClientServerAddress"):
        message, fqid, category = failure(
            invoke(ex01, OS, cmdlet, ("RegisterThisConnectionsAddress", True))
            if cmdlet == "Set-DnsClient"
            else invoke(ex01, OS, cmdlet, ("ServerAddresses", "10.0.0.10"))
        )
        assert (
            message
            == "Cannot process command because of one or more missing mandatory parameters: InterfaceAlias."
        )
        assert fqid == f"MissingMandatoryParameter,{cmdlet}"
        assert category == "InvalidArgument"


def test_unknown_interface_is_a_cim_not_found_error(ex01) -> None:
    result = invoke(
        ex01, OS, "Set-DnsClient", ("InterfaceIndex", 99), ("RegisterThisConnectionsAddress", False)
    )
    assert result.failure is None
    message, fqid, category = error(result)
    assert fqid == "CmdletizationQuery_NotFound_InterfaceIndex,Set-DnsClient"
    assert category == "ObjectNotFound" and "'99'" in message


def test_smart_hosts_need_dns_routing_disabled_in_the_same_call(ex01) -> None:
    before = [c.name for c in ex01.org.connectors]
    result = invoke(
        ex01,
        EX,
        "New-SendConnector",
        ("Name", "x"),
        ("AddressSpaces", "x.example"),
        ("SmartHosts", "192.0.2.1"),
    )
    message, fqid, category = failure(result)
    assert "DNSRoutingEnabled" in message and "SmartHosts" in message
    assert "[FailureCategory=Cmdlet-DataValidationException]" in fqid
    assert fqid.endswith(",Microsoft.Exchange.Management.SystemConfigurationTasks.NewSendConnector")
    assert category == "InvalidData"
    assert [c.name for c in ex01.org.connectors] == before
    # Set-SendConnector too, even when only the smart hosts change
    assert failure(
        invoke(ex01, EX, "Set-SendConnector", ("Identity", "Internet"), ("SmartHosts", "192.0.2.1"))
    )
    assert ex01.org.connector("Internet").smart_hosts == []
    assert failure(
        invoke(ex01, EX, "Set-SendConnector", ("Identity", "Internet"), ("DNSRoutingEnabled", False))
    )


def test_whatif_changes_nothing(ex01) -> None:
    fleet_before = snapshot(make_fleet("healthy"))
    calls = [
        (OS, "Set-DnsClient", ("InterfaceIndex", 4), ("RegisterThisConnectionsAddress", False)),
        (OS, "Set-DnsClientServerAddress", ("InterfaceIndex", 4), ("ServerAddresses", ["8.8.8.8"])),
        (OS, "Set-DnsClientServerAddress", ("InterfaceIndex", 4), ("ResetServerAddresses", True)),
        (
            EX,
            "Set-TransportService",
            ("Identity", "EX01"),
            ("ExternalDNSServers", "8.8.8.8"),
            ("ExternalDNSAdapterEnabled", False),
        ),
        (EX, "Set-SendConnector", ("Identity", "Internet"), ("UseExternalDNSServersEnabled", True)),
        (
            EX,
            "New-SendConnector",
            ("Name", "n"),
            ("AddressSpaces", "a.example"),
            ("SmartHosts", "192.0.2.9"),
            ("DNSRoutingEnabled", False),
        ),
        (EX, "Remove-SendConnector", ("Identity", "Internet")),
        (OS, "Restart-Service", ("Name", "MSExchangeTransport")),
    ]
    nic = ex01.state.nic_by_index(4)
    state = (
        nic.register,
        list(nic.dns_servers),
        list(ex01.state.transport.external_dns_servers),
        [(c.name, c.use_external_dns_servers_enabled) for c in ex01.org.connectors],
        ex01.state.transport_starts,
    )
    for endpoint, name, *params in calls:
        assert ok(ex01, endpoint, name, *params, ("WhatIf", True)) == []
    assert (
        nic.register,
        list(nic.dns_servers),
        list(ex01.state.transport.external_dns_servers),
        [(c.name, c.use_external_dns_servers_enabled) for c in ex01.org.connectors],
        ex01.state.transport_starts,
    ) == state
    assert snapshot(make_fleet("healthy")) == fleet_before


def test_list_parameters_accept_add_remove_hashtables(ex01) -> None:
    ok(
        ex01,
        EX,
        "Set-TransportService",
        ("Identity", "EX01"),
        ("ExternalDNSServers", ["8.8.8.8", "192.0.2.53"]),
    )
    ok(
        ex01,
        EX,
        "Set-TransportService",
        ("Identity", "EX01"),
        ("ExternalDNSServers", {"Add": ["198.51.100.1"], "Remove": "8.8.8.8"}),
    )
    assert ex01.state.transport.external_dns_servers == ["192.0.2.53", "198.51.100.1"]
    (service, _) = ok(ex01, EX, "Get-TransportService")
    assert list(prop(service, "ExternalDNSServers")) == ["192.0.2.53", "198.51.100.1"]
    bad = invoke(ex01, EX, "Set-TransportService", ("Identity", "EX01"), ("ExternalDNSServers", "not-an-ip"))
    assert failure(bad)[1].startswith("ParameterArgumentTransformationError,")
    missing = invoke(
        ex01, EX, "Set-TransportService", ("Identity", "EX99"), ("ExternalDNSAdapterEnabled", False)
    )
    assert "ManagementObjectNotFoundException" in failure(missing)[1]


def test_dns_client_objects_are_cim_instances(ex01) -> None:
    (client,) = ok(ex01, OS, "Get-DnsClient")
    assert (
        client.PSObject.type_names[0]
        == "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_DNSClient"
    )
    assert prop(client, "InterfaceIndex") == 4 and type(prop(client, "InterfaceIndex")).__name__ == "PSUInt"
    assert prop(client, "RegisterThisConnectionsAddress") is True
    addresses = ok(ex01, OS, "Get-DnsClientServerAddress")
    assert [int(prop(a, "AddressFamily")) for a in addresses] == [2, 23]
    assert (
        addresses[0].PSObject.type_names[0]
        == "Microsoft.Management.Infrastructure.CimInstance#root/StandardCimv2/MSFT_DNSClientServerAddress"
    )
    assert list(prop(addresses[0], "ServerAddresses")) == ["10.0.0.10"]
    v4 = ok(ex01, OS, "Get-DnsClientServerAddress", ("AddressFamily", "IPv4"))
    assert len(v4) == 1
    (config,) = ok(ex01, OS, "Get-NetIPConfiguration")
    assert config.PSObject.type_names[0] == "NetIPConfiguration"
    assert prop(prop(config, "IPv4DefaultGateway")[0], "NextHop") == "10.0.0.1"
    # No IPv6 DNS server: Windows lists its fec0:0:0:ffff::1-3 placeholders on the IPv6 row.
    placeholders = ["fec0:0:0:ffff::1", "fec0:0:0:ffff::2", "fec0:0:0:ffff::3"]
    assert [list(prop(s, "ServerAddresses")) for s in prop(config, "DNSServer")] == [
        placeholders,
        ["10.0.0.10"],
    ]
    assert list(prop(addresses[1], "ServerAddresses")) == placeholders


def test_reset_server_addresses_restores_dhcp_servers() -> None:
    host = make_fleet("nic-external-dns").host("EX01")
    ok(host, OS, "Set-DnsClientServerAddress", ("InterfaceIndex", 4), ("ResetServerAddresses", True))
    assert host.state.nic_by_index(4).dns_servers == ["10.0.0.10"]
    both = invoke(
        host,
        OS,
        "Set-DnsClientServerAddress",
        ("InterfaceIndex", 4),
        ("ResetServerAddresses", True),
        ("ServerAddresses", "10.0.0.10"),
    )
    assert failure(both)[1] == "AmbiguousParameterSet,Set-DnsClientServerAddress"


def test_registry_and_edge_transport_config(ex01) -> None:
    (setup,) = ok(
        ex01, OS, "Get-ItemProperty", ("Path", "HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v15\\Setup")
    )
    install = prop(setup, "MsiInstallPath")
    assert install == "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"
    (text,) = ok(ex01, OS, "Get-Content", ("Path", install + "Bin\\EdgeTransport.exe.config"), ("Raw", True))
    root = ET.fromstring(text)
    assert root.find("appSettings") is not None
    assert "DnsFaultTolerance" not in text
    lines = ok(ex01, OS, "Get-Content", ("LiteralPath", install + "bin\\edgetransport.exe.config"))
    assert "".join(line + "\r\n" for line in lines) == text
    normal = make_fleet("dns-fault-tolerance-normal").host("EX01")
    (text,) = ok(
        normal, OS, "Get-Content", ("Path", install + "Bin\\EdgeTransport.exe.config"), ("Raw", True)
    )
    settings = {a.get("key"): a.get("value") for a in ET.fromstring(text).find("appSettings")}
    assert settings["DnsFaultTolerance"] == "Normal"
    missing = invoke(ex01, OS, "Get-Content", ("Path", "C:\\nope.txt"))
    assert error(missing)[1] == "PathNotFound,Microsoft.PowerShell.Commands.GetContentCommand"
    wrong = invoke(
        ex01, OS, "Get-ItemProperty", ("Path", "HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v14\\Setup")
    )
    assert error(wrong)[1] == "PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand"
    (only,) = ok(
        ex01,
        OS,
        "Get-ItemProperty",
        (None, "HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v15\\Setup"),
        (None, "MsiInstallPath"),
    )
    assert prop(only, "MsiInstallPath") == install


def test_services(ex01) -> None:
    (service,) = ok(ex01, OS, "Get-Service", ("Name", "MSExchangeTransport"))
    assert service.PSObject.type_names[0] == "System.ServiceProcess.ServiceController"
    assert prop(service, "Status").name == "Running"
    xml = ET.tostring(serialize(service, None)).decode()
    assert "<ToString>Running</ToString>" in xml and "System.ServiceProcess.ServiceControllerStatus" in xml
    missing = invoke(ex01, OS, "Restart-Service", ("Name", "NoSuchService"))
    assert (
        error(missing)[1] == "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.RestartServiceCommand"
    )
    starts = ex01.state.transport_starts
    result = ex01.invoke(
        OS,
        [command("Get-Service", ("Name", "MSExchangeTransport")), command("Restart-Service")],
        threading.Event(),
    )
    assert result.failure is None and not result.errors
    assert ex01.state.transport_starts == starts + 1


def test_start_sleep_blocks_until_cancelled(ex01) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.2, cancel.set)
    timer.start()
    started = time.monotonic()
    result = ex01.invoke(OS, [command("Start-Sleep", ("Seconds", 30))], cancel)
    assert time.monotonic() - started < 10
    assert result.failure is None
    started = time.monotonic()
    ok(ex01, OS, "Start-Sleep", ("Milliseconds", 50))
    assert time.monotonic() - started >= 0.04


def test_select_object(ex01) -> None:
    result = ex01.invoke(
        EX,
        [command("Get-Queue"), command("Select-Object", ("Property", ["Identity", "Status"]))],
        threading.Event(),
    )
    assert result.failure is None
    first = result.output[0]
    assert (
        first.PSObject.type_names[0]
        == "Selected.Microsoft.Exchange.Data.QueueViewer.PropertyBagBasedQueueInfo"
    )
    assert [p.name for p in first.PSObject.extended_properties] == ["Identity", "Status"]
    result = ex01.invoke(
        OS,
        [
            command("Get-DnsClientServerAddress", ("AddressFamily", "IPv4")),
            command("Select-Object", ("ExpandProperty", "ServerAddresses")),
        ],
        threading.Event(),
    )
    assert result.output == ["10.0.0.10"]
    result = ex01.invoke(
        OS,
        [command("Get-DnsClient"), command("Select-Object", ("ExpandProperty", "Nope"))],
        threading.Event(),
    )
    assert error(result)[1] == "ExpandPropertyNotFound,Microsoft.PowerShell.Commands.SelectObjectCommand"


def test_error_action(ex01) -> None:
    quiet = invoke(ex01, OS, "Get-Service", ("Name", "nope"), ("ErrorAction", "SilentlyContinue"))
    assert quiet.failure is None and not quiet.errors
    stop = invoke(ex01, OS, "Get-Service", ("Name", "nope"), ("ErrorAction", "Stop"))
    assert failure(stop)[1].startswith("NoServiceFoundForGivenName,")


def test_input_not_bound(ex01) -> None:
    result = ex01.invoke(OS, [command("Get-DnsClient"), command("Get-Service")], threading.Event())
    assert error(result)[1] == "InputObjectNotBound,Microsoft.PowerShell.Commands.GetServiceCommand"


def test_every_output_serializes_with_psrpcore(ex01) -> None:
    calls = [
        (EX, "Get-ExchangeServer"),
        (EX, "Get-Queue"),
        (EX, "Get-TransportService"),
        (EX, "Get-SendConnector"),
        (OS, "Get-DnsClient"),
        (OS, "Get-DnsClientServerAddress"),
        (OS, "Get-NetIPConfiguration"),
        (OS, "Get-Service"),
    ]
    for endpoint, name in calls:
        for obj in ok(ex01, endpoint, name):
            xml = ET.tostring(serialize(obj, None)).decode()
            assert xml.startswith("<Obj")
    for result in (invoke(ex01, OS, "Nope-Cmdlet"), invoke(ex01, OS, "Get-Content", ("Path", "x"))):
        record = result.failure or result.errors[0]
        assert "ErrorRecord" in ET.tostring(serialize(record, None)).decode()


def test_replay_returns_the_capture_as_separate_self_contained_objects(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    source = Path(__file__).resolve().parents[3] / "mock_remoting" / "scenarios" / "healthy.yaml"
    text = source.read_text(encoding="utf-8")
    capture = fixtures_dir / "real-clixml" / "E16" / "OS" / "GetNetIPConfiguration.xml"
    relative = os.path.relpath(capture.parent / "GetDnsClient.xml", tmp_path)
    text = text.replace(
        "    version: 15.2.1118.7\n",
        "    version: 15.2.1118.7\n    replay:\n"
        f"      Get-NetIPConfiguration: '{capture}'\n"
        f"      Get-DnsClient: '{relative}'\n",  # relative to the scenario file
        1,
    )
    scenario = tmp_path / "replay.yaml"
    scenario.write_text(text, encoding="utf-8")
    host = make_fleet(scenario).host("EX01")
    items = ok(host, OS, "Get-NetIPConfiguration")
    assert items and all(isinstance(i, RawClixml) for i in items)
    for item in items:
        element = ET.fromstring(item.xml)
        assert element.tag == "Obj"
        defined = {e.get("RefId") for e in element.iter("Obj")}
        assert {e.get("RefId") for e in element.iter("Ref")} <= defined
        type_names = {e.get("RefId") for e in element.iter("TN")}
        assert {e.get("RefId") for e in element.iter("TNRef")} <= type_names
    # unknown parameters are still refused before a capture is replayed
    assert failure(invoke(host, OS, "Get-NetIPConfiguration", ("Bogus", 1)))[1].startswith(
        "NamedParameterNotFound"
    )
    # replayed objects go through Select-Object like live ones
    result = host.invoke(
        OS,
        [command("Get-DnsClient"), command("Select-Object", ("ExpandProperty", "InterfaceAlias"))],
        threading.Event(),
    )
    assert result.output == ["Ethernet"]


def test_resolve_dns_name_queries_the_lab_dns_over_loopback() -> None:
    from mock_remoting.dns.responder import DnsResponders

    scenario = make_fleet("transport-external-dns-unresolvable").scenario
    from mock_remoting.dns.world import DnsWorld

    world = DnsWorld.from_scenario(scenario.dns, scenario.organization, source="x")
    with DnsResponders(world) as responders:
        address_map = responders.address_map
        from mock_remoting.exchange import Fleet

        host = Fleet(scenario, world, address_map).host("EX01")
        records = ok(
            host,
            OS,
            "Resolve-DnsName",
            ("Name", "fabrikam.com"),
            ("Type", "MX"),
            ("Server", "8.8.8.8"),
            ("DnsOnly", True),
        )
        assert [r.PSObject.type_names[0] for r in records] == ["Microsoft.DnsClient.Commands.DnsRecord_MX"]
        assert prop(records[0], "NameExchange") == "mx1.fabrikam.com" and prop(records[0], "Preference") == 10
        (a,) = ok(host, OS, "Resolve-DnsName", (None, "ex02.contoso.local"), (None, "A"))
        assert prop(a, "IPAddress") == "10.0.0.22"
        nx = invoke(
            host,
            OS,
            "Resolve-DnsName",
            ("Name", "nope.contoso.local"),
            ("Type", "A"),
            ("Server", "10.0.0.11"),
        )
        assert error(nx) == (
            "nope.contoso.local : DNS name does not exist",
            "DNS_ERROR_RCODE_NAME_ERROR,Microsoft.DnsClient.Commands.ResolveDnsName",
            "ResourceUnavailable",
        )
        servfail = invoke(
            host, OS, "Resolve-DnsName", ("Name", "fabrikam.com"), ("Type", "MX"), ("Server", "10.0.0.11")
        )
        assert (
            error(servfail)[1] == "DNS_ERROR_RCODE_SERVER_FAILURE,Microsoft.DnsClient.Commands.ResolveDnsName"
        )
        silent = invoke(
            host,
            OS,
            "Resolve-DnsName",
            ("Name", "fabrikam.com"),
            ("Server", "192.0.2.99"),
            ("QuickTimeout", True),
        )
        assert error(silent)[1] == "ERROR_TIMEOUT,Microsoft.DnsClient.Commands.ResolveDnsName"
        assert error(silent)[2] == "OperationTimeout"


def test_psrpcore_primitives_bind_like_plain_values(ex01) -> None:
    from psrpcore.types import PSInt, PSList, PSString

    ok(
        ex01,
        OS,
        "Set-DnsClientServerAddress",
        (PSString("InterfaceIndex"), PSInt(4)),
        ("ServerAddresses", PSList([PSString("10.0.0.10"), PSString("8.8.8.8")])),
    )
    assert ex01.state.nic_by_index(4).dns_servers == ["10.0.0.10", "8.8.8.8"]


def test_endpoint_enum_is_the_backend_one() -> None:
    assert Endpoint.EXCHANGE.value == "Microsoft.Exchange"


def test_the_dns_client_cache_lists_filters_and_clears_as_windows_does() -> None:
    ex01 = make_fleet("dns-client-cache-negative").host("EX01")
    (row,) = ok(ex01, OS, "Get-DnsClientCache")
    assert row.PSObject.type_names[0].endswith("ROOT/StandardCimv2/MSFT_DNSClientCache")
    assert (prop(row, "Entry"), prop(row, "Type"), prop(row, "Status"), prop(row, "TimeToLive")) == (
        "fabrikam.com", 15, 9003, 840)  # fmt: skip
    assert len(ok(ex01, OS, "Get-DnsClientCache", ("Entry", "fabrikam.com"), ("Type", "MX"),
                  ("Status", "NotExist"))) == 1  # fmt: skip
    missing = invoke(ex01, OS, "Get-DnsClientCache", ("Entry", "fabrikam.com"), ("Status", "NoRecords"))
    assert missing.output == [] and error(missing) == (
        "No MSFT_DNSClientCache objects found with property 'Entry' equal to 'fabrikam.com'.  Verify the "
        "value of the property and retry.",
        "CmdletizationQuery_NotFound_Entry,Get-DnsClientCache", "ObjectNotFound")  # fmt: skip
    # -WhatIf changes nothing; the flush empties the cache, and an empty cache lists nothing.
    ok(ex01, OS, "Clear-DnsClientCache", ("WhatIf", True))
    assert len(ok(ex01, OS, "Get-DnsClientCache")) == 1
    ok(ex01, OS, "Clear-DnsClientCache")
    assert ok(ex01, OS, "Get-DnsClientCache") == []


def test_a_stale_negative_entry_fails_the_queue_until_the_cache_is_cleared() -> None:
    fleet = make_fleet("dns-client-cache-negative")
    ex01 = fleet.host("EX01")

    def queue(next_hop: str) -> Any:
        return next(q for q in ex01.queues if q.next_hop == next_hop)

    stuck = queue("fabrikam.com")
    # The server answers fabrikam.com's MX, yet the cached NotExist wins: nonexistent domain.
    assert stuck.status == "Retry" and stuck.queued == 9
    assert "SMTPSEND.DNS.NonExistentDomain; nonexistent domain" in (stuck.last_error or "")
    assert fleet.org.world.answer("10.0.0.10", "fabrikam.com", "MX").records
    assert queue("tailspintoys.com").queued == 0
    # Retrying alone does not help; after the flush the next attempt delivers.
    ok(ex01, EX, "Retry-Queue", ("Identity", stuck.identity))
    assert queue("fabrikam.com").status == "Retry"
    ok(ex01, OS, "Clear-DnsClientCache")
    ok(ex01, EX, "Retry-Queue", ("Identity", stuck.identity))
    cured = queue("fabrikam.com")
    assert (cured.status, cured.queued, cured.delivered, cured.last_error) == ("Ready", 0, 9, None)
