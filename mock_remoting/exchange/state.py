"""The mutable state of an emulated organisation: NICs, transport settings, connectors, queues.

One :class:`Organization` holds every host of a fleet because Exchange configuration is
organisation-wide (send connectors live in AD and Get-TransportService lists every server).
A single re-entrant lock guards all of it; cmdlets take it for their whole run, so each
cmdlet is atomic as seen by the others (the protocol server runs pipelines on many threads).
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from mock_remoting.dns.world import DnsWorld
from mock_remoting.exchange import edgeconfig, firewall
from mock_remoting.exchange.scenario import (
    AddressSpace,
    CacheEntrySpec,
    ConnectorSpec,
    HostSpec,
    NicSpec,
    QueueSpec,
    Scenario,
    parse_address_space,
)

Clock = Callable[[], datetime.datetime]

# What Get-DnsClientServerAddress lists on the IPv6 row of an interface without an IPv6 DNS
# server (the Loopback Pseudo-Interface and an Ethernet adapter with IPv4 DNS only alike).
# The lab keeps its own copy of what Windows shows, so that exfix's reading of it is tested,
# not echoed.
WINDOWS_IPV6_DNS_DEFAULTS = ("fec0:0:0:ffff::1", "fec0:0:0:ffff::2", "fec0:0:0:ffff::3")


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def stable_guid(*parts: str) -> uuid.UUID:
    """Deterministic GUIDs, so two loads of a scenario show the same identities."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "exfix-lab:" + "/".join(p.lower() for p in parts))


@dataclass
class Nic:
    alias: str
    index: int
    ipv4: str
    prefix_length: int
    mapi: bool
    gateway: str | None
    dns_servers: list[str]
    ipv6_dns_servers: list[str]
    ipv6_dns_placeholders: bool
    dhcp_dns_servers: list[str]
    register: bool
    use_suffix: bool
    suffix: str
    description: str
    mac: str
    guid: uuid.UUID

    @classmethod
    def from_spec(cls, spec: NicSpec, host: str) -> Nic:
        return cls(
            spec.alias,
            spec.index,
            spec.ipv4,
            spec.prefix_length,
            spec.mapi,
            spec.gateway,
            list(spec.dns_servers),
            list(spec.ipv6_dns_servers),
            spec.ipv6_dns_placeholders,
            list(spec.dhcp_dns_servers),
            spec.register,
            spec.use_suffix,
            spec.suffix,
            spec.description,
            spec.mac,
            stable_guid(host, "nic", str(spec.index)),
        )

    @property
    def servers(self) -> list[str]:
        """The DNS servers the interface is configured with, IPv4 first (the DNS client asks
        both families' servers)."""
        return self.dns_servers + self.ipv6_dns_servers

    @property
    def shown_ipv6_dns_servers(self) -> list[str]:
        """The IPv6 row as Get-DnsClientServerAddress shows it: the configured servers, or,
        with none, the site-local fec0:0:0:ffff::1-3 Windows lists for an IPv6 stack without
        a DNS server (agent/model/dns_servers.py cites the sources). Display only: nothing
        answers at those addresses and no lab lookup asks them."""
        if self.ipv6_dns_servers or not self.ipv6_dns_placeholders:
            return list(self.ipv6_dns_servers)
        return list(WINDOWS_IPV6_DNS_DEFAULTS)

    @property
    def registers(self) -> bool:
        """Whether the DNS client registers this interface's address under the host's name:
        "Register this connection's addresses in DNS" is on and the interface has a DNS server
        to send the dynamic update through. Windows registers "A records for all IPv4
        addresses assigned to the interfaces configured with a DNS server address" ("Domain
        Name System Client Behavior in Windows Vista", TechNet bb727035; the same for Windows
        Server 2008 and later), through the DHCP Client service, for every connection,
        DHCP-configured or not (KB816592, "How to configure DNS dynamic updates in Windows")."""
        return self.register and bool(self.servers)


