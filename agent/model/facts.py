"""Facts about one Exchange host: everything the rules read, as frozen plain data.

The collectors (agent/collect) build these from remote objects; the rules (agent/rules) read
them and nothing else. A snapshot of them can be saved and evaluated again offline
(agent/model/snapshot.py), so every field here is plain data: str, int, bool, None, enums,
tuples and nested frozen dataclasses.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

from agent.model import dns_servers as _dns_servers
from agent.model.probe import DnsQueryResult, Outcome, Vantage


class TransportNoun(str, enum.Enum):
    """The noun of the transport cmdlets: Get-/Set-TransportServer on Exchange 2010 (14.x),
    Get-/Set-TransportService from Exchange 2013 (15.x) on."""

    TRANSPORT_SERVER = "TransportServer"
    TRANSPORT_SERVICE = "TransportService"


@dataclass(frozen=True, slots=True)
class ExchangeServerFacts:
    """What Get-ExchangeServer says about the host."""

    name: str
    fqdn: str
    domain: str
    ad_site: str
    version: str  # "15.1.2375.7"
    major: int
    minor: int
    build: int
    revision: int
    admin_display_version: str  # as shown: "Version 15.1 (Build 2375.7)"
    roles: tuple[str, ...]
    transport_noun: TransportNoun
    edition: str = ""
    # The Exchange organisation the server belongs to, read from its DistinguishedName
    # ("CN=<server>,CN=Servers,...,CN=<organisation>,CN=Microsoft Exchange,CN=Services,
    # CN=Configuration,DC=..."): "<organisation>@<forest>". Empty where the DN was not shown.
    organization: str = ""
    # The database availability group the server is a member of (Get-MailboxServer
    # DatabaseAvailabilityGroup): "" for none, None where it is not known (not read, not a
    # Mailbox server, or the read failed). apply never restarts two members of one DAG at once.
    dag: str | None = None


@dataclass(frozen=True, slots=True)
class DnsLookupSettings:
    """One side (external or internal) of a transport server's DNS lookup settings."""

    adapter_enabled: bool  # True: the NIC's DNS servers are used and ``servers`` is ignored
    servers: tuple[str, ...]
    adapter_guid: str  # all zeros means "any adapter"
    protocol_option: str  # Any, UseTcpOnly, UseUdpOnly

    @property
    def configured_servers(self) -> tuple[str, ...]:
        """``servers`` as configured DNS servers (agent/model/dns_servers.py)."""
        return _dns_servers.configured(self.servers)


ZERO_GUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True, slots=True)
class TransportDnsFacts:
    """Get-TransportService (15.x) / Get-TransportServer (14.x) DNS settings."""

    external: DnsLookupSettings
    internal: DnsLookupSettings


class QueueErrorKind(str, enum.Enum):
    """The class of a queue's LastError (DESIGN.md: queue-dns-failure)."""

    ERROR_RETRY = "ErrorRetry"
    NON_EXISTENT_DOMAIN = "NonExistentDomain"
    SERVER_FAILURE = "ServerFailure"
    ERROR_TIMEOUT = "ErrorTimeout"
    OTHER_DNS = "OtherDnsError"  # a DNS query failure with a code exfix does not know
    NOT_DNS = "NotDnsError"  # an error, but not a DNS one (e.g. 421 4.2.1 unable to connect)
    NONE = "None"  # no LastError

    @property
    def is_dns(self) -> bool:
        return self not in (QueueErrorKind.NOT_DNS, QueueErrorKind.NONE)


@dataclass(frozen=True, slots=True)
class QueueError:
    """A parsed Get-Queue LastError. ``raw`` is kept as the host sent it (untrusted text)."""

    raw: str
    kind: QueueErrorKind
    dns_code: str = ""  # the code as written: "ErrorRetry", "SMTPSEND.DNS.NonExistentDomain"
    status_code: str = ""  # "451 4.4.0" where present
    last_retry_time: str = ""  # structured form: {LRT=...}
    description: str = ""  # structured form: {LED=...}; otherwise the raw text
    target_fqdn: str = ""  # structured form: {FQDN=...}
    target_ip: str = ""  # structured form: {IP=...}


