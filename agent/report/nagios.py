"""A scan as a Nagios/Icinga plugin answer (``exfix check``): one status line with
performance data, then a bounded long text, and the plugin's exit code.

The plugin API ("Nagios Plugin Development Guidelines", nagios-plugins.org/doc/guidelines;
Icinga 2 "Service Monitoring: Plugin API"): the first line of stdout is ``SERVICE STATUS -
text | perfdata``; each perfdata item is ``'label'=value[UOM];[warn];[crit];[min];[max]``,
items separated by spaces, a label quoted when it holds a space or a quote (a quote inside
it doubled); lines after the first are the long output. Exit 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN.

Which state: CRITICAL when a critical or high finding stands (mail is failing or will);
UNKNOWN when a host could not be scanned and nothing critical is known (the check lacks data,
the guidelines' use of UNKNOWN); WARNING for medium or low findings, or a host that is
partial (some rules not judged); OK otherwise.
"""

from __future__ import annotations

import enum
from collections import Counter

from agent.model.findings import Severity
from agent.model.results import HostStatus, ScanReport
from agent.report.safe import terminal

LONG_OUTPUT_LIMIT = 20  # hosts listed after the status line


class State(enum.IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


def state_of(report: ScanReport) -> State:
    severities = Counter(f.severity for f in report.findings)
    if severities[Severity.CRITICAL] or severities[Severity.HIGH]:
        return State.CRITICAL
    if any(h.status is not HostStatus.SCANNED for h in report.hosts):
        return State.UNKNOWN
    if report.findings or any(h.partial for h in report.hosts):
        return State.WARNING
    return State.OK


def _label(name: str) -> str:
    return "'" + name.replace("'", "''") + "'" if any(c in name for c in " '=") else name


def perfdata(report: ScanReport) -> str:
    summary = report.summary()
    severities = Counter(f.severity.value for f in report.findings)
    items = [
        ("hosts", summary["hosts"]),
        ("scanned", summary["scanned"]),
        ("not_scanned", summary["hosts"] - summary["scanned"]),
        ("partial", summary["partial"]),
        ("hosts_with_findings", summary["hosts_with_findings"]),
        ("findings", summary["findings"]),
        *((s.value, severities.get(s.value, 0)) for s in sorted(Severity, key=lambda s: -s.rank)),
        ("queued_messages", sum(q.message_count for h in report.hosts for q in h.queues)),
    ]
    return " ".join(f"{_label(name)}={value};;;0" for name, value in items)


def render(report: ScanReport, *, service: str = "EXFIX") -> tuple[str, State]:
    """The plugin's stdout and its state (the exit code)."""
    state = state_of(report)
    summary = report.summary()
    severities = Counter(f.severity for f in report.findings)
    worst_first = sorted(Severity, key=lambda s: -s.rank)
    counts = ", ".join(f"{severities[s]} {s.value}" for s in worst_first if severities[s]) or "no findings"
    unscanned = summary["hosts"] - summary["scanned"]
    text = f"{summary['hosts_with_findings']} of {summary['hosts']} hosts with findings ({counts})"
    if unscanned:
        text += f"; {unscanned} not scanned"
    if summary["partial"]:
        text += f"; {summary['partial']} partial"
    lines = [f"{service} {state.name} - {terminal(text)} | {perfdata(report)}"]
    listed = 0
    for host in report.hosts:
        findings = report.findings_for(host.host)
        if host.status is HostStatus.SCANNED and not findings and not host.partial:
            continue
        if listed == LONG_OUTPUT_LIMIT:
            lines.append("... more hosts: exfix scan --format json has them all")
            break
        listed += 1
        if host.status is not HostStatus.SCANNED:
            lines.append(terminal(f"{host.host}: {host.status.value}: {host.error}"))
            continue
        rules = Counter(f.rule_id for f in findings)
        said = ", ".join(f"{rule}" + (f" x{n}" if n > 1 else "") for rule, n in rules.items())
        partial = "; partial" if host.partial else ""
        lines.append(terminal(f"{host.host}: {said or 'no findings'}{partial}"))
    return "\n".join(lines) + "\n", state
