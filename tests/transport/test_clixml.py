"""The one CLIXML converter: real Export-Clixml captures, pypsrp output, WinRS streams.

psrpcore is the reference here (see the module docstring of agent/transport/clixml.py for why
it is not the converter itself): the reader must agree with psrpcore's reading of every real
capture and recorded PSRP message, and read back whatever psrpcore serializes.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import hashlib
import json
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psrpcore import PSRemotingCrypto
from psrpcore.types import (
    PSByteArray,
    PSChar,
    PSDateTime,
    PSDecimal,
    PSDuration,
    PSEnumBase,
    PSGuid,
    PSInt64,
    PSList,
    PSNoteProperty,
    PSObject,
    PSQueueBase,
    PSSecureString,
    PSType,
    PSVersion,
    deserialize,
    deserialize_clixml,
    serialize,
    serialize_clixml,
)
from pypsrp.complex_objects import GenericComplexObject, ObjectMeta
from pypsrp.serializer import Serializer

from agent.model.command import CmdletCall, Endpoint
from agent.model.remote import RemoteObject
from agent.transport import psrp, winrm
from agent.transport.clixml import (
    UNREADABLE_OUTPUT_ID,
    ClixmlError,
    decode_text,
    error_from_object,
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
    with contextlib.suppress(ClixmlError):
        parse_stream(text)
    with contextlib.suppress(ClixmlError):
        parse_stream(f"#< CLIXML\r\n<Objs {NS}>{text}</Objs>")


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


# -- the captures convert to what they always converted to -------------------------------------


def _canonical(value: Any) -> Any:
    """A RemoteObject value as JSON-able data that keeps every distinction the model makes."""
    if isinstance(value, RemoteObject):
        return {
            "T": list(value.type_names),
            "S": value.to_string,
            "P": {name: _canonical(v) for name, v in value.properties.items()},
        }
    if isinstance(value, tuple):
        return {"L": [_canonical(v) for v in value]}
    if isinstance(value, dict):
        return {"D": [[_canonical(k), _canonical(v)] for k, v in value.items()]}
    return value


# sha256 of the canonical JSON of each capture's conversion, as exfix's converter produced it
# before psrpcore was compared with it (commit 8dd01c4), with the top-level object count and
# the number of RemoteObjects in the graph.
PINNED = {
    "E16/Exchange/GetExchangeServer.xml":
        (1, 16, "e311c0004a20f413efb2236cbf2d28df97b8e888b54bb959cf414f292c5f2506"),
    "E16/OS/GetDnsClient.xml":
        (1, 9, "63595ac96ad092ec34dad618dfd1d597d49092c84fd312d0a6fb4d17aae9fd52"),
    "E16/OS/GetNetIPConfiguration.xml":
        (1, 48, "dafb29f28d25170354b62530036e87c58a929e8f70f61e0ce4b5948cf5ad61b8"),
    "E19/Exchange/GetSendConnector.xml":
        (1, 17, "53ad4f385f6d5201155cadc954728bf5c9330879e6808c260446b7ae5e959aff"),
    "E19/OS/GetDNSClient.xml":
        (1, 9, "85cf5e89983f1c47c5fe1a4d1f71882f6a8cd35be4d78c67f984d93349afc305"),
}  # fmt: skip


def _count(value: Any) -> int:
    if isinstance(value, RemoteObject):
        return 1 + sum(_count(v) for v in value.properties.values())
    if isinstance(value, tuple):
        return sum(_count(v) for v in value)
    if isinstance(value, dict):
        return sum(_count(v) for v in value.values())
    return 0


def test_captures_convert_to_the_pinned_values(fixtures_dir: Path, tmp_path: Path) -> None:
    real = fixtures_dir / "real-clixml"
    assert sorted(p.relative_to(real).as_posix() for p in real.rglob("*.xml")) == sorted(PINNED)
    for relative, (count, graph, digest) in PINNED.items():
        objects = read_clixml_file(real / relative)
        text = json.dumps(
            [_canonical(o) for o in objects], sort_keys=True, ensure_ascii=True, separators=(",", ":")
        )
        dump = tmp_path / (relative.replace("/", "_") + ".json")
        dump.write_text(text)
        assert (len(objects), sum(_count(o) for o in objects)) == (count, graph), relative
        assert hashlib.sha256(text.encode()).hexdigest() == digest, f"{relative}: see {dump}"


# -- psrpcore's reading of real data -----------------------------------------------------------

_CIPHER = PSRemotingCrypto()


def _from_psrpcore(value: Any, active: frozenset[int] = frozenset()) -> Any:
    """psrpcore's deserialized value in RemoteObject terms (the conventions of clixml.py)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, PSObject) and any(t.endswith("System.Enum") for t in value.PSObject.type_names):
        return value.PSObject.to_string
    if isinstance(value, PSChar):
        return chr(int(value))
    if isinstance(value, PSSecureString):
        return None
    if isinstance(value, (PSDateTime, PSDuration, PSGuid, PSVersion, PSDecimal, PSByteArray)):
        return serialize(value, _CIPHER).text or ""  # psrpcore writes it back as it was sent
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if id(value) in active:
        return None  # a cycle, as clixml.py breaks it
    inner = active | {id(value)}
    if isinstance(value, list):
        return tuple(_from_psrpcore(v, inner) for v in value)
    if isinstance(value, PSQueueBase):
        return tuple(_from_psrpcore(v, inner) for v in value.queue)
    if isinstance(value, dict):
        return {_from_psrpcore(k, inner): _from_psrpcore(v, inner) for k, v in value.items()}
    assert isinstance(value, PSObject), type(value)
    meta = value.PSObject
    properties = {p.name: _from_psrpcore(p.get_value(value), inner) for p in meta.extended_properties}
    properties.update((p.name, _from_psrpcore(p.get_value(value), inner)) for p in meta.adapted_properties)
    return RemoteObject(
        # psrpcore prefixes the type names it does not rehydrate; clixml.py keeps them as sent
        type_names=tuple(t.removeprefix("Deserialized.") for t in meta.type_names),
        properties=properties,
        to_string=meta.to_string,
    )


