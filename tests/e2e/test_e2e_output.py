"""What people and tools read: hostile values shown safely in every format, text and markdown
that are readable, and --save-facts / evaluate giving the scan's findings again."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import Run, base_scenario, host_spec, run_exfix, write_scenario

pytestmark = pytest.mark.lab

ESC = "\x1b"
# Everything a host should never be able to smuggle into a report: quotes, a sub-expression,
# backticks, a pipe and a semicolon, a newline and a carriage return, an ANSI colour, a
# right-to-left override, and letters outside ASCII.
HOSTILE = "q'\"$(whoami)`ls`;x|y\nNEXT\r\x1b[31mRED\u202eevil é中"
ALIAS = "Eth " + HOSTILE
CONNECTOR = "Internet " + HOSTILE
DOMAIN = ("bad" + HOSTILE + ".example").lower()  # the lab shows next hop domains in lower case


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """One lab, scanned once per format. EX01's MAPI NIC (registration off) and one queue's
    next hop carry the hostile text; EX02 resolves through a server without forwarders, so the
    finding about it lists the internet send connector, whose name is hostile too."""
    from mock_remoting.lab import Lab

    data = base_scenario()
    data["dns"]["servers"]["10.0.0.11"] = {"kind": "internal", "forward": False}
    ex01 = data["hosts"][0]
    ex01["nics"][0].update(alias=ALIAS, register=False)
    ex01["queues"].append({"next_hop": DOMAIN, "messages": 3})
    ex02 = host_spec("EX02", 22)
    ex02["nics"][0]["dns_servers"] = ["10.0.0.11"]
    data["hosts"].append(ex02)
    data["send_connectors"][0].update(name=CONNECTOR, source_transport_servers=["EX01", "EX02"])
    directory = tmp_path_factory.mktemp("hostile")
    with Lab(write_scenario(directory / "hostile.yaml", data)) as lab:
        inventory = str(lab.write_inventory(directory / "inventory.yaml"))
        yield {
            fmt: run_exfix("scan", "-i", inventory, "--format", fmt) for fmt in ("json", "text", "markdown")
        }


def test_json_round_trips_hostile_values_exactly(
    hostile: dict[str, Run], validate_scan: Callable[[Any], None]
) -> None:
    run = hostile["json"]
    assert run.exit_code == 2, run.describe()
    doc = run.doc
    validate_scan(doc)
    assert json.loads(json.dumps(doc, ensure_ascii=False)) == doc
    findings = {(h["host"].split(".")[0], f["rule"]): f for h in doc["hosts"] for f in h["findings"]}
    assert set(findings) >= {
        ("ex01", "nic-dns-registration-disabled"),
        ("ex01", "queue-dns-failure"),
        ("ex02", "transport-external-dns-unresolvable"),
    }
    nic = findings[("ex01", "nic-dns-registration-disabled")]
    assert nic["data"]["interface_alias"] == ALIAS
    assert {e["values"]["InterfaceAlias"] for e in nic["evidence"] if "InterfaceAlias" in e["values"]} == {
        ALIAS
    }
    queues = [
        e["values"]
        for h in doc["hosts"]
        for f in h["findings"]
        for e in f["evidence"]
        if e["source"] == "Get-Queue" and e["values"]["NextHopDomain"] == DOMAIN
    ]
    assert queues, "the hostile next hop's queue is not in the evidence"
    assert all(f"{{FQDN={DOMAIN}}}" in q["LastError"] for q in queues)
    transport = findings[("ex02", "transport-external-dns-unresolvable")]
    assert transport["data"]["connectors_to_switch"] == [CONNECTOR]
    # Raw control characters only ever appear JSON-escaped in the document's text.
    assert ESC not in run.stdout and "\r" not in run.stdout
    assert "\\u001b[31m" in run.stdout


def _cells(line: str) -> str:
    return line.strip(" │┃|")


def test_text_shows_hostile_values_escaped_on_one_line(hostile: dict[str, Run]) -> None:
    run = hostile["text"]
    assert run.exit_code == 2, run.describe()
    out = run.stdout
    assert ESC not in out and "\r" not in out and "\u202e" not in out
    # The escapes are shown as text, so a person sees what the host sent ...
    assert "\\x1b[31mRED" in out and "\\u202e" in out and "x|y\\nNEXT\\r" in out
    # ... and the hostile newline never starts a line of its own.
    assert not any(_cells(line).startswith(("NEXT", "\\r")) for line in out.splitlines())
    assert "é中" in out and "$(whoami)" in out


def test_markdown_tables_stay_intact_with_hostile_values(hostile: dict[str, Run]) -> None:
    run = hostile["markdown"]
    assert run.exit_code == 2, run.describe()
    out = run.stdout
    assert ESC not in out and "\r" not in out and "\u202e" not in out
    lines = out.splitlines()
    assert lines[0].startswith("## exfix scan")
    table = [line for line in lines if line.startswith("|")]
    header = table[0]
    columns = header.count("|")
    assert header == "| Host | Status | Exchange | Findings |" and table[1] == "|---|---|---|---|"
    assert len(table) == 2 + 2  # two hosts
    for row in table:
        unescaped_pipes = len(re.findall(r"(?<!\\)\|", row))
        assert unescaped_pipes == columns, row
    # No line that is not a table row begins or continues one, and no line starts with text
    # that came after the hostile newline.
    assert not any(line.lstrip().startswith(("NEXT", "\\r")) for line in lines)
    assert "\\x1b" in out and "\\u202e" in out


def test_save_facts_then_evaluate_gives_the_same_findings(tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    scan = run_exfix("scan", "--lab", "mixed-fleet", "--format", "json", "--save-facts", str(facts))
    assert scan.exit_code == 2, scan.describe()
    assert json.loads(facts.read_text(encoding="utf-8"))
    offline = run_exfix("evaluate", str(facts), "--format", "json")
    assert offline.exit_code == scan.exit_code, offline.describe()
    assert offline.doc["source"] == str(facts)

    def ids(run: Run) -> dict[str, list[str]]:
        return {h["host"]: sorted(f["id"] for f in h["findings"]) for h in run.doc["hosts"]}

    def links(run: Run) -> dict[str, list[str]]:
        return {f["id"]: f["explained_by"] for h in run.doc["hosts"] for f in h["findings"]}

    assert ids(offline) == ids(scan) and sum(map(len, ids(scan).values())) > 0
    assert links(offline) == links(scan)
    # The facts were streamed as hosts finished and let go: the scan's report kept what it
    # shows (each DNS server's statistics, the organisations), the same as the saved facts give.
    assert offline.doc["hosts"] == scan.doc["hosts"]
    assert offline.doc["organizations"] == scan.doc["organizations"]
    assert not list(tmp_path.glob(".facts.json.*"))  # the temporary file became facts.json


def test_save_facts_where_nothing_can_be_written_fails_before_any_host_is_asked(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "facts.json"
    run = run_exfix("scan", "--lab", "healthy", "--save-facts", str(missing))
    assert run.exit_code == 1, run.describe()
    assert run.stderr.count("\n") == 1 and "--save-facts" in run.stderr and "cannot write there" in run.stderr
    assert "Traceback" not in run.stderr and not missing.parent.exists()


def test_text_on_a_non_tty_is_readable() -> None:
    run = run_exfix("scan", "--lab", "nic-external-dns")
    assert run.exit_code == 2, run.describe()
    out = run.stdout
    assert ESC not in out  # no colours when stdout is not a terminal
    assert "nic-external-dns-server" in out and "queue-dns-failure" in out and "ex01.contoso.local" in out
    assert "set-nic-dns-servers" in out
    (summary,) = [line for line in out.splitlines() if line.startswith("1 host, 1 scanned")]
    assert "2 findings on 1 host " in summary and "exit 2" in summary
    assert max(len(line) for line in out.splitlines()) <= 140


def test_markdown_has_a_heading_and_a_host_table() -> None:
    run = run_exfix("scan", "--lab", "healthy", "--format", "markdown")
    assert run.exit_code == 0, run.describe()
    lines = run.stdout.splitlines()
    assert lines[0] == "## exfix scan: lab:healthy"
    start = lines.index("| Host | Status | Exchange | Findings |")
    assert lines[start + 1] == "|---|---|---|---|"
    rows = lines[start + 2 : start + 4]
    assert [r.split("|")[1].strip() for r in rows] == ["ex01.contoso.local", "ex02.contoso.local"]
    assert all(r.split("|")[2].strip() == "scanned" and r.split("|")[4].strip() == "none" for r in rows)


def test_junit_and_prometheus_of_a_lab_scan_parse_and_exit_as_the_scan() -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    junitparser = pytest.importorskip("junitparser")
    prom = run_exfix("scan", "--lab", "mixed-fleet", "--format", "prometheus")
    assert prom.exit_code == 2, prom.describe()
    families = {f.name: f for f in parser.text_string_to_metric_families(prom.stdout)}
    assert len(families["exfix_scan_success"].samples) == 5
    assert sum(s.value for s in families["exfix_findings"].samples) >= 9
    assert families["exfix_queue_messages"].samples
    report = run_exfix("scan", "--lab", "mixed-fleet", "--format", "junit")
    assert report.exit_code == 2, report.describe()
    xml = junitparser.JUnitXml.fromstring(report.stdout.encode("utf-8"))
    suites = list(xml)
    assert len(suites) == 5 and sum(s.failures for s in suites) >= 4