@dataclass
class TransportSettings:
    """What Get-/Set-TransportService shows and changes (stored in AD, read live)."""

    external_dns_adapter_enabled: bool
    external_dns_servers: list[str]
    external_dns_protocol_option: str
    internal_dns_adapter_enabled: bool
    internal_dns_servers: list[str]
    internal_dns_protocol_option: str


@dataclass(frozen=True, slots=True)
class TransportCache:
    """What MSExchangeTransport read when it started. Changes to the transport settings, to the
    NIC's DNS servers and to EdgeTransport.exe.config reach mail flow only through a restart
    (the transport settings: fix A of "Error 451 4.4.0: DNS Query Failed - Fix Guide 2025";
    the NIC: "Bad NIC Settings Cause Internal Messages to Queue with 451 4.4.0 DNS query
    failed (nonexistent domain)", exchangemaster.wordpress.com; the file: "DNS query failure
    sensitivity", Exchange 2013 Help. README.md lists the URLs, under Sources)."""

    external_dns_adapter_enabled: bool
    external_dns_servers: tuple[str, ...]
    internal_dns_adapter_enabled: bool
    internal_dns_servers: tuple[str, ...]
    adapter_dns_servers: tuple[str, ...]
    dns_fault_tolerance: str

    @property
    def external_servers(self) -> tuple[str, ...]:
        return self.adapter_dns_servers if self.external_dns_adapter_enabled else self.external_dns_servers

    @property
    def internal_servers(self) -> tuple[str, ...]:
        return self.adapter_dns_servers if self.internal_dns_adapter_enabled else self.internal_dns_servers


@dataclass
class SendConnector:
    name: str
    guid: uuid.UUID
    address_spaces: list[AddressSpace]
    source_transport_servers: list[str]
    dns_routing_enabled: bool
    smart_hosts: list[str]
    use_external_dns_servers_enabled: bool
    smart_host_auth_mechanism: str
    enabled: bool
    port: int
    comment: str
    usage: str | None
    created: datetime.datetime
    changed: datetime.datetime
    frontend_proxy_enabled: bool = False

    @classmethod
    def from_spec(cls, spec: ConnectorSpec, now: datetime.datetime) -> SendConnector:
        spaces = [s for s in (parse_address_space(a) for a in spec.address_spaces) if s is not None]
        return cls(
            spec.name,
            stable_guid("connector", spec.name),
            spaces,
            list(spec.source_transport_servers),
            spec.dns_routing_enabled,
            list(spec.smart_hosts),
            spec.use_external_dns_servers_enabled,
            spec.smart_host_auth_mechanism,
            spec.enabled,
            spec.port,
            spec.comment,
            None,
            now,
            now,
            spec.frontend_proxy_enabled,
        )

    def sources(self, host: str) -> bool:
        # Asked once per queue per delivery attempt: on a 10,000-host fleet a connector lists
        # thousands of servers, so the lower-cased set is kept and rebuilt only when
        # Set-SendConnector assigns a new list (see __setattr__).
        names = self.__dict__.get("_source_names")
        if names is None:
            names = frozenset(s.lower() for s in self.source_transport_servers)
            self.__dict__["_source_names"] = names
        return host.lower() in names

    def __setattr__(self, name: str, value: object) -> None:
        if name == "source_transport_servers":
            self.__dict__.pop("_source_names", None)
        object.__setattr__(self, name, value)

    def match(self, domain: str) -> tuple[int, int] | None:
        """(specificity, cost) of the best address space for ``domain``, or None."""
        best: tuple[int, int] | None = None
        for space in self.address_spaces:
            score = space.matches(domain)
            if score is None:
                continue
            candidate = (score, -space.cost)
            if best is None or candidate > best:
                best = candidate
        return None if best is None else (best[0], -best[1])


