"""Playbooks over the lab (real WSMan/PSRP and DNS on 127.0.0.1): the ticket story, auto-safe,
smarthost-for-domain, the output formats, the schemas and the review bundle."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from agent.cli import main
from agent.model.plan import REMEDIATE_SCRIPT, ROLLBACK_SCRIPT
from agent.planning.render import BOM
from agent.report.safe import terminal
from mock_remoting.lab import Lab
from workflow._playbook_support import refuse_connections
from workflow._review_html_check import parse_review

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "agent" / "schemas"
SCENARIOS = REPO / "mock_remoting" / "scenarios"
TICKET = "CHG0042"
RUNDECK_LINE = re.compile(r"^RUNDECK:DATA:(.+?)\s*=\s*(.+)$")  # Rundeck's key-value data log filter


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


RUN_SCHEMA = _validator("playbook-run.schema.json")
PLAN_SCHEMA = _validator("plan.schema.json")


class Result:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    @property
    def doc(self) -> dict[str, Any]:
        data = json.loads(self.stdout)
        RUN_SCHEMA.validate(data)
        assert isinstance(data, dict)
        return data

    def __repr__(self) -> str:
        return f"exit {self.code}\nstderr: {self.stderr[-3000:]}\nstdout: {self.stdout[:3000]}"


def exfix(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def lab_inventory(tmp_path: Path) -> Iterator[Callable[[str], tuple[Lab, Path]]]:
    """Starts a lab for a scenario and writes its inventory as `exfix lab serve --inventory-out`
    does: with the lab's working public resolver as the servers the planner may propose for
    transport's external lookups, and a comment saying so."""
    labs: list[Lab] = []

    def start(scenario: str) -> tuple[Lab, Path]:
        lab = Lab(scenario)
        lab.start()
        labs.append(lab)
        path = lab.write_inventory(tmp_path / f"{scenario}.inventory.yaml")
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["all"]["vars"]["exfix_external_dns_servers"]
        return lab, path

    yield start
    for lab in labs:
        lab.stop()


def _outcomes(doc: dict[str, Any]) -> dict[str, str]:
    return {h["host"]: h["outcome"] for h in doc["hosts"]}


