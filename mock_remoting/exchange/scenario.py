"""Lab scenario files: loading, validation and fleet generation.

A scenario (``mock_remoting/scenarios/<name>.yaml``, format in ``mock_remoting/README.md``)
describes one organisation: its DNS (validated by :class:`DnsWorld`), its send connectors and
its Exchange hosts with their NICs, transport DNS settings, queues and replayed captures.

The file is read by exfix's strict document reader (agent/model/document.py): the shape of
each section is declared below as a dataclass, and what depends on more than one value (NIC
addresses, DNS servers that must exist, connector source servers) is checked after reading,
with the file's line. Key paths are written ``hosts.0.nics.1``, as DnsWorld writes them.

Everything here is immutable. The mutable run-time state lives in ``state.py``; it is built
from these values by :class:`~mock_remoting.exchange.host.Fleet`.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from agent.errors import ScenarioError
from agent.model.document import Document, Invalid, KeyPath, Loaded, between, each, key, text
from agent.model.facts import CollectionArea
from agent.model.probe import PROBE_REPEAT_MAX
from agent.rules.registry import RULES_BY_ID
from mock_remoting.dns.world import DnsWorld
from mock_remoting.exchange.firewall import FirewallProfileSpec, FirewallRuleSpec

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"

RULE_IDS = tuple(RULES_BY_ID)  # what expect.rules may name: exfix's own rule registry
AREA_NAMES = tuple(area.value for area in CollectionArea)  # what expect.failed_areas may name

ExternalDelivery = Literal["DnsConnectorDelivery", "SmartHostConnectorDelivery"]
InternalDelivery = Literal[
    "SmtpRelayToMailboxDeliveryGroup",
    "SmtpRelayToDag",
    "SmtpRelayToRemoteAdSite",
    "SmtpRelayToRemoteActiveDirectorySite",
    "SmtpDeliveryToMailbox",
]
DeliveryType = Literal[ExternalDelivery, InternalDelivery]
ProtocolOption = Literal["Any", "UseTcpOnly", "UseUdpOnly"]
FaultTolerance = Literal["Lenient", "Normal"]
AuthMechanism = Literal["None", "BasicAuth", "BasicAuthRequireTLS", "ExchangeServer", "ExternalAuthoritative"]

EXTERNAL_DELIVERY_TYPES: tuple[str, ...] = typing.get_args(ExternalDelivery)
INTERNAL_DELIVERY_TYPES: tuple[str, ...] = typing.get_args(InternalDelivery)
PROTOCOL_OPTIONS: tuple[str, ...] = typing.get_args(ProtocolOption)
FAULT_TOLERANCE: tuple[str, ...] = typing.get_args(FaultTolerance)
AUTH_MECHANISMS: tuple[str, ...] = typing.get_args(AuthMechanism)

_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,13}[A-Za-z0-9])?$")
_VERSION = re.compile(r"^(8|14|15)\.(\d+)\.(\d+)\.(\d+)$")
_CMDLET = re.compile(r"^[A-Za-z]+-[A-Za-z]+$")
_MAC = re.compile(r"^([0-9A-F]{2}-){5}[0-9A-F]{2}$")

# Names, aliases and comments may hold any character: the lab serves hostile values on purpose.
_TEXT = text(limit=None, printable=False)
_CHOICE = key(ignore_case=True)  # PowerShell compares these values without regard to case


def _addresses(version: int | None) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    """A check: every item an IP address (of ``version``), normalised."""

    def one(item: str) -> str:
        try:
            address = ipaddress.ip_address(item.strip())
        except ValueError:
            raise ValueError(f"not an IP address: {item!r}") from None
        if version is not None and address.version != version:
            raise ValueError(f"not an IPv{version} address: {item!r}")
        return str(address)  # duplicates are kept: real NICs show them (EXCHANGE_FACTS)

    return each(one)


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        raise ValueError(f"not an IPv4 address: {value!r}") from None


def _rule_ids(value: tuple[str, ...]) -> tuple[str, ...]:
    for i, item in enumerate(value):
        if item not in RULES_BY_ID:
            raise Invalid(f"{item!r} is not a rule id ({', '.join(RULE_IDS)})", at=(i,))
    return tuple(dict.fromkeys(value))


def _cmdlet_names(value: tuple[str, ...]) -> tuple[str, ...]:
    for i, item in enumerate(value):
        if not _CMDLET.match(item):
            raise Invalid(f"{item!r} is not a cmdlet name such as Get-MessageTrackingLog", at=(i,))
    return tuple(dict.fromkeys(item.lower() for item in value))


def _address_spaces(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("expected at least one address space")
    out = []
    for i, item in enumerate(value):
        space = parse_address_space(item)
        if space is None:
            raise Invalid(f"not an address space like 'SMTP:*;1': {item!r}", at=(i,))
        out.append(format_address_space(space))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class NicSpec:
    """One network adapter. ``mapi`` marks the MAPI/primary NIC (the one with the gateway)."""

    alias: str
    index: int
    ipv4: str
    prefix_length: int
    mapi: bool
    gateway: str | None
    dns_servers: tuple[str, ...]
    ipv6_dns_servers: tuple[str, ...]
    ipv6_dns_placeholders: bool
    dhcp_dns_servers: tuple[str, ...]
    register: bool
    use_suffix: bool
    suffix: str
    description: str
    mac: str


@dataclass(frozen=True, slots=True)
class TransportSpec:
    """Get-/Set-TransportService DNS settings (the defaults are Exchange's); also the shape of
    a host's ``transport`` section."""

    external_dns_adapter_enabled: bool = True
    external_dns_servers: tuple[str, ...] = field(default=(), metadata=key(check=_addresses(None)))
    external_dns_protocol_option: ProtocolOption = field(default="Any", metadata=_CHOICE)
    internal_dns_adapter_enabled: bool = True
    internal_dns_servers: tuple[str, ...] = field(default=(), metadata=key(check=_addresses(None)))
    internal_dns_protocol_option: ProtocolOption = field(default="Any", metadata=_CHOICE)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSpec:
    """One delivery queue at load. ``target`` is the server an internal queue delivers to."""

    next_hop: str = field(metadata=key(check=_TEXT))
    delivery_type: DeliveryType = field(default="DnsConnectorDelivery", metadata=_CHOICE)
    messages: int = field(metadata=key(check=between(0, 10**9)))
    target: str | None = None
    # Mail keeps coming: this many new messages join the queue before each delivery attempt
    # (at load, Retry-Queue, a transport restart), so a change that breaks the next hop shows
    # in the queue even after it had drained.
    arriving: int = field(default=0, metadata=key(check=between(0, 10**6)))
    # While every DNS lookup of the next hop times out, the messages sit in Ready, not Retry:
    # the lookup never completes, so no attempt fails and LastError stays empty, while nothing
    # leaves the queue ("Bad NIC Settings Cause Internal Messages to Queue with 451 4.4.0 DNS
    # query failed (nonexistent domain)", exchangemaster.wordpress.com, and EXCHANGE_FACTS:
    # "messages sit in Ready/Retry and DNS servers time out").
    ready_while_dns_times_out: bool = False
    # The next hop resolves, but its mail server refuses or drops the session: the LastError's
    # SMTP text as Exchange shows it (the LED part), for example "441 4.4.1 Error encountered
    # while communicating with primary target IP address: ..." or "451 4.4.0 Primary target IP
    # address responded with: \"421 4.4.2 Connection dropped due to SocketError.\" ...". Not a
    # DNS fault: exfix must not judge it as one.
    remote_error: str | None = field(default=None, metadata=key(check=_TEXT))

    @property
    def external(self) -> bool:
        return self.delivery_type in EXTERNAL_DELIVERY_TYPES


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """A send connector; also the shape of a ``send_connectors`` entry."""

    name: str = field(metadata=key(check=_TEXT))
    address_spaces: tuple[str, ...] = field(metadata=key(check=_address_spaces))
    source_transport_servers: tuple[str, ...]
    dns_routing_enabled: bool = True
    smart_hosts: tuple[str, ...] = field(default=(), metadata=key(check=each(_TEXT)))
    use_external_dns_servers_enabled: bool = False
    smart_host_auth_mechanism: AuthMechanism = field(default="None", metadata=_CHOICE)
    enabled: bool = True
    port: int = field(default=25, metadata=key(check=between(1, 65535)))
    comment: str = ""
    # Outbound mail goes through the Front End Transport service, which looks the recipients up
    # (Set-SendConnector docs, FrontendProxyEnabled); the lab gives Front End Transport its
    # default DNS settings: the adapter's servers.
    frontend_proxy_enabled: bool = False


CacheRecordType = Literal["A", "AAAA", "MX", "CNAME", "SRV", "TXT", "PTR", "NS", "SOA"]
CacheStatus = Literal["NotExist", "NoRecords"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheEntrySpec:
    """A negative answer in the host's DNS client cache at load (Get-DnsClientCache): the name,
    the record type, NotExist (Win32 9003, "DNS name does not exist") or NoRecords (9501), and
    the seconds it has left to live (as shown; the lab does not count them down)."""

    name: str = field(metadata=key(check=_TEXT))
    type: CacheRecordType = field(default="A", metadata=_CHOICE)
    status: CacheStatus = field(default="NotExist", metadata=_CHOICE)
    ttl: int = field(default=300, metadata=key(check=between(0, 86400)))


@dataclass(frozen=True, slots=True)
class HostSpec:
    name: str
    fqdn: str
    version: str
    site: str
    edition: str
    nics: tuple[NicSpec, ...]
    transport: TransportSpec
    dns_fault_tolerance: str | None
    transport_running: bool
    queues: tuple[QueueSpec, ...]
    replay: Mapping[str, Path]
    faults: Mapping[str, Any]
    expect_rules: tuple[str, ...]
    # EdgeTransport.exe.config as the host has it, when the scenario gives the file itself (as
    # Get-Content -Raw returns it: decoded, line breaks as in the file); None: the lab writes it.
    edge_config_text: str | None = None
    expect_failed_areas: tuple[str, ...] = ()  # the fact areas exfix must report not collected
    dns_cache: tuple[CacheEntrySpec, ...] = ()  # negative entries of the DNS client cache at load
    # The host's Windows Firewall rules (mock_remoting/exchange/firewall.py); with
    # ``firewall_readable`` false, Get-NetFirewallRule is refused (Access is denied).
    firewall_rules: tuple[FirewallRuleSpec, ...] = ()
    firewall_readable: bool = True
    # Its profiles' Enabled and DefaultOutboundAction (the Domain one decides its DNS traffic).
    firewall_profiles: tuple[FirewallProfileSpec, ...] = ()
    rbac_denied: tuple[str, ...] = ()  # lower-cased Exchange cmdlet names the account may not run
    # The database availability group the Mailbox server is a member of (Get-MailboxServer
    # DatabaseAvailabilityGroup); None: not a member.
    dag: str | None = None

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])

    @property
    def mapi_nic(self) -> NicSpec:
        return next(nic for nic in self.nics if nic.mapi)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    expect_rules: tuple[str, ...]
    organization: Mapping[str, Any]
    dns: Mapping[str, Any]
    exchange_organization: str
    send_connectors: tuple[ConnectorSpec, ...]
    hosts: tuple[HostSpec, ...]
    source: Path
    expect_probe_repeat: int = 1  # the --probe-repeat that expect.rules holds for

    @property
    def ad_domain(self) -> str:
        return str(self.organization["ad_domain"]).lower().rstrip(".")

    @property
    def ad_site(self) -> str:
        return str(self.organization.get("ad_site") or "Default-First-Site-Name")

    def internet_addresses(self) -> frozenset[str]:
        """Every IPv4 address that is an A record in the lab internet (a real mail host)."""
        found: set[str] = set()
        for zone in (self.dns.get("internet") or {}).values():
            for addresses in ((zone or {}).get("a") or {}).values():
                found.update(str(a) for a in addresses or ())
        return frozenset(found)


