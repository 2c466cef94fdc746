"""A scan as a node_exporter textfile (``exfix scan --format prometheus``), so that a cron job
feeds the dashboards and alerts a team already has: write it to the textfile collector's
directory (``--collector.textfile.directory``) under a name ending in ``.prom``.

The text exposition format ("Exposition formats", prometheus.io/docs/instrumenting/
exposition_formats): ``# HELP`` and ``# TYPE`` once per metric family, then one sample per
line; in label values a backslash, a double quote and a line feed are escaped as ``\\\\``,
``\\"`` and ``\\n``. Host values go through that escaping and nothing else, so a hostile
queue name or next hop stays one label value.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable

from agent.model.results import HostStatus, ScanReport

_FAMILIES = (
    ("exfix_scan_success", "gauge", "1 when the host's facts were collected (status scanned), else 0."),
    ("exfix_scan_partial", "gauge", "1 when a fact area of the host was not collected (rules not judged)."),
    ("exfix_findings", "gauge", "Findings of one rule and severity on the host (incl. organisation ones)."),
    ("exfix_queue_messages", "gauge", "Messages in one transport queue of the host (Get-Queue)."),
    ("exfix_scan_duration_seconds", "gauge", "Wall time of the whole scan."),
    ("exfix_scan_timestamp_seconds", "gauge", "When the scan finished, as Unix time."),
)


def _label(value: object) -> str:
    text = str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{name}="{_label(value)}"' for name, value in labels.items()) + "}"


def _seconds(stamp: str) -> float | None:
    try:
        return datetime.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def _samples(report: ScanReport) -> Iterable[tuple[str, str]]:
    for host in report.hosts:
        yield "exfix_scan_success", f"{_labels(host=host.host)} {int(host.status is HostStatus.SCANNED)}"
        yield "exfix_scan_partial", f"{_labels(host=host.host)} {int(host.partial)}"
        counts = Counter((f.rule_id, f.severity.value) for f in report.findings_for(host.host))
        for (rule, severity), count in sorted(counts.items()):
            yield "exfix_findings", f"{_labels(host=host.host, rule=rule, severity=severity)} {count}"
        for queue in host.queues:
            labels = _labels(host=host.host, queue=queue.identity, next_hop=queue.next_hop_domain,
                             status=queue.status)  # fmt: skip
            yield "exfix_queue_messages", f"{labels} {queue.message_count}"
    started, finished = _seconds(report.started), _seconds(report.finished)
    if started is not None and finished is not None:
        yield "exfix_scan_duration_seconds", f" {max(0.0, finished - started):g}"
        yield "exfix_scan_timestamp_seconds", f" {finished:g}"


def render(report: ScanReport) -> str:
    by_family: dict[str, list[str]] = {}
    for family, sample in _samples(report):
        by_family.setdefault(family, []).append(family + sample)
    lines: list[str] = []
    for name, kind, help_text in _FAMILIES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *by_family.get(name, ())]
    return "\n".join(lines) + "\n"