def _journal(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _check_review_html(plan_dir: Path) -> None:
    """Every host, finding, script line (numbered) and the digest are in review.html, and it
    references nothing outside itself."""
    plan = json.loads((plan_dir / "plan.json").read_text(encoding="utf-8"))
    PLAN_SCHEMA.validate(plan)
    page = parse_review((plan_dir / "review.html").read_text(encoding="utf-8"))
    assert page.external_references() == []
    text = page.text
    assert page.by_id["digest"] == plan["digest"]
    # Named by its place in the directory, so the bundle renders the same wherever it lies.
    assert page.by_id["apply-command"].startswith(f"exfix apply plan.json --approve {plan['digest']}")
    units = [*plan["organizations"], *plan["hosts"]]  # the page shows them in this order
    for name in (REMEDIATE_SCRIPT, ROLLBACK_SCRIPT):
        assert len(page.scripts[name]) == len(units)
    for index, host in enumerate(units):
        assert terminal(host["host"]) in text
        for finding in host["findings"]:
            assert terminal(finding["title"]) in text and terminal(finding["summary"]) in text
            for evidence in finding["evidence"]:
                assert terminal(evidence["subject"]) in text
        for action in host["actions"]:
            assert terminal(action["description"]) in text
        for name in (REMEDIATE_SCRIPT, ROLLBACK_SCRIPT):
            raw = (plan_dir / "hosts" / host["directory"] / name).read_bytes()
            assert raw.startswith(BOM)
            lines = raw[len(BOM) :].decode("utf-8").split("\n")
            if lines[-1] == "":
                lines.pop()
            assert page.scripts[name][index] == [(n, terminal(line)) for n, line in enumerate(lines, start=1)]


def test_ticket_story_over_one_lab(lab_inventory: Callable[[str], tuple[Lab, Path]], tmp_path: Path) -> None:
    _lab, inventory = lab_inventory("mixed-fleet")
    out = tmp_path / "runs"
    base = ("--inventory", str(inventory), "--ticket", TICKET, "--out", str(out))

    # 1) diagnose: findings, exit 2, nothing planned.
    first = exfix("playbook", "run", "dns-451-diagnose", *base, "--format", "json")
    assert first.code == 2, first
    doc = first.doc
    assert doc["ticket"] == TICKET and doc["outcome"] == "findings" and doc["digest"] is None
    assert doc["artifacts"]["plans"] == [] and doc["artifacts"]["journal"] is None
    assert _outcomes(doc)["ex01.contoso.local"] == "healthy"
    rules = {f["rule"] for h in doc["hosts"] for f in h["findings"]}
    assert {"nic-dns-registration-disabled", "nic-external-dns-server", "transport-external-dns-unresolvable",
            "remote-domain-aaaa-broken", "queue-dns-failure"} <= rules  # fmt: skip
    assert Path(doc["artifacts"]["run"]).is_file()
    assert "progress" not in first.stdout and "scanning" in first.stderr  # logs on stderr only

    # 2) remediate: everything planned, waiting for approval with a digest. Rundeck output: the
    # text report, then key-value lines its log filter reads; the JSON record is in the run dir.
    second = exfix("playbook", "run", "dns-451-remediate", *base, "--format", "rundeck")
    assert second.code == 2, second
    data = dict(m.groups() for line in second.stdout.splitlines() if (m := RUNDECK_LINE.match(line)))
    assert data["ticket"] == TICKET and data["outcome"] == "pending-approval"
    assert data["exit_code"] == "2" and data["hosts_total"] == "5" and data["hosts_pending_approval"] == "4"
    assert data["hosts_healthy"] == "1" and data["refused"] == "no"
    assert all(re.fullmatch(r"[A-Za-z0-9 ._:/@+,=()-]+", value) for value in data.values())
    assert second.stdout.index("RUNDECK:DATA:") > second.stdout.index("pending-approval")  # text first
    doc = json.loads(Path(data["run_file"]).read_text(encoding="utf-8"))
    RUN_SCHEMA.validate(doc)
    digest = doc["digest"]
    assert data["digest"] == digest
    assert doc["outcome"] == "pending-approval" and re.fullmatch(r"[0-9a-f]{64}", digest)
    assert _outcomes(doc) == {"ex01.contoso.local": "healthy", **{f"ex0{n}.contoso.local": "pending-approval"
                                                                   for n in range(2, 6)}}  # fmt: skip
    assert all(a["status"] == "pending-approval" for h in doc["hosts"] for a in h["actions"])
    [plan] = doc["artifacts"]["plans"]
    assert plan["role"] == "pending-approval" and plan["digest"] == digest
    assert plan["apply_command"].endswith(f"--approve {digest} --allow-restart")
    assert doc["approval"]["approve_command"].endswith(f"--approve {digest}")
    assert f"--ticket {TICKET}" in doc["approval"]["approve_command"]
    plan_dir = Path(plan["directory"])
    assert {p.name for p in plan_dir.iterdir()} >= {"plan.json", "REVIEW.md", "review.html", "hosts"}
    _check_review_html(plan_dir)

    # A digest nobody reviewed is refused: exit 4, nothing changed. Planning again over the
    # unchanged fleet yields the same digest (planning is deterministic).
    wrong = exfix("playbook", "run", "dns-451-remediate", *base, "--format", "json", "--approve", "0" * 64)
    assert wrong.code == 4, wrong
    assert wrong.doc["approval"]["refused"] and wrong.doc["artifacts"]["journal"] is None
    assert wrong.doc["digest"] == digest and wrong.doc["outcome"] == "pending-approval"

    # 3) approved: applied, verified, remediated, exit 0.
    third = exfix("playbook", "run", "dns-451-remediate", *base, "--format", "json", "--approve", digest)
    assert third.code == 0, third
    doc = third.doc
    assert doc["outcome"] == "remediated" and doc["approval"]["approved"] == digest
    assert _outcomes(doc) == {"ex01.contoso.local": "healthy", **{f"ex0{n}.contoso.local": "remediated"
                                                                   for n in range(2, 6)}}  # fmt: skip
    for host in doc["hosts"][1:]:
        assert host["actions"] and all(a["status"] == "applied" for a in host["actions"])
        assert host["remaining_findings"] == []
        assert host["queues"]["before"] and host["queues"]["after"] is not None
        assert not any(q["status"] == "Retry" or q["message_count"] for q in host["queues"]["after"])
    entries = _journal(doc["artifacts"]["journal"])
    assert entries and all(e["ticket"] == TICKET for e in entries)
    # Two runs: the refused digest's held the hosts and let go of them, applying nothing; the
    # approved one held them from before its scan (no plan yet: no digest) to its end.
    runs = list(dict.fromkeys(e["run"] for e in entries))
    assert len(runs) == 2
    refused, applied = ([e for e in entries if e["run"] == r] for r in runs)
    assert {e["plan_digest"] for e in refused} == {""} and refused[0]["phase"] == "hold"
    assert (refused[-1]["phase"], refused[-1]["detail"]) == ("end", {"applied": False})
    assert not any(e["phase"] == "lock" and e["result"] != "acquired" for e in entries)
    start = next(i for i, e in enumerate(applied) if e["phase"] == "start")
    assert [e["phase"] for e in applied[:start]] == ["hold"] + ["lock"] * 5
    assert all(e["plan_digest"] == "" for e in applied[:start])
    assert all(e["plan_digest"] == digest for e in applied[start:])
    assert any(e["phase"] == "execute" and e["result"] == "ok" for e in applied)
    checks = [e for e in applied if e["phase"] == "stale-check"]
    assert len(checks) == 4
    assert all(c["result"] == "fresh" and c["detail"]["facts"] == "reused" for c in checks)

    # 4) again: healthy, no actions, exit 0.
    fourth = exfix("playbook", "run", "dns-451-remediate", *base, "--format", "json")
    assert fourth.code == 0, fourth
    doc = fourth.doc
    assert doc["outcome"] == "healthy" and set(_outcomes(doc).values()) == {"healthy"}
    assert not any(h["actions"] for h in doc["hosts"]) and doc["digest"] is None


def test_auto_safe_applies_only_the_non_disruptive_fix(
    lab_inventory: Callable[[str], tuple[Lab, Path]], tmp_path: Path
) -> None:
    lab, inventory = lab_inventory("mixed-fleet")
    result = exfix("playbook", "run", "dns-451-auto-safe", "--inventory", str(inventory), "--out",
                   str(tmp_path / "runs"), "--format", "json")  # fmt: skip
    assert result.code == 2, result
    doc = result.doc
    outcomes = _outcomes(doc)
    assert outcomes["ex05.contoso.local"] == "remediated"  # its only fix is the smart-host connector
    for host in ("ex02.contoso.local", "ex03.contoso.local", "ex04.contoso.local"):
        assert outcomes[host] == "pending-approval"
    by_host = {h["host"]: h for h in doc["hosts"]}
    assert [a["status"] for a in by_host["ex05.contoso.local"]["actions"]] == ["applied"]
    for host in ("ex02.contoso.local", "ex03.contoso.local", "ex04.contoso.local"):
        actions = by_host[host]["actions"]
        assert actions and all(a["status"] == "pending-approval" for a in actions)
        assert any(a["disruptive"] for a in actions)

    roles = {p["role"]: p for p in doc["artifacts"]["plans"]}
    assert (
        set(roles) == {"applied", "pending-approval"} and doc["digest"] == roles["pending-approval"]["digest"]
    )
    applied = json.loads(Path(roles["applied"]["plan_json"]).read_text(encoding="utf-8"))
    applied_units = [*applied["organizations"], *applied["hosts"]]
    assert {a["fix_id"] for h in applied_units for a in h["actions"]} == {"add-smarthost-send-connector"}
    assert not any(a["disruptive"] for h in applied_units for a in h["actions"])
    pending = json.loads(Path(roles["pending-approval"]["plan_json"]).read_text(encoding="utf-8"))
    pending_units = [*pending["organizations"], *pending["hosts"]]
    pending_fixes = {a["fix_id"] for h in pending_units for a in h["actions"]}
    assert "add-smarthost-send-connector" not in pending_fixes and "restart-transport" in pending_fixes
    assert doc["approval"]["apply_command"] and doc["approval"]["approve_command"] is None

    executed = [e for e in _journal(doc["artifacts"]["journal"]) if e["phase"] == "execute"]
    assert executed and all(e["action"].endswith("new-smart-host-connector") for e in executed)
    # The disruptive fixes were not applied: the lab still has them broken.
    org = lab.fleet.org
    with org.lock:
        assert [c.name for c in org.connectors if "wingtiptoys.com" in c.name] == [
            "exfix smart host wingtiptoys.com"
        ]
        ex02 = org.host("ex02.contoso.local")
        assert ex02 is not None and not ex02.nics[0].register
        assert ex02.transport_starts == 1  # never restarted by the playbook


def test_auto_safe_flushes_a_stale_dns_client_cache_without_anyone(
    lab_inventory: Callable[[str], tuple[Lab, Path]], tmp_path: Path
) -> None:
    lab, inventory = lab_inventory("dns-client-cache-negative")
    result = exfix("playbook", "run", "dns-451-auto-safe", "--inventory", str(inventory), "--out",
                   str(tmp_path / "runs"), "--format", "json")  # fmt: skip
    assert result.code == 0, result
    doc = result.doc
    assert _outcomes(doc) == {"ex01.contoso.local": "remediated"}
    (host,) = doc["hosts"]
    assert [(a["fix_id"], a["status"], a["disruptive"]) for a in host["actions"]] == [
        ("clear-dns-client-cache", "applied", False)
    ]
    executed = [e for e in _journal(doc["artifacts"]["journal"]) if e["phase"] == "execute"]
    assert {e["call"]["cmdlet"] for e in executed if "call" in e} == {"Clear-DnsClientCache"}
    with lab.fleet.org.lock:
        ex01 = lab.fleet.org.host("ex01.contoso.local")
        assert ex01 is not None and ex01.dns_cache == [] and ex01.transport_starts == 1
        assert all(q.queued == 0 for q in ex01.queues)


def _broken_domain(scenario: str) -> str:
    """The remote domain whose DNS ignores AAAA queries, as the scenario file says."""
    data = yaml.safe_load((SCENARIOS / f"{scenario}.yaml").read_text(encoding="utf-8"))
    [domain] = [name for name, zone in data["dns"]["internet"].items() if zone.get("ignore_aaaa")]
    return str(domain)


def test_smarthost_for_domain_creates_the_connector_and_the_queue_drains(
    lab_inventory: Callable[[str], tuple[Lab, Path]], tmp_path: Path
) -> None:
    lab, inventory = lab_inventory("remote-domain-aaaa-broken")
    domain = _broken_domain("remote-domain-aaaa-broken")
    base = ("--inventory", str(inventory), "--out", str(tmp_path / "runs"))

    other = exfix("playbook", "run", "smarthost-for-domain", *base, "--var", "domain=fabrikam.com",
                  "--format", "json")  # fmt: skip
    assert other.code == 0, other  # another domain is not this playbook's business: nothing to do
    assert set(_outcomes(other.doc).values()) == {"healthy"} and not other.doc["artifacts"]["plans"]

    result = exfix("playbook", "run", "smarthost-for-domain", *base, "--var", f"domain={domain}", "--format",
                   "markdown")  # fmt: skip
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].startswith("## exfix playbook smarthost") and lines[2].startswith("**Fixed and verified")

    record = json.loads(Path(sorted((tmp_path / "runs").glob("run-*.json"))[-1]).read_text(encoding="utf-8"))
    RUN_SCHEMA.validate(record)
    [host] = record["hosts"]
    assert host["outcome"] == "remediated"
    assert [(a["fix_id"], a["status"]) for a in host["actions"]] == [
        ("add-smarthost-send-connector", "applied")
    ]
    assert {f["rule"] for f in host["findings"]} == {"remote-domain-aaaa-broken"}
    before = [q for q in host["queues"]["before"] if q["next_hop"] == domain]
    after = [q for q in host["queues"]["after"] if q["next_hop"] == domain]
    assert before and before[0]["status"] == "Retry" and before[0]["message_count"] > 0
    assert all(q["message_count"] == 0 and q["status"] != "Retry" for q in after)

    org = lab.fleet.org
    with org.lock:
        [connector] = [c for c in org.connectors if c.name == f"exfix smart host {domain}"]
        assert not connector.dns_routing_enabled and connector.smart_hosts
        state = org.host("ex01")
        assert state is not None
        queue = next(q for q in state.queues if q.next_hop == domain)
        assert queue.queued == 0 and queue.delivered > 0


