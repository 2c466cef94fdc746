"""WS-Management envelopes: parse a request, build responses and faults.

Responses are built as text (not ElementTree) because they are small and fixed in shape, and
building them is on every request's path. Every response echoes the request's MessageID in
``RelatesTo``: pypsrp refuses a response whose RelatesTo does not match (wsman.py ``invoke``).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "pwsh": "http://schemas.microsoft.com/powershell",
}

TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTION_URIS = {
    TRANSFER + "Create": "Create",
    TRANSFER + "Delete": "Delete",
    SHELL + "Command": "Command",
    SHELL + "Send": "Send",
    SHELL + "Receive": "Receive",
    SHELL + "Signal": "Signal",
}
RESPONSE_ACTIONS = {
    "Create": TRANSFER + "CreateResponse",
    "Delete": TRANSFER + "DeleteResponse",
    "Command": SHELL + "CommandResponse",
    "Send": SHELL + "SendResponse",
    "Receive": SHELL + "ReceiveResponse",
    "Signal": SHELL + "SignalResponse",
}
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
COMMAND_STATE = SHELL + "CommandState/"

# The server refuses requests larger than its own MaxEnvelopeSizekb (500 KiB on Windows 2012
# and later, see pypsrp wsman.py's comment on update_max_payload_size).
SERVER_MAX_ENVELOPE = 512000
DEFAULT_CLIENT_MAX_ENVELOPE = 153600

_ENVELOPE_OPEN = (
    '<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" '
    'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">'
)
_ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
_DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


class WSManFault(Exception):
    """A SOAP fault to send back. ``code`` is the WSManFault Code (a Windows error number)."""

    def __init__(self, code: int | None, subcode: str, reason: str, *, sender: bool = False) -> None:
        super().__init__(reason)
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.sender = sender


# The faults a Windows WinRM service returns, with its own wording.
def operation_timeout() -> WSManFault:
    return WSManFault(
        2150858793,
        "w:TimedOut",
        "The WS-Management service cannot complete the operation within the time specified in "
        "OperationTimeout.",
    )


def unknown_shell(shell_id: str) -> WSManFault:
    return WSManFault(
        2150858843,
        "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
        "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
        "exists on the server. Provide the correct ShellId or create a new shell and retry the operation.",
        sender=True,
    )


def unknown_resource(resource_uri: str) -> WSManFault:
    # pypsrp issue #22 / pywinrm issue #273 show this fault for Microsoft.Exchange asked at /wsman.
    return WSManFault(
        2150858811,
        "a:DestinationUnreachable",
        f"The WS-Management service cannot process the request. The resource URI ({resource_uri}) was not "
        "found in the WS-Management catalog. The catalog contains the metadata that describes resources, or "
        "logical endpoints.",
        sender=True,
    )


def quota_exceeded(limit: int) -> WSManFault:
    # MS-WSMV 3.1.4.5.2.1 wsman:QuotaLimit; code 2150859173 is what Windows sends for MaxShellsPerUser.
    return WSManFault(
        2150859173,
        "w:QuotaLimit",
        f"The WS-Management service cannot process the request. This user is allowed a maximum number of "
        f"{limit} concurrent shells, which has been exceeded. Close existing shells or raise the quota for "
        "this user.",
    )


def operation_aborted() -> WSManFault:
    return WSManFault(
        995,
        "w:InternalError",
        "The I/O operation has been aborted because of either a thread exit or an application request.",
    )


def envelope_too_large(limit: int) -> WSManFault:
    # HRESULT 0x80338111: what a WinRM client reports when the service refused a request larger
    # than the service's MaxEnvelopeSizekb (seen in SharePointDsc issue #670).
    return WSManFault(
        2150859025,
        "w:EncodingLimit",
        f"The WS-Management service cannot process the request because the request size exceeded the "
        f"configured MaxEnvelopeSize quota ({limit} bytes).",
        sender=True,
    )


def action_not_supported(action: str) -> WSManFault:
    return WSManFault(
        None,
        "a:ActionNotSupported",
        f"The WS-Management service cannot process the request. The action {action} is not supported by the "
        "exfix lab.",
        sender=True,
    )


def invalid_request(problem: str) -> WSManFault:
    return WSManFault(
        None, "w:SchemaValidationError", f"The SOAP XML in the message is not valid: {problem}", sender=True
    )


_DURATIONS: dict[str, float | None] = {}  # every request has one; clients send a few values


def parse_duration(text: str | None, default: float) -> float:
    """An xs:duration such as ``PT20S`` or ``PT0.500S`` in seconds; ``default`` when absent/odd."""
    if not text:
        return default
    if text in _DURATIONS:
        seconds = _DURATIONS[text]
    else:
        seconds = _duration(text)
        if len(_DURATIONS) < 256:
            _DURATIONS[text] = seconds
    return default if seconds is None else seconds


def _duration(text: str) -> float | None:
    match = _DURATION.match(text.strip())
    if not match:
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


@dataclass(slots=True)
class Request:
    """The parts of a WSMan request the server uses."""

    action_uri: str
    action: str | None  # "Create", ... or None for an action the lab does not serve
    message_id: str
    resource_uri: str
    shell_id: str | None
    operation_timeout: float
    max_envelope_size: int
    options: dict[str, str]
    body: ElementTree.Element | None
    size: int = 0
    raw: bytes = field(default=b"", repr=False)

    def require_body(self, missing: str) -> ElementTree.Element:
        """The body, or the InvalidRequest fault a request without one gets."""
        if self.body is None:
            raise invalid_request(missing)
        return self.body

    def signal(self) -> tuple[str | None, str]:
        """A Signal's CommandId and its rsp:Code, lower-cased ("" when absent)."""
        body = self.body
        if body is None:
            return None, ""
        code_el = child(body, "rsp", "Code")
        return body.get("CommandId"), (code_el.text or "").strip().lower() if code_el is not None else ""


