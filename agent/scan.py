"""Scanning a fleet: connect, collect and evaluate every host, concurrently and independently.

One host's failure never stops the others: it becomes that host's status (unreachable,
auth-failed, unsupported, failed) with a one-line reason.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence

from agent.collect.org import OrgFactsCache
from agent.collect.runner import DEFAULT_PUBLIC_NAME, CollectOptions, collect_host
from agent.errors import ExfixError, HostError, one_line
from agent.evaluate import evaluate
from agent.fleet import HostRun, run_fleet
from agent.inventory import CredentialResolver
from agent.model.facts import HostFacts
from agent.model.results import HostScan, HostStatus, ScanReport
from agent.model.target import HostTarget
from agent.transport.connection import connect
from agent.transport.deadline import HostDeadline

DEFAULT_FORKS = 16
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
) -> HostFacts:
    """Connect to one host and collect its facts (both sessions closed afterwards); the
    organisation's facts through ``orgs`` (read once per organisation for a fleet)."""
    credential = credentials.resolve(target)
    options = CollectOptions(
        public_name=target.probe_public_name or public_name,
        dns_address_map=target.dns_address_map,
    )
    with connect(target, credential, HostDeadline(target.name, host_timeout)) as conn:
        return collect_host(conn, target.name, options, orgs)


def scan_host(
    target: HostTarget,
    credentials: CredentialResolver,
    *,
    host_timeout: float,
    orgs: OrgFactsCache | None = None,
) -> HostScan:
    facts = collect_target(target, credentials, host_timeout=host_timeout, orgs=orgs)
    return HostScan(
        host=target.name,
        status=HostStatus.SCANNED,
        exchange_version=facts.exchange.version,
        findings=evaluate(facts),
        facts=facts,
    )


def host_failure(host: str, error: BaseException) -> HostScan:
    """A host that could not be scanned, with its status and one-line reason."""
    if isinstance(error, HostError):
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
) -> ScanReport:
    started = now_iso()
    orgs = OrgFactsCache()

    def work(target: HostTarget) -> HostScan:
        return scan_host(target, credentials, host_timeout=host_timeout, orgs=orgs)

    def done(run: HostRun[HostTarget, HostScan]) -> None:
        if on_host_done is not None:
            on_host_done(_result(run))

    runs = run_fleet(targets, work, forks=forks, on_done=done)
    return ScanReport(hosts=tuple(_result(run) for run in runs), started=started, finished=now_iso(),
                      source=source)


def _result(run: HostRun[HostTarget, HostScan]) -> HostScan:
    if run.error is not None:
        return host_failure(run.host.name, run.error)
    assert run.value is not None
    return run.value


def evaluate_snapshot(hosts: Sequence[HostFacts], *, source: str) -> ScanReport:
    """The offline half: rules over saved facts (exfix evaluate)."""
    started = now_iso()
    scans = tuple(
        HostScan(host=f.host, status=HostStatus.SCANNED, exchange_version=f.exchange.version,
                 findings=evaluate(f), facts=f)
        for f in hosts
    )
    return ScanReport(hosts=scans, started=started, finished=now_iso(), source=source)
