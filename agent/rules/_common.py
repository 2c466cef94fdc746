"""Pure helpers shared by the rules: reading probe verdicts, finding the DNS servers transport
really uses, grouping failing queues, and building evidence items.

Rules never call each other. Where two rules must agree on a fact (for example "external
name resolution is broken on this host", which makes a single failing domain not the
domain's fault), both compute it here from the facts.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent.model import dns_servers
from agent.model.facts import (
    FAILURE_OUTCOMES,
    ZERO_GUID,
    DnsLookupSettings,
    HostFacts,
    NicFacts,
    QueueFacts,
    QueueScope,
    SendConnectorFacts,
    normalize_name,
    preferred_vantage,
)
from agent.model.finding_data import FindingData, LookupSide
from agent.model.findings import DataValue, EvidenceItem, Finding
from agent.model.probe import DnsQueryResult, Outcome, Vantage
from agent.rules import _mail_path as paths
from agent.rules.metadata import RuleMetadata


class Verdict(str, enum.Enum):
    RESOLVES = "resolves"
    FAILS = "fails"  # answered with a failure (SERVFAIL, REFUSED, NXDOMAIN, ...)
    TIMES_OUT = "times-out"  # never answered
    UNKNOWN = "unknown"  # not probed, or only unclassified errors


@dataclass(frozen=True, slots=True)
class ServerVerdict:
    server: str
    verdict: Verdict
    probes: tuple[DnsQueryResult, ...]  # the probes the verdict rests on (the preferred vantage)


def verdict(
    facts: HostFacts,
    server: str,
    qname: str,
    *,
    ok: frozenset[Outcome],
    failing: frozenset[Outcome] = FAILURE_OUTCOMES,
) -> ServerVerdict:
    """Can ``server`` resolve ``qname``? Judged from the host's own probes where there are any,
    else from the orchestrator's. One good answer is enough; a server that only ever timed out
    is TIMES_OUT, not FAILS (that is dns-server-unreachable's business)."""
    probes = preferred_vantage(facts.probes_for(server=server, qname=qname))
    outcomes = {p.outcome for p in probes}
    if not probes:
        result = Verdict.UNKNOWN
    elif outcomes & ok:
        result = Verdict.RESOLVES
    elif outcomes & failing:
        result = Verdict.FAILS
    elif outcomes == {Outcome.TIMEOUT}:
        result = Verdict.TIMES_OUT
    else:
        result = Verdict.UNKNOWN
    return ServerVerdict(server, result, probes)


# A DC locator SRV lookup must come back with records: NODATA means the server does not hold
# the AD zone's _msdcs records either.
AD_OK = frozenset({Outcome.ANSWER})
AD_FAILING = FAILURE_OUTCOMES | {Outcome.NODATA}
# For an internet name, NODATA is still a resolution (the name exists, without that type).
PUBLIC_OK = frozenset({Outcome.ANSWER, Outcome.NODATA})


def ad_verdict(facts: HostFacts, server: str) -> ServerVerdict:
    return verdict(facts, server, facts.probe_targets.ad_srv, ok=AD_OK, failing=AD_FAILING)


def public_verdict(facts: HostFacts, server: str) -> ServerVerdict:
    return verdict(facts, server, facts.probe_targets.public_name, ok=PUBLIC_OK)


def all_configured_servers(facts: HostFacts) -> tuple[str, ...]:
    """Every configured DNS server of the host (NICs, ExternalDNSServers, InternalDNSServers),
    each once: configured as agent/model/dns_servers.py defines it, so Windows' placeholders
    and empty rows are never judged as servers."""
    servers: list[str] = []
    for nic in facts.nics:
        servers.extend(nic.dns_servers)
    if facts.transport is not None:
        servers.extend(facts.transport.external.servers)
        servers.extend(facts.transport.internal.servers)
    return dns_servers.configured(servers)


def probed_servers(facts: HostFacts) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.server for p in facts.probes))


@dataclass(frozen=True, slots=True)
class LookupServers:
    """The DNS servers transport uses for one group of its settings, how that was decided, and
    the routes of this server's mail that put the group on the path (agent/rules/_mail_path.py)."""

    side: LookupSide  # which transport settings apply
    settings: DnsLookupSettings
    servers: tuple[str, ...]
    how: str  # one line: why these servers
    routes: tuple[paths.Route, ...]  # the routes that use these settings

    @property
    def connectors(self) -> tuple[SendConnectorFacts, ...]:
        """The send connectors of those routes."""
        return tuple(r.connector for r in self.routes if r.connector is not None)