def _tag(prefix: str, name: str) -> str:
    return "{" + NS[prefix] + "}" + name


_S_HEADER, _S_BODY = _tag("s", "Header"), _tag("s", "Body")
_OPTION_SET, _OPTION = _tag("wsman", "OptionSet"), _tag("wsman", "Option")
_SELECTOR_SET, _SELECTOR = _tag("wsman", "SelectorSet"), _tag("wsman", "Selector")
_ACTION, _MESSAGE_ID = _tag("wsa", "Action"), _tag("wsa", "MessageID")
_MAX_ENVELOPE, _RESOURCE_URI = _tag("wsman", "MaxEnvelopeSize"), _tag("wsman", "ResourceURI")
_OPERATION_TIMEOUT = _tag("wsman", "OperationTimeout")


def child(element: ElementTree.Element, prefix: str, name: str) -> ElementTree.Element | None:
    """``element.find("prefix:name", NS)`` for a direct child, without ElementPath."""
    tag = _tag(prefix, name)
    for item in element:
        if item.tag == tag:
            return item
    return None


def children(element: ElementTree.Element, prefix: str, name: str) -> list[ElementTree.Element]:
    """``element.findall("prefix:name", NS)`` for direct children, without ElementPath."""
    tag = _tag(prefix, name)
    return [item for item in element if item.tag == tag]


