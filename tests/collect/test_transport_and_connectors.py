from __future__ import annotations

import pytest

from agent.collect import send_connectors, transport
from agent.errors import UnusableOutputError
from agent.model.facts import ZERO_GUID, TransportNoun
from agent.model.remote import RemoteObject


def ip(address: str) -> RemoteObject:
    return RemoteObject(("System.Net.IPAddress",), {"AddressFamily": "InterNetwork"}, address)


def test_transport_calls_follow_the_version_noun() -> None:
    (call,) = transport.calls(TransportNoun.TRANSPORT_SERVER, "EX14")
    assert call.cmdlet == "Get-TransportServer" and call.param("Identity") == "EX14"
    (call,) = transport.calls(TransportNoun.TRANSPORT_SERVICE, "EX01")
    assert call.cmdlet == "Get-TransportService"


def test_transport_settings_in_all_their_shapes() -> None:
    obj = RemoteObject(
        ("Microsoft.Exchange.Data.Directory.SystemConfiguration.TransportServerPresentationObject",),
        {
            "ExternalDNSAdapterEnabled": "False",
            "ExternalDNSServers": (ip("8.8.8.8"), ip("8.8.4.4"), ip("8.8.8.8")),
            "ExternalDNSAdapterGuid": "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}",
            "ExternalDNSProtocolOption": RemoteObject(
                ("Microsoft.Exchange.Data.ProtocolOption",), {}, "UseTcpOnly"
            ),
            "InternalDNSAdapterEnabled": True,
            "InternalDNSServers": None,
            "InternalDNSAdapterGuid": ZERO_GUID,
            "InternalDNSProtocolOption": "Any",
        },
    )
    facts = transport.parse((obj,), host="ex01")
    assert facts.external.adapter_enabled is False
    assert facts.external.servers == ("8.8.8.8", "8.8.4.4")
    assert facts.external.adapter_guid == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert facts.external.protocol_option == "UseTcpOnly"
    assert facts.internal.adapter_enabled is True and facts.internal.servers == ()
    assert facts.internal.adapter_guid == ZERO_GUID


def test_transport_defaults_when_properties_are_missing() -> None:
    facts = transport.parse((RemoteObject(("x",), {"ExternalDNSServers": "10.0.0.10, 10.0.0.11"}),), host="h")
    assert facts.external.adapter_enabled is True
    assert facts.external.servers == ("10.0.0.10", "10.0.0.11")
    assert facts.internal.protocol_option == "Any"


def test_transport_without_object_is_unusable_output() -> None:
    with pytest.raises(UnusableOutputError) as caught:
        transport.parse((), host="ex01", cmdlet="Get-TransportServer")
    assert caught.value.cmdlet == "Get-TransportServer" and caught.value.exit_code == 7


def test_send_connectors_plain_objects() -> None:
    internet = RemoteObject(
        ("Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig",),
        {
            "Name": "Internet",
            "AddressSpaces": (RemoteObject(("Microsoft.Exchange.Data.AddressSpace",), {}, "SMTP:*;5"),),
            "SmartHosts": (),
            "DNSRoutingEnabled": True,
            "UseExternalDNSServersEnabled": "True",
            "SourceTransportServers": (
                RemoteObject(("Microsoft.Exchange.Data.Directory.ADObjectId",), {"Name": "EX01"}, "EX01"),
                "EX02",
            ),
            "Enabled": "False",
        },
    )
    partner = RemoteObject(
        ("x",),
        {
            "Identity": "Partner",
            "AddressSpaces": ("SMTP:*.fabrikam.com;1", "X400:c=US;1"),
            "SmartHostsString": "[203.0.113.10] relay.fabrikam.com",
            "DNSRoutingEnabled": "false",
            "FrontendProxyEnabled": "True",
        },
    )
    first, second = send_connectors.parse((internet, "not an object", partner))  # type: ignore[arg-type]
    assert first.frontend_proxy_enabled is False and second.frontend_proxy_enabled is True
    assert first.name == "Internet" and first.address_spaces == ("SMTP:*;5",) and first.cost == 5
    assert first.use_external_dns_servers_enabled is True and first.enabled is False
    assert first.source_transport_servers == ("EX01", "EX02")
    assert first.is_internet and first.covers("anything.example")
    assert second.name == "Partner" and second.dns_routing_enabled is False and second.enabled is True
    assert second.smart_hosts == ("[203.0.113.10]", "relay.fabrikam.com")
    assert second.domains == ("*.fabrikam.com",)
    assert second.covers("mail.fabrikam.com") and not second.covers("fabrikam.org")
    assert not second.is_internet
    (call,) = send_connectors.calls()
    assert call.cmdlet == "Get-SendConnector" and call.parameters == ()