# Get-Queue DeliveryType values that carry mail inside the organisation. The docs spell the AD
# site relay both ways (SmtpRelayToRemoteAdSite / SmtpRelayToRemoteActiveDirectorySite);
# compared lower-case.
INTERNAL_DELIVERY_TYPES = frozenset(
    t.lower()
    for t in (
        "SmtpRelayToRemoteAdSite",
        "SmtpRelayToRemoteActiveDirectorySite",
        "SmtpRelayToDag",
        "SmtpRelayToMailboxDeliveryGroup",
        "SmtpRelayToServers",
        "SmtpRelayToConnectorSourceServers",
        "SmtpRelayToTiRg",
        "SmtpDeliveryToMailbox",
        "SmtpRelayWithinAdSite",
        "SmtpRelayWithinAdSiteToEdge",
        "MapiDelivery",
    )
)
EXTERNAL_DELIVERY_TYPES = frozenset(t.lower() for t in ("DnsConnectorDelivery", "SmartHostConnectorDelivery"))
# Queues that hold mail without a DNS lookup of their own.
_NON_DELIVERY_TYPES = frozenset(
    t.lower() for t in ("ShadowRedundancy", "Unreachable", "Submission", "Poison")
)


class QueueScope(str, enum.Enum):
    INTERNAL = "internal"
    EXTERNAL = "external"
    OTHER = "other"  # shadow redundancy, unreachable, submission...


@dataclass(frozen=True, slots=True)
class QueueFacts:
    """One Get-Queue row."""

    identity: str
    delivery_type: str
    status: str
    message_count: int
    next_hop_domain: str
    next_hop_category: str
    next_hop_connector: str
    last_error: QueueError
    # Get-Queue's rates (Exchange 2013 on): messages per 5 seconds averaged over the last 60,
    # Velocity = OutgoingRate - IncomingRate ("Exchange 2013 Queue Velocity",
    # letsexchange.blogspot.com, 2014-12-08; the ExtensibleQueueInfo properties of the Exchange
    # API reference). None where the server does not show them (Exchange 2010) or an older
    # facts file was saved without them.
    incoming_rate: float | None = None
    outgoing_rate: float | None = None
    velocity: float | None = None
    first_retry_time: str = ""  # as the host wrote it; "" when never retried
    last_retry_time: str = ""
    retry_count: int = 0

    @property
    def scope(self) -> QueueScope:
        delivery = self.delivery_type.lower()
        if delivery in INTERNAL_DELIVERY_TYPES:
            return QueueScope.INTERNAL
        if delivery in EXTERNAL_DELIVERY_TYPES:
            # A DNS-connector queue to another Exchange org in the forest is still "Internal".
            return (
                QueueScope.INTERNAL if self.next_hop_category.lower() == "internal" else QueueScope.EXTERNAL
            )
        if delivery in _NON_DELIVERY_TYPES:
            return QueueScope.OTHER
        # Undefined, or a type exfix does not know: the next hop's category still says where it goes.
        category = self.next_hop_category.lower()
        if category == "internal":
            return QueueScope.INTERNAL
        if category == "external":
            return QueueScope.EXTERNAL
        return QueueScope.OTHER

    @property
    def failing_dns(self) -> bool:
        """In Retry with a DNS LastError, or holding messages in Ready/Active with one (an
        unreachable DNS server leaves messages sitting in Ready: "Bad NIC Settings Cause
        Internal Messages to Queue with 451 4.4.0 DNS query failed (nonexistent domain)",
        exchangemaster.wordpress.com, 2014-04-15; the URL is in README.md, Sources)."""
        if not self.last_error.kind.is_dns:
            return False
        status = self.status.lower()
        return status == "retry" or (status in ("ready", "active", "connecting") and self.message_count > 0)

    @property
    def stuck_in_ready(self) -> bool:
        """Holding messages in Ready with no LastError while nothing leaves it: OutgoingRate 0
        (no message left in the last minute) and Velocity not positive (it is not draining).
        An unreachable DNS server leaves messages there rather than in Retry: the lookup
        never completes, so no attempt fails (the exchangemaster.wordpress.com article cited
        at failing_dns). Not judged without the rates (Exchange 2010 has none)."""
        if self.status.lower() != "ready" or self.message_count <= 0 or self.last_error.kind.is_dns:
            return False
        if self.last_error.kind is not QueueErrorKind.NONE or self.outgoing_rate is None:
            return False
        return self.outgoing_rate <= 0 and (self.velocity is None or self.velocity <= 0)

    @property
    def delivering(self) -> bool:
        """No error and not in Retry, and not stuck: the queue's next hop currently works."""
        return (
            self.last_error.kind is QueueErrorKind.NONE
            and self.status.lower() in ("active", "ready")
            and not self.stuck_in_ready
        )