_PIPELINE_OUTPUT = 0x00041004
_ERROR_RECORD = 0x00041005


def _recorded_messages(fixtures_dir: Path) -> Iterator[tuple[str, int, str]]:
    """(recording, message type, CLIXML) of every PSRP message a real server sent in pypsrp's
    recordings: WSMan Receive streams, reassembled from their fragments (MS-PSRP 2.2.4)."""
    for path in sorted((fixtures_dir / "pypsrp-recordings").glob("test_psrp_*.yml")):
        pending: dict[int, bytes] = {}
        for step in yaml.safe_load(path.read_text())["messages"]:
            for stream in re.findall(r"<rsp:Stream[^>]*>([^<]+)</rsp:Stream>", step["response"]):
                raw = base64.b64decode(stream)
                while raw:
                    object_id, _, flags, length = struct.unpack(">QQBI", raw[:21])
                    pending[object_id] = pending.get(object_id, b"") + raw[21 : 21 + length]
                    raw = raw[21 + length :]
                    if flags & 0x2:  # the end fragment
                        message = pending.pop(object_id)
                        kind = struct.unpack("<I", message[4:8])[0]
                        yield path.name, kind, message[40:].decode("utf-8-sig")


def test_the_reader_agrees_with_psrpcore_on_every_capture(fixtures_dir: Path) -> None:
    for path in sorted((fixtures_dir / "real-clixml").rglob("*.xml")):
        text = path.read_bytes().decode("utf-8-sig")
        expected = tuple(_from_psrpcore(v) for v in deserialize_clixml(text, _CIPHER))
        assert read_clixml_file(path) == expected, path.name