# --- the file's shape ------------------------------------------------------------------------


def _areas(value: tuple[str, ...]) -> tuple[str, ...]:
    for i, item in enumerate(value):
        if item not in AREA_NAMES:
            raise Invalid(f"{item!r} is not a fact area ({', '.join(AREA_NAMES)})", at=(i,))
    return tuple(dict.fromkeys(value))


@dataclass(frozen=True, slots=True)
class _Expect:
    rules: tuple[str, ...] = field(default=(), metadata=key(check=_rule_ids))
    # The fact areas exfix must report as not collected on the host (exfix's CollectionArea).
    failed_areas: tuple[str, ...] = field(default=(), metadata=key(check=_areas))
    # The --probe-repeat the scenario's expectations hold for (top level only): an intermittent
    # DNS server shows only when the probes ask the same questions more than once.
    probe_repeat: int = field(default=1, metadata=key(check=between(1, PROBE_REPEAT_MAX)))


@dataclass(frozen=True, slots=True)
class _EdgeConfigFile:
    """The host's EdgeTransport.exe.config itself: ``text`` inline, or ``file``, a path
    relative to the scenario file, read as bytes and decoded as Windows PowerShell's Get-Content
    decodes it (by its byte-order mark; without one, as the ANSI code page, Windows-1252)."""

    text: str | None = field(default=None, metadata=key(check=_TEXT))
    file: str | None = None