@dataclass(frozen=True, slots=True)
class SendConnectorFacts:
    """One Get-SendConnector row."""

    name: str
    address_spaces: tuple[str, ...]  # as Exchange shows them: "SMTP:*;1"
    smart_hosts: tuple[str, ...]
    dns_routing_enabled: bool
    use_external_dns_servers_enabled: bool
    source_transport_servers: tuple[str, ...]
    enabled: bool
    cost: int | None = None  # the lowest address-space cost
    # Outbound mail goes through the Front End Transport service, "where destination specific
    # routing, such as DNS or IP address, is set" (Set-SendConnector docs, FrontendProxyEnabled):
    # the recipient's MX/A lookups are then Front End Transport's, with its own DNS settings
    # (Set-FrontendTransportService -ExternalDNS*/-InternalDNS*), not the Transport service's.
    frontend_proxy_enabled: bool = False
    # source_transport_servers as sources() compares them, made once: a connector of a large
    # organisation lists hundreds of servers, and every host's rules ask it, so normalizing
    # the list at each call made a fleet's evaluation grow with the square of its size (not
    # part of the facts: init=False fields are neither compared nor written).
    _source_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = frozenset(s.strip().lower().rstrip(".") for s in self.source_transport_servers)
        object.__setattr__(self, "_source_names", names)

    @property
    def domains(self) -> tuple[str, ...]:
        """The SMTP address-space domains ("*" for the internet), lower case."""
        out: list[str] = []
        for space in self.address_spaces:
            text = space.strip()
            kind, sep, rest = text.partition(":")
            if not sep:
                kind, rest = "smtp", text
            if kind.strip().lower() != "smtp":
                continue
            domain = rest.split(";", 1)[0].strip().lower()
            if domain:
                out.append(domain)
        return tuple(out)

    @property
    def is_internet(self) -> bool:
        """Routes the whole internet (address space ``*``)."""
        return "*" in self.domains

    def sources(self, *names: str) -> bool:
        """True when one of ``names`` (a server's name or FQDN) is a SourceTransportServer, or
        when the connector lists none (nothing then says which servers it is not for)."""
        if not self.source_transport_servers:
            return True
        wanted = {n.strip().lower().rstrip(".") for n in names if n.strip()}
        wanted |= {n.split(".", 1)[0] for n in wanted}
        return not self._source_names.isdisjoint(wanted)

    def match(self, domain: str) -> tuple[int, int] | None:
        """How well an address space of this connector fits ``domain``: (specificity, -cost) of
        the best one, higher is better, or None when none does. Exchange routes a domain through
        the connector with the most specific matching address space, then the lowest cost ("Mail
        routing in Exchange Server", learn.microsoft.com: selecting the connector for an external
        recipient)."""
        wanted = domain.strip().lower().rstrip(".")
        best: tuple[int, int] | None = None
        for space in self.address_spaces:
            kind, sep, rest = space.strip().partition(":")
            if not sep:
                kind, rest = "smtp", space.strip()
            if kind.strip().lower() != "smtp":
                continue
            name, _, cost_text = rest.partition(";")
            name = name.strip().lower()
            try:
                cost = int(cost_text.strip()) if cost_text.strip() else 1
            except ValueError:
                cost = 1
            if name == "*":
                specificity = 0
            elif name == wanted:
                specificity = 1000
            elif name.startswith("*.") and wanted.endswith(name[1:]):
                specificity = len(name)
            else:
                continue
            candidate = (specificity, -cost)
            if best is None or candidate > best:
                best = candidate
        return best

    def covers(self, domain: str) -> bool:
        wanted = domain.strip().lower().rstrip(".")
        for space in self.domains:
            if space == "*" or space == wanted:
                return True
            if space.startswith("*.") and wanted.endswith(space[1:]):
                return True
        return False