def test_mail_arriving_during_review_does_not_void_the_approval(
    lab_inventory: Callable[[str], tuple[Lab, Path]], tmp_path: Path
) -> None:
    """The plan's digest covers the findings' evidence, queue message counts included, so a plan
    made again after more mail arrived has another digest. The reviewed plan is still in the
    run directory: it is the one applied (apply's drift check covers the settings it changes)."""
    lab, inventory = lab_inventory("remote-domain-aaaa-broken")
    out = str(tmp_path / "runs")
    base = ("--inventory", str(inventory), "--ticket", "INC7", "--out", out, "--format", "json")
    first = exfix("playbook", "run", "dns-451-remediate", *base)
    assert first.code == 2, first
    digest = first.doc["digest"]

    org = lab.fleet.org
    with org.lock:
        state = org.host("ex01")
        assert state is not None
        next(q for q in state.queues if q.next_hop == _broken_domain("remote-domain-aaaa-broken")).queued += 4

    approved = exfix("playbook", "run", "dns-451-remediate", *base, "--approve", digest)
    assert approved.code == 0, approved
    assert "applying the reviewed plan" in approved.stderr
    doc = approved.doc
    assert [(p["role"], p["digest"]) for p in doc["artifacts"]["plans"]] == [("applied", digest)]
    assert _outcomes(doc) == {"ex01.contoso.local": "remediated"}


