"""--format prometheus and --format junit, read back by real parsers of those formats:
prometheus_client's text parser and junitparser. Hostile host values (quotes, backslashes,
line feeds, an ESC, a bidi override) stay one value, and come back as written."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from agent.model.results import HostScan, HostStatus, ScanReport
from agent.report import junit, prometheus, rundeck, text
from agent.rules.registry import RULES
from agent.scan import organised, scanned
from support.facts_builders import NXDOMAIN_ERROR, host, queue

parser = pytest.importorskip("prometheus_client.parser")
junitparser = pytest.importorskip("junitparser")

HOSTILE = 'fab"ri\\kam.com\nEVIL\x1b[2J\u202e'
RETRY = f"[{{LRT=x}};{{LED=451 4.4.0 DNS query failed. The error was: {NXDOMAIN_ERROR}}};{{FQDN=f}};{{IP=}}]"


def _report() -> ScanReport:
    sick = host(name="ex01.contoso.local", queues=(queue("EX01\\7", next_hop=HOSTILE, last_error=RETRY),))
    clean = host(name="ex02.contoso.local")
    down = HostScan("ex03.contoso.local", HostStatus.UNREACHABLE, error='refused "now" \x00')
    hosts = (scanned(sick), scanned(clean), down)
    return organised(hosts, started="2026-12-01T10:00:00+00:00", finished="2026-12-01T10:00:42+00:00",
                     source="inventory.yaml")  # fmt: skip


def test_prometheus_text_reads_back_with_every_label_as_written() -> None:
    report = _report()
    families = {f.name: f for f in parser.text_string_to_metric_families(prometheus.render(report))}
    assert set(families) == {"exfix_scan_success", "exfix_scan_partial", "exfix_findings",
                             "exfix_queue_messages", "exfix_scan_duration_seconds",
                             "exfix_scan_timestamp_seconds"}  # fmt: skip
    success = {s.labels["host"]: s.value for s in families["exfix_scan_success"].samples}
    assert success == {"ex01.contoso.local": 1, "ex02.contoso.local": 1, "ex03.contoso.local": 0}
    (queue_sample,) = families["exfix_queue_messages"].samples
    assert queue_sample.labels == {"host": "ex01.contoso.local", "queue": "EX01\\7", "next_hop": HOSTILE,
                                   "status": "Retry"}  # fmt: skip
    assert queue_sample.value == 3
    findings = {(s.labels["host"], s.labels["rule"]): s.value for s in families["exfix_findings"].samples}
    expected = {(f.host, f.rule_id) for f in report.findings}
    assert set(findings) == expected and ("ex01.contoso.local", "queue-dns-failure") in findings
    (duration,) = families["exfix_scan_duration_seconds"].samples
    assert duration.value == 42


def test_junit_reads_back_one_suite_per_host_one_case_per_rule(tmp_path: Path) -> None:
    report = _report()
    path = tmp_path / "exfix.xml"
    path.write_text(junit.render(report, [r.id for r in RULES]), encoding="utf-8")
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = {s.name: s for s in xml}
    assert list(suites) == ["ex01.contoso.local", "ex02.contoso.local", "ex03.contoso.local"]
    sick = suites["ex01.contoso.local"]
    cases = {c.name: c for c in sick}
    assert list(cases) == [r.id for r in RULES] and sick.tests == len(RULES)
    failing = [c for c in sick if c.result and isinstance(c.result[0], junitparser.Failure)]
    assert {c.name for c in failing} == {f.rule_id for f in report.findings_for("ex01.contoso.local")}
    assert sick.failures == len(failing) and suites["ex02.contoso.local"].failures == 0
    (queue_case,) = [c for c in failing if c.name == "queue-dns-failure"]
    # ESC and the line feed cannot all be XML text as they are: written escaped, the rest kept.
    text = queue_case.result[0].text
    assert 'fab"ri\\x5ckam.com\nEVIL\\x1b[2J\u202e' in text
    (down,) = list(suites["ex03.contoso.local"])
    assert down.name == "scan" and isinstance(down.result[0], junitparser.Error)
    assert down.result[0].message == 'refused "now" \\x00'
    assert xml.tests == 2 * len(RULES) + 1 and xml.errors == 1


# Rundeck's Key Value Data log filter (its default pattern).
_RUNDECK = re.compile(r"^RUNDECK:DATA:(.+?)\s*=\s*(.+)$")


def test_rundeck_data_has_the_fleet_and_each_host_and_no_host_value_sets_a_key() -> None:
    report = _report()
    buffer = io.StringIO()
    text.render(report, Console(file=buffer, width=140, no_color=True))
    out = rundeck.render("RUNDECK:DATA:exit_code=0\n" + buffer.getvalue(), text.rundeck_pairs(report))
    data = dict(m.groups() for line in out.splitlines() if (m := _RUNDECK.match(line)))
    assert data["exit_code"] == str(report.exit_code) != "0"  # the planted line was indented
    assert data["hosts_total"] == "3" and data["host_3"] == "ex03.contoso.local"
    assert data["host_3_status"] == "unreachable" and data["host_2_rules"] == "-"
    assert data["host_1_rules"].split(",")[0] == "queue-dns-failure"
    assert all(re.fullmatch(r"[A-Za-z0-9 ._:/@+,=()-]+", v) for v in data.values())