@dataclass(frozen=True, slots=True)
class NicFacts:
    """One network interface, joined from Get-DnsClient, Get-DnsClientServerAddress and
    Get-NetIPConfiguration by InterfaceIndex.

    ``ipv4_dns_servers`` and ``ipv6_dns_servers`` are the ServerAddresses as Windows listed
    them (Windows' fec0:0:0:ffff::1-3 placeholders included). What the rules, the probes and
    the planners judge is :attr:`dns_servers`: the configured servers among them, by the one
    definition in agent/model/dns_servers.py."""

    interface_index: int
    interface_alias: str
    register_this_connections_address: bool | None  # None: Get-DnsClient had no row for it
    use_suffix_when_registering: bool | None = None
    connection_specific_suffix: str = ""
    ipv4_dns_servers: tuple[str, ...] = ()
    ipv6_dns_servers: tuple[str, ...] = ()
    ipv4_addresses: tuple[str, ...] = ()
    ipv6_addresses: tuple[str, ...] = ()
    ipv4_default_gateways: tuple[str, ...] = ()
    ipv6_default_gateways: tuple[str, ...] = ()
    interface_description: str = ""
    interface_guid: str = ""

    @property
    def label(self) -> str:
        return f"NIC {self.interface_alias!r} (InterfaceIndex {self.interface_index})"

    @property
    def listed_dns_servers(self) -> tuple[str, ...]:
        """Every ServerAddresses entry as shown, IPv4 first."""
        return self.ipv4_dns_servers + self.ipv6_dns_servers

    @property
    def dns_servers(self) -> tuple[str, ...]:
        """The configured DNS servers, IPv4 first (agent/model/dns_servers.py)."""
        return _dns_servers.configured(self.listed_dns_servers)

    @property
    def not_dns_servers(self) -> tuple[tuple[str, str], ...]:
        """The entries of ServerAddresses that are no configured server, with why."""
        return _dns_servers.set_aside(self.listed_dns_servers)

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.ipv4_addresses + self.ipv6_addresses

    @property
    def default_gateways(self) -> tuple[str, ...]:
        return self.ipv4_default_gateways + self.ipv6_default_gateways


@dataclass(frozen=True, slots=True)
class NicSelection:
    """Which NIC is the MAPI/primary one, and why (the reason is shown as evidence)."""

    interface_index: int | None
    reason: str
    fqdn_addresses: tuple[str, ...] = ()  # what the host's FQDN resolved to, when known


@dataclass(frozen=True, slots=True)
class EdgeTransportConfigFacts:
    """DnsFaultTolerance from <MsiInstallPath>Bin\\EdgeTransport.exe.config."""

    config_path: str
    dns_fault_tolerance: str  # the effective value: "Lenient" when the key is absent
    key_present: bool

    @property
    def is_lenient(self) -> bool:
        return self.dns_fault_tolerance.strip().lower() == "lenient"


@dataclass(frozen=True, slots=True)
class XmlSyntaxError:
    """Where a document stops being well-formed XML, and the XML parser's words for why.

    ``line`` and ``column`` are 1-based and count characters (not bytes), as .NET's
    XmlException shows them ("Line 9, position 1"); ``text`` is that line as read (untrusted
    text from the host, cut to a readable length)."""

    line: int
    column: int
    message: str  # "not well-formed (invalid token)", "mismatched tag", ...
    text: str = ""


@dataclass(frozen=True, slots=True)
class EdgeConfigFileFacts:
    """<MsiInstallPath>Bin\\EdgeTransport.exe.config as Get-Content -Raw read it: where it is,
    and whether it is well-formed XML. The settings in it are EdgeTransportConfigFacts, which
    exist only where this file could be parsed."""

    config_path: str
    xml_error: XmlSyntaxError | None = None  # None: well-formed

    @property
    def well_formed(self) -> bool:
        return self.xml_error is None


# MSFT_DNSClientCache.Status is the Win32 status of the cached answer ("System Error Codes
# (9000-11999)", learn.microsoft.com): 0 an answer, DNS_ERROR_RCODE_NAME_ERROR 9003 "DNS name
# does not exist" (Get-DnsClientCache shows it as NotExist), DNS_INFO_NO_RECORDS 9501 "No
# records found for given DNS query" (NoRecords). The last two are negative entries: until
# their TimeToLive runs out, the DNS Client service answers the name from them without asking a
# server (the DNS Client service's MaxNegativeCacheTtl, KB318803).
DNS_STATUS_SUCCESS = 0
DNS_STATUS_NAME_ERROR = 9003
DNS_STATUS_NO_RECORDS = 9501
DNS_STATUS_WORDS = {DNS_STATUS_SUCCESS: "Success", DNS_STATUS_NAME_ERROR: "NotExist",
                    DNS_STATUS_NO_RECORDS: "NoRecords"}  # fmt: skip
