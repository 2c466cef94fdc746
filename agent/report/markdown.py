"""A scan as markdown, for pasting into a ticket. Every host value goes through safe.markdown."""

from __future__ import annotations

from agent.model.findings import EvidenceItem, Finding
from agent.model.results import HostStatus, ScanReport
from agent.report.safe import markdown as md
from agent.report.safe import markdown_code as code


def _evidence_line(item: EvidenceItem) -> str:
    where = item.source + (f" ({item.vantage})" if item.vantage else "")
    values = ", ".join(f"{md(k)}={code(_show(v))}" for k, v in item.values)
    return f"  - {md(where)}: {md(item.subject)}: {values}"


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _finding(finding: Finding) -> list[str]:
    lines = [f"- **{finding.severity.value.upper()}** `{finding.rule_id}`: {md(finding.summary)}"]
    if finding.fix_id:
        restart = " (needs a transport restart)" if finding.fix_disrupts_mail_flow else ""
        lines.append(f"  - fix: `{finding.fix_id}`{restart}")
    if finding.explained_by:
        causes = ", ".join(code(c.split("|", 1)[0]) for c in finding.explained_by)
        lines.append(f"  - explained by: {causes}")
    lines.extend(_evidence_line(item) for item in finding.evidence)
    return lines


def _servers(names: tuple[str, ...], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def render(report: ScanReport) -> str:
    summary = report.summary()
    lines = [
        f"## exfix scan: {md(report.source)}",
        "",
        f"{summary['hosts']} hosts: {summary['scanned']} scanned, {summary['unreachable']} unreachable, "
        f"{summary['auth-failed']} auth failed, {summary['unsupported']} unsupported, "
        f"{summary['failed']} failed, {summary['command-failed']} command failed; "
        f"{summary['findings']} findings"
        + (
            f"; {summary['partial']} partial ({summary['not_judged']} rule(s) not judged)"
            if summary["partial"]
            else ""
        )
        + f". Exit code {report.exit_code}. Finished {report.finished}.",
        "",
        "| Host | Status | Exchange | Findings |",
        "|---|---|---|---|",
    ]
    for host in report.hosts:
        status = host.status.value if host.error is None else f"{host.status.value}: {md(host.error)}"
        if host.partial:
            status += " (partial: " + ", ".join(i.area.value for i in host.failed_areas) + " not collected)"
        rules = ", ".join(sorted({f.rule_id for f in host.findings})) or "none"
        lines.append(f"| {md(host.host)} | {status} | {md(host.exchange_version or '')} | {rules} |")
    for org in report.organizations:
        if not org.findings:
            continue
        lines += ["", f"### Organisation {md(org.name)}", ""]
        for finding in org.findings:
            lines.extend(_finding(finding))
            lines.append(f"  - servers ({len(finding.servers)}): {md(_servers(finding.servers))}")
    for host in report.hosts:
        if host.status is HostStatus.SCANNED and not host.findings and not host.partial:
            continue
        lines += ["", f"### {md(host.host)}", ""]
        if host.error is not None:
            lines.append(f"Not scanned ({host.status.value}): {md(host.error)}")
        for finding in host.findings:
            lines.extend(_finding(finding))
        for issue in host.failed_areas:
            area = f"`{issue.area.value}` ({md(issue.area.description)})"
            lines.append(f"- **not collected** {area}: {md(issue.reason)}")
        shown = {issue.area.value for issue in host.failed_areas}
        for skipped in host.not_judged:
            # Where the area is listed just above, that line holds the reason in full.
            why = (
                f"reads {', '.join(code(a) for a in skipped.areas)}, not collected on this host"
                if set(skipped.areas) <= shown
                else md(skipped.reason)
            )
            lines.append(f"- **not judged** `{skipped.rule_id}` ({md(skipped.title)}): {why}")
    return "\n".join(lines) + "\n"