@dataclass
class Queue:
    """One delivery queue. Messages are only moved from ``queued`` to ``delivered``; new ones
    come only by ``arriving``, before each delivery attempt."""

    number: int
    next_hop: str
    configured_type: str
    target: str | None
    queued: int
    delivered: int = 0
    arriving: int = 0
    status: str = "Ready"
    last_error: str | None = None
    retry_count: int = 0
    first_retry: datetime.datetime | None = None
    last_retry: datetime.datetime | None = None
    next_retry: datetime.datetime | None = None
    delivery_type: str = ""
    connector_guid: uuid.UUID | None = None
    attempts: int = 0
    ready_while_dns_times_out: bool = False
    remote_error: str | None = None  # the next hop's server refuses mail with this (QueueSpec)
    # Get-Queue's rates, from the last delivery attempt (messages per 5 s averaged over the
    # last 60 s, as Exchange computes them; Velocity = OutgoingRate - IncomingRate).
    incoming_rate: float = 0.0
    outgoing_rate: float = 0.0

    @classmethod
    def from_spec(cls, number: int, spec: QueueSpec) -> Queue:
        return cls(
            number,
            spec.next_hop,
            spec.delivery_type,
            spec.target,
            spec.messages,
            delivery_type=spec.delivery_type,
            arriving=spec.arriving,
            ready_while_dns_times_out=spec.ready_while_dns_times_out,
            remote_error=spec.remote_error,
        )

    @property
    def external(self) -> bool:
        return self.target is None

    @property
    def total(self) -> int:
        return self.queued + self.delivered

    @property
    def velocity(self) -> float:
        return round(self.outgoing_rate - self.incoming_rate, 3)


# MSFT_DNSClientCache.Status numbers (System Error Codes 9000-11999, learn.microsoft.com).
CACHE_STATUS = {"NotExist": 9003, "NoRecords": 9501}
CACHE_TYPE = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33}


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """One negative entry of the host's DNS client cache: while it is there, the DNS Client
    service answers ``name``/``rdtype`` from it without asking a server."""

    name: str  # lower case, no trailing dot
    rdtype: str
    status: int  # 9003 NotExist, 9501 NoRecords
    ttl: int

    @classmethod
    def from_spec(cls, spec: CacheEntrySpec) -> CachedAnswer:
        return cls(spec.name.strip().lower().rstrip("."), spec.type, CACHE_STATUS[spec.status], spec.ttl)


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    """One line of the host's message tracking log, as Get-MessageTrackingLog shows it (the
    field names of the cmdlet's output: "date-time" is Timestamp, "recipient-address"
    Recipients; "Message tracking in Exchange Server", learn.microsoft.com)."""

    timestamp: datetime.datetime
    event_id: str  # SEND: "a message was sent by SMTP to a different server"
    source: str  # SMTP
    connector_id: str  # the send connector used
    server_hostname: str  # the server the message was sent to
    server_ip: str
    client_hostname: str  # this server
    recipients: tuple[str, ...]
    message_id: str