def test_the_reader_agrees_with_psrpcore_on_recorded_psrp_output(fixtures_dir: Path) -> None:
    outputs = [xml for _, kind, xml in _recorded_messages(fixtures_dir) if kind == _PIPELINE_OUTPUT]
    assert len(outputs) >= 10
    for xml in outputs:
        want = _from_psrpcore(deserialize(ET.fromstring(xml), _CIPHER))
        (got,) = parse_clixml(xml)
        if isinstance(want, RemoteObject):
            assert got == want, xml[:200]
        else:  # a bare primitive is wrapped, its value as the ToString
            assert (got.to_string, got.properties) == (None if want is None else str(want), {}), xml[:200]


def test_a_wrapped_object_is_one_object(fixtures_dir: Path) -> None:
    """pypsrp's JEA recording: Get-Item WSMan:\\localhost\\Service\\AllowUnencrypted is a
    WSManConfigLeafElement wrapped in an <Obj> that adds the provider's PS* members; the old
    reader kept only the outer members at the top level (and only the inner ones below)."""
    (xml,) = [
        xml
        for name, kind, xml in _recorded_messages(fixtures_dir)
        if kind == _PIPELINE_OUTPUT and "jea" in name
    ]
    (item,) = parse_clixml(xml)
    assert item.is_a("Microsoft.WSMan.Management.WSManConfigLeafElement")
    assert (item.get("Name"), item.get("Value"), item.get("Type")) == (
        "AllowUnencrypted",
        "true",
        "System.String",
    )
    assert item.get("PSChildName") == "AllowUnencrypted" and item.get("PSIsContainer") is False
    assert item.get("PSDrive").get("Name") == "WSMan"
    # Below the top it is the same object.
    inner = xml.replace('<Obj RefId="0">', '<Obj N="Item" RefId="0">', 1)
    (holder,) = parse_clixml(f"<Obj RefId='90'><MS>{inner}</MS></Obj>")
    assert holder.get("Item") == item


def test_recorded_error_records(fixtures_dir: Path) -> None:
    records = {
        name: error_from_object(parse_clixml(xml)[0])
        for name, kind, xml in _recorded_messages(fixtures_dir)
        if kind == _ERROR_RECORD
    }
    jea = records["test_psrp_with_jea_configuration.yml"]
    assert jea.message == "Cannot find a provider with the name 'FileSystem'."
    assert jea.fully_qualified_error_id == "ProviderNotFound,Microsoft.PowerShell.Commands.GetItemCommand"
    assert (jea.category, jea.target) == ("ObjectNotFound", "FileSystem")
    written = records["test_psrp_stream_output_invocation.yml"]
    assert written.message == "error stream"
    assert written.fully_qualified_error_id == "Microsoft.PowerShell.Commands.WriteErrorException"
    assert written.category == "NotSpecified"


# -- what psrpcore serializes, the reader reads back -------------------------------------------


@PSType(["Exfix.Tests.Colour"], rehydrate=False)
class Colour(PSEnumBase):
    Red = 1
    Green = 2
    Blue = 3


_names = st.text(alphabet="abcdefghXYZ_019", min_size=1, max_size=6)
_plain_text = st.text(alphabet=st.characters(whitelist_categories=("L", "N", "Zs")), max_size=12)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1).map(PSInt64),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=20),  # control characters and astral planes are _xHHHH_ escaped
    st.sampled_from(list(Colour)),
)


def _objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    def build(
        types: list[str], adapted: dict[str, Any], extended: dict[str, Any], to_string: str | None
    ) -> PSObject:
        obj = PSObject()
        obj.PSObject.type_names = [*types, "System.Object"]
        for name, value in adapted.items():
            obj.PSObject.adapted_properties.append(PSNoteProperty(name, value))
        for name, value in extended.items():
            obj.PSObject.extended_properties.append(PSNoteProperty(name, value))
        if to_string is not None:
            obj.PSObject.to_string = to_string
        return obj

    return st.one_of(
        st.builds(
            build,
            # psrpcore writes a TNRef for a type name it wrote before, so a name has one chain
            st.from_regex(r"\A[A-Z][a-z]{1,5}(\.[A-Z][a-z]{1,5}){0,2}\Z").map(lambda t: [t, f"{t}Base"]),
            st.dictionaries(_names, children, max_size=3),
            st.dictionaries(_names, children, max_size=2),
            st.none() | _plain_text,
        ),
        st.lists(children, max_size=3).map(PSList),
    )


