"""Scanning a fleet: connect, collect and evaluate every host, concurrently and independently.

One host's failure never stops the others: it becomes that host's status with a one-line
reason: unreachable, auth-failed, unsupported or failed when exfix could not talk to it (a
HostError, exit 3), command-failed when it answered Get-ExchangeServer with an error (a
RemoteCommandError, exit 7). A host that answered but where one fact area failed is scanned
with the others, and is partial: the failed areas and the rules not judged are in its result
(exit 8 when nothing else is found).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Sequence

from agent.collect.org import OrgFactsCache
from agent.collect.runner import DEFAULT_PUBLIC_NAME, CollectOptions, collect_host
from agent.errors import ExfixError, HostError, RemoteCommandError, one_line
from agent.evaluate import Member, judge, organise
from agent.fleet import HostRun, run_fleet
from agent.inventory import CredentialResolver
from agent.model.facts import HostFacts
from agent.model.probe import server_stats
from agent.model.results import HostScan, HostStatus, OrgScan, ScanReport
from agent.model.target import HostTarget
from agent.transport.connection import connect
from agent.transport.deadline import HostDeadline

# Hosts collected at once. The limit model (bench/README.md) says C workers keep the client's
# CPU busy when C >= T_host / CPU_client: 51 for the lab's 1.13 s and 22 ms per host at RTT
# 20 ms, and more where servers answer slower than the lab (a WAN, a loaded server). Measured
# on the 200-host lab at RTT 20 ms: 64 workers 8.5 and 8.4 s, 128 7.9 and 7.7 s, 256 8.4 and
# 8.0 s; at 10,000 hosts, which the lab's one core bounds, 128 took the same time as 64 at
# 279 MB peak. A worker holds one host's two sessions (about 0.4 MB); a scan only reads, so
# more at once risks nothing but memory.
DEFAULT_FORKS = 128
DEFAULT_HOST_TIMEOUT = 300.0


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def collect_target(
    target: HostTarget,
    credentials: CredentialResolver,
    *,
    host_timeout: float,
    public_name: str = DEFAULT_PUBLIC_NAME,
    orgs: OrgFactsCache | None = None,
    probe_repeat: int = 1,
) -> HostFacts:
    """Connect to one host and collect its facts (both sessions closed afterwards); the
    organisation's facts through ``orgs`` (read once per organisation for a fleet)."""
    credential = credentials.resolve(target)
    options = CollectOptions(
        public_name=target.probe_public_name or public_name,
        dns_address_map=target.dns_address_map,
        probe_repeat=probe_repeat,
    )
    with connect(target, credential, HostDeadline(target.name, host_timeout)) as conn:
        return collect_host(conn, target.name, options, orgs)


def scan_host(
    target: HostTarget,
    credentials: CredentialResolver,
    *,
    host_timeout: float,
    orgs: OrgFactsCache | None = None,
    probe_repeat: int = 1,
) -> HostScan:
    facts = collect_target(target, credentials, host_timeout=host_timeout, orgs=orgs,
                           probe_repeat=probe_repeat)
    return scanned(facts)


def scanned(facts: HostFacts) -> HostScan:
    """A host whose facts were collected (some areas may have failed): its findings, the areas
    that failed and the rules not judged because of them."""
    judgement = judge(facts)
    member = Member.of(facts)
    return HostScan(
        host=facts.host,
        status=HostStatus.SCANNED,
        exchange_version=facts.exchange.version,
        findings=judgement.findings,
        facts=facts,
        failed_areas=facts.status.issues,
        not_judged=judgement.not_judged,
        dns_servers=server_stats(facts.probes),
        organization=member.organization,
        collected_from=member.collected_from,
        queues=facts.queues,
    )


def host_failure(host: str, error: BaseException) -> HostScan:
    """A host that could not be scanned, with its status and one-line reason."""
    if isinstance(error, (HostError, RemoteCommandError)):
        return HostScan(host=host, status=HostStatus(error.status), error=one_line(error.reason))
    if isinstance(error, ExfixError):
        return HostScan(host=host, status=HostStatus.FAILED, error=str(error))
    return HostScan(host=host, status=HostStatus.FAILED,
                    error=one_line(f"{type(error).__name__}: {error}"))


def scan_fleet(
    targets: Sequence[HostTarget],
    credentials: CredentialResolver,
    *,
    source: str,
    forks: int = DEFAULT_FORKS,
    host_timeout: float = DEFAULT_HOST_TIMEOUT,
    on_host_done: Callable[[HostScan], None] | None = None,
    probe_repeat: int = 1,
    on_facts: Callable[[HostFacts], None] | None = None,
    keep_facts: bool = True,
) -> ScanReport:
    """Scan every target. ``probe_repeat`` (1..agent.collect.runner.PROBE_REPEAT_MAX) is how
    often each DNS server's standard questions are asked, from both vantages.

    ``on_facts`` gets each scanned host's facts as soon as it is judged (``exfix scan
    --save-facts`` streams them to the file); with ``keep_facts`` False the report's hosts then
    hold only what the report shows (HostScan.dns_servers and the organisation), so that a
    fleet's memory does not grow with its facts. Planning keeps them: it plans from them."""
    started = now_iso()
    orgs = OrgFactsCache()

    def work(target: HostTarget) -> HostScan:
        result = scan_host(target, credentials, host_timeout=host_timeout, orgs=orgs,
                           probe_repeat=probe_repeat)  # fmt: skip
        if result.facts is not None:
            if on_facts is not None:
                on_facts(result.facts)
            if not keep_facts:
                result = dataclasses.replace(result, facts=None)
        return result

    def done(run: HostRun[HostTarget, HostScan]) -> None:
        if on_host_done is not None:
            on_host_done(_result(run))

    runs = run_fleet(targets, work, forks=forks, on_done=done)
    return organised(tuple(_result(run) for run in runs), started=started, finished=now_iso(), source=source)


def organised(hosts: Sequence[HostScan], *, started: str, finished: str, source: str) -> ScanReport:
    """The report of ``hosts``, with the findings about what the servers of an organisation
    share lifted out of the hosts into one organisation finding each (agent.evaluate.organise)."""
    scanned = [
        (Member(h.host, h.organization or h.host, h.collected_from or h.host), h.findings)
        for h in hosts
        if h.status is HostStatus.SCANNED
    ]
    result = organise(scanned)
    own = {e.host: e.findings for e in result.hosts}
    return ScanReport(
        hosts=tuple(dataclasses.replace(h, findings=own[h.host]) if h.host in own else h for h in hosts),
        started=started,
        finished=finished,
        source=source,
        organizations=tuple(
            OrgScan(o.name, o.servers, o.collected_from, o.findings) for o in result.organizations
        ),
    )


def _result(run: HostRun[HostTarget, HostScan]) -> HostScan:
    if run.error is not None:
        return host_failure(run.host.name, run.error)
    assert run.value is not None
    return run.value


def evaluate_snapshot(hosts: Sequence[HostFacts], *, source: str) -> ScanReport:
    """The offline half: rules over saved facts (exfix evaluate)."""
    started = now_iso()
    return organised(tuple(scanned(f) for f in hosts), started=started, finished=now_iso(), source=source)