def test_an_unreachable_host_is_its_own_outcome_and_exit_3(
    lab_inventory: Callable[[str], tuple[Lab, Path]], tmp_path: Path
) -> None:
    _lab, inventory = lab_inventory("mixed-fleet")
    refuse_connections(inventory, "ex03.contoso.local")
    result = exfix("playbook", "run", "dns-451-remediate", "--inventory", str(inventory), "--out",
                   str(tmp_path / "runs"), "--format", "json")  # fmt: skip
    assert result.code == 3, result
    doc = result.doc
    assert doc["outcome"] == "unreachable"
    by_host = {h["host"]: h for h in doc["hosts"]}
    ex03 = by_host["ex03.contoso.local"]
    assert ex03["outcome"] == "unreachable" and "connection refused" in ex03["error"]
    assert by_host["ex02.contoso.local"]["outcome"] == "pending-approval"  # the others go on
    plan = json.loads(Path(doc["artifacts"]["plans"][0]["plan_json"]).read_text(encoding="utf-8"))
    assert "ex03.contoso.local" not in {h["host"] for h in plan["hosts"]}


def test_findings_without_a_fix_say_what_stands_in_their_way(
    lab_inventory: Callable[[str], tuple[Lab, Path]], tmp_path: Path
) -> None:
    """Issue 9, class 6: a high-severity finding whose fix needs exfix_external_dns_servers, on an
    inventory without it. The run exits 2 (not "nothing to do"), and says per finding what stands
    in the way: the variable to set for the cause, the cause for the symptom."""
    _lab, inventory = lab_inventory("transport-external-dns-unresolvable")
    data = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    del data["all"]["vars"]["exfix_external_dns_servers"]
    inventory.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    base = ("--inventory", str(inventory), "--out", str(tmp_path / "runs"))

    result = exfix("playbook", "run", "dns-451-remediate", *base, "--format", "json")
    assert result.code == 2, result
    doc = result.doc
    assert doc["schema"] == "exfix.playbook-run/4" and doc["outcome"] == "findings"
    (host,) = doc["hosts"]
    assert host["outcome"] == "findings" and host["actions"] == []
    blockers = {o["rule_id"]: (o["blocker"], o["variable"]) for o in host["outstanding"]}
    assert blockers == {
        "transport-external-dns-unresolvable": ("variable", "exfix_external_dns_servers"),
        "queue-dns-failure": ("cause", None),
    }
    assert "transport-external-dns-unresolvable needs a value only you can choose (set " \
        "exfix_external_dns_servers)" in host["reason"]  # fmt: skip
    assert host["new_findings"] == []

    text = exfix("playbook", "run", "dns-451-remediate", *base)
    assert text.code == 2, text
    variable = "exfix_external_dns_servers"
    assert f"stays (variable) [set {variable}] transport-external-dns-unresolvable" in text.stdout
    assert f"Set in the inventory, then run again (each finding below says why): {variable}" in text.stdout
    note = exfix("playbook", "run", "dns-451-remediate", *base, "--format", "markdown")
    assert "Stays as it is, and what stands in the way:" in note.stdout
    assert "Set `exfix_external_dns_servers`." in note.stdout

    plan = exfix("plan", "--inventory", str(inventory), "--out", str(tmp_path / "plan"), "--format", "json")
    assert plan.code == 2, plan
    summary = json.loads(plan.stdout)
    assert summary["schema"] == "exfix.plan-result/2" and summary["actions"] == 0
    assert {o["rule_id"]: o["blocker"] for o in summary["outstanding"]} == {
        "transport-external-dns-unresolvable": "variable", "queue-dns-failure": "cause"}  # fmt: skip
