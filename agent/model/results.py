"""The outcome of a scan: per host, a status, the findings and the facts behind them; per
organisation, the findings about what its servers share.

The JSON document is ``exfix.scan/4`` (agent/schemas/scan.schema.json). /4 adds, per host,
``dns_servers``: how each DNS server did over every probe round from each vantage (attempts,
failures, failure rate, latency; agent.model.probe.server_stats). /3 added, per host, the
fact areas that could not be collected on a host that answered (``failed_areas``: area and
reason; the host is still ``scanned`` with the areas that worked) and the rules that were
therefore not judged there (``not_judged``: rule, title, the failed areas it reads, why); the
summary's ``partial`` (scanned hosts with a failed area) and ``not_judged`` counts; and exit
code 8 (partial: nothing found, but something was not judged). /2 added the host
status ``command-failed`` (the host answered Get-ExchangeServer with an error), its count in
the summary, and exit code 7; and the organisations (``organizations``: one finding per
subject the servers share, such as a remote domain whose DNS fails AAAA queries, naming the
servers in ``servers``), with each finding's ``level`` and ``servers``. Everything else is as
in /1, and the schema still accepts /1, /2 and /3 documents.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass
from typing import Any

from agent.errors import (
    EXIT_COMMAND_FAILED,
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    worst_exit,
)
from agent.model.facts import AreaIssue, HostFacts, QueueFacts
from agent.model.findings import Finding, NotJudged
from agent.model.probe import ServerProbeStats

SCAN_SCHEMA = "exfix.scan/4"


class HostStatus(str, enum.Enum):
    SCANNED = "scanned"
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth-failed"
    UNSUPPORTED = "unsupported"
    FAILED = "failed"
    COMMAND_FAILED = "command-failed"

    @property
    def exit_code(self) -> int:
        """What a host in this status contributes to the run's exit code (scanned: by its
        findings, see :attr:`HostScan.exit_code`)."""
        if self is HostStatus.SCANNED:
            return EXIT_OK
        return EXIT_COMMAND_FAILED if self is HostStatus.COMMAND_FAILED else EXIT_UNREACHABLE


@dataclass(frozen=True, slots=True)
class HostScan:
    """One host's scan. ``error`` is one line, set whenever status is not ``scanned``.

    A scanned host may be partial: ``failed_areas`` are the fact areas that could not be
    collected on it (the host answered, one area's commands or output did not work), and
    ``not_judged`` the rules that read one of them and so were not run there."""

    host: str
    status: HostStatus
    error: str | None = None
    exchange_version: str | None = None
    findings: tuple[Finding, ...] = ()
    facts: HostFacts | None = None  # None once a fleet scan has let them go (or streamed them)
    failed_areas: tuple[AreaIssue, ...] = ()
    not_judged: tuple[NotJudged, ...] = ()
    # What the report needs of the facts, kept when they are let go: each DNS server's probe
    # statistics, and the host's organisation and where its shared facts were read from.
    dns_servers: tuple[ServerProbeStats, ...] = ()
    organization: str = ""
    collected_from: str = ""
    queues: tuple[QueueFacts, ...] = ()  # Get-Queue's rows (the prometheus format shows them)

    @property
    def partial(self) -> bool:
        """Scanned, but a fact area could not be collected."""
        return self.status is HostStatus.SCANNED and bool(self.failed_areas)

    @property
    def exit_code(self) -> int:
        """0 clean, 2 findings, 8 partial without findings, 3 not scanned (could not talk to
        it), 7 command-failed."""
        if self.status is HostStatus.SCANNED:
            if self.findings:
                return EXIT_FINDINGS
            return EXIT_PARTIAL if self.failed_areas else EXIT_OK
        return self.status.exit_code

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status.value,
            "error": self.error,
            "exchange_version": self.exchange_version,
            "findings": [finding_to_dict(f) for f in self.findings],
            "failed_areas": [{"area": i.area.value, "reason": i.reason} for i in self.failed_areas],
            "not_judged": [j.to_dict() for j in self.not_judged],
            # exfix.scan/4: how each DNS server did over every probe round, per vantage.
            "dns_servers": [s.to_dict() for s in self.dns_servers],
        }


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    """A finding as the exfix.scan/3 document shows it: ``rule`` and ``fix`` are the contract
    names of the rule id and fix id."""
    data = finding.to_dict()
    return {
        "id": data["id"],
        "rule": data["rule_id"],
        "severity": data["severity"],
        "title": data["title"],
        "subject": data["subject"],
        "summary": data["summary"],
        "evidence": data["evidence"],
        "fix": data["fix_id"],
        "fix_disrupts_mail_flow": data["fix_disrupts_mail_flow"],
        "explained_by": data["explained_by"],
        "data": data["data"],
        "level": data["level"],
        "servers": data["servers"],
    }


@dataclass(frozen=True, slots=True)
class OrgScan:
    """One organisation: its scanned servers (inventory names), the server its shared facts
    were read from, and the findings about what they share."""

    name: str
    servers: tuple[str, ...]
    collected_from: str
    findings: tuple[Finding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "organization": self.name,
            "servers": list(self.servers),
            "collected_from": self.collected_from,
            "findings": [finding_to_dict(f) for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class ScanReport:
    hosts: tuple[HostScan, ...]
    started: str  # ISO 8601, UTC
    finished: str
    source: str  # the inventory path, or "lab:<scenario>", or the facts file for evaluate
    organizations: tuple[OrgScan, ...] = ()

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding: the organisations' first, then each host's."""
        return tuple(f for o in self.organizations for f in o.findings) + tuple(
            f for h in self.hosts for f in h.findings
        )

    def scanned_facts(self) -> dict[str, HostFacts]:
        """The facts of every host that was scanned and kept them (a fleet scan with
        ``keep_facts`` False lets them go), by name, in the report's order: what a plan is made
        from, and what apply may reuse (agent/apply/hold.py)."""
        return {h.host: h.facts for h in self.hosts if h.status is HostStatus.SCANNED and h.facts is not None}

    def findings_for(self, host: str) -> tuple[Finding, ...]:
        """What concerns one host: its own findings and the organisation findings naming it."""
        shared = tuple(f for o in self.organizations for f in o.findings if host in f.servers)
        own = next((h.findings for h in self.hosts if h.host == host), ())
        return shared + own

    @property
    def exit_code(self) -> int:
        """The worst host's code (agent.errors.EXIT_PRECEDENCE): 3 when exfix could not talk to
        a host, else 7 when a host answered with an error, else 2 with findings (an
        organisation's included), else 8 when a host is partial (an area not collected, rules
        not judged), else 0."""
        shared = EXIT_FINDINGS if any(o.findings for o in self.organizations) else EXIT_OK
        return worst_exit([shared, *(h.exit_code for h in self.hosts)])

    def summary(self) -> dict[str, Any]:
        statuses = Counter(h.status.value for h in self.hosts)
        findings = self.findings
        named = {s for o in self.organizations for f in o.findings for s in f.servers}
        return {
            "hosts": len(self.hosts),
            **{status.value: statuses.get(status.value, 0) for status in HostStatus},
            "findings": len(findings),
            "by_rule": dict(sorted(Counter(f.rule_id for f in findings).items())),
            "by_severity": dict(sorted(Counter(f.severity.value for f in findings).items())),
            "hosts_with_findings": sum(1 for h in self.hosts if h.findings or h.host in named),
            "organizations": len(self.organizations),
            "partial": sum(1 for h in self.hosts if h.partial),
            "not_judged": sum(len(h.not_judged) for h in self.hosts),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCAN_SCHEMA,
            "source": self.source,
            "started": self.started,
            "finished": self.finished,
            "exit_code": self.exit_code,
            "hosts": [h.to_dict() for h in self.hosts],
            "organizations": [o.to_dict() for o in self.organizations],
            "summary": self.summary(),
        }