def _adapter_servers(facts: HostFacts, settings: DnsLookupSettings) -> tuple[tuple[str, ...], str]:
    guid = settings.adapter_guid.strip("{}").lower()
    if guid and guid != ZERO_GUID:
        for nic in facts.nics:
            if nic.interface_guid and nic.interface_guid.lower() == guid:
                return nic.dns_servers, f"the DNS servers of {nic.label} (adapter GUID {guid})"
    mapi = facts.mapi
    if mapi is not None:
        return mapi.dns_servers, f"the DNS servers of the MAPI NIC, {mapi.label}"
    servers = tuple(dict.fromkeys(s for n in facts.nics for s in n.dns_servers))
    return servers, "the DNS servers of the host's NICs"


def internet_connectors(facts: HostFacts) -> tuple[SendConnectorFacts, ...]:
    """The connectors of this server's routes to the internet whose recipient lookups use
    transport's own DNS settings (routing by DNS, not through Front End Transport)."""
    out: list[SendConnectorFacts] = []
    for route in paths.external_routes(facts):
        if route.side is not None and route.connector is not None:
            out.append(route.connector)
    return tuple(out)


def lookup_servers(facts: HostFacts, side: LookupSide, routes: tuple[paths.Route, ...]) -> LookupServers:
    """The servers of transport's ``side`` settings, used by ``routes``. Needs the transport facts."""
    assert facts.transport is not None
    settings = facts.transport.external if side == "external" else facts.transport.internal
    prefix = "External" if side == "external" else "Internal"
    reason = "; ".join(dict.fromkeys(r.why for r in routes)) or "no route uses them"
    if settings.adapter_enabled:
        servers, which = _adapter_servers(facts, settings)
        how = f"{which}, because {prefix}DNSAdapterEnabled=True and {reason}"
    else:
        servers = settings.configured_servers
        how = f"{prefix}DNSServers, because {prefix}DNSAdapterEnabled=False and {reason}"
    return LookupServers(side, settings, servers, how, routes)


def external_lookups(facts: HostFacts) -> tuple[LookupServers, ...]:
    """The groups of transport's settings that look up internet names for this server's mail,
    one per group in use, the internet route's group first; empty when the transport settings
    or the organisation's connectors were not collected, or no route of this server looks up
    recipient domains with transport's own settings.

    A send connector with UseExternalDNSServersEnabled $true uses the transport's External*
    settings; any other connector uses the Internal* ones (Set-SendConnector and
    Set-TransportService docs). Either way, DNSAdapterEnabled $true means the NIC's servers and
    the server list is ignored."""
    if facts.transport is None or facts.org.issue is not None:
        return ()
    routes = [r for r in paths.external_routes(facts) if r.side is not None]
    sides: list[LookupSide] = list(dict.fromkeys(r.side for r in routes if r.side is not None))
    return tuple(lookup_servers(facts, side, tuple(r for r in routes if r.side == side)) for side in sides)


def external_lookup(facts: HostFacts) -> LookupServers | None:
    """The group of settings that looks up internet names on this server's internet route (or,
    without one, on the first route that does); None when there is none."""
    found = external_lookups(facts)
    return found[0] if found else None


def external_resolution_broken(facts: HostFacts) -> bool:
    """True when no server transport uses for internet names can resolve the public probe
    name (or there is no server at all): then every external domain fails, and one failing
    domain says nothing about that domain's own DNS."""
    lookup = external_lookup(facts)
    if lookup is None:
        return False
    if not lookup.servers:
        return not lookup.settings.adapter_enabled
    verdicts = [public_verdict(facts, s).verdict for s in lookup.servers]
    return Verdict.RESOLVES not in verdicts and Verdict.FAILS in verdicts


# --- the server's own A record -----------------------------------------------------------

# Words that name a network built for one purpose in a NIC's alias or description: a DAG
# replication network, a backup network, iSCSI or other storage, a cluster heartbeat. Matched
# as whole words, case-insensitively.
_DEDICATED_WORDS = frozenset(
    {"backup", "replication", "repl", "iscsi", "storage", "heartbeat", "cluster", "dag"}
)


