"""The one CLIXML converter: real Export-Clixml captures, pypsrp output, WinRS streams."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypsrp.serializer import Serializer

from agent.model.remote import RemoteObject
from agent.transport.clixml import (
    ClixmlError,
    decode_text,
    error_from_text,
    from_pypsrp,
    parse_clixml,
    parse_stream,
    read_clixml_file,
)

NS = 'xmlns="http://schemas.microsoft.com/powershell/2004/04"'


def _captures(fixtures_dir: Path) -> list[Path]:
    found = sorted((fixtures_dir / "real-clixml").rglob("*.xml"))
    assert found, "no captures found"
    return found


def _walk(value: object) -> int:
    """Count RemoteObjects reachable from a value, checking every value has an allowed type."""
    if isinstance(value, RemoteObject):
        assert all(isinstance(t, str) for t in value.type_names)
        return 1 + sum(_walk(v) for v in value.properties.values())
    if isinstance(value, tuple):
        return sum(_walk(v) for v in value)
    if isinstance(value, dict):
        return sum(_walk(v) for v in value.values())
    assert value is None or isinstance(value, (str, int, float, bool)), type(value)
    return 0


def test_every_obj_in_every_capture_converts(fixtures_dir: Path) -> None:
    for path in _captures(fixtures_dir):
        objects = read_clixml_file(path)
        text = path.read_text(encoding="utf-8-sig")
        root = ET.fromstring(text)
        top = [child for child in root if child.tag.endswith("}Obj")]
        assert len(objects) == len(top), path.name
        converted = sum(_walk(obj) for obj in objects)
        # Every <Obj> becomes a RemoteObject, a tuple (collections) or a string (enums and
        # wrapped primitives); none is lost as raw XML.
        assert converted >= len(top)
        for obj in objects:
            assert not any(isinstance(v, str) and v.lstrip().startswith("<") for v in obj.properties.values())


def test_exchange_server_capture(fixtures_dir: Path) -> None:
    (server,) = read_clixml_file(fixtures_dir / "real-clixml/E16/Exchange/GetExchangeServer.xml")
    assert server.is_a("Microsoft.Exchange.Data.Directory.Management.ExchangeServer")
    assert server.is_a("Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer")
    assert server.get("Name") == "SOLO-E16A"
    assert server.get("fqdn") == "Solo-E16A.Solo.local"
    assert server.get("Edition") == "StandardEvaluation"  # an enum, as its string
    assert server.get("ServerRole") == "Mailbox"
    assert server.get("IsE15OrLater") is True
    version = server.get("AdminDisplayVersion")
    assert isinstance(version, RemoteObject) and version.to_string == "Version 15.1 (Build 2375.7)"
    assert version.get("Major") == 15
    # MultiValuedProperty`1 (unknown to pypsrp): a tuple, not raw XML.
    assert server.get("ObjectClass") == ("top", "server", "msExchExchangeServer")
    addresses = server.get("NetworkAddress")
    assert isinstance(addresses, tuple) and addresses[0].get("ProtocolType") == "ncacn_vns_spp"


def test_dns_client_captures(fixtures_dir: Path) -> None:
    for relative in ("E16/OS/GetDnsClient.xml", "E19/OS/GetDNSClient.xml"):
        (client,) = read_clixml_file(fixtures_dir / "real-clixml" / relative)
        assert client.is_a(
            "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_DNSClient"
        )
        assert client.get("InterfaceAlias") == "Ethernet"
        assert isinstance(client.get("InterfaceIndex"), int)
        assert client.get("RegisterThisConnectionsAddress") is True
        assert client.get("ConnectionSpecificSuffixSearchList") == ()


def test_net_ip_configuration_capture(fixtures_dir: Path) -> None:
    (config,) = read_clixml_file(fixtures_dir / "real-clixml/E16/OS/GetNetIPConfiguration.xml")
    servers = config.get("DNSServer")
    assert isinstance(servers, tuple) and servers
    families = {s.get("AddressFamily"): s.get("ServerAddresses") for s in servers}
    assert families[2] == ("192.168.5.10",)  # numeric AddressFamily: 2 = IPv4
    (address,) = config.get("IPv4Address")
    assert address.get("IPAddress") == "192.168.5.11"
    gateway = config.get("IPv4DefaultGateway")
    assert isinstance(gateway, tuple) and gateway[0].get("NextHop")


def test_send_connector_capture(fixtures_dir: Path) -> None:
    (connector,) = read_clixml_file(fixtures_dir / "real-clixml/E19/Exchange/GetSendConnector.xml")
    assert connector.get("Name") == "Mail to O365"
    assert connector.get("DNSRoutingEnabled") is False
    spaces = connector.get("AddressSpaces")
    assert isinstance(spaces, tuple) and spaces and all(isinstance(s, RemoteObject) for s in spaces)
    assert all(s.to_string for s in spaces)
    hosts = connector.get("SmartHosts")
    assert isinstance(hosts, tuple) and hosts[0].to_string


def test_pypsrp_objects_go_through_the_same_reader(fixtures_dir: Path) -> None:
    """A pypsrp-deserialized output message converts exactly like the XML read directly."""
    path = fixtures_dir / "real-clixml/E16/Exchange/GetExchangeServer.xml"
    root = ET.fromstring(path.read_text(encoding="utf-8-sig"))
    for node in root.iter():
        node.tag = node.tag.split("}", 1)[-1]
    message = ET.tostring(root[0], encoding="unicode")  # one PSRP PIPELINE_OUTPUT message
    value = Serializer().deserialize(message)
    assert from_pypsrp(value) == read_clixml_file(path)


def test_pypsrp_primitives_are_wrapped() -> None:
    (text,) = from_pypsrp("hello")
    assert text.is_a("System.String") and text.to_string == "hello"
    (number,) = from_pypsrp(5)
    assert number.is_a("System.Int32") and number.to_string == "5"
    assert from_pypsrp(None) == ()
    assert [o.to_string for o in from_pypsrp(["a", "b"])] == ["a", "b"]


def test_refs_tn_refs_and_escapes() -> None:
    doc = f"""<Objs {NS}>
      <Obj RefId="0"><TN RefId="0"><T>Deserialized.Thing</T><T>System.Object</T></TN>
        <ToString>line_x000A_two</ToString>
        <Props><S N="Name">a_x0009_b</S>
        <Obj N="Child" RefId="1"><TNRef RefId="0"/><Props><I32 N="N">1</I32></Props></Obj>
        <Ref N="Again" RefId="1"/><G N="Id">0d6b7e0c-0c52-4e8b-9f45-1ed2a16d8b5c</G><Nil N="Empty"/>
        <Obj N="Map" RefId="2"><TN RefId="1"><T>System.Collections.Hashtable</T><T>System.Object</T></TN>
          <DCT><En><S N="Key">k</S><I32 N="Value">7</I32></En></DCT></Obj></Props>
        <MS><S N="Name">extended loses</S><S N="Note">x</S></MS></Obj>
      <S>bare</S>
    </Objs>"""
    thing, bare = parse_clixml(doc)
    assert thing.type_names == ("Deserialized.Thing", "System.Object") and thing.is_a("Thing")
    assert thing.to_string == "line\ntwo"
    assert thing.get("Name") == "a\tb"  # adapted wins over extended
    assert thing.get("Note") == "x"
    child = thing.get("Child")
    assert child.is_a("Thing") and child.get("N") == 1 and thing.get("Again") == child
    assert thing.get("Id") == "0d6b7e0c-0c52-4e8b-9f45-1ed2a16d8b5c"
    assert thing.get("Empty") is None
    assert thing.get("Map") == {"k": 7}
    assert bare.to_string == "bare" and bare.is_a("System.String")


def test_surrogate_pairs_and_unknown_escapes() -> None:
    assert decode_text("_xD83D__xDCEC_") == "📬"
    assert decode_text("no escapes") == "no escapes"
    assert decode_text("_x004") == "_x004"


def test_not_xml_is_a_clear_error() -> None:
    with pytest.raises(ClixmlError):
        parse_clixml("this is not <xml")


def test_cycles_and_deep_nesting_do_not_crash() -> None:
    cyclic = f'<Objs {NS}><Obj RefId="0"><Props><Ref N="Self" RefId="0"/></Props></Obj></Objs>'
    (obj,) = parse_clixml(cyclic)
    assert obj.get("Self") is None
    deep = "<Obj RefId='0'>" + "".join(f"<Props><Obj N='c' RefId='{i}'>" for i in range(1, 200))
    deep += "".join("</Obj></Props>" for _ in range(1, 200)) + "</Obj>"
    (top,) = parse_clixml(deep)
    assert isinstance(top, RemoteObject)


@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    with contextlib.suppress(ClixmlError):
        parse_clixml(text)
    parse_stream(text)


def test_winrs_streams() -> None:
    stdout = f"""#< CLIXML\r\n<Objs Version="1.1.0.1" {NS}>
        <Obj RefId="0"><TN RefId="0"><T>X</T></TN><MS><S N="A">1</S></MS></Obj>
        <S S="warning">careful</S><Obj S="progress" RefId="1"><MS/></Obj></Objs>"""
    stderr = (
        f'#< CLIXML\r\n<Objs Version="1.1.0.1" {NS}>'
        '<S S="Error">Get-DnsClient : No MSFT_DNSClient objects found_x000D__x000A_</S>'
        '<S S="Error">    + CategoryInfo          : ObjectNotFound: (Eth9:String) [Get-DnsClient], '
        "CimJobException_x000D__x000A_</S>"
        '<S S="Error">    + FullyQualifiedErrorId : CmdletizationQuery_NotFound,Get-DnsClient'
        "_x000D__x000A_</S>"
        '<S S="Error">second error_x000D__x000A_</S>'
        '<S S="Error">    + FullyQualifiedErrorId : Second_x000D__x000A_</S>'
        "</Objs>"
    )
    objects, errors, warnings = parse_stream(stdout)
    assert [o.get("A") for o in objects] == ["1"] and errors == () and warnings == ("careful",)
    objects, errors, _ = parse_stream(stderr)
    assert objects == ()
    first, second = errors
    assert first.message == "No MSFT_DNSClient objects found"
    assert first.fully_qualified_error_id == "CmdletizationQuery_NotFound,Get-DnsClient"
    assert first.category == "ObjectNotFound" and first.target == "Eth9"
    assert second.fully_qualified_error_id == "Second" and second.message == "second error"


def test_error_records_as_objects_on_stderr() -> None:
    stderr = f"""<Objs {NS}><Obj S="error" RefId="0">
      <TN RefId="0"><T>System.Management.Automation.ErrorRecord</T></TN><ToString>boom</ToString>
      <MS><Obj N="Exception" RefId="1"><Props><S N="Message">the real message</S></Props></Obj>
      <S N="FullyQualifiedErrorId">Boom,Get-Thing</S><I32 N="ErrorCategory_Category">13</I32>
      <S N="ErrorCategory_TargetName">tgt</S></MS></Obj></Objs>"""
    _, (error,), _ = parse_stream(stderr)
    assert error.message == "the real message"
    assert error.fully_qualified_error_id == "Boom,Get-Thing"
    assert error.category == "ObjectNotFound"
    assert error.target == "tgt"


def test_plain_error_text() -> None:
    error = error_from_text("something broke")
    assert error.message == "something broke" and error.fully_qualified_error_id is None
    assert error.category == "NotSpecified"
