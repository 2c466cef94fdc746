"""The mail-flow model: whether a queue delivers, and the LastError it shows when it cannot.

A delivery attempt asks :meth:`DnsWorld.serve` what each configured DNS server says (no
sockets; an intermittent server fails its scheduled share of these lookups as it does on the
wire) and follows what Exchange's transport does with the answers. It is a deterministic
approximation of Exchange's DNS client, documented in ``mock_remoting/README.md``:

* **Own registration** (KB3007623): when the host's own A record in the AD zone does not
  hold the MAPI NIC's address (absent, or registered by another NIC only), every queue fails
  with ``DNS query failed with error ErrorRetry``.
* **Which servers**: internal next hops (other Exchange servers) use the internal settings;
  an external domain uses the send connector that routes it. A connector with smart hosts
  bypasses DNS for the recipient domain; one with FrontendProxyEnabled hands the message to
  Front End Transport, which resolves it with its own settings (their defaults here: the
  adapter's servers); one with UseExternalDNSServersEnabled uses the external settings,
  otherwise the internal ones. Each setting is "the adapter's servers"
  when its ``*DNSAdapterEnabled`` is true, else its own server list. All of it comes from the
  transport's start-time cache except the connectors, which are read live.
* **A server list** is queried in order: an NXDOMAIN from any server wins (a public server
  on the NIC poisons internal names even as secondary: "Bad NIC Settings Cause Internal
  Messages to Queue with 451 4.4.0 DNS query failed (nonexistent domain)",
  exchangemaster.wordpress.com, 2014-04-15); otherwise the first NOERROR
  wins; otherwise SERVFAIL if any server said so; otherwise (nobody answered) a timeout.
* **External domains**: MX, then A and AAAA of each mail host in preference order (Exchange
  asks for AAAA too; a SERVFAIL or silence on AAAA fails that host: "451 4.4.0 DNS query
  failed Exchange Server error in message queue", learn.microsoft.com). No MX records: the
  domain's own A record (implicit MX, RFC 5321 section 5.1). DnsFaultTolerance Lenient skips
  invalid hosts; Normal stops at the first invalid host and keeps only hosts resolved before
  it, so an invalid host listed first at the lowest preference fails the domain with
  ErrorRetry ("DNS query failure sensitivity", Exchange 2013 Help, and its Exchange 2007
  SP1/SP2 predecessor). README.md lists the URLs (Sources).
* **The DNS client cache** comes before the servers: a negative entry for the name and type
  (NotExist 9003, NoRecords 9501) answers the lookup without asking any server, for as long as
  it is there (KB318803, MaxNegativeCacheTtl). NotExist reads as NXDOMAIN, so the queue shows
  the nonexistent-domain error although every server would answer now; NoRecords reads as an
  answer without records. Clear-DnsClientCache (and a restart of the Dnscache service) empties
  the cache, and the next attempt asks the servers.
"""

from __future__ import annotations

import datetime
import enum
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from mock_remoting.dns.world import NO_REPLY, NOERROR, NXDOMAIN, SERVFAIL, DnsAnswer, DnsRecord, DnsWorld
from mock_remoting.exchange.state import HostState, Organization, Queue, SendConnector, TrackingEvent

DNS_FAILED = "451 4.4.0 DNS query failed. The error was: "
RETRY_INTERVAL = datetime.timedelta(minutes=5)  # TransientFailureRetryInterval's default
# Get-Queue's IncomingRate/OutgoingRate count messages per 5 seconds averaged over the last 60
# ("Exchange 2013 Queue Velocity", letsexchange.blogspot.com, 2014-12-08): the lab treats what
# one attempt moves as the last minute's traffic, so a minute holds 12 intervals.
RATE_INTERVALS = 12
# The implicit connector between Exchange servers of one organisation: what the ConnectorId of
# a SEND event to another Exchange server names ("Implicit Send connectors",
# learn.microsoft.com, Exchange Server "Send connectors").
INTRA_ORG_CONNECTOR = "Intra-Organization SMTP Send Connector"


class Failure(str, enum.Enum):
    """Why a lookup or a delivery failed, with the text Exchange puts after "The error was: "."""

    NON_EXISTENT = "SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
    RETRY = "DNS query failed with error ErrorRetry"
    SERVER_FAILURE = "DNS query failed with error ServerFailure"
    TIMEOUT = "DNS query failed with error ErrorTimeout"
    SMART_HOST = "smart host"
    REMOTE = "remote"  # DNS worked; the next hop's mail server refused (Queue.remote_error)