@dataclass
class HostState:
    """Everything about one host that cmdlets read or change."""

    spec: HostSpec
    nics: list[Nic]
    transport: TransportSettings
    dns_fault_tolerance: str | None  # the value in EdgeTransport.exe.config; None: key absent
    transport_running: bool
    queues: list[Queue]
    cache: TransportCache
    transport_starts: int = 1
    dns_cache_clears: int = 0
    # EdgeTransport.exe.config as the scenario gave it, served as it is (None: the lab writes
    # the file from dns_fault_tolerance).
    edge_config_text: str | None = None
    failed_starts: int = 0  # restarts after which transport did not come up (the file did not load)
    # The DNS client cache's negative entries (Get-DnsClientCache; Clear-DnsClientCache and a
    # restart of the Dnscache service empty it).
    dns_cache: list[CachedAnswer] = field(default_factory=list)

    def cached_status(self, qname: str, rdtype: str) -> int | None:
        """The status of a negative cache entry for ``qname``/``rdtype``; None when none."""
        wanted = qname.strip().lower().rstrip(".")
        for entry in self.dns_cache:
            if entry.name == wanted and entry.rdtype == rdtype.upper():
                return entry.status
        return None
    # Windows Firewall's rules (firewall.py): they decide the host's own DNS traffic, live (a
    # rule change applies to the next packet; transport needs no restart for it).
    firewall_rules: list[firewall.FirewallRule] = field(default_factory=list)
    # Its profiles (Domain, Private, Public): the Domain one's DefaultOutboundAction decides
    # the DNS traffic no rule matches.
    firewall_profiles: list[firewall.FirewallProfile] = field(default_factory=lambda: firewall.profiles(()))

    @property
    def config_loads(self) -> bool:
        """Whether a starting transport can load EdgeTransport.exe.config."""
        return self.edge_config_text is None or edgeconfig.read(self.edge_config_text).loads
    # Files made with New-Item under <install path>Logging\ (exfix's change marker), by their
    # normalized path (items.py): content as written.
    files: dict[str, str] = field(default_factory=dict)
    # The message tracking log (mailflow.run_attempt writes a SEND event per message delivered).
    tracking: list[TrackingEvent] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fqdn(self) -> str:
        return self.spec.fqdn

    @property
    def mapi_nic(self) -> Nic:
        return next(n for n in self.nics if n.mapi)

    def registered_addresses(self) -> list[str]:
        """What a dynamic update of the host's name registers: the IPv4 address of every
        interface that registers itself (:attr:`Nic.registers`), in interface order. The A
        record follows these NICs, whichever they are: with registration off on the MAPI NIC
        and on for a backup NIC, the server's name points at the backup network."""
        return [n.ipv4 for n in self.nics if n.registers]

    def adapter_dns_servers(self) -> list[str]:
        """Every NIC's DNS servers: what the firewall keyword ``DNS`` stands for."""
        return [server for nic in self.nics for server in nic.servers]

    def dns_blocked(self, server: str, *, tcp_only: bool = False) -> bool:
        """Whether the firewall drops this host's DNS queries to ``server``."""
        servers = self.adapter_dns_servers()
        return firewall.dns_blocked(
            self.firewall_rules, server, servers, tcp_only=tcp_only, profile=self.firewall_profile()
        )

    def firewall_profile(self) -> firewall.FirewallProfile | None:
        """The profile that decides the host's traffic (its domain network's)."""
        return next((p for p in self.firewall_profiles if p.name == firewall.HOST_PROFILE), None)

    def nic_by_index(self, index: int) -> Nic | None:
        return next((n for n in self.nics if n.index == index), None)

    def nic_by_alias(self, alias: str) -> Nic | None:
        return next((n for n in self.nics if n.alias.lower() == alias.lower()), None)

    def read_cache(self) -> TransportCache:
        """What a starting transport service reads: AD settings, the MAPI NIC's DNS servers
        (ExternalDNSAdapterGuid all zeros means "any adapter"; the lab uses the MAPI NIC,
        which is what Windows puts first in the binding order) and the config file."""
        t = self.transport
        return TransportCache(
            external_dns_adapter_enabled=t.external_dns_adapter_enabled,
            external_dns_servers=tuple(t.external_dns_servers),
            internal_dns_adapter_enabled=t.internal_dns_adapter_enabled,
            internal_dns_servers=tuple(t.internal_dns_servers),
            adapter_dns_servers=tuple(self.mapi_nic.servers),
            dns_fault_tolerance=self.dns_fault_tolerance or "Lenient",
        )

    @classmethod
    def from_spec(cls, spec: HostSpec) -> HostState:
        t = spec.transport
        transport = TransportSettings(
            t.external_dns_adapter_enabled,
            list(t.external_dns_servers),
            t.external_dns_protocol_option,
            t.internal_dns_adapter_enabled,
            list(t.internal_dns_servers),
            t.internal_dns_protocol_option,
        )
        nics = [Nic.from_spec(n, spec.fqdn) for n in spec.nics]
        queues = [Queue.from_spec(i + 1, q) for i, q in enumerate(spec.queues)]
        fault_tolerance = spec.dns_fault_tolerance
        if spec.edge_config_text is not None:
            fault_tolerance = edgeconfig.read(spec.edge_config_text).dns_fault_tolerance
        state = cls(
            spec,
            nics,
            transport,
            fault_tolerance,
            spec.transport_running,
            queues,
            cache=TransportCache(True, (), True, (), (), "Lenient"),
            edge_config_text=spec.edge_config_text,
            dns_cache=[CachedAnswer.from_spec(e) for e in spec.dns_cache],
            firewall_rules=[firewall.FirewallRule.from_spec(r) for r in spec.firewall_rules],
            firewall_profiles=firewall.profiles(spec.firewall_profiles),
        )
        # A transport running on a file that does not load started before the file was broken:
        # from an earlier, valid copy whose DnsFaultTolerance the lab cannot know (the default).
        state.cache = state.read_cache()
        return state