def dedicated_network(nic: NicFacts) -> tuple[bool, str]:
    """Whether ``nic`` is a dedicated backup, replication or iSCSI network, on which
    "Register this connection's addresses in DNS" belongs off ("NIC DNS Registration and
    Exchange Servers", exchangemaster.wordpress.com: off is fine on iSCSI, replication and backup
    NICs, never on the MAPI/primary one), and why, in words for the plan.

    Both signs must be there. No default gateway: such a network reaches only its own subnet
    (a DAG replication network has none, EXCHANGE_FACTS), so its address is of no use to
    clients elsewhere. And its name or description says what it is for: a NIC without a
    gateway may still be the network clients use (static routes), and turning registration
    off on it would take the server's name away from them."""
    if nic.default_gateways:
        return False, (
            f"it has the default gateway {', '.join(nic.default_gateways)}, so it may be a network clients "
            "use: exfix leaves its registration as it is"
        )
    words = {
        w for w in re.split(r"[^a-z0-9]+", f"{nic.interface_alias} {nic.interface_description}".lower()) if w
    }
    named = sorted(words & _DEDICATED_WORDS)
    if not named:
        return False, (
            "it has no default gateway, but neither its name nor its description says it is a backup, "
            "replication or iSCSI network: exfix leaves its registration as it is"
        )
    return True, (
        f"it has no default gateway and its name or description says {', '.join(repr(w) for w in named)}: "
        "a dedicated network, whose address must not be the server's A record"
    )


@dataclass(frozen=True, slots=True)
class ARecordView:
    """The server's own A record as the probes saw it, and the NICs that hold its values."""

    fqdn: str
    probes: tuple[DnsQueryResult, ...]  # the answering A probes of the FQDN (preferred vantage)
    addresses: tuple[str, ...]  # the A record's values, in address order
    mapi: NicFacts
    mapi_held: tuple[str, ...]  # the MAPI NIC's addresses in the record
    others: tuple[NicFacts, ...]  # the other NICs whose addresses are in the record

    @property
    def points_elsewhere(self) -> bool:
        """The record holds another NIC's address and that is wrong: the MAPI NIC's address is
        not in it, or the other NIC is a dedicated network (:func:`dedicated_network`). Two
        client networks that both register are a design, not a fault."""
        if not self.others:
            return False
        return not self.mapi_held or any(dedicated_network(n)[0] for n in self.others)

    def held(self, nic: NicFacts) -> tuple[str, ...]:
        return tuple(a for a in nic.addresses if a in self.addresses)


def _address_order(text: str) -> tuple[int, int, str]:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return (9, 0, text)
    return (ip.version, int(ip), text)


def a_record_view(facts: HostFacts) -> ARecordView | None:
    """What the server's own name resolves to (A, from the host's vantage where it probed),
    or None when the MAPI NIC is not known or no probe answered with addresses."""
    mapi = facts.mapi
    if mapi is None:
        return None
    fqdn = facts.exchange.fqdn
    probes = tuple(
        p for p in preferred_vantage(facts.probes_for(qname=fqdn, rdtype="A")) if p.outcome is Outcome.ANSWER
    )
    # An RRset has no order (RFC 2181 5): sorted, so the same record reads the same every scan.
    addresses = tuple(sorted(set(r for p in probes for r in p.records), key=_address_order))
    if not addresses:
        return None
    others = tuple(
        n
        for n in facts.nics
        if n.interface_index != mapi.interface_index and set(n.addresses) & set(addresses)
    )
    mapi_held = tuple(a for a in mapi.addresses if a in addresses)
    return ARecordView(fqdn, probes, addresses, mapi, mapi_held, others)


# --- queues -------------------------------------------------------------------------------


def failing_queues(facts: HostFacts, scope: QueueScope) -> tuple[QueueFacts, ...]:
    return tuple(q for q in facts.queues if q.scope is scope and q.failing_dns)


def silent_servers(facts: HostFacts) -> tuple[str, ...]:
    """The probed DNS servers (exfix probes only the servers the host is configured with)
    that let at least one probe go unanswered (timed out), from the preferred vantage:
    lookups through them hang rather than fail, which is what leaves messages sitting in
    Ready. Read from the probes alone, so that the queue symptom needs no other fact area."""
    out = []
    for server in probed_servers(facts):
        if any(p.outcome is Outcome.TIMEOUT for p in preferred_vantage_for(facts, server)):
            out.append(server)
    return tuple(out)


