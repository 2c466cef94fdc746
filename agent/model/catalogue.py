"""Every command exfix can issue, with the parameters it gives: the one declared list that the
least-privilege roles (``exfix rbac``, agent/permissions) are written from.

The collectors, probes, apply's read-backs, change marker and symptom checks, and every fix's
steps and rollbacks build :class:`~agent.model.command.CmdletCall` values; the transport
refuses to send one this catalogue does not declare (:func:`check`), and planning refuses to
put one in a plan. So a new call that nobody declared fails the first test that makes it, and
the roles can never lag behind the code: they are rendered from this list, not kept beside it.

Each entry says who runs it: exfix itself (``Runner.EXFIX``), or a person running a manual
step from the review script with their own rights (``Runner.PERSON``; those are listed, not
granted). ``Access.READ`` entries make the scanning roles; ``Access.CHANGE`` entries are added
for remediation. Exchange entries name the built-in management role that holds the cmdlet: a
custom role is made from one parent and may only keep entries the parent has
(New-ManagementRole, "Understanding management roles", learn.microsoft.com).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from agent.model.command import CmdletCall, Endpoint


class Access(str, enum.Enum):
    READ = "read"  # scan, plan, apply's stale check, read-backs and verification
    CHANGE = "change"  # apply's steps and rollbacks, the per-host change marker


class Runner(str, enum.Enum):
    EXFIX = "exfix"  # exfix sends it over PSRP
    PERSON = "person"  # only in a manual step of remediate.ps1, run by a person


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter exfix gives. ``values``: the only values it ever gives (a JEA
    ValidateSet); ``pattern``: a .NET regular expression every value matches (a JEA
    ValidatePattern, matched case-insensitively as PowerShell's ValidatePattern does)."""

    name: str
    values: tuple[str, ...] = ()
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    endpoint: Endpoint
    cmdlet: str
    access: Access
    parameters: tuple[Param, ...]
    why: str
    role: str | None = None  # Exchange: the built-in management role that is the parent
    runner: Runner = Runner.EXFIX

    def param(self, name: str) -> Param | None:
        for p in self.parameters:
            if p.name.lower() == name.lower():
                return p
        return None


def _p(*names: str) -> tuple[Param, ...]:
    return tuple(Param(n) for n in names)


EX = Endpoint.EXCHANGE
OS = Endpoint.OS
READ = Access.READ
CHANGE = Access.CHANGE

# Built-in Exchange management roles (the parents). "Find the permissions required to run any
# Exchange cmdlet" (learn.microsoft.com) shows how to check one: Get-ManagementRole -Cmdlet X.
VIEW_ONLY_CONFIGURATION = "View-Only Configuration"
TRANSPORT_QUEUES = "Transport Queues"
MESSAGE_TRACKING = "Message Tracking"
EXCHANGE_SERVERS = "Exchange Servers"
SEND_CONNECTORS = "Send Connectors"

# Paths exfix touches on a host: <MsiInstallPath>Bin\EdgeTransport.exe.config and the change
# marker <MsiInstallPath>Logging\exfix-change-in-progress.json (agent/apply/lock.py). A drive
# root, then folders none of which starts with '.', so '..' cannot climb out.
_INSTALL = r"^[A-Za-z]:\\(?:[^\\.][^\\]*\\)*"
EDGE_CONFIG_PATTERN = _INSTALL + r"Bin\\EdgeTransport\.exe\.config$"
MARKER_PATTERN = _INSTALL + r"Logging\\exfix-change-in-progress\.json$"
READ_FILE_PATTERN = _INSTALL + r"(?:Bin\\EdgeTransport\.exe\.config|Logging\\exfix-change-in-progress\.json)$"
SETUP_KEY_PATTERN = r"^HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v1[45]\\Setup$"
# Resolve-DnsName -Server: an IPv4 or IPv6 address as the NIC and transport settings list them.
ADDRESS_PATTERN = r"^[0-9A-Fa-f:.]+$"
TRANSPORT_SERVICES = ("MSExchangeTransport",)
# The outbound allow rules exfix adds (agent/fixes/firewall_dns_allow.py RULE_NAMES; check()
# refuses any other name, so the two cannot differ without a failing test).
RULE_NAME_SET = ("exfix-allow-dns-udp", "exfix-allow-dns-tcp")

