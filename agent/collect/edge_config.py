"""EdgeTransport.exe.config: the file itself, and the DnsFaultTolerance setting in it.

Two fact areas come from it (agent.model.facts.CollectionArea): ``edge_config_file``, the file
as read and whether it is well-formed XML (:func:`read_file`), and ``edge_config``, the
settings in it (:func:`settings`), which exist only where the file is well-formed. A file that
is not is a finding of its own (edge-transport-config-malformed: the transport service cannot
load it), and the settings are then not collected.

Two OS calls: the install path from the registry (MsiInstallPath under
HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v15\\Setup, v14 on Exchange 2010), then the file
``<MsiInstallPath>Bin\\EdgeTransport.exe.config`` read whole with Get-Content -Raw.

The key lives in ``<appSettings>`` as ``<add key="DnsFaultTolerance" value="..."/>``. A
missing key means the default, Lenient. A CU install overwrites the file, so a fixed value
can silently come back. Both: "DNS query failure sensitivity", Exchange 2013 Help,
https://technet.microsoft.com/en-us/library/Bb676467(v=EXCHG.150).

The file's text came from the host: it is parsed without a DTD (a DOCTYPE or ENTITY
declaration is refused outright, so no entity expansion can happen) and without resolving
anything external.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.parsers import expat

from agent.collect import _values as v
from agent.errors import UnusableOutputError
from agent.model.command import SWITCH, CmdletCall, Endpoint
from agent.model.facts import EdgeConfigFileFacts, EdgeTransportConfigFacts, XmlSyntaxError
from agent.model.remote import RemoteObject

DEFAULT_DNS_FAULT_TOLERANCE = "Lenient"
KEY = "DnsFaultTolerance"
CONFIG_FILE = "EdgeTransport.exe.config"

_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_MAX_CONFIG_CHARS = 4 * 1024 * 1024


def setup_key(major: int) -> str:
    """The Exchange Setup registry key: v14 on Exchange 2010, v15 from 2013 on."""
    return f"HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v{14 if major == 14 else 15}\\Setup"


def install_path_calls(major: int) -> tuple[CmdletCall, ...]:
    return (
        CmdletCall(Endpoint.OS, "Get-ItemProperty", (("Path", setup_key(major)), ("Name", "MsiInstallPath"))),
    )


def parse_install_path(results: tuple[RemoteObject, ...], *, host: str) -> str:
    """MsiInstallPath ("C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"). UnusableOutputError when
    absent."""
    for item in results:
        if isinstance(item, RemoteObject):
            path = v.text(item.get("MsiInstallPath")).strip()
        else:
            path = v.text(item).strip()
        if path:
            return path
    raise UnusableOutputError(
        host, "Get-ItemProperty", "the Exchange Setup registry key has no MsiInstallPath"
    )


def config_path(install_path: str) -> str:
    return install_path.rstrip("\\/") + "\\Bin\\" + CONFIG_FILE


def config_calls(install_path: str) -> tuple[CmdletCall, ...]:
    # -LiteralPath: the path is data, never a wildcard pattern.
    return (
        CmdletCall(Endpoint.OS, "Get-Content", (("LiteralPath", config_path(install_path)), ("Raw", SWITCH))),
    )


def content(results: tuple[object, ...], *, host: str, path: str) -> str:
    """The file's text as Get-Content returned it. UnusableOutputError when nothing came back.

    Get-Content -Raw gives one string (serialized as an object whose ToString is the text,
    because PowerShell attaches PSPath, PSParentPath, PSChildName, PSDrive, PSProvider and
    ReadCount to it: ContentCommandBase.WriteContentObject). Without -Raw it gives lines: they
    are joined.
    """
    parts = [v.text(item) for item in results]
    text = "\n".join(parts) if len(parts) > 1 else (parts[0] if parts else "")
    if not text.strip():
        raise UnusableOutputError(host, "Get-Content", f"{path} is empty or could not be read")
    return text


def _body(text: str) -> str:
    """The text the XML parser reads, with line and column of every character kept.

    A byte-order mark is dropped (Get-Content strips it when it decodes the file; a text that
    still has one was decoded elsewhere). The XML declaration is blanked out, not cut: it may
    name an encoding (the text is already decoded), and blanking keeps the positions the parser
    reports equal to the positions in the file. A declaration anywhere but at the very start is
    left for the parser to refuse, as .NET's XmlReader does ("Unexpected XML declaration").
    """
    body = text[1:] if text.startswith("\ufeff") else text
    if body.startswith("<?xml"):
        end = body.find("?>")
        if end != -1:
            body = re.sub(r"[^\r\n]", " ", body[: end + 2]) + body[end + 2 :]
    return body


def _refuse(body: str) -> None:
    if len(body) > _MAX_CONFIG_CHARS:
        raise ValueError(f"larger than {_MAX_CONFIG_CHARS} characters")
    if _DTD.search(body):
        raise ValueError("it contains a DTD (DOCTYPE or ENTITY declaration), which exfix refuses to expand")


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what the XML parser counts as one line break
_SHOWN_LINE = 160


def syntax_error(text: str, error: ET.ParseError) -> XmlSyntaxError:
    """Where ``text`` (as read: BOM and declaration included) stops being well-formed, from the
    parser's error: 1-based line and column, in characters."""
    line, column = error.position
    lines = _LINE_BREAK.split(text[1:] if text.startswith("\ufeff") else text)
    shown = lines[line - 1] if 0 < line <= len(lines) else ""
    if len(shown) > _SHOWN_LINE:
        # Keep the part around the column: that is where the fault is.
        begin = max(0, min(column - _SHOWN_LINE // 2, len(shown) - _SHOWN_LINE))
        shown = shown[begin : begin + _SHOWN_LINE]
    return XmlSyntaxError(
        line=line, column=column + 1, message=expat.ErrorString(error.code) or str(error), text=shown
    )


def read_file(text: str, *, host: str, path: str) -> EdgeConfigFileFacts:
    """The file as read, and where it stops being well-formed XML, if it does.

    Raises UnusableOutputError when exfix will not parse the text at all (a DTD, or larger than
    4 MiB): then nothing is known about the file, not even whether it is well-formed.
    """
    body = _body(text)
    try:
        _refuse(body)
    except ValueError as exc:
        raise UnusableOutputError(host, "Get-Content", f"{path}: {exc}") from None
    try:
        ET.fromstring(body)
    except ET.ParseError as exc:
        return EdgeConfigFileFacts(path, syntax_error(text, exc))
    return EdgeConfigFileFacts(path)


def parse_dns_fault_tolerance(text: str) -> str | None:
    """The DnsFaultTolerance value from the config text, or None when the key is absent.

    Raises ValueError when the text is not acceptable XML (DTD present, malformed, too big).
    """
    body = _body(text)
    _refuse(body)
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        where = syntax_error(text, exc)
        raise ValueError(
            f"not well-formed XML: line {where.line}, column {where.column}: {where.message}"
        ) from None
    found: str | None = None
    for section in root.iter():
        if not isinstance(section.tag, str) or section.tag.rsplit("}", 1)[-1].lower() != "appsettings":
            continue
        for entry in section:
            if not isinstance(entry.tag, str) or entry.tag.rsplit("}", 1)[-1].lower() != "add":
                continue
            if (entry.get("key") or "").strip().lower() == KEY.lower():
                found = entry.get("value") or ""  # like .NET appSettings: the last one wins
    return found


def settings(text: str, *, host: str, path: str) -> EdgeTransportConfigFacts:
    """The effective DnsFaultTolerance in the file's text. UnusableOutputError when the text
    cannot be read as XML (the reason names the line and column of a well-formedness error)."""
    try:
        value = parse_dns_fault_tolerance(text)
    except ValueError as exc:
        raise UnusableOutputError(host, "Get-Content", f"{path}: {exc}") from None
    if value is None:
        return EdgeTransportConfigFacts(
            config_path=path, dns_fault_tolerance=DEFAULT_DNS_FAULT_TOLERANCE, key_present=False
        )
    return EdgeTransportConfigFacts(config_path=path, dns_fault_tolerance=value.strip(), key_present=True)


def parse(results: tuple[RemoteObject, ...], *, host: str, path: str) -> EdgeTransportConfigFacts:
    """The effective DnsFaultTolerance from Get-Content's output. UnusableOutputError when the
    file is empty or cannot be read as XML."""
    return settings(content(tuple(results), host=host, path=path), host=host, path=path)
