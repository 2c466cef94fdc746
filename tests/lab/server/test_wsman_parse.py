"""The lab's envelope reader by shape (wsman.parse_request) against ElementTree's (parse_tree).

The envelopes are the real ones: what exfix's two PSRP clients (psrpcore and pypsrp) send
during a scan of two lab hosts, recorded by the server. Each is read by recipe (after the
first of its shape) and by ElementTree, and so is each of them changed in the ways XML allows
and the recipe must not take (entities, CDATA, comments, line ends, other quotes, non-ASCII
text, bytes XML forbids).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli import main
from mock_remoting.server import wsman
from mock_remoting.server.core import Exchange

pytestmark = pytest.mark.lab

_FIELDS = (
    "action_uri", "action", "message_id", "resource_uri", "shell_id",
    "operation_timeout", "max_envelope_size", "options", "size",
)  # fmt: skip


def _outcome(read: Callable[[bytes], wsman.Request], data: bytes) -> Any:
    try:
        request = read(data)
    except wsman.WSManFault as fault:
        return ("fault", fault.subcode, fault.reason)
    body = None
    if request.body is not None:
        body = (ET.tostring(request.body), request.body.tail)
    return (*(getattr(request, name) for name in _FIELDS), body)


@pytest.fixture(scope="module")
def envelopes(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    from mock_remoting.lab import Lab

    seen: list[bytes] = []
    with Lab("mixed-fleet", hosts=2) as lab:
        assert lab.server is not None

        def record(exchange: Exchange) -> None:
            seen.append(exchange.request)

        lab.server.recorder = record
        inventory = tmp_path_factory.mktemp("parse") / "inventory.yaml"
        lab.write_inventory(inventory)
        for client in ("psrpcore", "pypsrp"):
            result = CliRunner().invoke(
                main, ["scan", "-i", str(inventory), "--format", "json"], env={"EXFIX_PSRP_CLIENT": client}
            )
            assert result.exit_code in (0, 2), result.output
    actions = {request.action for request in map(wsman.parse_tree, seen)}
    assert {"Create", "Command", "Receive", "Delete"} <= actions
    return seen


def test_every_envelope_of_a_scan_reads_as_elementtree_reads_it(envelopes: list[bytes]) -> None:
    wsman._RECIPES.clear()
    for data in envelopes * 2:
        assert _outcome(wsman.parse_request, data) == _outcome(wsman.parse_tree, data)
    assert wsman._RECIPES and all(recipe is not None for recipe in wsman._RECIPES.values())
    assert len(wsman._RECIPES) < len(envelopes) / 5  # a few shapes serve them all


def _changes(data: bytes) -> list[bytes]:
    """``data`` changed in ways that keep it well-formed or (last ones) make it not."""
    text = data.decode("ascii")
    message_id = text.split("MessageID>", 1)[1].split("<", 1)[0]
    changed = [
        text.replace(message_id, f" {message_id} "),  # whitespace the header walk strips
        text.replace(message_id, f"{message_id}&amp;x"),
        text.replace(message_id, f"<![CDATA[{message_id}]]>"),
        text.replace(message_id, f"{message_id}\r\nnext"),
        text.replace(message_id, f"{message_id}\tx"),
        text.replace(message_id, f"{message_id}>x"),
        text.replace(message_id, f"{message_id}\u00e9"),
        text.replace("<s:Header>", "<s:Header><!-- a comment -->", 1),
        text.replace("<s:Header>", "<s:Header><?pi x?>", 1),
        '<?xml version="1.0" encoding="utf-8"?>' + text,
        text.replace('Name="', "Name='", 1).replace('" ', "' ", 1) if 'Name="' in text else text,
        text.replace(f"<wsa:MessageID>{message_id}</wsa:MessageID>", "<wsa:MessageID/>"),
        text.replace("</wsa:MessageID>", "</wsa:MessageID><wsa:MessageID>b</wsa:MessageID>", 1),
        text.replace(message_id, f"{message_id}]]>x"),
        text.replace(message_id, f"{message_id}\x01"),
        text.replace(message_id, f"{message_id}<"),
        text.replace("</s:Header>", "", 1),
        text.replace("<s:Body>", "<s:Body ShellId=\"a>b\">", 1),
        text.replace("<s:Body>", "<s:Body xId=\"\">", 1),
    ]
    out = [item.encode("utf-8") for item in changed]
    out.append(data.replace(message_id.encode(), message_id.encode() + b"\xff"))  # not UTF-8
    out.append(data[: len(data) // 2])
    return out


def test_envelopes_changed_in_every_way_xml_allows_read_as_elementtree_reads_them(
    envelopes: list[bytes],
) -> None:
    wsman._RECIPES.clear()
    kinds = {}
    for data in envelopes:
        kinds.setdefault(wsman.parse_tree(data).action, data)
    for data in kinds.values():
        for changed in _changes(data):
            for _ in range(2):  # the second read of a shape goes by its recipe, if it has one
                assert _outcome(wsman.parse_request, changed) == _outcome(wsman.parse_tree, changed), changed
            assert _outcome(wsman.parse_request, data) == _outcome(wsman.parse_tree, data)


def test_pretty_printed_and_prefixed_envelopes_are_read_alike() -> None:
    # Another client's spelling: other prefixes, an XML declaration, indentation.
    text = (
        '<?xml version="1.0"?>\n<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">\n'
        "  <env:Header>\n    <a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive</a:Action>\n"
        "    <a:MessageID>uuid:1</a:MessageID>\n    <w:OperationTimeout>PT5S</w:OperationTimeout>\n"
        '    <w:SelectorSet><w:Selector Name="ShellId">AB</w:Selector></w:SelectorSet>\n  </env:Header>\n'
        '  <env:Body><rsp:Receive><rsp:DesiredStream CommandId="C1">stdout</rsp:DesiredStream>'
        "</rsp:Receive></env:Body>\n</env:Envelope>\n"
    )
    flat = text.replace("\n", "").replace("  ", "").replace('<?xml version="1.0"?>', "")
    for data in (text.encode(), flat.encode()):
        for _ in range(2):
            assert _outcome(wsman.parse_request, data) == _outcome(wsman.parse_tree, data)
        request = wsman.parse_request(data)
        assert (request.action, request.shell_id, request.operation_timeout) == ("Receive", "AB", 5.0)
        assert request.body is not None and request.body[0].get("CommandId") == "C1"


def test_response_message_ids_are_random_version_4_uuids() -> None:
    import uuid

    ids = [wsman._message_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        value = uuid.UUID(text)
        assert (value.version, value.variant, str(value).upper()) == (4, uuid.RFC_4122, text)
