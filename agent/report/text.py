"""A scan for a person at a terminal: the only module that chooses colours.

Every value from a host is passed through safe.terminal and wrapped in rich Text (which never
interprets markup), so a LastError holding "[red]" or an ANSI escape prints as what it is.
"""

from __future__ import annotations

import enum
from collections import Counter

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from agent.model.findings import Finding, Severity
from agent.model.results import HostScan, HostStatus, OrgScan, ScanReport
from agent.report.display import cause_label, plural
from agent.report.safe import terminal

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
STATUS_STYLE = {
    HostStatus.SCANNED: "green",
    HostStatus.UNREACHABLE: "bold red",
    HostStatus.AUTH_FAILED: "bold red",
    HostStatus.UNSUPPORTED: "yellow",
    HostStatus.FAILED: "bold red",
    HostStatus.COMMAND_FAILED: "bold red",
}
PARTIAL_STYLE = "yellow"


def _t(value: object, style: str = "") -> Text:
    return Text(terminal(value), style=style)


# An organisation finding carries the evidence of every server it names (a queue per server):
# a terminal shows this many items of it, the JSON all of them.
ORG_EVIDENCE_LIMIT = 8


def _evidence(finding: Finding, limit: int | None = None) -> Text:
    text = Text()
    text.append_text(_t(finding.summary, "bold"))
    items = finding.evidence if limit is None else finding.evidence[:limit]
    for item in items:
        where = item.source + (f" ({item.vantage})" if item.vantage else "")
        values = ", ".join(f"{k}={_value(v)}" for k, v in item.values)
        text.append("\n  ")
        text.append_text(_t(f"{where}: {item.subject}: {values}", "dim"))
    if len(items) < len(finding.evidence):
        more = len(finding.evidence) - len(items)
        text.append("\n  ")
        text.append_text(_t(f"... and {more} more evidence items (--format json has them all)", "dim italic"))
    if finding.explained_by:
        text.append("\n  explained by: ")
        text.append_text(_t(", ".join(cause_label(c) for c in finding.explained_by), "italic"))
    return text