SMART_HOST_ERROR = (
    '451 4.4.0 Primary target IP address responded with: "421 4.4.2 Connection dropped due to '
    'SocketError." Attempted failover to alternate host, but that did not succeed. Either there are '
    "no alternate hosts, or delivery failed to all alternate hosts."
)


class Outcome(str, enum.Enum):
    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    TIMEOUT = "timeout"
    NO_SERVERS = "no-servers"


@dataclass(frozen=True, slots=True)
class Lookup:
    outcome: Outcome
    records: tuple[DnsRecord, ...] = ()

    @property
    def failure(self) -> Failure:
        return {
            Outcome.NXDOMAIN: Failure.NON_EXISTENT,
            Outcome.SERVFAIL: Failure.SERVER_FAILURE,
            Outcome.TIMEOUT: Failure.TIMEOUT,
            Outcome.NO_SERVERS: Failure.RETRY,
            Outcome.ANSWER: Failure.NON_EXISTENT,  # NOERROR without data: the name has no such record
        }[self.outcome]


class Answers(Protocol):
    """What a lookup asks: the DnsWorld itself, or a host's view of it (:class:`HostView`)."""

    def answer(self, server: str, qname: str, rdtype: str) -> DnsAnswer: ...

    def serve(self, server: str, qname: str, rdtype: str) -> DnsAnswer: ...


class HostView:
    """The DNS world as one host's transport reaches it: a server its Windows Firewall blocks
    (firewall.py) stays silent, so the lookup times out as Exchange's does ("DNS query failed
    with error ErrorTimeout"), although the server answers everyone else."""

    def __init__(self, world: DnsWorld, host: HostState) -> None:
        self.world = world
        self.host = host

    def answer(self, server: str, qname: str, rdtype: str) -> DnsAnswer:
        if self.host.dns_blocked(server):
            return DnsAnswer(NO_REPLY)
        return self.world.answer(server, qname, rdtype)

    def serve(self, server: str, qname: str, rdtype: str) -> DnsAnswer:
        """A query really sent (DnsWorld.serve: an intermittent server counts it)."""
        if self.host.dns_blocked(server):
            return DnsAnswer(NO_REPLY)
        return self.world.serve(server, qname, rdtype)


# The host's DNS client cache as a lookup sees it: the status of a negative entry for
# (name, type), or None (HostState.cached_status).
Cached = Callable[[str, str], "int | None"]

NAME_ERROR = 9003  # DNS_ERROR_RCODE_NAME_ERROR, "DNS name does not exist"


def _no_cache(qname: str, rdtype: str) -> int | None:
    return None


