"""Collecting one host: run the collectors' commands over a HostConnection, parse, assemble.

This is the IO side of agent/collect: the area modules say which cmdlets to run and parse
what comes back; this module runs them in order and puts the facts together.

Order matters. The Exchange server comes first (its version decides the transport cmdlet
noun, and Exchange 2007 stops here as unsupported). The probes come last, because they ask
every DNS server the NICs and the transport settings name, and look up the remote domains the
queues fail on.

A command that fails for one area (an ErrorRecord, or output that cannot be used: a
RemoteCommandError), or output its parser cannot read, does not lose the host: the area
(agent.model.facts.CollectionArea) is recorded as not collected, with the reason, the other
areas are collected as usual, and the rules that read it are reported as not judged
(agent.evaluate). EdgeTransport.exe.config is two areas: the file as read, and the settings in
it; a file that is not well-formed XML is collected (with where it breaks) while its settings
are not. Get-ExchangeServer is not such an area: without
the server object nothing else can be asked, so its RemoteCommandError ends the host (status
command-failed). A transport failure (a HostError: unreachable, auth, timeout) ends the host
too: both propagate to the fleet runner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from agent.collect import (
    dns_cache,
    dns_probe,
    edge_config,
    exchange_server,
    firewall,
    host_probe,
    nics,
    queues,
    send_connectors,
    transport,
)
from agent.collect.assemble import configured_dns_servers, failing_remote_domains, host_facts
from agent.collect.org import OrgFactsCache
from agent.errors import RemoteCommandError, one_line
from agent.model.command import CmdletCall
from agent.model.facts import (
    AreaIssue,
    CollectionArea,
    DnsCacheEntry,
    EdgeConfigFileFacts,
    EdgeTransportConfigFacts,
    ExchangeServerFacts,
    FirewallFacts,
    HostFacts,
    NicFacts,
    OrgFacts,
    ProbeTargets,
    QueueFacts,
    TransportDnsFacts,
)
from agent.model.probe import PROBE_REPEAT_MAX, DnsQueryResult, Outcome
from agent.model.remote import RemoteObject
from agent.transport.base import CommandResult

T = TypeVar("T")
R = TypeVar("R")

# An internet name any working external resolver answers. An admin can name another one
# (exfix_probe_public_name) where policy or split DNS makes this one a poor witness.
DEFAULT_PUBLIC_NAME = "microsoft.com"


class Runner(Protocol):
    """What the collector needs from a connection: run a cmdlet, raise or return its errors.

    agent.transport.connection.HostConnection is one; tests may pass anything with these.
    """

    def run(self, call: CmdletCall, *, timeout: float | None = None) -> tuple[RemoteObject, ...]: ...

    def invoke(self, call: CmdletCall, *, timeout: float | None = None) -> CommandResult: ...


# The pause between two rounds: long enough that a burst limit (response rate limiting counts
# per second) or a short loss spike is not hit by every round at once, short enough that ten
# rounds cost under two seconds on top of the queries.
PROBE_ROUND_INTERVAL = 0.2


@dataclass(frozen=True, slots=True)
class CollectOptions:
    public_name: str = DEFAULT_PUBLIC_NAME
    dns_address_map: tuple[tuple[str, str], ...] = ()
    probe_timeout: float = dns_probe.DEFAULT_TIMEOUT
    orchestrator_probe: bool = True
    probe_repeat: int = 1
    probe_interval: float = PROBE_ROUND_INTERVAL
    # The OS endpoint's areas collected beside the Exchange endpoint's (two services, two
    # sessions: collect_host's docstring). False: one after the other, as a plain script does.
    parallel_endpoints: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.probe_repeat <= PROBE_REPEAT_MAX:
            raise ValueError(f"probe_repeat must be 1 to {PROBE_REPEAT_MAX}, not {self.probe_repeat}")


def collect_host(
    conn: Runner, host: str, options: CollectOptions, orgs: OrgFactsCache | None = None
) -> HostFacts:
    """Every fact exfix knows how to collect about ``host``, and its organisation's facts
    (read through ``orgs``, shared by the servers of one organisation; a cache of its own when
    None).

    Raises UnsupportedHostError (Exchange 2007), the transport's HostErrors, and the
    RemoteCommandError of Get-ExchangeServer; an area whose command failed, or whose output
    could not be parsed, is recorded in ``facts.status.issues`` instead.
    """
    issues: list[AreaIssue] = []
    shared = orgs or OrgFactsCache()

    def area(name: CollectionArea, fetch: Callable[[], R], parse: Callable[[R], T]) -> T | None:
        """One step of an area: its commands (``fetch``), then its parser (``parse``). The
        host's RemoteCommandError from either, or any failure of the parser, costs only the
        area: it is recorded with the reason and the area is None. A transport failure of
        ``fetch`` (HostError, or anything it does not classify) still ends the host."""
        try:
            raw = fetch()
        except RemoteCommandError as exc:
            issues.append(AreaIssue(name, one_line(exc.reason)))
            return None
        try:
            return parse(raw)
        except RemoteCommandError as exc:
            issues.append(AreaIssue(name, one_line(exc.reason)))
        except Exception as exc:  # parsing is pure: output exfix cannot read is no lost host
            problem = f"exfix could not read the output: {type(exc).__name__}: {exc}"
            issues.append(AreaIssue(name, one_line(problem)))
        return None

    server = exchange_server.parse(_run_all(conn, exchange_server.calls(host)), host=host, identity=host)
    identity = server.name

    def exchange_side() -> _ExchangeSide:
        dag: str | None = None
        if "Mailbox" in server.roles:
            # Only apply's restart order needs it: a failed read leaves it unknown (None),
            # which apply treats as "may share a DAG with any server", and costs no area.
            try:
                dag = exchange_server.parse_dag(_run_all(conn, exchange_server.dag_calls(identity)),
                                                identity=identity)  # fmt: skip
            except RemoteCommandError:
                dag = None
        transport_facts = area(
            CollectionArea.TRANSPORT,
            lambda: _run_all(conn, transport.calls(server.transport_noun, identity)),
            lambda out: transport.parse(out, host=host, cmdlet=f"Get-{server.transport_noun.value}"),
        )
        queue_facts = area(
            CollectionArea.QUEUES, lambda: _run_all(conn, queues.calls(identity)), queues.parse
        ) or ()
        org = shared.get(
            server.organization, host, lambda: send_connectors.parse(_run_all(conn, send_connectors.calls()))
        )
        if org.issue is not None:
            issues.append(org.issue)
        return _ExchangeSide(replace(server, dag=dag), transport_facts, queue_facts, org)

    def os_side() -> _OsSide:
        nic_facts = area(
            CollectionArea.NICS,
            lambda: tuple(conn.run(call) for call in nics.calls()),
            lambda out: nics.parse(*out),
        ) or ()

        edge_file: EdgeConfigFileFacts | None = None
        edge: EdgeTransportConfigFacts | None = None
        install = area(
            CollectionArea.EDGE_CONFIG_FILE,
            lambda: _run_all(conn, edge_config.install_path_calls(server.major)),
            lambda out: edge_config.parse_install_path(out, host=host),
        )
        if install is not None:
            path = edge_config.config_path(install)

            def read_file(out: tuple[RemoteObject, ...]) -> tuple[EdgeConfigFileFacts, str]:
                text = edge_config.content(out, host=host, path=path)
                return edge_config.read_file(text, host=host, path=path), text

            calls = edge_config.config_calls(install)
            read = area(CollectionArea.EDGE_CONFIG_FILE, lambda: _run_all(conn, calls), read_file)
            if read is not None:
                edge_file, text = read
                # Not well-formed: the settings are not collected (the reason names the line and
                # column), and the file's own finding says what that does to transport.
                edge = area(CollectionArea.EDGE_CONFIG, lambda: text,
                            lambda t: edge_config.settings(t, host=host, path=path))  # fmt: skip

        # The DNS Client service's cache (its own area: a host whose CIM provider fails here
        # still has every other area). Read before the probes, so that what is read is the
        # cache the failing queues met, not one the probes' own lookups added to.
        cache = area(
            CollectionArea.DNS_CACHE,
            lambda: _run_all(conn, dns_cache.calls()),
            lambda out: dns_cache.parse(out, host=host),
        )
        # The firewall is read after the NICs and before the probes: its rules say what the
        # host's own probes will meet. Not readable (the NetSecurity provider refuses, the module
        # is absent): the area alone is lost, and host-firewall-blocks-dns still contrasts the
        # probes.
        firewall_facts = area(
            CollectionArea.FIREWALL,
            lambda: tuple(conn.run(call) for call in firewall.calls()),
            lambda out: firewall.parse(*out),
        )
        return _OsSide(nic_facts, edge_file, edge, cache, firewall_facts)

    # The Exchange endpoint (/PowerShell, Exchange's own IIS application) and the OS endpoint
    # (/wsman) are separate services with sessions of their own, and neither side's commands
    # need the other's answers (only Get-ExchangeServer's version, read above): collected side
    # by side, a host costs the longer chain of round trips, not the sum of both.
    if options.parallel_endpoints:
        # A side that loses the host (a HostError, or anything a command raises that is not
        # the host's own error answer) stops the other: nothing more is asked of a host that
        # is gone, whichever endpoint noticed first.
        guarded = _Guarded(conn)
        conn = guarded
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="exfix-os") as pool:
            os_future = pool.submit(guarded.side, os_side)
            ex = guarded.side(exchange_side)
            os_part = os_future.result()
    else:
        ex = exchange_side()
        os_part = os_side()
    server, transport_facts, queue_facts, org = ex.server, ex.transport, ex.queues, ex.org
    nic_facts = os_part.nics
    # Issues in the areas' documented order, whichever side finished first.
    issues.sort(key=lambda issue: _AREA_ORDER.index(issue.area))

    targets = ProbeTargets.for_domain(server.domain, server.fqdn, options.public_name)
    servers = configured_dns_servers(nic_facts, transport_facts)
    domains = failing_remote_domains(queue_facts)
    probes = list(_host_probes(conn, targets, servers, domains, options))
    if options.orchestrator_probe:
        probes.extend(_orchestrator_probes(server.domain, targets, servers, domains, options, shared.probes))

    return host_facts(
        host,
        server,
        transport=transport_facts,
        queues=queue_facts,
        org=org,
        nics=nic_facts,
        edge_config=os_part.edge_config,
        probe_targets=targets,
        probes=probes,
        remote_domains=domains,
        issues=issues,
        edge_config_file=os_part.edge_config_file,
        dns_cache=os_part.dns_cache,
        firewall=os_part.firewall,
    )


_AREA_ORDER = tuple(CollectionArea)


class _Guarded:
    """A Runner shared by the two sides of collect_host: once a side has lost the host, every
    later command of the other side raises that same error instead of being sent."""

    def __init__(self, conn: Runner) -> None:
        self._conn = conn
        self._lost: BaseException | None = None

    def side(self, work: Callable[[], T]) -> T:
        try:
            return work()
        except RemoteCommandError:
            raise  # an area's error answer that escaped: the host still answers
        except BaseException as exc:
            self._lost = self._lost or exc
            raise

    def _check(self) -> None:
        if self._lost is not None:
            raise self._lost

    def run(self, call: CmdletCall, *, timeout: float | None = None) -> tuple[RemoteObject, ...]:
        self._check()
        return self._conn.run(call, timeout=timeout)

    def invoke(self, call: CmdletCall, *, timeout: float | None = None) -> CommandResult:
        self._check()
        return self._conn.invoke(call, timeout=timeout)


@dataclass(frozen=True, slots=True)
class _ExchangeSide:
    server: ExchangeServerFacts
    transport: TransportDnsFacts | None
    queues: tuple[QueueFacts, ...]
    org: OrgFacts


@dataclass(frozen=True, slots=True)
class _OsSide:
    nics: tuple[NicFacts, ...]
    edge_config_file: EdgeConfigFileFacts | None
    edge_config: EdgeTransportConfigFacts | None
    dns_cache: tuple[DnsCacheEntry, ...] | None
    firewall: FirewallFacts | None


def _run_all(conn: Runner, calls: Iterable[CmdletCall]) -> tuple[RemoteObject, ...]:
    out: list[RemoteObject] = []
    for call in calls:
        out.extend(conn.run(call))
    return tuple(out)


def _probe(conn: Runner, call: CmdletCall, attempt: int = 1) -> DnsQueryResult:
    # invoke, not run: a failed lookup is an ErrorRecord, and that failure is the evidence.
    started = time.monotonic()
    result = conn.invoke(call)
    return host_probe.parse(call, result.objects, result.errors,
                            elapsed_ms=(time.monotonic() - started) * 1000.0, attempt=attempt)


def _rounds(options: CollectOptions) -> Iterable[int]:
    """1 .. probe_repeat, with the pause between rounds (not before the first)."""
    for attempt in range(1, options.probe_repeat + 1):
        if attempt > 1:
            time.sleep(options.probe_interval)
        yield attempt


def _host_probes(
    conn: Runner, targets: ProbeTargets, servers: tuple[str, ...], domains: tuple[str, ...],
    options: CollectOptions | None = None,
) -> Iterable[DnsQueryResult]:
    # The same question is asked once per round: a failing queue's domain is often the public
    # probe name too (its MX), and a server that never answers would cost its timeout twice.
    # The standard questions are asked in every round, all servers in turn, so the attempts
    # of one server are spread over the window; the remote domains' lookups once, after them.
    options = options or CollectOptions()
    asked: dict[CmdletCall, DnsQueryResult] = {}

    def ask(call: CmdletCall) -> tuple[DnsQueryResult, bool]:
        if call in asked:
            return asked[call], False
        asked[call] = _probe(conn, call)
        return asked[call], True

    standard = host_probe.calls(targets, servers)
    for attempt in _rounds(options):
        for call in standard:
            if attempt == 1:
                result, new = ask(call)
                if new:
                    yield result
            else:
                yield _probe(conn, call, attempt)
    for domain in domains:
        mx_hosts: list[str] = []
        for call in host_probe.remote_domain_calls(domain, servers):
            result, new = ask(call)
            if new:
                yield result
            if result.rdtype == "MX" and result.outcome is Outcome.ANSWER:
                mx_hosts.extend(_lowest_mx(result.records))
        for mx_host in dict.fromkeys(mx_hosts):
            for call in host_probe.mx_host_calls(mx_host, servers):
                result, new = ask(call)
                if new:
                    yield result


def _lowest_mx(records: Iterable[str]) -> list[str]:
    parsed: list[tuple[int, str]] = []
    for text in records:
        preference, _, host = text.strip().partition(" ")
        if preference.isdigit() and host.strip() and host.strip() != ".":
            parsed.append((int(preference), host.strip().rstrip(".")))
    if not parsed:
        return []
    lowest = min(p for p, _ in parsed)
    return [h for p, h in parsed if p == lowest]


def _orchestrator_probes(
    ad_domain: str,
    targets: ProbeTargets,
    servers: tuple[str, ...],
    domains: tuple[str, ...],
    options: CollectOptions,
    cache: dns_probe.ProbeCache | None = None,
) -> Iterable[DnsQueryResult]:
    address_map = dict(options.dns_address_map)
    results: list[DnsQueryResult] = []
    for attempt in _rounds(options):
        for server in servers:
            probe = dns_probe.probe_server(server, ad_domain, targets.internal_host, targets.public_name,
                                           address_map=address_map, timeout=options.probe_timeout,
                                           attempt=attempt, cache=cache)
            results.extend(probe.results)
    for domain in domains:
        results.extend(dns_probe.probe_domain(domain, servers, address_map=address_map,
                                              timeout=options.probe_timeout, cache=cache).results)
    # A domain probe may repeat a server probe's question (the public name's MX when a queue
    # to that domain fails): the facts, and so the evidence, hold each question once per round.
    seen: set[tuple[str, str, str, int]] = set()
    for result in results:
        key = (result.server, result.qname.rstrip(".").lower(), result.rdtype, result.attempt)
        if key not in seen:
            seen.add(key)
            yield result