NEGATIVE_DNS_STATUSES = frozenset({DNS_STATUS_NAME_ERROR, DNS_STATUS_NO_RECORDS})

# MSFT_DNSClientCache.Type is the numeric DNS record type (RFC 1035 3.2.2, RFC 3596 for AAAA).
DNS_RECORD_TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
                    33: "SRV"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DnsCacheEntry:
    """One Get-DnsClientCache row (an MSFT_DNSClientCache instance). ``entry`` is the name that
    was asked for (the cache key), ``name`` the record's owner name (they differ behind a
    CNAME); ``record_type`` the numeric type, ``status`` the Win32 status (0, 9003, 9501, ...),
    ``data`` the record data as shown ("" for a negative entry). Names as the host sent them."""

    entry: str
    name: str
    record_type: int
    status: int
    time_to_live: int
    data: str = ""
    section: int = 1  # 1 Answer, 2 Authority, 3 Additional

    @property
    def negative(self) -> bool:
        return self.status in NEGATIVE_DNS_STATUSES

    @property
    def type_name(self) -> str:
        """"A", "MX", ... or "TYPE<n>" for a type exfix does not name (RFC 3597 spelling)."""
        return DNS_RECORD_TYPES.get(self.record_type, f"TYPE{self.record_type}")

    @property
    def status_name(self) -> str:
        return DNS_STATUS_WORDS.get(self.status, str(self.status))

    def names(self) -> tuple[str, ...]:
        """The entry and the record name, normalised, each once."""
        return tuple(dict.fromkeys(normalize_name(n) for n in (self.entry, self.name) if n.strip()))
DNS_PORT = 53
# The host's network profile: an Exchange server is domain-joined, so its network is the
# domain one, and a rule applies to it when its Profile is Any or includes Domain.
HOST_PROFILE = "Domain"


@dataclass(frozen=True, slots=True)
class FirewallRuleFacts:
    """One enabled outbound Windows Firewall rule whose remote port can be 53, joined from
    Get-NetFirewallRule (Name, DisplayName, Direction, Action, Enabled, Profile) and, by
    InstanceID, Get-NetFirewallPortFilter (Protocol, RemotePort) and
    Get-NetFirewallAddressFilter (RemoteAddress). Values as the cmdlets show them: "Any",
    "53", "50-60", "10.0.0.0/24", "10.0.0.1-10.0.0.20", the keyword "DNS"."""

    name: str
    display_name: str
    direction: str  # Outbound
    action: str  # Allow, Block
    enabled: bool
    profile: tuple[str, ...]  # Any, or some of Domain, Private, Public
    protocol: str  # UDP, TCP, Any (or a number)
    remote_port: tuple[str, ...]
    remote_address: tuple[str, ...]
    # Where the rule comes from: "Local" (the PersistentStore, which Disable-NetFirewallRule
    # changes) or "GroupPolicy" (``policy_store_source`` names the GPO; only the GPO can change it).
    policy_store_source_type: str = "Local"
    policy_store_source: str = ""

    @property
    def from_group_policy(self) -> bool:
        return self.policy_store_source_type.strip().lower() == "grouppolicy"

    @property
    def blocks(self) -> bool:
        return self.action.strip().lower() == "block"

    def matches_dns(self, server: str, protocol: str, dns_servers: tuple[str, ...]) -> bool:
        """Whether this rule matches the host's DNS query to ``server`` over ``protocol``."""
        if not self.enabled or self.direction.strip().lower() != "outbound":
            return False
        profiles = {p.strip().lower() for p in self.profile} or {"any"}
        if "any" not in profiles and HOST_PROFILE.lower() not in profiles:
            return False
        proto = self.protocol.strip().lower()
        wanted = {"udp": ("udp", "17"), "tcp": ("tcp", "6")}[protocol.lower()]
        if proto not in ("any", *wanted):
            return False
        if not any(_port_matches(p, DNS_PORT) for p in self.remote_port):
            return False
        return any(_address_matches(a, server, dns_servers) for a in self.remote_address)


def _port_matches(spec: str, port: int) -> bool:
    text = spec.strip()
    if text.lower() == "any":
        return True
    low, sep, high = text.partition("-")
    try:
        return int(low) <= port <= int(high) if sep else int(low) == port
    except ValueError:
        return False  # a keyword (RPC, IPHTTPS...) exfix does not read as port 53


