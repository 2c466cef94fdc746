"""An intermittent DNS server, end to end: the lab's dns-server-intermittent scenario scanned
with `exfix scan --probe-repeat N` over real sockets, the per-server statistics in the
exfix.scan/4 document, the facts that keep each attempt, and bad --probe-repeat values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.conftest import REPO, run_exfix, scan_shipped

pytestmark = pytest.mark.lab

NAME = "dns-server-intermittent"


def _host(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (host,) = [h for h in doc["hosts"] if h["host"] == name]
    return host


def test_repeated_probes_report_each_servers_failure_rate_and_latency() -> None:
    run = scan_shipped(NAME)  # with the scenario's expect.probe_repeat: 4
    doc = run.doc
    assert doc["schema"] == "exfix.scan/4" and run.exit_code == 2, run.describe()
    ex01 = _host(doc, "ex01.contoso.local")
    stats = {(s["server"], s["vantage"]): s for s in ex01["dns_servers"]}
    for vantage in ("host", "orchestrator"):
        flaky = stats[("10.0.0.11", vantage)]
        assert (flaky["attempts"], flaky["failures"], flaky["failure_rate"]) == (12, 6, 0.5)
        latency = flaky["latency_ms"]
        assert latency["avg"] is not None and latency["max"] >= latency["min"]
        steady = stats[("10.0.0.10", vantage)]
        assert (steady["attempts"], steady["failures"], steady["failure_rate"]) == (12, 0, 0.0)
    (finding,) = ex01["findings"]
    assert finding["rule"] == "dns-server-intermittent" and finding["subject"] == "DNS server 10.0.0.11"
    assert finding["data"]["attempts"] == 24 and finding["data"]["failures"] == 12
    assert finding["data"]["failure_percent"] == 50
    assert finding["data"]["vantages"] == ["host", "orchestrator"]
    rounds = [e for e in finding["evidence"] if e["source"] == "probe rounds"]
    assert {e["vantage"] for e in rounds} == {"host", "orchestrator"}
    assert all(e["values"]["failure rate"] == "6/12 (50%)" and e["values"]["rounds"] == 4 for e in rounds)
    host_side = [e for e in finding["evidence"] if e["source"] == "Resolve-DnsName"]
    srv = [e for e in host_side if e["values"]["type"] == "SRV"]
    assert srv[0]["values"]["outcomes"] == ["answer", "servfail", "answer", "servfail"]
    assert _host(doc, "ex02.contoso.local")["findings"] == []


def test_one_round_neither_finds_the_flaky_server_nor_misjudges_it() -> None:
    run = run_exfix("scan", "--lab", NAME, "--format", "json")
    assert run.exit_code == 0, run.describe()
    ex01 = _host(run.doc, "ex01.contoso.local")
    assert ex01["findings"] == []
    assert {s["attempts"] for s in ex01["dns_servers"]} == {3}


def test_the_saved_facts_keep_every_attempt_and_evaluate_offline_the_same(tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    scan = run_exfix(
        "scan", "--lab", NAME, "--probe-repeat", "2", "--format", "json", "--save-facts", str(facts)
    )
    assert scan.exit_code == 2, scan.describe()
    saved = json.loads(facts.read_text(encoding="utf-8"))
    (ex01,) = [h for h in saved["hosts"] if h["host"] == "ex01.contoso.local"]
    attempts = sorted({p["attempt"] for p in ex01["probes"] if p["server"] == "10.0.0.11"})
    assert attempts == [1, 2]
    offline = run_exfix("evaluate", str(facts), "--format", "json")
    # Facts saved before repeats existed have no attempt numbers: each probe reads as a first
    # attempt, and the results are judged as they are.
    for host in saved["hosts"]:
        for probe in host["probes"]:
            del probe["attempt"]
    old = tmp_path / "old-facts.json"
    old.write_text(json.dumps(saved), encoding="utf-8")
    older = run_exfix("evaluate", str(old), "--format", "json")
    assert older.exit_code == 2, older.describe()
    assert _host(older.doc, "ex01.contoso.local")["dns_servers"] == _host(scan.doc, "ex01.contoso.local")[
        "dns_servers"
    ]
    assert offline.exit_code == 2, offline.describe()
    assert _host(offline.doc, "ex01.contoso.local")["dns_servers"] == _host(scan.doc, "ex01.contoso.local")[
        "dns_servers"
    ]
    offline_ex01 = _host(offline.doc, "ex01.contoso.local")
    assert [f["rule"] for f in offline_ex01["findings"]] == ["dns-server-intermittent"]


@pytest.mark.parametrize("value", ["0", "11", "two", "-3", "2.5", ""])
@pytest.mark.parametrize("command", ["scan", "plan"])
def test_a_bad_probe_repeat_is_one_line_and_exit_1(command: str, value: str, tmp_path: Path) -> None:
    extra = ("--out", str(tmp_path / "plan")) if command == "plan" else ()
    run = run_exfix(command, "--lab", "healthy", "--probe-repeat", value, *extra)
    assert run.exit_code == 1, run.describe()
    assert run.stderr.count("\n") == 1 and "--probe-repeat" in run.stderr and "1 to 10" in run.stderr
    assert not (tmp_path / "plan").exists()


def test_apply_collects_again_with_the_plans_probe_rounds(tmp_path: Path) -> None:
    """A plan made with --probe-repeat 4 records it, and apply collects before and after its
    steps with as many rounds: with one, the flaky server's finding would vanish after the
    registration fix and be counted as cured."""
    data = yaml.safe_load((REPO / "mock_remoting" / "scenarios" / f"{NAME}.yaml").read_text(encoding="utf-8"))
    (ex01,) = [h for h in data["hosts"] if h["name"] == "EX01"]
    ex01["nics"][0]["register"] = False  # a fault the plan fixes, beside the one it cannot
    scenario = tmp_path / "flaky-and-unregistered.yaml"
    scenario.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    out = tmp_path / "change"
    planned = run_exfix(
        "plan", "--lab", str(scenario), "--probe-repeat", "4", "--out", str(out), "--format", "json"
    )
    assert planned.exit_code == 2, planned.describe()
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert plan["probe_repeat"] == 4
    (unit,) = [u for u in plan["hosts"] if u["host"] == "ex01.contoso.local"]
    rules = {f["rule_id"] for f in unit["findings"]}
    assert {"nic-dns-registration-disabled", "dns-server-intermittent"} <= rules
    applied = run_exfix(
        "apply", str(out / "plan.json"), "--approve", plan["digest"], "--allow-restart", "--format", "json"
    )
    # The registration fix drained the queues, but the lookups re-run through 10.0.0.11 still
    # fail now and then: not verified (exit 5), and the finding that remains says why.
    assert applied.exit_code == 5, applied.describe()
    (host,) = [h for h in applied.doc["hosts"] if h["host"] == "ex01.contoso.local"]
    assert host["outcome"] == "done" and host["verified"] is False and host["new_findings"] == []
    (remaining,) = host["remaining_findings"]
    assert remaining["rule"] == "dns-server-intermittent"
    assert "(InterfaceIndex 4)) failed 12 of 24" in remaining["summary"]  # four rounds, as planned
