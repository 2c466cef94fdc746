"""WS-Management envelopes: parse a request, build responses and faults.

Responses are built as text (not ElementTree) because they are small and fixed in shape, and
building them is on every request's path. Every response echoes the request's MessageID in
``RelatesTo``: pypsrp refuses a response whose RelatesTo does not match (wsman.py ``invoke``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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


def parse_duration(text: str | None, default: float) -> float:
    """An xs:duration such as ``PT20S`` or ``PT0.500S`` in seconds; ``default`` when absent/odd."""
    if not text:
        return default
    match = _DURATION.match(text.strip())
    if not match:
        return default
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

    The header is read in one pass over its children (the first element of each name, as
    ``find`` would return it): ElementPath's ``find`` with a namespace map sorts the map and
    walks a generator for every call, which was half the cost of this function."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise invalid_request(str(exc)) from None
    header = body = None
    for child in root:
        if child.tag == _S_HEADER and header is None:
            header = child
        elif child.tag == _S_BODY and body is None:
            body = child
    if header is None:
        raise invalid_request("no s:Header")
    first: dict[str, ElementTree.Element] = {}
    options: dict[str, str] = {}
    shell_id = None
    for element in header:
        tag = element.tag
        if tag == _OPTION_SET:
            for option in element:
                if option.tag == _OPTION:
                    options[option.get("Name", "")] = (option.text or "").strip()
        elif tag == _SELECTOR_SET:
            for selector in element:
                if selector.tag == _SELECTOR and selector.get("Name") == "ShellId":
                    shell_id = (selector.text or "").strip()
        if tag not in first:
            first[tag] = element

    def text(tag: str) -> str:
        element = first.get(tag)
        return (element.text or "").strip() if element is not None else ""

    action_uri = text(_ACTION)
    try:
        max_env = int(text(_MAX_ENVELOPE) or DEFAULT_CLIENT_MAX_ENVELOPE)
    except ValueError:
        max_env = DEFAULT_CLIENT_MAX_ENVELOPE
    return Request(
        action_uri=action_uri,
        action=ACTION_URIS.get(action_uri),
        message_id=text(_MESSAGE_ID),
        resource_uri=text(_RESOURCE_URI),
        shell_id=shell_id,
        operation_timeout=parse_duration(text(_OPERATION_TIMEOUT), 60.0),
        max_envelope_size=max(max_env, 8192),
        options=options,
        body=body[0] if body is not None and len(body) else None,
        size=len(data),
    )


def _envelope(action_uri: str, relates_to: str, body: str) -> bytes:
    return (
        f"{_ENVELOPE_OPEN}<s:Header><a:Action>{action_uri}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID><a:To>{_ANONYMOUS}</a:To>"
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