_values = st.recursive(_leaves, _objects, max_leaves=8)


def _expected(value: Any) -> Any:
    """What the reader must make of a value psrpcore serialized (the RemoteObject model)."""
    if isinstance(value, Colour):
        return value.name
    if isinstance(value, PSList):
        return tuple(_expected(v) for v in value)
    if isinstance(value, PSObject) and not isinstance(value, (int, float, str)):
        meta = value.PSObject
        properties = {p.name: _expected(p.get_value(value)) for p in meta.extended_properties}
        properties.update((p.name, _expected(p.get_value(value))) for p in meta.adapted_properties)
        # psrpcore writes no <ToString> for an empty one
        return RemoteObject(tuple(meta.type_names), properties, meta.to_string or None)
    if isinstance(value, (bool, type(None))):
        return value
    return int(value) if isinstance(value, int) else float(value) if isinstance(value, float) else value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_objects(_values), min_size=1, max_size=2))
def test_the_reader_reads_back_what_psrpcore_serializes(values: list[Any]) -> None:
    objects = parse_clixml(serialize_clixml(values, _CIPHER))
    expected = tuple(_expected(v) for v in values)
    # A collection at the top is wrapped as {"Value": items} (or no properties when empty).
    assert len(objects) == len(expected)
    for got, want in zip(objects, expected, strict=True):
        if isinstance(want, tuple):
            assert got.properties == ({"Value": want} if want else {})
        else:
            assert got == want


# -- hostile and broken input ------------------------------------------------------------------


def _bomb(levels: int) -> str:
    entities = '<!ENTITY a0 "xxxxxxxxxx">' + "".join(
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, levels + 1)
    )
    return f'<?xml version="1.0"?><!DOCTYPE Objs [{entities}]><Objs {NS}><S>&a{levels};</S></Objs>'


def test_a_dtd_is_refused_before_any_entity_expands() -> None:
    # Without the check, xml.etree turns this 363-byte document into a million characters.
    for text in (
        _bomb(5),
        _bomb(9),
        '<!DOCTYPE Objs [<!ENTITY e SYSTEM "file:///etc/passwd">]><Objs><S>&e;</S></Objs>',
    ):
        with pytest.raises(ClixmlError, match="DTD"):
            parse_clixml(text)
        with pytest.raises(ClixmlError):
            # parse_stream cuts the <Objs> out of the stream, so the DTD stays behind and the
            # entities are undefined: still an error, still nothing expanded.
            parse_stream("#< CLIXML\r\n" + text)


def test_very_deep_nesting_degrades_without_recursion() -> None:
    depth = 20_000
    deep = "<Obj RefId='0'>" + "".join(f"<Props><Obj N='c' RefId='{i}'>" for i in range(1, depth))
    deep += "</Obj></Props>" * (depth - 1) + "</Obj>"
    (top,) = parse_clixml(deep)
    level = top
    for _ in range(60):
        level = level.get("c")
    assert isinstance(level, RemoteObject)  # beyond the limit the rest is the element's text