def _address_matches(spec: str, server: str, dns_servers: tuple[str, ...]) -> bool:
    text = spec.strip()
    if text.lower() == "any":
        return True
    try:
        ip = ipaddress.ip_address(server.strip())
    except ValueError:
        return False
    if text.lower() == "dns":  # the keyword: the host's configured DNS servers
        return server in dns_servers
    low, sep, high = text.partition("-")
    try:
        if sep:
            first, last = ipaddress.ip_address(low.strip()), ipaddress.ip_address(high.strip())
            return first.version == ip.version and int(first) <= int(ip) <= int(last)
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False  # another keyword (LocalSubnet, Internet...): not judged as a match
    return network.version == ip.version and ip in network


# A profile's DefaultOutboundAction "NotConfigured" is what a computer's own store shows when
# nobody set it, and it means the computer's default: "The default setting when managing a
# computer is Allow" (Set-NetFirewallProfile docs, -DefaultOutboundAction,
# https://learn.microsoft.com/powershell/module/netsecurity/set-netfirewallprofile). Enabled
# NotConfigured likewise means the default, True.
FIREWALL_DEFAULT_OUTBOUND = "Allow"


@dataclass(frozen=True, slots=True)
class FirewallProfileFacts:
    """One Windows Firewall profile as Get-NetFirewallProfile shows it: Name (Domain, Private,
    Public), Enabled, and DefaultOutboundAction as shown (NotConfigured, Allow, Block): what
    decides outbound traffic that no rule matches."""

    name: str
    enabled: bool
    default_outbound_action: str
    # AllowLocalFirewallRules: False (only group policy sets it) means the rules of the local
    # store are ignored, and only the GPOs' apply (Set-NetFirewallProfile docs).
    allow_local_rules: bool = True

    @property
    def effective_outbound_action(self) -> str:
        """The action for outbound traffic no rule matches: NotConfigured is the default, Allow."""
        action = self.default_outbound_action.strip()
        return FIREWALL_DEFAULT_OUTBOUND if action.lower() in ("", "notconfigured") else action

    @property
    def blocks_by_default(self) -> bool:
        """Outbound traffic that no allow rule matches is dropped (Set-NetFirewallProfile docs:
        "Block: Blocks outbound network traffic that does not match an outbound rule"). A profile
        that is off filters nothing."""
        return self.enabled and self.effective_outbound_action.lower() == "block"


@dataclass(frozen=True, slots=True)
class FirewallFacts:
    """The host's enabled outbound rules that can touch DNS (remote port 53), and its profiles
    (None where they were not read: a snapshot written before exfix read them)."""

    rules: tuple[FirewallRuleFacts, ...]
    profiles: tuple[FirewallProfileFacts, ...] | None = None

    def host_profile(self) -> FirewallProfileFacts | None:
        """The profile that decides the host's traffic (HOST_PROFILE), where it was read."""
        for profile in self.profiles or ():
            if profile.name.strip().lower() == HOST_PROFILE.lower():
                return profile
        return None

    def default_block_without_allow(
        self, server: str, dns_servers: tuple[str, ...]
    ) -> FirewallProfileFacts | None:
        """The host's profile where it blocks outbound traffic by default and no enabled allow
        rule matches the host's UDP query to ``server`` (so the default drops it); None
        otherwise. DNS asks over UDP first (RFC 1035 4.2.1), so UDP decides."""
        profile = self.host_profile()
        if profile is None or not profile.blocks_by_default:
            return None
        return None if self.allowing(server, dns_servers) else profile

    def blocking(self, server: str, dns_servers: tuple[str, ...]) -> tuple[FirewallRuleFacts, ...]:
        """The block rules that drop the host's UDP query to ``server``: DNS asks over UDP first
        (RFC 1035 4.2.1), so these lose the query whatever TCP's rules say. A block rule wins
        over any allow rule that matches too ("block rules take precedence over allow rules",
        MS-FASP 2.2.34 FW_RULE_ACTION, https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-fasp/702e3c23-c9d8-43db-8380-b4c670dd7f7d)."""
        return tuple(r for r in self.rules if r.blocks and r.matches_dns(server, "udp", dns_servers))

    def allowing(self, server: str, dns_servers: tuple[str, ...]) -> tuple[FirewallRuleFacts, ...]:
        return tuple(r for r in self.rules if not r.blocks and r.matches_dns(server, "udp", dns_servers))


