"""DnsFaultTolerance from EdgeTransport.exe.config.

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

from agent.collect import _values as v
from agent.errors import UnusableOutputError
from agent.model.command import SWITCH, CmdletCall, Endpoint
from agent.model.facts import EdgeTransportConfigFacts
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


def _content(results: tuple[object, ...]) -> str:
    # Get-Content -Raw gives one string (serialized as an object whose ToString is the text,
    # because PowerShell attaches PSPath and friends). Without -Raw it gives lines: join them.
    parts = [v.text(item) for item in results]
    return "\n".join(parts) if len(parts) > 1 else (parts[0] if parts else "")


def parse_dns_fault_tolerance(text: str) -> str | None:
    """The DnsFaultTolerance value from the config text, or None when the key is absent.

    Raises ValueError when the text is not acceptable XML (DTD present, malformed, too big).
    """
    body = text.lstrip("\ufeff")
    if len(body) > _MAX_CONFIG_CHARS:
        raise ValueError(f"larger than {_MAX_CONFIG_CHARS} characters")
    if _DTD.search(body):
        raise ValueError("it contains a DTD (DOCTYPE or ENTITY declaration), which exfix refuses to expand")
    if body.lstrip().startswith("<?xml"):
        # The declaration may name an encoding; the text is already decoded.
        end = body.find("?>")
        body = body[end + 2 :] if end != -1 else body
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
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


def parse(results: tuple[RemoteObject, ...], *, host: str, path: str) -> EdgeTransportConfigFacts:
    """The effective DnsFaultTolerance. UnusableOutputError when the file cannot be read as XML."""
    text = _content(tuple(results))
    if not text.strip():
        raise UnusableOutputError(host, "Get-Content", f"{path} is empty or could not be read")
    try:
        value = parse_dns_fault_tolerance(text)
    except ValueError as exc:
        raise UnusableOutputError(host, "Get-Content", f"{path}: {exc}") from None
    if value is None:
        return EdgeTransportConfigFacts(
            config_path=path, dns_fault_tolerance=DEFAULT_DNS_FAULT_TOLERANCE, key_present=False
        )
    return EdgeTransportConfigFacts(config_path=path, dns_fault_tolerance=value.strip(), key_present=True)