def test_malformed_and_truncated_documents_are_clixml_errors(fixtures_dir: Path) -> None:
    text = (fixtures_dir / "real-clixml/E19/Exchange/GetSendConnector.xml").read_text(encoding="utf-8-sig")
    for broken in (
        text[: len(text) // 2],
        text.replace("</Props>", "", 1),
        "\x00" + text,
        "<Objs><Obj></Objs>",
    ):
        with pytest.raises(ClixmlError):
            parse_clixml(broken)


_GET_DNS_CLIENT = CmdletCall(endpoint=Endpoint.OS, cmdlet="Get-DnsClient")


def test_psrp_reports_an_unreadable_output_message_as_the_commands_error() -> None:
    good = '<Obj RefId="0"><TN RefId="0"><T>X</T></TN><MS><S N="A">1</S></MS></Obj>'
    objects, errors = psrp._read_output(
        "Get-DnsClient",
        [psrp._RawOutput(good), psrp._RawOutput(_bomb(5)), psrp._RawOutput("<Obj RefId='1'><MS>"), "plain"],
    )
    assert [o.get("A") or o.to_string for o in objects] == ["1", "plain"]
    assert [e.fully_qualified_error_id for e in errors] == [UNREADABLE_OUTPUT_ID] * 2
    assert errors[0].category == "ReadError" and "DTD" in errors[0].message
    assert errors[0].message.startswith("Get-DnsClient: ")


def test_winrs_reports_unreadable_streams_as_the_commands_error() -> None:
    result = winrm._result(_GET_DNS_CLIENT, ("#< CLIXML\r\n" + _bomb(5)).encode(), b"", 0)
    assert result.objects == () and [e.fully_qualified_error_id for e in result.errors] == [
        UNREADABLE_OUTPUT_ID
    ]
    stderr = f'#< CLIXML\r\n<Objs {NS}><S S="Error">half an error</Objs>'.encode()
    result = winrm._result(_GET_DNS_CLIENT, b"", stderr, 1)
    assert [e.fully_qualified_error_id for e in result.errors] == [UNREADABLE_OUTPUT_ID]


def test_pypsrp_never_parses_a_dtd_or_turns_broken_output_into_a_string() -> None:
    serializer = psrp._OutputSerializer()
    for text in (_bomb(5), "<S>unterminated", "not xml at all <"):
        raw = serializer.deserialize(text)
        assert isinstance(raw, psrp._RawOutput), text
        _, (error,) = psrp._read_output("Get-Queue", [raw])
        assert error.fully_qualified_error_id == UNREADABLE_OUTPUT_ID
    assert serializer.deserialize("<S>fine</S>") == "fine"  # pypsrp's ordinary path
    with pytest.raises(ClixmlError, match="DTD"):  # any other message: the session's HostError
        serializer.deserialize(_bomb(5), ObjectMeta("Obj", object=GenericComplexObject))


def test_odd_values_degrade_instead_of_costing_the_document() -> None:
    doc = f"""<Objs {NS}><Obj RefId="0"><TNRef RefId="7"/><Props>
      <I32 N="BadInt">twelve</I32><Db N="BadDouble">x</Db><C N="BadChar">-1</C>
      <Ref N="Dangling" RefId="99"/><S>no name</S><Unknown N="Future">text</Unknown>
      <B N="Flag">TRUE</B></Props></Obj></Objs>"""
    (obj,) = parse_clixml(doc)
    assert obj.type_names == ()
    assert obj.properties == {
        "BadInt": None, "BadDouble": None, "BadChar": None, "Dangling": None, "Future": "text", "Flag": True,
    }  # fmt: skip


def test_shared_references_are_not_copied() -> None:
    """Each level refers to the one below twice: 2**40 paths, one object per level."""
    levels = 40
    doc = '<Obj RefId="0"><MS><S N="Leaf">x</S></MS></Obj>'
    for i in range(1, levels):
        below = doc.replace("<Obj ", '<Obj N="A" ', 1)
        doc = f'<Obj RefId="{i}"><MS>{below}<Ref N="B" RefId="{i - 1}"/></MS></Obj>'
    (top,) = parse_clixml(doc)
    assert top.get("A") is top.get("B")


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_damaged_captures_are_read_or_refused(fixtures_dir: Path, data: st.DataObject) -> None:
    text = (fixtures_dir / "real-clixml/E19/Exchange/GetSendConnector.xml").read_text(encoding="utf-8-sig")
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start, min(len(text), start + 200)))
    insert = data.draw(st.sampled_from(["", "<", ">", "&", "<Obj>", '"', "</Props>", "<Ref RefId='9'/>"]))
    damaged = text[:start] + insert + text[end:]
    with contextlib.suppress(ClixmlError):
        parse_clixml(damaged)
    with contextlib.suppress(ClixmlError):
        parse_stream("#< CLIXML\r\n" + damaged)