@dataclass(frozen=True, slots=True)
class ProbeTargets:
    """The names the DNS probes ask every configured server about.

    ``public_name`` must be a name that exists on the internet (in the lab: a zone of the
    scenario's internet, e.g. fabrikam.com): an NXDOMAIN for it is read as "this server cannot
    resolve internet names" (transport-external-dns-unresolvable).
    """

    ad_srv: str  # _ldap._tcp.dc._msdcs.<AD domain>
    internal_host: str  # an internal Exchange host (by default the host's own FQDN)
    public_name: str  # an internet name every working external resolver can answer

    @classmethod
    def for_domain(cls, ad_domain: str, internal_host: str, public_name: str) -> ProbeTargets:
        return cls(
            ad_srv=f"_ldap._tcp.dc._msdcs.{ad_domain.strip().rstrip('.')}",
            internal_host=internal_host,
            public_name=public_name,
        )


class CollectionArea(str, enum.Enum):
    """A fact area exfix collects with commands of its own (agent/collect/runner.py).

    An area whose commands fail on a host that answered (an ErrorRecord, output that cannot be
    used), or whose output cannot be parsed, costs only itself: it is listed in
    ``CollectionStatus.issues`` with the reason, the host is still scanned with the areas that
    worked, and every rule that reads it (``RuleMetadata.reads``) is reported as not judged on
    that host instead of running on facts that are not there. Get-ExchangeServer is no area:
    without the server object nothing else can be asked (status command-failed)."""

    TRANSPORT = "transport"  # Get-TransportService / Get-TransportServer: the DNS lookup settings
    QUEUES = "queues"  # Get-Queue
    SEND_CONNECTORS = "send_connectors"  # Get-SendConnector, once per organisation
    NICS = "nics"  # Get-DnsClient, Get-DnsClientServerAddress, Get-NetIPConfiguration
    EDGE_CONFIG_FILE = "edge_config_file"  # EdgeTransport.exe.config read whole (Get-Content -Raw)
    EDGE_CONFIG = "edge_config"  # the settings in it (<appSettings>): needs the file, well-formed
    DNS_CACHE = "dns_cache"  # Get-DnsClientCache: the DNS Client service's cache on the host
    FIREWALL = "firewall"  # Get-NetFirewallRule -Direction Outbound -Enabled True, its port/address filters

    @property
    def needs(self) -> tuple[CollectionArea, ...]:
        """The areas this one is read from: when one of them failed, this one failed too."""
        return (CollectionArea.EDGE_CONFIG_FILE,) if self is CollectionArea.EDGE_CONFIG else ()

    @property
    def description(self) -> str:
        return _AREA_DESCRIPTIONS[self]


_AREA_DESCRIPTIONS = {
    CollectionArea.TRANSPORT: "the transport service's DNS lookup settings",
    CollectionArea.QUEUES: "the delivery queues",
    CollectionArea.SEND_CONNECTORS: "the organisation's send connectors",
    CollectionArea.NICS: "the network adapters and their DNS settings",
    CollectionArea.EDGE_CONFIG_FILE: "the EdgeTransport.exe.config file",
    CollectionArea.EDGE_CONFIG: "the settings in EdgeTransport.exe.config",
    CollectionArea.DNS_CACHE: "the DNS client cache",
    CollectionArea.FIREWALL: "the outbound Windows Firewall rules for DNS",
}


@dataclass(frozen=True, slots=True)
class AreaIssue:
    """A fact area that could not be collected, and why (one line)."""

    area: CollectionArea
    reason: str


@dataclass(frozen=True, slots=True)
class CollectionStatus:
    """How the facts were collected. An area that could not be collected is None or empty in
    HostFacts and is listed in ``issues`` with the reason; the rules that read it are not
    judged (agent.evaluate.not_judged)."""

    transport_noun: TransportNoun
    issues: tuple[AreaIssue, ...] = ()

    def issue(self, area: CollectionArea | str) -> AreaIssue | None:
        """Why ``area`` (an area or its name) is missing: its own issue, or that of an area it
        is read from; None when it was collected. ValueError for a name that is no area."""
        area = CollectionArea(area)
        for wanted in (area, *area.needs):
            for issue in self.issues:
                if issue.area is wanted:
                    return issue
        return None

    def collected(self, area: CollectionArea | str) -> bool:
        return self.issue(area) is None

    @property
    def failed_areas(self) -> tuple[CollectionArea, ...]:
        return tuple(dict.fromkeys(issue.area for issue in self.issues))