CATALOGUE: tuple[Command, ...] = (
    # --- Exchange endpoint: reading ---------------------------------------------------------
    Command(EX, "Get-ExchangeServer", READ, _p("Identity"),
            "the version (2010 or later) and the server's role; the connection check",
            VIEW_ONLY_CONFIGURATION),
    Command(EX, "Get-MailboxServer", READ, _p("Identity"),
            "the server's database availability group (apply never takes two DAG members out)",
            VIEW_ONLY_CONFIGURATION),
    Command(EX, "Get-TransportService", READ, _p("Identity"),
            "transport's DNS settings (2013 and later)", VIEW_ONLY_CONFIGURATION),
    Command(EX, "Get-TransportServer", READ, _p("Identity"),
            "transport's DNS settings (2010)", VIEW_ONLY_CONFIGURATION),
    Command(EX, "Get-SendConnector", READ, _p("Identity"),
            "send connectors and their DNS use; read-back of a new connector", VIEW_ONLY_CONFIGURATION),
    Command(EX, "Get-Queue", READ, _p("Server"), "the delivery queues and their LastError", TRANSPORT_QUEUES),
    Command(EX, "Get-MessageTrackingLog", READ, _p("Server", "Start", "EventId", "ResultSize"),
            "after apply: did mail to the affected domains leave (SEND events)", MESSAGE_TRACKING),
    # --- Exchange endpoint: changing --------------------------------------------------------
    Command(EX, "Retry-Queue", CHANGE, _p("Identity"),
            "after apply: retry the queues the fix should release", TRANSPORT_QUEUES),
    Command(EX, "Set-TransportService", CHANGE,
            _p("Identity", "ExternalDNSServers", "ExternalDNSAdapterEnabled", "InternalDNSServers",
               "InternalDNSAdapterEnabled"),
            "set-transport-external-dns / set-transport-internal-dns (2013 and later)", EXCHANGE_SERVERS),
    Command(EX, "Set-TransportServer", CHANGE,
            _p("Identity", "ExternalDNSServers", "ExternalDNSAdapterEnabled", "InternalDNSServers",
               "InternalDNSAdapterEnabled"),
            "set-transport-external-dns / set-transport-internal-dns (2010)", EXCHANGE_SERVERS),
    Command(EX, "Set-SendConnector", CHANGE, _p("Identity", "UseExternalDNSServersEnabled"),
            "the internet connector uses transport's external DNS servers", SEND_CONNECTORS),
    Command(EX, "New-SendConnector", CHANGE,
            _p("Name", "AddressSpaces", "SmartHosts", "DNSRoutingEnabled", "SmartHostAuthMechanism",
               "SourceTransportServers", "Usage"),
            "add-smarthost-send-connector", SEND_CONNECTORS),
    Command(EX, "Remove-SendConnector", CHANGE, _p("Identity", "Confirm"),
            "rollback of add-smarthost-send-connector", SEND_CONNECTORS),
    # --- OS endpoint: reading ---------------------------------------------------------------
    Command(OS, "Get-DnsClient", READ, _p("InterfaceIndex"),
            "NIC registration settings; the connection check; read-back of Set-DnsClient"),
    Command(OS, "Get-DnsClientServerAddress", READ, _p("InterfaceIndex"),
            "the NICs' DNS servers; read-back of Set-DnsClientServerAddress"),
    Command(OS, "Get-NetIPConfiguration", READ, (), "the NICs' addresses and gateways"),
    Command(OS, "Get-DnsClientCache", READ, (Param("Entry"), Param("Type"), Param("Status")),
            "negative DNS cache entries; read-back of the flush"),
    Command(OS, "Resolve-DnsName", READ,
            (Param("Name"), Param("Type"), Param("Server", pattern=ADDRESS_PATTERN), Param("DnsOnly"),
             Param("QuickTimeout")),
            "the host's own DNS view: each configured server asked the standard questions"),
    Command(OS, "Get-NetFirewallRule", READ,
            (Param("Direction", ("Outbound",)), Param("Enabled", ("True",)),
             Param("PolicyStore", ("ActiveStore",)), Param("Name")),
            "outbound rules that could block DNS; read-back of a disabled rule"),
    Command(OS, "Get-NetFirewallPortFilter", READ,
            (Param("All"), Param("PolicyStore", ("ActiveStore",))), "the rules' ports"),
    Command(OS, "Get-NetFirewallAddressFilter", READ,
            (Param("All"), Param("PolicyStore", ("ActiveStore",))), "the rules' addresses"),
    Command(OS, "Get-NetFirewallProfile", READ,
            (Param("All"), Param("PolicyStore", ("ActiveStore",))),
            "the profiles' DefaultOutboundAction"),
    Command(OS, "Get-ItemProperty", READ,
            (Param("Path", pattern=SETUP_KEY_PATTERN), Param("Name", ("MsiInstallPath",))),
            "where Exchange is installed (its Setup registry key)"),
    Command(OS, "Get-Content", READ, (Param("LiteralPath", pattern=READ_FILE_PATTERN), Param("Raw")),
            "EdgeTransport.exe.config (DnsFaultTolerance); the change marker"),
    Command(OS, "Get-Service", READ, (Param("Name", TRANSPORT_SERVICES),),
            "read-back of the transport restart"),
    # --- OS endpoint: changing --------------------------------------------------------------
    Command(OS, "Set-DnsClient", CHANGE, (Param("InterfaceIndex"), Param("RegisterThisConnectionsAddress")),
            "enable-nic-dns-registration"),
    Command(OS, "Register-DnsClient", CHANGE, (), "re-register the host's A record"),
    Command(OS, "Set-DnsClientServerAddress", CHANGE,
            (Param("InterfaceIndex"), Param("ServerAddresses"), Param("ResetServerAddresses")),
            "set-nic-dns-servers"),
    Command(OS, "Clear-DnsClientCache", CHANGE, (), "clear-dns-client-cache"),
    Command(OS, "Restart-Service", CHANGE, (Param("Name", TRANSPORT_SERVICES),),
            "restart transport so it reads its DNS settings again"),
    Command(OS, "Disable-NetFirewallRule", CHANGE, (Param("Name"),), "the firewall fix"),
    Command(OS, "Enable-NetFirewallRule", CHANGE, (Param("Name"),), "rollback of the firewall fix"),
    Command(OS, "New-NetFirewallRule", CHANGE,
            (Param("Name", RULE_NAME_SET), Param("DisplayName"), Param("Description"),
             Param("Direction", ("Outbound",)), Param("Action", ("Allow",)),
             Param("Protocol", ("UDP", "TCP")),
             Param("RemotePort", ("53",)), Param("RemoteAddress", pattern=ADDRESS_PATTERN),
             Param("Profile", ("Domain", "Private", "Public"))),
            "the outbound DNS allow rule (a profile whose default drops outbound traffic)"),
    Command(OS, "Remove-NetFirewallRule", CHANGE, (Param("Name", RULE_NAME_SET),),
            "rollback of the outbound DNS allow rule"),
    Command(OS, "New-Item", CHANGE,
            (Param("Path", pattern=MARKER_PATTERN), Param("ItemType", ("File",)), Param("Value")),
            "the per-host change marker (one apply per host at a time)"),
    Command(OS, "Remove-Item", CHANGE, (Param("LiteralPath", pattern=MARKER_PATTERN),),
            "the change marker, when apply ends"),
    # --- manual steps a person runs from remediate.ps1 (not granted) ------------------------
    Command(OS, "Copy-Item", CHANGE, (Param("LiteralPath"), Param("Destination")),
            "back up EdgeTransport.exe.config before editing it", runner=Runner.PERSON),
    Command(OS, "Set-ExfixAppSetting", CHANGE, (Param("LiteralPath"), Param("Key"), Param("Value")),
            "the script's own function that edits EdgeTransport.exe.config", runner=Runner.PERSON),
)  # fmt: skip