def stuck_queues(facts: HostFacts, scope: QueueScope) -> tuple[QueueFacts, ...]:
    """Queues of ``scope`` stuck in Ready (QueueFacts.stuck_in_ready: messages, no LastError,
    nothing going out), counted as failing on DNS only where a DNS server in use does not
    answer: a queue that stands still for another reason (a slow remote SMTP server) is no
    DNS symptom."""
    if not silent_servers(facts):
        return ()
    return tuple(q for q in facts.queues if q.scope is scope and q.stuck_in_ready)


def failing_domains(facts: HostFacts) -> dict[str, tuple[QueueFacts, ...]]:
    """Failing external queues by remote domain (lower case), in queue order. A next hop that
    is an address space wildcard ("*") is no single domain and is left out."""
    out: dict[str, list[QueueFacts]] = {}
    for queue in failing_queues(facts, QueueScope.EXTERNAL):
        domain = normalize_name(queue.next_hop_domain)
        if domain and "*" not in domain:
            out.setdefault(domain, []).append(queue)
    return {domain: tuple(queues) for domain, queues in out.items()}


def delivering_external(facts: HostFacts) -> tuple[QueueFacts, ...]:
    return tuple(q for q in facts.queues if q.scope is QueueScope.EXTERNAL and q.delivering)


def queue_evidence(queue: QueueFacts) -> EvidenceItem:
    values: list[tuple[str, DataValue]] = [
        ("Status", queue.status),
        ("MessageCount", queue.message_count),
        ("DeliveryType", queue.delivery_type),
        ("NextHopDomain", queue.next_hop_domain),
        ("NextHopCategory", queue.next_hop_category),
        ("LastError", queue.last_error.raw),
        ("error class", queue.last_error.kind.value),
    ]
    if queue.last_error.dns_code:
        values.append(("DNS error code", queue.last_error.dns_code))
    # The rates and retry times say whether messages move; shown where the host gives them.
    for name, rate in (("IncomingRate", queue.incoming_rate), ("OutgoingRate", queue.outgoing_rate),
                       ("Velocity", queue.velocity)):  # fmt: skip
        if rate is not None:
            values.append((name, f"{rate:g}"))
    for name, when in (("FirstRetryTime", queue.first_retry_time), ("LastRetryTime", queue.last_retry_time)):
        if when:
            values.append((name, when))
    if queue.stuck_in_ready:
        values.append(
            ("stuck", "Ready with messages, no LastError, OutgoingRate 0: nothing left in the last minute")
        )
    return EvidenceItem(source="Get-Queue", subject=f"queue {queue.identity}", values=tuple(values))


# --- evidence -----------------------------------------------------------------------------


def nic_evidence(nic: NicFacts, *extra: tuple[str, DataValue], source: str = "Get-DnsClient") -> EvidenceItem:
    return EvidenceItem(
        source=source,
        subject=nic.label,
        values=(
            ("InterfaceIndex", nic.interface_index),
            ("InterfaceAlias", nic.interface_alias),
            *extra,
        ),
    )


def server_list_values(nic: NicFacts) -> tuple[tuple[str, DataValue], ...]:
    """A NIC's DNS servers as evidence: the configured ones (what is judged) and, where Windows
    listed more, what was set aside and why (agent/model/dns_servers.py)."""
    values: list[tuple[str, DataValue]] = [("ServerAddresses", nic.dns_servers)]
    if nic.not_dns_servers:
        values.append(("not DNS servers", tuple(f"{a} ({why})" for a, why in nic.not_dns_servers)))
    return tuple(values)


def mapi_choice_evidence(facts: HostFacts, nic: NicFacts) -> EvidenceItem:
    return EvidenceItem(
        source="Get-NetIPConfiguration",
        subject=nic.label,
        values=(
            ("role", "MAPI/primary NIC"),
            ("chosen because", facts.mapi_nic.reason),
            ("IPv4Address", nic.ipv4_addresses),
            ("IPv4DefaultGateway", nic.ipv4_default_gateways),
        ),
    )


