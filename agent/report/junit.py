"""A scan as JUnit XML (``exfix scan --format junit``), the report CI systems and job views
(Jenkins, GitLab, Rundeck's JUnit plugin) already read: one ``<testsuite>`` per host, one
``<testcase>`` per rule in the catalogue. A rule that found something on the host is a
``<failure>`` (its message the finding's summary, its text the evidence), a rule that could
not be judged there is ``<skipped>`` with the reason, and a host exfix could not scan has one
``<testcase name="scan">`` with an ``<error>``.

The element and attribute names are the ones the JUnit XML schema most tools follow defines
(the Ant junit task's format; the XSD at github.com/windyroad/JUnit-Schema). ElementTree
escapes every value; characters XML 1.0 cannot carry at all (ESC, NUL) are written as
``\\x1b``-style text first, so a hostile host value neither breaks the document nor is lost.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from agent.model.findings import Finding
from agent.model.results import HostStatus, ScanReport

# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(value: object) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value).replace("\\", "\\x5c"))


def _evidence(finding: Finding) -> str:
    lines = [finding.summary]
    for item in finding.evidence:
        values = ", ".join(f"{k}={v}" for k, v in item.values)
        where = item.source + (f" ({item.vantage})" if item.vantage else "")
        lines.append(f"{where}: {item.subject}: {values}")
    return "\n".join(lines)


def render(report: ScanReport, rules: Sequence[str]) -> str:
    """``rules``: every rule id, in catalogue order (agent/rules/registry.py)."""
    suites = ET.Element("testsuites", name=_x(f"exfix scan {report.source}"))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for host in report.hosts:
        suite = ET.SubElement(suites, "testsuite", name=_x(host.host), timestamp=_x(report.started))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if host.status is not HostStatus.SCANNED:
            case = ET.SubElement(suite, "testcase", name="scan", classname=_x(host.host))
            error = ET.SubElement(case, "error", message=_x(host.error or host.status.value),
                                  type=host.status.value)  # fmt: skip
            error.text = _x(host.error or "")
            counts["tests"] += 1
            counts["errors"] += 1
        else:
            findings = report.findings_for(host.host)
            skipped = {j.rule_id: j.reason for j in host.not_judged}
            for rule in rules:
                case = ET.SubElement(suite, "testcase", name=rule, classname=_x(host.host))
                counts["tests"] += 1
                mine = [f for f in findings if f.rule_id == rule]
                if mine:
                    for finding in mine:
                        failure = ET.SubElement(case, "failure", message=_x(finding.summary),
                                                type=finding.severity.value)  # fmt: skip
                        failure.text = _x(_evidence(finding))
                    counts["failures"] += 1
                elif rule in skipped:
                    ET.SubElement(case, "skipped", message=_x(f"not judged: {skipped[rule]}"))
                    counts["skipped"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        suites.set(key, str(value))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