_BY_KEY: dict[tuple[Endpoint, str], Command] = {(c.endpoint, c.cmdlet.lower()): c for c in CATALOGUE}


class UndeclaredCommand(ValueError):
    """A call the catalogue does not declare: a bug in exfix (a new call nobody declared)."""


def find(endpoint: Endpoint, cmdlet: str) -> Command | None:
    return _BY_KEY.get((endpoint, cmdlet.lower()))


def check(call: CmdletCall) -> Command:
    """The entry that declares ``call``: its cmdlet on its endpoint, every parameter it gives,
    and each value inside the entry's ValidateSet or pattern. Raises UndeclaredCommand."""
    entry = find(call.endpoint, call.cmdlet)
    if entry is None:
        raise UndeclaredCommand(
            f"{call.cmdlet} ({call.endpoint.value} endpoint) is not in exfix's command catalogue "
            "(agent/model/catalogue.py): declare it there, so that `exfix rbac` grants it"
        )
    for name, value in call.parameters:
        param = entry.param(name)
        if param is None:
            raise UndeclaredCommand(
                f"{call.cmdlet} -{name} is not in exfix's command catalogue (agent/model/catalogue.py)"
            )
        problem = value_problem(param, value)
        if problem is not None:
            raise UndeclaredCommand(f"{call.cmdlet} -{name}: {problem}")
    return entry


def value_problem(param: Param, value: object) -> str | None:
    """Why ``value`` is outside the parameter's ValidateSet or pattern (None when it is not)."""
    if not param.values and param.pattern is None:
        return None
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        text = item if isinstance(item, str) else str(item)
        if param.values and text.lower() not in {v.lower() for v in param.values}:
            return f"{text!r} is not one of {', '.join(param.values)}"
        if param.pattern is not None and not re.search(param.pattern, text, re.IGNORECASE):
            return f"{text!r} does not match {param.pattern}"
    return None


def granted(access: Access) -> tuple[Command, ...]:
    """What a role for ``access`` grants: reading always; changing only for CHANGE. Manual
    steps run by a person are never granted."""
    wanted = (Access.READ,) if access is Access.READ else (Access.READ, Access.CHANGE)
    return tuple(c for c in CATALOGUE if c.runner is Runner.EXFIX and c.access in wanted)
