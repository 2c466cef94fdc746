"""plan_fleet: scan a fleet and build its plan (what ``exfix plan`` and playbooks run).

Dry-run: only reads. Hosts that could not be scanned are left out of the plan and reported
(exit 3, or 7 when a host answered with an error), the others are planned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.errors import EXIT_FINDINGS, EXIT_OK, EXIT_PARTIAL, worst_exit
from agent.inventory import CredentialResolver
from agent.model.plan import HostVars, Plan, PlanSource
from agent.model.results import HostScan, HostStatus, ScanReport
from agent.model.target import HostTarget
from agent.planning import build_plan
from agent.scan import DEFAULT_FORKS, DEFAULT_HOST_TIMEOUT, scan_fleet


@dataclass(frozen=True, slots=True)
class FleetPlan:
    plan: Plan
    scan: ScanReport

    @property
    def unscanned(self) -> tuple[HostScan, ...]:
        return tuple(h for h in self.scan.hosts if h.status is not HostStatus.SCANNED)

    @property
    def exit_code(self) -> int:
        """The worst of: 3 for a host exfix could not talk to, 7 for a host that answered with
        an error (agent.errors.EXIT_PRECEDENCE), 2 when any action (automatic or manual) is
        planned or any finding remains (one with no step says what stands in the way: the
        plan's ``outstanding``), 8 when nothing remains but a scanned host is partial (a fact area
        not collected: what its rules would have found is not known), else 0."""
        remaining = any(unit.findings for unit in self.plan.units)
        planned = EXIT_FINDINGS if self.plan.actions or remaining else EXIT_OK
        partial = EXIT_PARTIAL if any(h.partial for h in self.scan.hosts) else EXIT_OK
        return worst_exit([planned, partial, *(h.exit_code for h in self.unscanned)])


def host_vars(target: HostTarget) -> HostVars:
    return HostVars(external_dns_servers=target.external_dns_servers)


def plan_fleet(
    targets: Sequence[HostTarget],
    credentials: CredentialResolver,
    *,
    source: PlanSource | None,
    scan_source: str | None = None,
    forks: int = DEFAULT_FORKS,
    host_timeout: float = DEFAULT_HOST_TIMEOUT,
    on_host_done: Callable[[HostScan], None] | None = None,
    probe_repeat: int = 1,
) -> FleetPlan:
    """Collect and evaluate every target (agent.scan), then plan the scanned hosts. ``source``
    is recorded in the plan (inside its digest) so apply can reach the hosts again."""
    label = scan_source or (source.describe() if source is not None else "plan")
    report = scan_fleet(targets, credentials, source=label, forks=forks, host_timeout=host_timeout,
                        on_host_done=on_host_done, probe_repeat=probe_repeat)  # fmt: skip
    facts = report.scanned_facts()
    findings = {h.host: h.findings for h in report.hosts if h.host in facts}
    variables = {t.name: host_vars(t) for t in targets}
    shared = tuple(f for o in report.organizations for f in o.findings)
    plan = build_plan(list(facts.values()), findings, variables, source=source, organization_findings=shared,
                      probe_repeat=probe_repeat)  # fmt: skip
    return FleetPlan(plan, report)