def _value(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _finding_row(table: Table, finding: Finding, extra: Text | None = None, limit: int | None = None) -> None:
    rule = _t(finding.rule_id, "bold")
    rule.append("\nfix: ")
    rule.append_text(_t(finding.fix_id or "none (advisory)"))
    if finding.fix_disrupts_mail_flow:
        rule.append("\nneeds a transport restart", style="yellow")
    evidence = _evidence(finding, limit)
    if extra is not None:
        evidence.append("\n")
        evidence.append_text(extra)
    table.add_row(_t(finding.severity.value.upper(), SEVERITY_STYLE[finding.severity]), rule, evidence)


def _table(title: Text) -> Table:
    table = Table(title=title, title_justify="left", expand=True, show_lines=True)
    table.add_column("Severity", no_wrap=True, min_width=8)
    table.add_column("Rule and fix", min_width=20, max_width=36, overflow="fold")
    table.add_column("Finding and evidence", ratio=1, overflow="fold")
    return table


def org_table(org: OrgScan, limit: int = 20) -> Table:
    """One organisation's findings: what its servers share, each naming the servers."""
    title = Text()
    title.append_text(_t(f"organisation {org.name}", "bold"))
    title.append_text(_t(f"  {len(org.servers)} servers, shared facts read from {org.collected_from}"))
    table = _table(title)
    for finding in org.findings:
        names = finding.servers
        shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
        _finding_row(table, finding, _t(f"servers ({len(names)}): {shown}", "bold"), ORG_EVIDENCE_LIMIT)
    return table


def _partial_rows(table: Table, host: HostScan) -> None:
    """What could not be collected on a scanned host, and the rules that were not judged."""
    for issue in host.failed_areas:
        label = _t("not collected: ", "bold yellow")
        label.append_text(_t(issue.area.value, "bold"))
        table.add_row(_t("-", PARTIAL_STYLE), label, _t(f"{issue.area.description}: {issue.reason}"))
    # One row per set of failed areas: the rules that read them, and why they were not judged.
    # Where those areas have rows of their own just above, those rows hold the reason in full.
    shown = {issue.area.value for issue in host.failed_areas}
    groups: dict[tuple[str, ...], list[str]] = {}
    reasons: dict[tuple[str, ...], str] = {}
    for skipped in host.not_judged:
        groups.setdefault(skipped.areas, []).append(skipped.rule_id)
        reasons.setdefault(skipped.areas, skipped.reason)
    for areas, rules in groups.items():
        label = _t("not judged", "bold yellow")
        for rule_id in rules:
            label.append("\n")
            label.append_text(_t(rule_id, "bold"))
        they = "it reads" if len(rules) == 1 else "they read"
        why = (
            f"not judged: {they} {', '.join(areas)}, not collected on this host"
            if set(areas) <= shown
            else f"not judged: {reasons[areas]}"
        )
        table.add_row(_t("-", PARTIAL_STYLE), label, _t(why))


def host_table(host: HostScan) -> Table:
    title = Text()
    title.append_text(_t(host.host, "bold"))
    title.append("  ")
    title.append_text(_t(host.status.value, STATUS_STYLE[host.status]))
    if host.partial:
        title.append_text(_t(", partial", PARTIAL_STYLE))
    if host.exchange_version:
        title.append_text(_t(f"  Exchange {host.exchange_version}"))
    table = _table(title)
    if host.error is not None:
        table.add_row(_t("-"), _t(host.status.value), _t(host.error))
    for finding in host.findings:
        _finding_row(table, finding)
    _partial_rows(table, host)
    if host.error is None and not host.findings:
        clean = "no findings in what was judged" if host.partial else "no findings"
        table.add_row(_t("-"), _t("-"), _t(clean, PARTIAL_STYLE if host.partial else "green"))
    return table


class Details(str, enum.Enum):
    """Which hosts' evidence a text scan prints above its recap (``--details``)."""

    NONE = "none"
    FAILING = "failing"  # hosts with findings, partial or not scanned: the first DETAIL_LIMIT
    ALL = "all"


# A terminal's scrollback holds a few thousand lines; ten hosts' tables of evidence are what a
# person reads before turning to the recap, the JSON or --details all.
DETAIL_LIMIT = 10
_SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO)


def _failing(report: ScanReport, host: HostScan) -> bool:
    return host.status is not HostStatus.SCANNED or host.partial or bool(report.findings_for(host.host))


def recap_table(report: ScanReport) -> Table:
    """One line per host, as Ansible's PLAY RECAP: its status and its findings by severity
    (an organisation finding naming the server counts for it too)."""
    table = Table(title=Text("Recap", style="bold"), title_justify="left", box=None, pad_edge=False)
    # Names and statuses are never cut; the note takes what is left, on one line, whatever its
    # length: the full reason is in the host's details and in the JSON.
    width = max((len(terminal(h.host)) for h in report.hosts), default=4)
    table.add_column("host", no_wrap=True, min_width=width)
    table.add_column("status", no_wrap=True, min_width=len("command-failed"))
    for severity in _SEVERITIES:
        table.add_column(severity.value, justify="right", no_wrap=True, min_width=len(severity.value))
    table.add_column("note", no_wrap=True, overflow="ellipsis", ratio=1)
    for host in report.hosts:
        counts = Counter(f.severity for f in report.findings_for(host.host))
        status = _t(host.status.value, STATUS_STYLE[host.status])
        if host.status is HostStatus.SCANNED and not counts and not host.partial:
            status = _t("ok", "green")
        note = _t(host.error) if host.error else Text()
        if host.partial:
            areas = ", ".join(i.area.value for i in host.failed_areas)
            note = _t(f"partial: {areas} not collected; {plural(len(host.not_judged), 'rule')} not judged",
                      PARTIAL_STYLE)  # fmt: skip
        cells = [_t(str(counts[s]), SEVERITY_STYLE[s]) if counts[s] else _t("0", "dim") for s in _SEVERITIES]
        table.add_row(_t(host.host, "bold"), status, *cells, note)
    return table