_emulation = threading.local()


class StateLock:
    """The organisation's re-entrant lock, and the generation of its state.

    The emulation's cmdlets take the lock for each cmdlet's run and move the generation
    themselves when they may change something (``EmulatedHost.invoke``). Anyone else who takes
    it (a test changing a queue or a connector from Python) may change anything, so for them
    entering and leaving the lock each move the generation, and no answer cached before is
    served after.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.generation = 0

    def __enter__(self) -> StateLock:
        self._lock.acquire()
        if not getattr(_emulation, "active", False):
            self.generation += 1
        return self

    def __exit__(self, *exc: object) -> None:
        if not getattr(_emulation, "active", False):
            self.generation += 1
        self._lock.release()

    def bump(self) -> None:
        with self._lock:
            self.generation += 1


@contextlib.contextmanager
def emulating() -> Iterator[None]:
    """Mark this thread as running the emulation's own cmdlets (see :class:`StateLock`)."""
    previous = getattr(_emulation, "active", False)
    _emulation.active = True
    try:
        yield
    finally:
        _emulation.active = previous


@dataclass
class Organization:
    """The shared state of one fleet."""

    scenario: Scenario
    world: DnsWorld
    clock: Clock
    hosts: dict[str, HostState] = field(default_factory=dict)  # lower-case name -> state
    connectors: list[SendConnector] = field(default_factory=list)
    lock: StateLock = field(default_factory=lambda: StateLock())
    internet_addresses: frozenset[str] = frozenset()
    _identities: dict[str, HostState] | None = field(default=None, repr=False, compare=False)

    @property
    def generation(self) -> int:
        """Moves whenever the state may have changed: answers are cached under it (host.py)."""
        return self.lock.generation

    def changed(self) -> None:
        self.lock.bump()

    def host(self, name_or_fqdn: str) -> HostState | None:
        key = name_or_fqdn.lower().rstrip(".")
        found = self.hosts.get(key)
        if found is not None:
            return found
        return self.identities().get(key)

    def identities(self) -> dict[str, HostState]:
        """Every host by lower-case name, FQDN and server GUID (what ``-Identity`` and
        ``-Server`` accept), built once: the host set does not change after load, and a linear
        search per cmdlet costs milliseconds on a 10,000-host fleet."""
        index = self._identities
        if index is None or len(index) < len(self.hosts):
            index = {}
            for state in self.hosts.values():
                index[state.name.lower()] = state
                index[state.fqdn.lower()] = state
                index[str(stable_guid("server", state.name))] = state
            self._identities = index
        return index

    def connector(self, identity: str) -> SendConnector | None:
        key = identity.strip().lower()
        for connector in self.connectors:
            if connector.name.lower() == key or str(connector.guid) == key:
                return connector
        return None

    def route(self, host: str, domain: str) -> SendConnector | None:
        """The send connector that routes ``domain`` for ``host``: the most specific matching
        address space wins, then the lowest cost, then the connector listed first."""
        best: tuple[tuple[int, int], int, SendConnector] | None = None
        for order, connector in enumerate(self.connectors):
            if not connector.enabled or not connector.sources(host):
                continue
            match = connector.match(domain)
            if match is None:
                continue
            rank = (match[0], -match[1])
            if best is None or (rank, -order) > (best[0], -best[1]):
                best = (rank, order, connector)
        return None if best is None else best[2]


def host_states(specs: Sequence[HostSpec]) -> dict[str, HostState]:
    return {spec.name.lower(): HostState.from_spec(spec) for spec in specs}
