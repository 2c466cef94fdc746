"""EdgeTransport.exe.config as an emulated host has it on disk, and what transport reads from it.

Unless the scenario gives the file itself (``edge_transport_config``: served exactly as
Get-Content -Raw returns it, malformed files included), the lab writes one: the structure
follows a real Exchange 2016 file (configSections, runtime, an ``<appSettings>`` of ``<add
key=.. value=..>`` entries, system.net and customLists). DnsFaultTolerance appears in
appSettings only when the scenario sets it; absent, transport uses the default, Lenient
("DNS query failure sensitivity", Exchange 2013 Help, technet Bb676467(v=EXCHG.150)).

Transport reads the file when it starts ("Understanding the EdgeTransport.exe.Config File",
Exchange 2010 docs: changes apply after the service restarts), and a file that is not
well-formed XML cannot be loaded: MSExchangeTransport logs event 14004, "The worker process has
failed to load application configuration file" (Exchange 2010 docs, MSExchangeTransport
14004). :func:`read` is the lab's own reading of it (never exfix's): whether it loads, and the
DnsFaultTolerance it holds.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr


@dataclass(frozen=True, slots=True)
class ConfigRead:
    """What a starting transport service gets from the file."""

    loads: bool  # well-formed XML: the .NET configuration system can load it
    dns_fault_tolerance: str | None  # the appSettings value; None: absent (or not loadable)


_DECLARATION = re.compile(r"^\ufeff?<\?xml[^>]*\?>")


def read(text: str) -> ConfigRead:
    """Whether ``text`` loads as an application configuration file, and its DnsFaultTolerance
    (the last ``<add key="DnsFaultTolerance">`` of ``<appSettings>`` wins, as appSettings keys
    do in .NET)."""
    body = _DECLARATION.sub("", text, count=1)
    if body.startswith("\ufeff"):
        body = body[1:]
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return ConfigRead(False, None)
    value: str | None = None
    for section in root.findall("appSettings"):
        for entry in section.findall("add"):
            if (entry.get("key") or "").lower() == "dnsfaulttolerance":
                value = entry.get("value")
    return ConfigRead(True, value)


def render(major: int, install_path: str, dns_fault_tolerance: str | None) -> str:
    version = f"{major}.0.0.0"
    data = install_path + "TransportRoles\\data\\"
    settings: list[tuple[str, str]] = [
        ("AgentLogEnabled", "true"),
        ("ResolverRetryInterval", "30"),
        ("ResolverLogLevel", "Disabled"),
        ("ExpansionSizeLimit", "1000"),
        ("MailboxDeliveryQueueRetryInterval", "00:05:00"),
        ("QueueGlitchRetryInterval", "00:01:00"),
        ("QueueGlitchRetryCount", "4"),
        ("MaxQueueViewerQueryResultCount", "250000"),
        ("RoutingConfigReloadInterval", "12:00:00"),
        ("DatabaseMaxCacheSize", "512MB"),
        ("QueueDatabasePath", data + "Queue"),
        ("QueueDatabaseLoggingPath", data + "Queue"),
        ("IPFilterDatabasePath", data + "IpFilter"),
        ("TemporaryStoragePath", data + "Temp"),
    ]
    if dns_fault_tolerance is not None:
        settings.append(("DnsFaultTolerance", dns_fault_tolerance))
    settings += [
        ("PriorityQueuingEnabled", "false"),
        ("MaxPerDomainNormalPriorityConnections", "15"),
        ("NormalPriorityMessageExpirationTimeout", "2.00:00:00"),
        ("DnsIpv6Enabled", "true"),
        ("SmtpSendTreatTransientErrorsAsPermanentErrors", "true"),
    ]
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<configuration>",
        "  <configSections>",
        '    <section name="customLists" type="Microsoft.Exchange.Transport.TransportAppConfig+'
        f"ConfigurationListsSection,Microsoft.Exchange.Transport, Version={version}, Culture=neutral, "
        'PublicKeyToken=31bf3856ad364e35" requirePermission="false" />',
        "  </configSections>",
        "  <runtime>",
        '    <gcServer enabled="true" />',
        '    <generatePublisherEvidence enabled="false" />',
        "  </runtime>",
        "  <appSettings>",
    ]
    lines += [f"    <add key={quoteattr(k)} value={quoteattr(v)} />" for k, v in settings]
    lines += [
        "  </appSettings>",
        "  <system.net>",
        "    <connectionManagement>",
        '      <add address="*" maxconnection="10" />',
        "    </connectionManagement>",
        "  </system.net>",
        "  <customLists>",
        "    <downgradedResponses>",
        '      <add value="530 5.7.1 Client was not authenticated" />',
        '      <add value="554 5.6.0 Invalid message content" />',
        "    </downgradedResponses>",
        "  </customLists>",
        "</configuration>",
    ]
    return "\r\n".join(lines) + "\r\n"