@dataclass(frozen=True, slots=True)
class OrgFacts:
    """What belongs to the Exchange organisation, not to one server: the send connectors live
    in Active Directory (the configuration partition), so every server of the organisation
    reads the same ones. They are collected once per organisation, from ``collected_from``,
    and every HostFacts of the organisation refers to the same OrgFacts object.

    ``issue`` is set when the organisation's facts could not be read (then ``send_connectors``
    is empty and the rules that need them stay silent)."""

    name: str  # ExchangeServerFacts.organization; "" when the servers did not show it
    send_connectors: tuple[SendConnectorFacts, ...]
    collected_from: str  # the inventory name of the server they were read from
    issue: AreaIssue | None = None


@dataclass(frozen=True, slots=True)
class HostFacts:
    """Everything the rules know about one host, and the organisation it belongs to."""

    host: str  # the inventory name
    exchange: ExchangeServerFacts
    transport: TransportDnsFacts | None
    queues: tuple[QueueFacts, ...]
    org: OrgFacts
    nics: tuple[NicFacts, ...]
    mapi_nic: NicSelection
    edge_config: EdgeTransportConfigFacts | None
    probe_targets: ProbeTargets
    probes: tuple[DnsQueryResult, ...]
    remote_domains: tuple[str, ...]  # remote domains whose MX/A/AAAA were probed
    status: CollectionStatus
    # The file edge_config is read from (exfix.facts/3); None where it was not read.
    edge_config_file: EdgeConfigFileFacts | None = None
    # Get-DnsClientCache; None where it was not read (its issue says why) or where the snapshot
    # holds no cache (one written before exfix read it: then nothing is known of the cache).
    dns_cache: tuple[DnsCacheEntry, ...] | None = None
    # The outbound firewall rules for port 53 (exfix.facts/4); None where they were not read.
    firewall: FirewallFacts | None = None

    @property
    def ad_domain(self) -> str:
        return self.exchange.domain

    @property
    def send_connectors(self) -> tuple[SendConnectorFacts, ...]:
        """The organisation's send connectors (the same for every server of it)."""
        return self.org.send_connectors

    @property
    def mapi(self) -> NicFacts | None:
        if self.mapi_nic.interface_index is None:
            return None
        for nic in self.nics:
            if nic.interface_index == self.mapi_nic.interface_index:
                return nic
        return None

    def probes_for(
        self, *, server: str | None = None, qname: str | None = None, rdtype: str | None = None
    ) -> tuple[DnsQueryResult, ...]:
        """Probe results matching all given criteria (names compared case- and dot-insensitively)."""
        out = []
        for probe in self.probes:
            if server is not None and probe.server != server:
                continue
            if qname is not None and normalize_name(probe.qname) != normalize_name(qname):
                continue
            if rdtype is not None and probe.rdtype.upper() != rdtype.upper():
                continue
            out.append(probe)
        return tuple(out)

    def negative_cache_entries(self, qname: str) -> tuple[DnsCacheEntry, ...]:
        """The host's negative DNS client cache entries for ``qname`` (entry or record name)."""
        wanted = normalize_name(qname)
        return tuple(e for e in self.dns_cache or () if e.negative and wanted in e.names())


def normalize_name(name: str) -> str:
    text = name.strip().lower()
    return text[:-1] if text.endswith(".") else text


def preferred_vantage(results: tuple[DnsQueryResult, ...]) -> tuple[DnsQueryResult, ...]:
    """The host's own view wins: what Resolve-DnsName saw on the Exchange server is what
    transport sees. The orchestrator's probes stand in only where the host could not probe."""
    host_side = tuple(r for r in results if r.vantage is Vantage.HOST)
    return host_side if host_side else results


FAILURE_OUTCOMES = frozenset({Outcome.SERVFAIL, Outcome.REFUSED, Outcome.NXDOMAIN})


# Addresses a DNS server inside an organisation can have. Everything else counts as public,
# including the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) that labs
# and examples use to stand for internet servers; Python's ``is_global`` would call those
# private.
_NON_PUBLIC_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",  # fec0:0:0:ffff::1-3: the placeholders Windows shows when no IPv6 DNS is set
    )
)


def is_public_address(address: str) -> bool:
    """True for an address outside the private, loopback, link-local and unique-local ranges
    (8.8.8.8 is public, 10.0.0.10 is not). Not an address at all: False."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not any(ip.version == net.version and ip in net for net in _NON_PUBLIC_NETWORKS)