def rules_table(report: ScanReport) -> Table | None:
    """Each rule that fired, across the fleet: on how many hosts, how often, and its fix."""
    findings = report.findings
    if not findings:
        return None
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    table = Table(title=Text("Findings by rule", style="bold"), title_justify="left", box=None,
                  pad_edge=False)  # fmt: skip
    for name, justify in (("rule", "left"), ("severity", "left"), ("hosts", "right"), ("findings", "right"),
                          ("fix", "left")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=name != "fix", overflow="fold")  # type: ignore[arg-type]
    rank = {s: i for i, s in enumerate(_SEVERITIES)}
    for rule_id, items in sorted(by_rule.items(), key=lambda kv: (rank[kv[1][0].severity], kv[0])):
        hosts = {s for f in items for s in (f.servers or (f.host,))}
        first = items[0]
        fix = first.fix_id or "none (advisory)"
        if first.fix_disrupts_mail_flow:
            fix += ", restarts transport"
        table.add_row(_t(rule_id, "bold"), _t(first.severity.value, SEVERITY_STYLE[first.severity]),
                      _t(str(len(hosts))), _t(str(len(items))), _t(fix))  # fmt: skip
    return table


def render(
    report: ScanReport, console: Console, *, details: Details = Details.FAILING, quiet: bool = False
) -> None:
    """The evidence of the hosts ``details`` picks (none with ``quiet``), then the recap: a line
    per host, the rules that fired across the fleet, and the summary line."""
    if not quiet and details is not Details.NONE:
        chosen = [h for h in report.hosts if details is Details.ALL or _failing(report, h)]
        shown = chosen if details is Details.ALL else chosen[:DETAIL_LIMIT]
        orgs = [org_table(o) for o in report.organizations if o.findings]
        console.print(Group(*orgs, *(host_table(h) for h in shown)))
        if len(shown) < len(chosen):
            more = len(chosen) - len(shown)
            hint = "--details all prints them all, --format json gives everything"
            console.print(_t(f"... and {plural(more, 'more host')} with findings or problems: {hint}",
                             "dim"))  # fmt: skip
        console.print()
    console.print(recap_table(report))
    rules = rules_table(report)
    if rules is not None:
        console.print()
        console.print(rules)
    console.print()
    console.print(summary_line(report))


def summary_line(report: ScanReport) -> Text:
    summary = report.summary()
    line = Text()
    line.append_text(_t(f"{plural(summary['hosts'], 'host')}, {summary['scanned']} scanned", "bold"))
    for key in ("unreachable", "auth-failed", "unsupported", "failed", "command-failed"):
        if summary[key]:
            line.append_text(_t(f", {summary[key]} {key}", "bold red"))
    if summary["partial"]:
        count = summary["not_judged"]
        partial = f", {summary['partial']} partial ({plural(count, 'rule')} not judged)"
        line.append_text(_t(partial, "bold yellow"))
    findings = plural(summary["findings"], "finding")
    line.append_text(_t(f"; {findings} on {plural(summary['hosts_with_findings'], 'host')}"))
    line.append_text(_t(f"  (source {report.source}, exit {report.exit_code})", "dim"))
    return line


def rundeck_pairs(report: ScanReport) -> list[tuple[str, object]]:
    """The scan as Rundeck job data: the fleet's counts, then each host by its place in the
    inventory (``host_1``...: a host name is no safe key, and two could sanitise alike)."""
    summary = report.summary()
    pairs: list[tuple[str, object]] = [
        ("source", report.source),
        ("exit_code", report.exit_code),
        ("hosts_total", summary["hosts"]),
        ("hosts_scanned", summary["scanned"]),
        ("hosts_with_findings", summary["hosts_with_findings"]),
        ("hosts_partial", summary["partial"]),
        ("findings", summary["findings"]),
    ]
    pairs += [(f"findings_{s.value}", summary["by_severity"].get(s.value, 0)) for s in _SEVERITIES]
    for i, host in enumerate(report.hosts, start=1):
        findings = report.findings_for(host.host)
        pairs += [
            (f"host_{i}", host.host),
            (f"host_{i}_status", host.status.value),
            (f"host_{i}_findings", len(findings)),
            (f"host_{i}_rules", ",".join(dict.fromkeys(f.rule_id for f in findings)) or "-"),
        ]
    return pairs