def parse_request(data: bytes) -> Request:
    """Parse a SOAP envelope. Raises WSManFault for XML that is not a WSMan request.

    Most envelopes are read by the recipe of their shape (:class:`_Recipe`); the others, and
    the first of each shape, by ElementTree (:func:`parse_tree`), and the two agree on every
    envelope (tests/lab/server/test_wsman_parse.py)."""
    if data.isascii() and len(data.translate(None, _UNSAFE)) == len(data):
        parts = _TEXT.split(data)
        pieces = _IDS.split(b"\0".join(parts[0::2]))
        shape = b'Id=""'.join(pieces[0::3])
        recipe = _RECIPES.get(shape, _UNSEEN)
        if recipe is _UNSEEN:
            # Comments, CDATA, a DOCTYPE and processing instructions are markup, so in the shape.
            no_recipe = b"<!" in shape or b"<?" in shape
            try:
                recipe = None if no_recipe else _Recipe.of(parts, (len(pieces) - 1) // 3)
            except Exception:  # whatever the marked copy makes ElementTree do: no recipe
                recipe = None
            if len(_RECIPES) < _MAX_RECIPES:
                _RECIPES[shape] = recipe
        if recipe is not None:
            assert isinstance(recipe, _Recipe)
            return recipe.fill(parts, pieces, len(data))
    return parse_tree(data)


def parse_tree(data: bytes) -> Request:
    """:func:`parse_request` by ElementTree.

    The header is read in one pass over its children (the first element of each name, as
    ``find`` would return it): ElementPath's ``find`` with a namespace map sorts the map and
    walks a generator for every call, which was half the cost of this function."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise invalid_request(str(exc)) from None
    return _request(*_read(root), size=len(data))


# What the header holds: the texts of the first element of each of these names.
_FIELDS = (_ACTION, _MESSAGE_ID, _RESOURCE_URI, _OPERATION_TIMEOUT, _MAX_ENVELOPE)


def _read(
    root: ElementTree.Element,
) -> tuple[tuple[str, ...], list[tuple[str, str]], str | None, ElementTree.Element | None]:
    """The header's texts (of :data:`_FIELDS`, stripped, "" when absent), its options (name,
    stripped text) in order, the ShellId selector (stripped) and the body's first element."""
    header = body = None
    for child in root:
        if child.tag == _S_HEADER and header is None:
            header = child
        elif child.tag == _S_BODY and body is None:
            body = child
    if header is None:
        raise invalid_request("no s:Header")
    first: dict[str, ElementTree.Element] = {}
    options: list[tuple[str, str]] = []
    shell_id = None
    for element in header:
        tag = element.tag
        if tag == _OPTION_SET:
            for option in element:
                if option.tag == _OPTION:
                    options.append((option.get("Name", ""), (option.text or "").strip()))
        elif tag == _SELECTOR_SET:
            for selector in element:
                if selector.tag == _SELECTOR and selector.get("Name") == "ShellId":
                    shell_id = (selector.text or "").strip()
        if tag not in first:
            first[tag] = element
    texts = []
    for tag in _FIELDS:
        found = first.get(tag)
        texts.append((found.text or "").strip() if found is not None else "")
    return tuple(texts), options, shell_id, body[0] if body is not None and len(body) else None


def _request(
    texts: tuple[str, ...] | list[str],
    options: list[tuple[str, str]],
    shell_id: str | None,
    body: ElementTree.Element | None,
    size: int,
) -> Request:
    action_uri, message_id, resource_uri, timeout, max_envelope = texts
    try:
        max_env = int(max_envelope or DEFAULT_CLIENT_MAX_ENVELOPE)
    except ValueError:
        max_env = DEFAULT_CLIENT_MAX_ENVELOPE
    return Request(
        action_uri=action_uri,
        action=ACTION_URIS.get(action_uri),
        message_id=message_id,
        resource_uri=resource_uri,
        shell_id=shell_id,
        operation_timeout=parse_duration(timeout, 60.0),
        max_envelope_size=max(max_env, 8192),
        options=dict(options),
        body=body,
        size=size,
    )


# -- envelopes by shape ------------------------------------------------------------------------
#
# A client sends the same few envelopes over and over with other values: a 200-host scan's
# 12,000 requests have six shapes (the markup without the element texts and without the values
# of attributes whose names end in Id: CommandId, ShellId). ElementTree's parse was 12 % of the
# lab's CPU (py-spy), 80 us an envelope; splitting one at its texts takes 5 us. The first
# envelope of a shape is read by ElementTree twice, once as it is and once with every text and
# id replaced by a marker: where the markers land (whole header texts, whole body texts and
# tails, whole attribute values) is the recipe, which later envelopes of the shape fill with
# their own values. What ElementTree does to text beyond copying it (entities, CDATA,
# comments, line ends and attribute whitespace normalized, characters XML forbids, ``]]>``)
# cannot occur in an envelope read this way: an envelope that is not ASCII or holds a byte of
# :data:`_UNSAFE` goes to ElementTree, and so does every envelope of a shape with ``<!`` or
# ``<?``, whose markers land anywhere else (inside a longer text, in a name) or that does not
# parse.

_TEXT = re.compile(rb">([^<]+)<")
_IDS = re.compile(rb'(Id=")([^"<>\x00]*)"')
# Deleted by bytes.translate, which is 5x faster than a regular expression's search for them.
# "]": no "]]>" (which XML forbids in text).
_UNSAFE = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)]) + b"&'\r\t\n]"
_MAX_RECIPES = 256
_UNSEEN = object()
_RECIPES: dict[bytes, object] = {}