def lookup(
    world: Answers, servers: Sequence[str], qname: str, rdtype: str, cached: Cached = _no_cache
) -> Lookup:
    """Resolve through the host's cache, then a server list, as the module docstring describes."""
    status = cached(qname, rdtype)
    if status is not None:
        return Lookup(Outcome.NXDOMAIN) if status == NAME_ERROR else Lookup(Outcome.ANSWER)
    if not servers:
        return Lookup(Outcome.NO_SERVERS)
    # serve, not answer: a delivery attempt sends real queries, so an intermittent server
    # (fail_fraction) lets its share of them down here too and a queue that depends on it
    # alone flaps between Retry and Ready from one attempt to the next.
    answers = [world.serve(server, qname, rdtype) for server in servers]
    if any(a.rcode == NXDOMAIN for a in answers):
        return Lookup(Outcome.NXDOMAIN)
    for answer in answers:
        if answer.rcode == NOERROR:
            return Lookup(Outcome.ANSWER, tuple(r for r in answer.records if r.rdtype == rdtype))
    if any(a.rcode == SERVFAIL for a in answers):
        return Lookup(Outcome.SERVFAIL)
    assert all(a.rcode == NO_REPLY for a in answers)
    return Lookup(Outcome.TIMEOUT)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The result of one attempt: delivered, or the failure and the host it concerned."""

    delivered: bool
    failure: Failure | None = None
    fqdn: str = ""
    ip: str = ""
    connector: SendConnector | None = None
    unroutable: bool = False
    remote_error: str = ""  # Failure.REMOTE: what the next hop's server answered


def _resolve_host(
    world: Answers, servers: Sequence[str], host: str, cached: Cached = _no_cache
) -> tuple[str | None, Failure | None]:
    """A and AAAA of one mail host: (first IPv4 address, None) or (None, why not)."""
    a = lookup(world, servers, host, "A", cached)
    if a.outcome is not Outcome.ANSWER or not a.records:
        return None, a.failure
    aaaa = lookup(world, servers, host, "AAAA", cached)
    if aaaa.outcome in (Outcome.SERVFAIL, Outcome.TIMEOUT):
        return None, aaaa.failure
    return a.records[0].data, None


def _mx_hosts(records: Sequence[DnsRecord]) -> list[tuple[int, str]]:
    hosts: list[tuple[int, str]] = []
    for record in records:
        preference, _, exchange = record.data.partition(" ")
        try:
            hosts.append((int(preference), exchange.strip().rstrip(".").lower()))
        except ValueError:
            continue
    # sorted() is stable: hosts of the same preference keep the order the server listed them in
    return sorted(hosts, key=lambda item: item[0])


def deliver_external(
    world: Answers, servers: Sequence[str], domain: str, tolerance: str, cached: Cached = _no_cache
) -> Delivery:
    mx = lookup(world, servers, domain, "MX", cached)
    if mx.outcome is not Outcome.ANSWER:
        return Delivery(False, mx.failure, domain)
    hosts = _mx_hosts(mx.records)
    if not hosts:
        # No MX: the domain itself is the mail host (RFC 5321 5.1 implicit MX).
        address, why = _resolve_host(world, servers, domain, cached)
        if address is None:
            return Delivery(False, why, domain)
        return Delivery(True, fqdn=domain, ip=address)
    first_failure: Failure | None = None
    for _preference, host in hosts:
        address, why = _resolve_host(world, servers, host, cached)
        if address is not None:
            return Delivery(True, fqdn=host, ip=address)
        if tolerance == "Normal":
            # Normal discards every record of this preference or higher as soon as one is
            # invalid; records resolved before it have already been used above ("DNS query
            # failure sensitivity", Exchange 2013 Help, technet Bb676467(v=EXCHG.150)).
            return Delivery(False, Failure.RETRY, domain)
        first_failure = first_failure or why
    return Delivery(False, first_failure or Failure.NON_EXISTENT, domain)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text.strip("[] "))
    except ValueError:
        return False
    return True


def attempt(org: Organization, host: HostState, queue: Queue) -> Delivery:
    """Decide one delivery attempt of ``queue`` (does not change anything)."""
    world = HostView(org.world, host)
    cache = host.cache
    if host.mapi_nic.ipv4 not in org.world.registered(host.fqdn):
        # KB3007623: with the MAPI NIC's registration off the server's own A record no longer
        # holds the MAPI address (it is gone, or it points at another NIC that registers, a
        # backup network) and transport cannot send anywhere, internal or external.
        return Delivery(False, Failure.RETRY, queue.target or queue.next_hop)
    if not queue.external:
        target = queue.target or queue.next_hop
        result = lookup(world, cache.internal_servers, target, "A", host.cached_status)
        if result.outcome is Outcome.ANSWER and result.records:
            return Delivery(True, fqdn=target, ip=result.records[0].data)
        return Delivery(False, result.failure, target)

    connector = org.route(host.name, queue.next_hop)
    if connector is None:
        return Delivery(False, None, queue.next_hop, unroutable=True)
    if connector.frontend_proxy_enabled:
        # Front End Transport looks the recipient up, with its own DNS settings (Set-SendConnector
        # docs, FrontendProxyEnabled); the lab models their defaults: the adapter's servers.
        servers = cache.adapter_dns_servers
    elif connector.use_external_dns_servers_enabled:
        servers = cache.external_servers
    else:
        servers = cache.internal_servers
    if not connector.dns_routing_enabled and connector.smart_hosts:
        for smart_host in connector.smart_hosts:
            if _is_ipv4(smart_host):
                address: str | None = smart_host.strip("[] ")
            else:
                address, _ = _resolve_host(world, servers, smart_host, host.cached_status)
            if address is not None and address in org.internet_addresses:
                return Delivery(True, fqdn=smart_host, ip=address, connector=connector)
        return Delivery(False, Failure.SMART_HOST, connector.smart_hosts[0], connector=connector)
    outcome = deliver_external(world, servers, queue.next_hop, cache.dns_fault_tolerance, host.cached_status)
    if outcome.delivered and queue.remote_error is not None:
        return Delivery(False, Failure.REMOTE, outcome.fqdn, outcome.ip, connector=connector,
                        remote_error=queue.remote_error)  # fmt: skip
    return Delivery(outcome.delivered, outcome.failure, outcome.fqdn, outcome.ip, connector=connector)


def last_error(host: HostState, delivery: Delivery, when: datetime.datetime) -> str:
    """The LastError text. 14.x shows the plain SMTP response; 15.x wraps it in the structured
    ``[{LRT=..};{LED=..};{FQDN=..};{IP=..}]`` form (EXCHANGE_FACTS)."""
    if delivery.failure is Failure.SMART_HOST:
        plain = SMART_HOST_ERROR
    elif delivery.failure is Failure.REMOTE:
        plain = delivery.remote_error
    else:
        plain = DNS_FAILED + (delivery.failure or Failure.RETRY).value
    if host.spec.major < 15:
        return plain
    return f"[{{LRT={exchange_time(when)}}};{{LED={plain}}};{{FQDN={delivery.fqdn}}};{{IP={delivery.ip}}}]"


def exchange_time(when: datetime.datetime) -> str:
    """en-US general date/time as Exchange writes it: ``1/15/2025 10:00:00 AM``."""
    hour = when.hour % 12 or 12
    return (
        f"{when.month}/{when.day}/{when.year} {hour}:{when.minute:02d}:{when.second:02d} "
        f"{'AM' if when.hour < 12 else 'PM'}"
    )


def run_attempt(org: Organization, host: HostState, queue: Queue) -> None:
    """Attempt delivery of ``queue`` now and record the result. Caller holds ``org.lock``.
    Mail that keeps coming (``arriving``) joins the queue first, so what a change did to the
    next hop shows at the next attempt even in a queue that had drained."""
    queue.queued += queue.arriving
    # The rates over the minute before this attempt: what arrived, and what this attempt
    # delivers (set below), per 5-second interval as Exchange averages them.
    queue.incoming_rate = round(queue.arriving / RATE_INTERVALS, 3)
    queue.outgoing_rate = 0.0
    if queue.queued == 0:
        queue.status = "Ready"
        return
    now = org.clock()
    if not host.transport_running:
        return  # a stopped transport attempts nothing
    delivery = attempt(org, host, queue)
    queue.attempts += 1
    queue.connector_guid = delivery.connector.guid if delivery.connector else None
    if queue.external:
        if delivery.unroutable:
            queue.delivery_type = "Unreachable"
        elif delivery.connector is not None and not delivery.connector.dns_routing_enabled:
            queue.delivery_type = "SmartHostConnectorDelivery"
        else:
            queue.delivery_type = "DnsConnectorDelivery"
    queue.last_retry = now
    if delivery.unroutable:
        queue.status = "Ready"
        queue.last_error = None
        queue.next_retry = None
        return
    if delivery.delivered:
        queue.outgoing_rate = round(queue.queued / RATE_INTERVALS, 3)
        _track_sent(org, host, queue, delivery, now)
        queue.delivered += queue.queued
        queue.queued = 0
        queue.status = "Ready"
        queue.last_error = None
        queue.retry_count = 0
        queue.first_retry = None
        queue.next_retry = None
        return
    if delivery.failure is Failure.TIMEOUT and queue.ready_while_dns_times_out:
        # The lookup is still outstanding: no failed attempt, no LastError, no retry
        # schedule; the messages wait in Ready and nothing goes out (OutgoingRate 0).
        queue.status = "Ready"
        queue.last_error = None
        queue.next_retry = None
        return
    queue.status = "Retry"
    queue.last_error = last_error(host, delivery, now)
    queue.retry_count += 1
    queue.first_retry = queue.first_retry or now
    queue.next_retry = now + RETRY_INTERVAL


def _track_sent(
    org: Organization, host: HostState, queue: Queue, delivery: Delivery, now: datetime.datetime
) -> None:
    """A SEND event per message the attempt delivered, as the message tracking log has it."""
    domain = queue.next_hop if queue.external else org.scenario.ad_domain
    connector = delivery.connector.name if delivery.connector is not None else INTRA_ORG_CONNECTOR
    first = queue.delivered
    for number in range(first, first + queue.queued):
        host.tracking.append(
            TrackingEvent(
                timestamp=now,
                event_id="SEND",
                source="SMTP",
                connector_id=connector,
                server_hostname=delivery.fqdn,
                server_ip=delivery.ip,
                client_hostname=host.fqdn,
                recipients=(f"user{number + 1}@{domain}",),
                message_id=f"<{host.name.lower()}.{queue.number}.{number + 1}@{host.fqdn}>",
            )
        )


def restart_transport(org: Organization, host: HostState) -> bool:
    """MSExchangeTransport (re)starts: it re-reads its configuration and retries every queue.

    False when it stops and cannot start again because EdgeTransport.exe.config does not load
    (MSExchangeTransport event 14004, "The worker process has failed to load application
    configuration file"): then it stays stopped and no queue moves until the file is repaired
    and the service started again."""
    if not host.config_loads:
        host.transport_running = False
        host.failed_starts += 1
        return False
    host.transport_running = True
    host.cache = host.read_cache()
    host.transport_starts += 1
    for queue in host.queues:
        run_attempt(org, host, queue)
    return True
