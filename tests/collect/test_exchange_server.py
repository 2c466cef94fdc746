from __future__ import annotations

import pytest

from agent.collect import exchange_server
from agent.errors import UnsupportedHostError, UnusableOutputError
from agent.model.command import Endpoint
from agent.model.facts import TransportNoun
from agent.model.remote import RemoteObject

SERVER_TYPES = (
    "Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer",
    "Deserialized.System.Object",
)


def server(version: object, **props: object) -> RemoteObject:
    base: dict[str, object] = {
        "Name": "EX01",
        "Fqdn": "ex01.contoso.local",
        "Domain": "contoso.local",
        "Site": RemoteObject(
            ("Microsoft.Exchange.Data.Directory.ADObjectId",),
            {"Name": "Default-First-Site-Name"},
            "contoso.local/Configuration/Sites/Default-First-Site-Name",
        ),
        "ServerRole": "Mailbox, ClientAccess",
        "AdminDisplayVersion": version,
    }
    base.update(props)
    return RemoteObject(SERVER_TYPES, base, "EX01")


def test_calls() -> None:
    (call,) = exchange_server.calls("ex01.contoso.local")
    assert call.endpoint is Endpoint.EXCHANGE and call.cmdlet == "Get-ExchangeServer"
    assert call.param("Identity") == "ex01.contoso.local"


def test_server_version_object() -> None:
    version = RemoteObject(
        ("Microsoft.Exchange.Data.ServerVersion",),
        {"Major": 15, "Minor": 2, "Build": 1118, "Revision": 7},
        "Version 15.2 (Build 1118.7)",
    )
    facts = exchange_server.parse((server(version),), host="ex01")
    assert (facts.version, facts.major, facts.transport_noun) == (
        "15.2.1118.7",
        15,
        TransportNoun.TRANSPORT_SERVICE,
    )
    assert facts.admin_display_version == "Version 15.2 (Build 1118.7)"
    assert facts.ad_site == "Default-First-Site-Name"
    assert facts.roles == ("Mailbox", "ClientAccess")
    assert (facts.name, facts.fqdn, facts.domain) == ("EX01", "ex01.contoso.local", "contoso.local")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Version 14.3 (Build 123.4)", (14, 3, 123, 4)),
        ("version 15.1 (build 2375.7)", (15, 1, 2375, 7)),
        ("15.0.1497.2", (15, 0, 1497, 2)),
    ],
)
def test_version_strings(text: str, expected: tuple[int, int, int, int]) -> None:
    assert exchange_server.parse_version(text) == expected


def test_exchange_2010_uses_transport_server_nouns() -> None:
    facts = exchange_server.parse((server("Version 14.3 (Build 123.4)"),), host="ex14")
    assert facts.transport_noun is TransportNoun.TRANSPORT_SERVER


def test_exchange_2007_is_unsupported_with_a_clear_reason() -> None:
    with pytest.raises(UnsupportedHostError) as caught:
        exchange_server.parse((server("Version 8.3 (Build 83.6)"),), host="ex2007")
    assert caught.value.status == "unsupported"
    assert "no remote PowerShell" in caught.value.reason and "Exchange 2007" in caught.value.reason


def test_no_object_or_unreadable_version_is_unusable_output() -> None:
    # The host answered: exit 7 (command-failed), not 3 (unreachable).
    with pytest.raises(UnusableOutputError, match="no server object") as caught:
        exchange_server.parse((), host="ex01")
    assert (caught.value.status, caught.value.exit_code) == ("command-failed", 7)
    with pytest.raises(UnusableOutputError, match="cannot read the Exchange version"):
        exchange_server.parse((server("banana"),), host="ex01")


def test_roles_from_flags_and_site_from_text_and_domain_from_fqdn() -> None:
    obj = server(
        "15.2.1.0",
        ServerRole=None,
        IsMailboxServer="True",
        IsHubTransportServer=True,
        IsEdgeServer=False,
        Site="contoso.local/Configuration/Sites/Branch",
        Domain=None,
    )
    facts = exchange_server.parse((obj,), host="ex01")
    assert facts.roles == ("Mailbox", "HubTransport")
    assert facts.ad_site == "Branch"
    assert facts.domain == "contoso.local"


def test_identity_picks_the_matching_server() -> None:
    other = server("15.2.1.0", Name="EX02", Fqdn="ex02.contoso.local")
    facts = exchange_server.parse((other, server("15.2.1.0")), host="h", identity="ex01.contoso.local")
    assert facts.name == "EX01"