# Where a recipe takes a value from: ("", literal), ("t", index of a text), ("i", index of an
# id attribute value).
_Source = tuple[str, Any]


@dataclass(frozen=True, slots=True)
class _Node:
    tag: str
    attrib: tuple[tuple[str, _Source], ...]
    text: _Source | None
    tail: _Source | None
    children: tuple[_Node, ...]


class _Unplaced(Exception):
    """A marker landed where a recipe cannot take it from."""


@dataclass(frozen=True, slots=True)
class _Recipe:
    fields: tuple[_Source, ...]  # the texts of _FIELDS
    options: tuple[tuple[_Source, _Source], ...]
    shell_id: _Source | None
    body: _Node | None

    @staticmethod
    def of(parts: list[bytes], id_count: int) -> _Recipe | None:
        """The recipe of the shape of an envelope split at its texts (``parts``), or None."""
        token = uuid.uuid4().hex
        text_marks = [f"{token}t{i}z" for i in range((len(parts) - 1) // 2)]
        id_marks = iter(f"{token}i{j}z" for j in range(id_count))
        pieces = [
            _IDS.sub(lambda m: m.group(1) + next(id_marks).encode() + b'"', piece) for piece in parts[0::2]
        ]
        marked = bytearray(pieces[0])
        for mark, piece in zip(text_marks, pieces[1:], strict=True):
            marked += b">" + mark.encode() + b"<" + piece
        try:
            root = ElementTree.fromstring(bytes(marked))
            texts, options, shell_id, body = _read(root)
        except (ElementTree.ParseError, WSManFault):
            return None
        lookup = {mark: ("t", i) for i, mark in enumerate(text_marks)}
        lookup.update({f"{token}i{j}z": ("i", j) for j in range(id_count)})

        def source(value: str) -> _Source:
            found = lookup.get(value)
            if found is not None:
                return found
            if token in value:
                raise _Unplaced(value)
            return ("", value)

        def node(element: ElementTree.Element) -> _Node:
            if token in element.tag:
                raise _Unplaced(element.tag)
            return _Node(
                element.tag,
                tuple((name, source(value)) for name, value in element.attrib.items()),
                None if element.text is None else source(element.text),
                None if element.tail is None else source(element.tail),
                tuple(node(child) for child in element),
            )

        try:
            return _Recipe(
                tuple(source(text) for text in texts),
                tuple((source(name), source(value)) for name, value in options),
                None if shell_id is None else source(shell_id),
                None if body is None else node(body),
            )
        except _Unplaced:
            return None

    def fill(self, parts: list[bytes], pieces: list[bytes], size: int) -> Request:
        """The request of this shape's envelope split at its texts (``parts``: markup, text,
        markup, ...; ASCII) and its markup at its ids (``pieces``: markup, ``Id="``, value,
        ...). The texts the header walk strips are stripped here, as :func:`_read` does."""

        def value(src: _Source) -> str:
            kind, where = src
            if kind == "t":
                return parts[2 * where + 1].decode("ascii")  # type: ignore[no-any-return]
            if kind == "i":
                return pieces[3 * where + 2].decode("ascii")  # type: ignore[no-any-return]
            return where  # type: ignore[no-any-return]

        def build(node: _Node, parent: ElementTree.Element | None) -> ElementTree.Element:
            attrib = {name: value(src) for name, src in node.attrib}
            element = (
                ElementTree.Element(node.tag, attrib)
                if parent is None
                else ElementTree.SubElement(parent, node.tag, attrib)
            )
            if node.text is not None:
                element.text = value(node.text)
            if node.tail is not None:
                element.tail = value(node.tail)
            for child in node.children:
                build(child, element)
            return element

        return _request(
            [value(src).strip() for src in self.fields],
            [(value(name), value(text).strip()) for name, text in self.options],
            None if self.shell_id is None else value(self.shell_id).strip(),
            None if self.body is None else build(self.body, None),
            size,
        )


def _message_id() -> str:
    """A random (version 4) UUID in upper case, as ``str(uuid.uuid4()).upper()`` is, without
    building a UUID object (one per response)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # RFC 4122 4.4: version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # and the variant
    text = raw.hex().upper()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _envelope(action_uri: str, relates_to: str, body: str) -> bytes:
    return (
        f"{_ENVELOPE_OPEN}<s:Header><a:Action>{action_uri}</a:Action>"
        f"<a:MessageID>uuid:{_message_id()}</a:MessageID><a:To>{_ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def response(request: Request, body: str = "") -> bytes:
    assert request.action is not None
    return _envelope(RESPONSE_ACTIONS[request.action], request.message_id, body)


def fault_response(request_message_id: str, fault: WSManFault, machine: str = "127.0.0.1") -> bytes:
    code_attr = f' Code="{fault.code}"' if fault.code is not None else ""
    reason = escape(fault.reason)
    body = (
        f"<s:Fault><s:Code><s:Value>{'s:Sender' if fault.sender else 's:Receiver'}</s:Value>"
        f"<s:Subcode><s:Value>{fault.subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{reason}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"{code_attr} '
        f'Machine="{escape(machine)}"><f:Message>{reason}</f:Message></f:WSManFault></s:Detail></s:Fault>'
    )
    return _envelope(FAULT_ACTION, request_message_id, body)


def create_body(
    address: str, resource_uri: str, shell_id: str, input_streams: str, output_streams: str
) -> str:
    sid = escape(shell_id)
    uri = escape(resource_uri)
    return (
        f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
        f'<w:ResourceURI>{uri}</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">{sid}</w:Selector>'
        f"</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
        f"<rsp:Shell><rsp:ShellId>{sid}</rsp:ShellId><rsp:ResourceUri>{uri}</rsp:ResourceUri>"
        f"<rsp:Owner>exfix-lab</rsp:Owner><rsp:ClientIP>127.0.0.1</rsp:ClientIP>"
        f"<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>{escape(input_streams)}</rsp:InputStreams>"
        f"<rsp:OutputStreams>{escape(output_streams)}</rsp:OutputStreams>"
        f"<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
        f"</rsp:Shell>"
    )


def command_body(command_id: str) -> str:
    return f"<rsp:CommandResponse><rsp:CommandId>{escape(command_id)}</rsp:CommandId></rsp:CommandResponse>"


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One ``rsp:Stream`` element of a ReceiveResponse. ``data`` is base64 text already."""

    name: str
    data: str
    end: bool = False


def receive_body(
    command_id: str | None,
    chunks: Sequence[StreamChunk],
    state: str | None,
    exit_code: int | None = None,
) -> str:
    """``state`` is "Done", "Running" or None (no CommandState element, as for a pool Receive)."""
    cid = f' CommandId="{escape(command_id)}"' if command_id else ""
    parts: list[str] = ["<rsp:ReceiveResponse>"]
    for chunk in chunks:
        end = ' End="true"' if chunk.end else ""
        parts.append(f'<rsp:Stream Name="{chunk.name}"{cid}{end}>{chunk.data}</rsp:Stream>')
    if state is not None:
        code = f"<rsp:ExitCode>{exit_code}</rsp:ExitCode>" if exit_code is not None else ""
        parts.append(f'<rsp:CommandState{cid} State="{COMMAND_STATE}{state}">{code}</rsp:CommandState>')
    parts.append("</rsp:ReceiveResponse>")
    return "".join(parts)


def stream_budget(max_envelope_size: int, streams: int = 1) -> int:
    """How many base64 characters of stream data fit in a ReceiveResponse for this client.

    The envelope and one ``rsp:Stream`` wrapper per chunk are subtracted with some slack, so the
    whole response never exceeds the client's MaxEnvelopeSize (what pypsrp sized its own
    requests with, too).
    """
    return max(max_envelope_size - 1536 - 160 * streams, 1024)


def option_true(options: dict[str, str], name: str) -> bool:
    return options.get(name, "").strip().lower() in ("true", "1", "yes")


def iter_text(elements: Iterable[ElementTree.Element]) -> list[str]:
    return [(element.text or "") for element in elements]


def access_denied() -> WSManFault:
    # What WinRM answers an account that may not use a session configuration: Microsoft.PowerShell
    # and the cmd shell need a local administrator (or Remote Management Users) unless a JEA
    # configuration grants the account a role (about_Session_Configurations).
    return WSManFault(5, "w:AccessDenied", "Access is denied.", sender=True)