def transport_evidence(facts: HostFacts, side: str) -> EvidenceItem:
    assert facts.transport is not None
    settings = facts.transport.external if side == "external" else facts.transport.internal
    prefix = "External" if side == "external" else "Internal"
    return EvidenceItem(
        source=f"Get-{facts.status.transport_noun.value}",
        subject=f"{facts.exchange.name} transport",
        values=(
            (f"{prefix}DNSAdapterEnabled", settings.adapter_enabled),
            (f"{prefix}DNSServers", settings.servers),
            (f"{prefix}DNSAdapterGuid", settings.adapter_guid),
            (f"{prefix}DNSProtocolOption", settings.protocol_option),
        ),
    )


def connector_evidence(connector: SendConnectorFacts) -> EvidenceItem:
    return EvidenceItem(
        source="Get-SendConnector",
        subject=f"send connector {connector.name!r}",
        values=(
            ("AddressSpaces", connector.address_spaces),
            ("DNSRoutingEnabled", connector.dns_routing_enabled),
            ("UseExternalDNSServersEnabled", connector.use_external_dns_servers_enabled),
            ("SmartHosts", connector.smart_hosts),
            ("FrontendProxyEnabled", connector.frontend_proxy_enabled),
            ("SourceTransportServers", connector.source_transport_servers),
            ("Enabled", connector.enabled),
        ),
    )


def probe_evidence(probes: Iterable[DnsQueryResult]) -> tuple[EvidenceItem, ...]:
    """One evidence item per question per vantage. A question asked in several rounds
    (--probe-repeat) is one item: the last attempt's result, with every attempt's outcome in
    order (``outcomes``) and how many there were (``attempts``)."""
    groups: dict[tuple[str, str, str, str], list[DnsQueryResult]] = {}
    for probe in probes:
        key = (probe.vantage.value, probe.server, normalize_name(probe.qname), probe.rdtype.upper())
        groups.setdefault(key, []).append(probe)
    out: list[EvidenceItem] = []
    for attempts in groups.values():
        ordered = sorted(attempts, key=lambda p: p.attempt)
        item = EvidenceItem.from_probe(ordered[-1])
        if len(ordered) > 1:
            extra: tuple[tuple[str, DataValue], ...] = (
                ("attempts", len(ordered)),
                ("outcomes", tuple(p.outcome.value for p in ordered)),
            )
            item = dataclasses.replace(item, values=(*item.values, *extra))
        out.append(item)
    return tuple(out)


def describe_probes(probes: Iterable[DnsQueryResult]) -> str:
    """ "SERVFAIL for MX microsoft.com from host" in one short phrase per distinct result."""
    parts = [f"{p.outcome.value.upper()} for {p.rdtype} {p.qname} ({p.vantage.value})" for p in probes]
    return "; ".join(dict.fromkeys(parts))


def finding(
    meta: RuleMetadata,
    facts: HostFacts,
    *,
    subject: str,
    summary: str,
    evidence: Iterable[EvidenceItem],
    data: FindingData,
    fix_id: str | None = None,
) -> Finding:
    """A finding of rule ``meta`` on this host; severity, title and fix come from the metadata,
    ``data`` is of the class the metadata declares. ``fix_id``: one of the metadata's
    ``other_fix_ids`` instead of its ``fix_id``, where this finding needs that fix."""
    if type(data) is not meta.data:
        raise TypeError(f"rule {meta.id!r} declares {meta.data.__name__} data, not {type(data).__name__}")
    if fix_id is not None and fix_id not in meta.fix_ids:
        raise ValueError(f"rule {meta.id!r} does not declare fix {fix_id!r}")
    return Finding(
        rule_id=meta.id,
        host=facts.host,
        subject=subject,
        severity=meta.severity,
        title=meta.title,
        summary=" ".join(summary.split()),
        evidence=tuple(evidence),
        fix_id=meta.fix_id if fix_id is None else fix_id,
        data=data,
    )


# --- remote domains -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DomainProbes:
    """What the probes say about one remote domain: its MX, and A/AAAA of its mail hosts (or of
    the domain itself where no mail host was probed)."""

    domain: str
    mx: tuple[DnsQueryResult, ...]
    mx_hosts: tuple[str, ...]
    a: tuple[DnsQueryResult, ...]
    aaaa: tuple[DnsQueryResult, ...]
    domain_a: tuple[DnsQueryResult, ...]

    @property
    def ipv4_addresses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r for p in self.a if p.outcome is Outcome.ANSWER for r in p.records))