@dataclass(frozen=True, slots=True)
class _NicFile:
    alias: str = field(metadata=key(check=_TEXT))
    index: int = field(metadata=key(check=between(1, 2**31 - 1)))
    ipv4: str  # an address with an optional /prefix (default /24)
    mapi: bool = False
    gateway: str | None = field(default=None, metadata=key(check=_ipv4))
    dns_servers: tuple[str, ...] = field(default=(), metadata=key(check=_addresses(4)))
    ipv6_dns_servers: tuple[str, ...] = field(default=(), metadata=key(check=_addresses(6)))
    # Without IPv6 servers, Windows lists fec0:0:0:ffff::1-3 on the IPv6 row; false: an empty
    # row, as the Exchange 2016 capture in ../shared/fixtures shows (agent/model/dns_servers.py).
    ipv6_dns_placeholders: bool = True
    dhcp_dns_servers: tuple[str, ...] = field(default=(), metadata=key(check=_addresses(4)))
    register: bool = True
    use_suffix: bool = False
    suffix: str = ""
    description: str = field(default="Microsoft Hyper-V Network Adapter", metadata=key(check=_TEXT))
    mac: str | None = None  # default: from the index


@dataclass(frozen=True, slots=True)
class _HostFile:
    name: str
    version: str
    nics: tuple[_NicFile, ...]
    fqdn: str | None = None  # default: name.<AD domain>
    site: str | None = field(default=None, metadata=key(check=_TEXT))  # default: the organization's
    dag: str | None = field(default=None, metadata=key(check=_TEXT))  # not a DAG member by default
    edition: str = field(default="Standard", metadata=key(check=_TEXT))
    transport: TransportSpec = TransportSpec()
    dns_fault_tolerance: FaultTolerance | None = field(default=None, metadata=_CHOICE)
    edge_transport_config: _EdgeConfigFile | None = None
    transport_service: Literal["Running", "Stopped"] = field(default="Running", metadata=_CHOICE)
    queues: tuple[QueueSpec, ...] = ()
    replay: Mapping[str, str] = field(default_factory=dict)  # cmdlet -> Export-Clixml capture
    faults: Mapping[str, Any] = field(default_factory=dict)  # mock_remoting/server/faults.py reads them
    # Exchange cmdlets the account's RBAC roles do not grant: the remote session does not
    # export them, so calling one fails as an unknown command does.
    rbac_denied: tuple[str, ...] = field(default=(), metadata=key(check=_cmdlet_names))
    expect: _Expect = _Expect()
    dns_cache: tuple[CacheEntrySpec, ...] = ()
    firewall_rules: tuple[FirewallRuleSpec, ...] = ()
    firewall_readable: bool = True
    firewall_profiles: tuple[FirewallProfileSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class _ScenarioFile:
    description: str = field(metadata=key(check=_TEXT))
    organization: Mapping[str, Any]  # DnsWorld validates it, and dns
    dns: Mapping[str, Any]
    hosts: tuple[_HostFile, ...]
    name: str | None = field(default=None, metadata=key(check=_TEXT))  # default: the file's stem
    expect: _Expect = _Expect()
    exchange_organization: str = field(default="First Organization", metadata=key(check=_TEXT))
    send_connectors: tuple[ConnectorSpec, ...] = ()


# An empty ``queues:`` or ``send_connectors:`` is common in hand-written scenarios: it means none.
_DOCUMENT = Document(
    _ScenarioFile, ScenarioError, what="a scenario", dotted_indexes=True, null_is_absent=True
)


# --- loading -------------------------------------------------------------------------------


def scenario_path(name_or_path: str | Path) -> Path:
    """A bare name means a shipped scenario; anything with a separator or suffix is a path."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or "\\" in text or text.endswith((".yaml", ".yml")):
        return Path(name_or_path)
    return SCENARIO_DIR / f"{text}.yaml"


def shipped_scenarios() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))


def load_scenario(name_or_path: str | Path, *, hosts: int | None = None) -> Scenario:
    """Load and validate a scenario. ``hosts=N`` clones the hosts round-robin into N hosts.

    Raises :class:`agent.errors.ScenarioError` (file, line, key, one-line problem) for any problem.
    """
    path = scenario_path(name_or_path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(shipped_scenarios())
        raise ScenarioError(source, f"no such scenario file (shipped scenarios: {known})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(source, f"cannot read: {error}") from None
    scenario = _Builder(_DOCUMENT.read_yaml(text, source=source), path).scenario()
    if hosts is not None:
        scenario = scale_fleet(scenario, hosts)
    return scenario


class _Builder:
    """The checks across values, on a scenario that was read; errors name the file's line."""

    def __init__(self, loaded: Loaded[_ScenarioFile], path: Path) -> None:
        self.loaded = loaded
        self.fail = loaded.fail
        self.path = path

    def scenario(self) -> Scenario:
        top = self.loaded.value
        try:
            world = DnsWorld.from_scenario(top.dns, top.organization, source=self.loaded.source)
        except ScenarioError as error:
            raise self.loaded.locate(error) from None
        site = str(top.organization.get("ad_site") or "Default-First-Site-Name")
        if not top.hosts:
            raise self.fail(("hosts",), "expected at least one host")
        hosts = tuple(
            self.host(item, ("hosts", i), world.ad_domain, site, world) for i, item in enumerate(top.hosts)
        )
        self.unique(hosts)
        connectors = tuple(
            self.connector(item, ("send_connectors", i), hosts) for i, item in enumerate(top.send_connectors)
        )
        names = [c.name.lower() for c in connectors]
        for i, cname in enumerate(names):
            if cname in names[:i]:
                raise self.fail(
                    ("send_connectors", i, "name"), f"connector {connectors[i].name!r} is listed twice"
                )
        for i, raw_host in enumerate(top.hosts):
            if raw_host.expect.probe_repeat != 1:
                raise self.fail(("hosts", i, "expect", "probe_repeat"),
                                "is the scan's, not a host's: give it in the top-level expect")
        host_rules = [r for h in hosts for r in h.expect_rules]
        if any(h.expect_rules for h in hosts) and set(host_rules) != set(top.expect.rules):
            raise self.fail(
                ("expect", "rules"),
                f"must be the union of the hosts' expect.rules ({', '.join(sorted(set(host_rules)))})",
            )
        host_areas = {a for h in hosts for a in h.expect_failed_areas}
        if host_areas != set(top.expect.failed_areas) and (host_areas or any(h.expect_rules for h in hosts)):
            raise self.fail(
                ("expect", "failed_areas"),
                f"must be the union of the hosts' expect.failed_areas ({', '.join(sorted(host_areas))})",
            )
        return Scenario(
            name=self.path.stem if top.name is None else top.name,
            description=top.description,
            expect_rules=top.expect.rules,
            expect_probe_repeat=top.expect.probe_repeat,
            organization=top.organization,
            dns=top.dns,
            exchange_organization=top.exchange_organization,
            send_connectors=connectors,
            hosts=hosts,
            source=self.path,
        )

    def unique(self, hosts: Sequence[HostSpec]) -> None:
        seen_names: dict[str, int] = {}
        seen_addresses: dict[str, str] = {}
        for i, host in enumerate(hosts):
            for label in (host.name.lower(), host.fqdn):
                if label in seen_names:
                    raise self.fail(("hosts", i, "name"), f"host {label!r} is listed twice")
                seen_names[label] = i
            for j, nic in enumerate(host.nics):
                if nic.ipv4 in seen_addresses:
                    raise self.fail(
                        ("hosts", i, "nics", j, "ipv4"),
                        f"{nic.ipv4} is already used by {seen_addresses[nic.ipv4]}",
                    )
                seen_addresses[nic.ipv4] = host.name

    def host(self, entry: _HostFile, where: KeyPath, ad_domain: str, site: str, world: DnsWorld) -> HostSpec:
        name = entry.name
        if not _HOST_NAME.match(name):
            raise self.fail(
                (*where, "name"),
                f"{name!r} is not a NetBIOS-style server name (1-15 letters, digits or hyphens)",
            )
        fqdn = (entry.fqdn or f"{name}.{ad_domain}").lower().rstrip(".")
        if not fqdn.endswith("." + ad_domain):
            raise self.fail((*where, "fqdn"), f"{fqdn!r} is not in the AD domain {ad_domain!r}")
        match = _VERSION.match(entry.version)
        if not match:
            raise self.fail((*where, "version"), f"{entry.version!r} is not a build number like 15.2.1118.7")
        if match.group(1) == "8":
            # Exchange 2007 has no remote PowerShell (EXCHANGE_FACTS): nothing to emulate.
            raise self.fail(
                (*where, "version"), "Exchange 2007 (8.x) has no remote PowerShell; use 14.x or 15.x"
            )
        nics = tuple(self.nic(item, (*where, "nics", i), world) for i, item in enumerate(entry.nics))
        if sum(1 for n in nics if n.mapi) != 1:
            raise self.fail((*where, "nics"), "exactly one NIC must have mapi: true (the MAPI/primary NIC)")
        for i, nic in enumerate(nics):
            for j, other in enumerate(nics[:i]):
                if nic.index == other.index:
                    raise self.fail(
                        (*where, "nics", i, "index"), f"index {nic.index} is also used by nics.{j}"
                    )
                if nic.alias.lower() == other.alias.lower():
                    raise self.fail(
                        (*where, "nics", i, "alias"), f"alias {nic.alias!r} is also used by nics.{j}"
                    )
        transport = entry.transport
        self.listed_servers(
            transport.external_dns_servers, (*where, "transport", "external_dns_servers"), world
        )
        self.listed_servers(
            transport.internal_dns_servers, (*where, "transport", "internal_dns_servers"), world
        )
        queues = tuple(
            self.queue(item, (*where, "queues", i), ad_domain) for i, item in enumerate(entry.queues)
        )
        replay: dict[str, Path] = {}
        for cmdlet, raw_path in entry.replay.items():
            at = (*where, "replay", cmdlet)
            if not _CMDLET.match(cmdlet):
                raise self.fail(at, "expected a cmdlet name such as Get-DnsClient")
            capture = Path(raw_path)
            if not capture.is_absolute():
                capture = (self.path.parent / capture).resolve()
            if not capture.is_file():
                raise self.fail(at, f"capture file not found: {capture}")
            replay[cmdlet.lower()] = capture
        edge_text = self.edge_config(entry, where)
        return HostSpec(
            name=name,
            fqdn=fqdn,
            version=entry.version,
            site=site if entry.site is None else entry.site,
            edition=entry.edition,
            nics=nics,
            transport=transport,
            dns_fault_tolerance=entry.dns_fault_tolerance,
            transport_running=entry.transport_service == "Running",
            queues=queues,
            replay=replay,
            faults=dict(entry.faults),
            expect_rules=entry.expect.rules,
            edge_config_text=edge_text,
            expect_failed_areas=entry.expect.failed_areas,
            dns_cache=entry.dns_cache,
            firewall_rules=self.firewall_rules(entry, where),
            firewall_readable=entry.firewall_readable,
            firewall_profiles=self.firewall_profiles(entry, where),
            rbac_denied=entry.rbac_denied,
            dag=entry.dag,
        )

    def firewall_rules(self, entry: _HostFile, where: KeyPath) -> tuple[FirewallRuleSpec, ...]:
        names: list[str] = []
        for i, rule in enumerate(entry.firewall_rules):
            if rule.name.lower() in names:  # Name is the rule's unique key (New-NetFirewallRule docs)
                raise self.fail((*where, "firewall_rules", i, "name"), f"rule {rule.name!r} is listed twice")
            names.append(rule.name.lower())
        return entry.firewall_rules

    def firewall_profiles(self, entry: _HostFile, where: KeyPath) -> tuple[FirewallProfileSpec, ...]:
        seen: list[str] = []
        for i, profile in enumerate(entry.firewall_profiles):
            if profile.name in seen:
                where_name = (*where, "firewall_profiles", i, "name")
                raise self.fail(where_name, f"profile {profile.name} is listed twice")
            seen.append(profile.name)
        return entry.firewall_profiles

    def edge_config(self, entry: _HostFile, where: KeyPath) -> str | None:
        given = entry.edge_transport_config
        if given is None:
            return None
        at = (*where, "edge_transport_config")
        if entry.dns_fault_tolerance is not None:
            raise self.fail(
                (*where, "dns_fault_tolerance"),
                "put DnsFaultTolerance in the edge_transport_config file, not beside it",
            )
        if (given.text is None) == (given.file is None):
            raise self.fail(at, "give exactly one of text (the file inline) or file (a path to it)")
        if given.text is not None:
            if not given.text.strip():
                raise self.fail((*at, "text"), "the file is empty")
            return given.text
        assert given.file is not None
        path = Path(given.file)
        if not path.is_absolute():
            path = (self.path.parent / path).resolve()
        try:
            data = path.read_bytes()
        except OSError as error:
            raise self.fail((*at, "file"), f"cannot read {path}: {error.strerror or error}") from None
        if len(data) > 4 * 1024 * 1024:
            raise self.fail((*at, "file"), f"{path} is larger than 4 MiB")
        return decode_like_get_content(data)

    def listed_servers(self, servers: Sequence[str], where: KeyPath, world: DnsWorld) -> None:
        # Every server a host starts with must exist, so the lab runs a responder for it
        # (an address nobody listed would be silently unreachable: say so instead).
        for i, server in enumerate(servers):
            if not world.has_server(server):
                raise self.fail(
                    (*where, i),
                    f"DNS server {server} is not listed in dns.servers "
                    "(list it, with kind: unreachable if it should not answer)",
                )

    def nic(self, entry: _NicFile, where: KeyPath, world: DnsWorld) -> NicSpec:
        raw_ip = entry.ipv4.strip()
        try:
            interface = ipaddress.IPv4Interface(raw_ip if "/" in raw_ip else f"{raw_ip}/24")
        except ValueError:
            raise self.fail(
                (*where, "ipv4"), f"not an IPv4 address with optional /prefix: {entry.ipv4!r}"
            ) from None
        self.listed_servers(entry.dns_servers, (*where, "dns_servers"), world)
        self.listed_servers(entry.ipv6_dns_servers, (*where, "ipv6_dns_servers"), world)
        index = entry.index
        mac = (entry.mac or f"00-15-5D-00-{(index >> 8) & 0xFF:02X}-{index & 0xFF:02X}").upper()
        if not _MAC.match(mac):
            raise self.fail((*where, "mac"), f"not a MAC address like 00-15-5D-00-0A-02: {mac!r}")
        return NicSpec(
            alias=entry.alias,
            index=index,
            ipv4=str(interface.ip),
            prefix_length=interface.network.prefixlen,
            mapi=entry.mapi,
            gateway=entry.gateway,
            dns_servers=entry.dns_servers,
            ipv6_dns_servers=entry.ipv6_dns_servers,
            ipv6_dns_placeholders=entry.ipv6_dns_placeholders,
            dhcp_dns_servers=entry.dhcp_dns_servers,
            register=entry.register,
            use_suffix=entry.use_suffix,
            suffix=entry.suffix,
            description=entry.description,
            mac=mac,
        )

    def queue(self, entry: QueueSpec, where: KeyPath, ad_domain: str) -> QueueSpec:
        if entry.delivery_type in INTERNAL_DELIVERY_TYPES:
            target = (entry.target or entry.next_hop).lower().rstrip(".")
            if not target.endswith("." + ad_domain):
                raise self.fail(
                    (*where, "target"),
                    f"an internal queue delivers to a server in {ad_domain!r}, got {target!r}",
                )
            return replace(entry, target=target)
        if entry.target is not None:
            raise self.fail(
                (*where, "target"),
                "only internal queues have a target; external queues resolve next_hop through MX records",
            )
        return replace(entry, next_hop=entry.next_hop.lower().rstrip("."))

    def connector(self, entry: ConnectorSpec, where: KeyPath, hosts: Sequence[HostSpec]) -> ConnectorSpec:
        known = {h.name.lower(): h.name for h in hosts} | {h.fqdn: h.name for h in hosts}
        sources: list[str] = []
        for i, server in enumerate(entry.source_transport_servers):
            found = known.get(server.lower())
            if found is None:
                raise self.fail(
                    (*where, "source_transport_servers", i), f"{server!r} is not a host of this scenario"
                )
            sources.append(found)
        if entry.dns_routing_enabled and entry.smart_hosts:
            raise self.fail((*where, "smart_hosts"), "smart hosts need dns_routing_enabled: false")
        if not entry.dns_routing_enabled and not entry.smart_hosts:
            raise self.fail(
                (*where, "smart_hosts"), "dns_routing_enabled: false needs at least one smart host"
            )
        return replace(entry, source_transport_servers=tuple(sources))


def decode_like_get_content(data: bytes) -> str:
    """A file's bytes as Windows PowerShell 5.1's Get-Content -Raw returns them: decoded by the
    byte-order mark, which it drops (UTF-8, UTF-16 LE or BE), else as the system's ANSI code
    page (Windows-1252 on an en-US server); line breaks are kept as they are in the file
    ("Get-Content", PowerShell docs: -Raw returns the whole file as one string, newlines
    preserved)."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, errors="replace")
    return data.decode("cp1252", errors="replace")


# --- address spaces ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressSpace:
    type: str
    domain: str  # lower case; "*" or "*.example.com" or "example.com"
    cost: int

    def matches(self, domain: str) -> int | None:
        """How specifically this space matches ``domain``: None for no match, else a score
        (longer is more specific; an exact name beats a wildcard of the same length)."""
        if self.type.upper() != "SMTP":
            return None
        name = domain.lower().rstrip(".")
        if self.domain == "*":
            return 0
        if self.domain.startswith("*."):
            base = self.domain[2:]
            if name == base or name.endswith("." + base):
                return 2 * len(base)
            return None
        return 2 * len(self.domain) + 1 if name == self.domain else None


_SPACE = re.compile(r"^(?:(?P<type>[A-Za-z0-9]+):)?(?P<domain>[^;:\s]+)(?:;(?P<cost>\d{1,3}))?$")


def parse_address_space(text: str) -> AddressSpace | None:
    """``SMTP:contoso.com;1``, ``contoso.com;2``, ``SMTP:*``, ``*.contoso.com`` (cost 1-100)."""
    match = _SPACE.match(text.strip())
    if not match:
        return None
    cost = int(match.group("cost") or 1)
    domain = match.group("domain").lower().rstrip(".")
    if not 1 <= cost <= 100 or not re.match(r"^(\*|(\*\.)?[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?)$", domain):
        return None
    return AddressSpace((match.group("type") or "SMTP").upper(), domain, cost)


def format_address_space(space: AddressSpace) -> str:
    return f"{space.type}:{space.domain};{space.cost}"


# --- fleets for benchmarks -----------------------------------------------------------------


def scale_fleet(scenario: Scenario, count: int) -> Scenario:
    """An ``count``-host fleet cloned round-robin from the scenario's hosts.

    Clones get unique names (``EX01-2``), FQDNs in the same AD domain and NIC addresses from
    10.200.0.0/16, so they never collide with the scenario's own addresses. A connector whose
    source servers include a template host also lists that host's clones.
    """
    if count < 1:
        raise ScenarioError(str(scenario.source), f"hosts must be at least 1, got {count}", key="hosts")
    templates = scenario.hosts
    used = {nic.ipv4 for host in templates for nic in host.nics}
    pool = (str(ip) for ip in ipaddress.IPv4Network("10.200.0.0/16").hosts() if str(ip) not in used)
    hosts: list[HostSpec] = []
    clones_of: dict[str, list[str]] = {t.name: [] for t in templates}
    for i in range(count):
        template = templates[i % len(templates)]
        if i < len(templates):
            hosts.append(template)
            continue
        generation = i // len(templates) + 1
        name = f"{template.name[:9]}-{generation}"
        fqdn = f"{name.lower()}.{scenario.ad_domain}"
        nics = tuple(replace(nic, ipv4=next(pool)) for nic in template.nics)
        # A queue that delivers to the template itself delivers to the clone itself.
        queues = tuple(replace(q, target=fqdn) if q.target == template.fqdn else q for q in template.queues)
        # The clones of one generation form DAGs of their own, as the templates do: a DAG has at
        # most 16 members, and a fleet of N is many DAGs, not one of N.
        dag = None if template.dag is None else f"{template.dag}-{generation}"
        hosts.append(replace(template, name=name, fqdn=fqdn, nics=nics, queues=queues, dag=dag))
        clones_of[template.name].append(name)
    names = [h.name.lower() for h in hosts]
    if len(set(names)) != len(names):
        raise ScenarioError(
            str(scenario.source), "cloned host names collide; shorten the template names", key="hosts"
        )
    connectors = tuple(
        replace(
            c,
            source_transport_servers=tuple(
                s
                for server in c.source_transport_servers
                if server.lower() in names
                for s in (server, *clones_of.get(server, ()))
            ),
        )
        for c in scenario.send_connectors
    )
    return replace(scenario, hosts=tuple(hosts), send_connectors=connectors)