def _mx_host(record: str) -> str:
    parts = record.split()
    return normalize_name(parts[-1]) if parts else ""


def domain_probes(facts: HostFacts, domain: str) -> DomainProbes:
    mx = preferred_vantage(facts.probes_for(qname=domain, rdtype="MX"))
    hosts = tuple(
        dict.fromkeys(
            h for p in mx if p.outcome is Outcome.ANSWER for h in (_mx_host(r) for r in p.records) if h
        )
    )

    def of(rdtype: str) -> tuple[DnsQueryResult, ...]:
        found: list[DnsQueryResult] = []
        for host in hosts:
            found.extend(preferred_vantage(facts.probes_for(qname=host, rdtype=rdtype)))
        return tuple(found) if found else preferred_vantage(facts.probes_for(qname=domain, rdtype=rdtype))

    domain_a = preferred_vantage(facts.probes_for(qname=domain, rdtype="A"))
    return DomainProbes(domain, mx, hosts, of("A"), of("AAAA"), domain_a)


def preferred_vantage_for(facts: HostFacts, server: str) -> tuple[DnsQueryResult, ...]:
    """Every probe of ``server``, from the host's vantage where the host probed it."""
    return preferred_vantage(facts.probes_for(server=server))


# --- where a DNS server is used ------------------------------------------------------------


def server_in_use(facts: HostFacts, server: str) -> tuple[str, ...]:
    """Where ``server`` is in use: a NIC (Windows itself asks it), or a transport server list
    that a route of this server's mail uses. A list is ignored while its *DNSAdapterEnabled is
    $true (Set-TransportService docs), and the External* list also when no send connector of
    this server has UseExternalDNSServersEnabled (agent/rules/_mail_path.py): a server only in
    such a list is a setting nothing uses. Shared by dns-server-unreachable and
    dns-server-intermittent, which must agree on it."""
    places = [nic.label for nic in facts.nics if server in nic.dns_servers]
    transport = facts.transport
    if transport is not None:
        groups: tuple[tuple[LookupSide, DnsLookupSettings, str], ...] = (
            ("external", transport.external, "ExternalDNSServers"),
            ("internal", transport.internal, "InternalDNSServers"),
        )
        for side, settings, name in groups:
            used = not settings.adapter_enabled and paths.in_use(facts, side)
            if used and server in settings.configured_servers:
                places.append(name)
    return tuple(places)


def firewalled_contrast(
    facts: HostFacts, server: str
) -> tuple[tuple[DnsQueryResult, ...], tuple[DnsQueryResult, ...]] | None:
    """(host probes, orchestrator probes) of ``server`` when the two vantages disagree the way
    a host-side firewall makes them: every host-side probe got no reply at all (timed out, or
    the send was refused on the way: ``_no_path``), while at least one of exfix's own probes
    of the same server got a DNS reply. None otherwise, and None when either side did not
    probe: a server silent from both vantages is unreachable (dns-server-unreachable), not
    firewalled. One definition for
    host-firewall-blocks-dns and dns-server-unreachable, so one cause is one finding."""
    probes = facts.probes_for(server=server)
    host_side = tuple(p for p in probes if p.vantage is Vantage.HOST)
    orchestrator = tuple(p for p in probes if p.vantage is Vantage.ORCHESTRATOR)
    if not host_side or not orchestrator:
        return None
    if not all(_no_path(p) for p in host_side):
        return None
    if not any(p.outcome.responded for p in orchestrator):
        return None
    return host_side, orchestrator


# Words of a failed send that mean the path, not the query, failed: a Windows Firewall block
# drops silently (a timeout), a rejecting device answers with an ICMP unreachable, which
# Windows reports as WSAECONNRESET (10054) or WSAECONNREFUSED (10061) (Windows Sockets Error
# Codes, learn.microsoft.com/windows/win32/winsock/windows-sockets-error-codes-2).
_PATH_FAILURES = ("refused", "unreachable", "wsaeconnreset", "wsaeconnrefused", "10054", "10061")


def _no_path(probe: DnsQueryResult) -> bool:
    """The probe got no DNS reply because nothing came back over the path. Any other error (the
    cmdlet missing, a parameter refused) says nothing about the path."""
    if probe.outcome is Outcome.TIMEOUT:
        return True
    return probe.outcome is Outcome.ERROR and any(w in probe.detail.lower() for w in _PATH_FAILURES)
