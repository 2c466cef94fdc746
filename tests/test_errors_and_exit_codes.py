"""The exception tree's two host branches, and which exit code wins (agent.errors.EXIT_PRECEDENCE):
1 bad input beats everything, 3 (could not talk to a host) beats 7 (a host answered with an
error), 7 beats 2 (findings), 2 beats 8 (partial: an area not collected, rules not judged), 8
beats 0; the scan, plan and playbook results follow it."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from agent.apply._context import Recorder
from agent.apply.fleet_plan import FleetPlan
from agent.apply.journal import Journal
from agent.apply.verify import verify_host
from agent.collect.runner import CollectOptions, collect_host
from agent.errors import (
    EXIT_COMMAND_FAILED,
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_PRECEDENCE,
    EXIT_REFUSED,
    EXIT_ROLLBACK_FAILED,
    EXIT_ROLLED_BACK,
    EXIT_UNREACHABLE,
    AuthenticationError,
    CmdletError,
    ExfixError,
    HostError,
    HostTimeoutError,
    RemoteCommandError,
    UnreachableError,
    UnsupportedHostError,
    UnusableOutputError,
    UsageError,
    WSManFaultError,
    worst_exit,
)
from agent.model.command import CmdletCall
from agent.model.facts import AreaIssue, CollectionArea, HostFacts
from agent.model.findings import Finding, NotJudged, Severity
from agent.model.plan import HostPlan
from agent.model.playbook_run import Outcome
from agent.model.remote import RemoteObject
from agent.model.results import HostScan, HostStatus, ScanReport
from agent.planning import build_plan
from agent.scan import host_failure
from agent.transport.base import CommandResult
from support.facts_builders import SERVFAIL_ERROR, queue
from support.facts_builders import host as host_facts

REPO = Path(__file__).resolve().parents[1]
T = "2026-01-31T12:00:00+00:00"


def test_a_host_that_answered_with_an_error_is_not_a_transport_error() -> None:
    error = CmdletError("ex01", "Get-ExchangeServer", "access denied", "AccessDenied,GetExchangeServer",
                        "PermissionDenied")  # fmt: skip
    assert isinstance(error, RemoteCommandError) and not isinstance(error, HostError)
    assert (error.exit_code, error.status, error.host) == (7, "command-failed", "ex01")
    assert (error.cmdlet, error.category) == ("Get-ExchangeServer", "PermissionDenied")
    assert error.reason == "Get-ExchangeServer: access denied [AccessDenied,GetExchangeServer]"
    assert str(error) == "ex01: Get-ExchangeServer: access denied [AccessDenied,GetExchangeServer]"
    unusable = UnusableOutputError("ex01", "Get-ExchangeServer", "no server object came back")
    assert isinstance(unusable, RemoteCommandError) and not isinstance(unusable, HostError)
    assert (unusable.exit_code, unusable.problem) == (7, "no server object came back")
    transport_errors: list[HostError] = [
        UnreachableError("h", "refused"), HostTimeoutError("h", "late"), AuthenticationError("h", "401"),
        WSManFaultError("h", 5, "fault"), UnsupportedHostError("h", "Exchange 2007"), HostError("h", "x"),
    ]  # fmt: skip
    for transport in transport_errors:
        assert transport.exit_code == EXIT_UNREACHABLE and not isinstance(transport, RemoteCommandError)
    assert UsageError("bad").exit_code == EXIT_ERROR and ExfixError("bug").exit_code == EXIT_ERROR


def test_precedence() -> None:
    assert EXIT_PRECEDENCE == (1, 6, 5, 4, 3, 7, 2, 8, 0)
    assert worst_exit([]) == EXIT_OK
    for code in EXIT_PRECEDENCE:
        assert worst_exit([EXIT_ERROR, code]) == EXIT_ERROR  # bad input beats everything
        assert worst_exit([code, code]) == code
    assert worst_exit([EXIT_COMMAND_FAILED, EXIT_UNREACHABLE]) == EXIT_UNREACHABLE  # 3 beats 7
    assert worst_exit([EXIT_FINDINGS, EXIT_COMMAND_FAILED, EXIT_OK]) == EXIT_COMMAND_FAILED  # 7 beats 2
    assert worst_exit([EXIT_OK, EXIT_FINDINGS]) == EXIT_FINDINGS
    assert worst_exit([EXIT_COMMAND_FAILED, EXIT_REFUSED]) == EXIT_REFUSED  # a refusal beats 3 and 7
    assert worst_exit([EXIT_REFUSED, EXIT_ROLLED_BACK, EXIT_ROLLBACK_FAILED]) == EXIT_ROLLBACK_FAILED
    # order does not matter
    for pair in itertools.permutations([EXIT_FINDINGS, EXIT_COMMAND_FAILED, EXIT_UNREACHABLE]):
        assert worst_exit(pair) == EXIT_UNREACHABLE
    # Partial: worse than clean, and a finding is news whatever else was missed.
    assert worst_exit([EXIT_OK, EXIT_PARTIAL]) == EXIT_PARTIAL
    assert worst_exit([EXIT_PARTIAL, EXIT_FINDINGS]) == EXIT_FINDINGS
    assert worst_exit([EXIT_PARTIAL, EXIT_COMMAND_FAILED]) == EXIT_COMMAND_FAILED
    assert worst_exit([EXIT_UNREACHABLE, EXIT_PARTIAL]) == EXIT_UNREACHABLE
    with pytest.raises(ValueError, match="not an exfix exit code"):
        worst_exit([9])


def _finding() -> Finding:
    return Finding(rule_id="nic-external-dns-server", host="ex02", subject="Ethernet", severity=Severity.HIGH,
                   title="t", summary="s", evidence=(), fix_id=None,
                   fix_disrupts_mail_flow=False)  # fmt: skip


def _report(*hosts: HostScan) -> ScanReport:
    return ScanReport(hosts=hosts, started=T, finished=T, source="test")


CLEAN = HostScan("ex01", HostStatus.SCANNED)
PARTIAL = HostScan(
    "ex06", HostStatus.SCANNED,
    failed_areas=(AreaIssue(CollectionArea.QUEUES, "Get-Queue: The term 'Get-Queue' is not recognized"),),
    not_judged=(NotJudged("queue-dns-failure", "ex06", "Queues fail with DNS errors", ("queues",),
                          "it reads queues (the delivery queues), not collected on this host: ..."),),
)  # fmt: skip
FINDINGS = HostScan("ex02", HostStatus.SCANNED, findings=(_finding(),))
COMMAND_FAILED = HostScan("ex03", HostStatus.COMMAND_FAILED, error="Get-ExchangeServer: access denied")
UNREACHABLE = HostScan("ex04", HostStatus.UNREACHABLE, error="connection refused")
AUTH_FAILED = HostScan("ex05", HostStatus.AUTH_FAILED, error="401")


@pytest.mark.parametrize(
    ("hosts", "code"),
    [
        ((CLEAN,), EXIT_OK),
        ((CLEAN, FINDINGS), EXIT_FINDINGS),
        ((FINDINGS, COMMAND_FAILED), EXIT_COMMAND_FAILED),
        ((COMMAND_FAILED, FINDINGS, UNREACHABLE), EXIT_UNREACHABLE),
        ((AUTH_FAILED, COMMAND_FAILED), EXIT_UNREACHABLE),
        ((CLEAN, PARTIAL), EXIT_PARTIAL),
        ((PARTIAL, FINDINGS), EXIT_FINDINGS),
        ((PARTIAL, COMMAND_FAILED), EXIT_COMMAND_FAILED),
        ((), EXIT_OK),
    ],
)
def test_scan_and_plan_exit_codes_follow_the_precedence(hosts: tuple[HostScan, ...], code: int) -> None:
    report = _report(*hosts)
    assert report.exit_code == code and report.to_dict()["exit_code"] == code
    # exfix plan: the same hosts left out; an empty plan adds 0, a partial host 8.
    partial = any(h.partial for h in hosts)
    planned = {EXIT_FINDINGS: EXIT_PARTIAL if partial else EXIT_OK}.get(code, code)
    assert FleetPlan(build_plan([], {}, {}), report).exit_code == planned


def test_host_failure_status_comes_from_the_branch() -> None:
    failed = host_failure("ex01", CmdletError("ex01", "Get-ExchangeServer", "The term is not recognized"))
    assert failed.status is HostStatus.COMMAND_FAILED and failed.exit_code == EXIT_COMMAND_FAILED
    assert failed.error == "Get-ExchangeServer: The term is not recognized"
    assert host_failure("ex01", HostError("ex01", "closed")).status is HostStatus.FAILED
    assert host_failure("ex01", AuthenticationError("ex01", "401")).status is HostStatus.AUTH_FAILED
    assert host_failure("ex01", RuntimeError("bug")).status is HostStatus.FAILED


def test_playbook_outcomes_rank_as_their_exit_codes() -> None:
    """The run's outcome is its worst host's; that order must agree with EXIT_PRECEDENCE."""
    assert Outcome.COMMAND_FAILED.exit_code == EXIT_COMMAND_FAILED
    for a, b in itertools.combinations(Outcome, 2):
        if a.exit_code != b.exit_code:
            worse = a if a.rank > b.rank else b
            assert worst_exit([a.exit_code, b.exit_code]) == worse.exit_code, (a, b)


# --- the collector: which RemoteCommandErrors end a host ------------------------------------


SERVER = RemoteObject(
    ("Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer",),
    {"Name": "EX01", "Fqdn": "ex01.contoso.local", "Domain": "contoso.local",
     "AdminDisplayVersion": "Version 15.2 (Build 1118.7)", "ServerRole": "Mailbox"},
    "EX01",
)  # fmt: skip


class _Host:
    """Answers Get-ExchangeServer with ``server`` (or raises ``server_error``), every other
    command with nothing: the transport object, the registry key and the NICs are missing."""

    def __init__(self, server_error: RemoteCommandError | None = None) -> None:
        self.server_error = server_error
        self.calls: list[str] = []

    def run(self, call: CmdletCall, *, timeout: float | None = None) -> tuple[RemoteObject, ...]:
        self.calls.append(call.cmdlet)
        if call.cmdlet == "Get-ExchangeServer":
            if self.server_error is not None:
                raise self.server_error
            return (SERVER,)
        return ()

    def invoke(self, call: CmdletCall, *, timeout: float | None = None) -> CommandResult:
        self.calls.append(call.cmdlet)
        return CommandResult()


def test_an_area_whose_output_is_unusable_is_an_issue_not_a_lost_host() -> None:
    facts = collect_host(_Host(), "ex01", CollectOptions(orchestrator_probe=False))
    issues = {issue.area.value: issue.reason for issue in facts.status.issues}
    assert facts.transport is None and facts.edge_config is None and facts.edge_config_file is None
    assert issues["transport"] == "Get-TransportService: no transport server object came back"
    # The file was never read, so its settings were not either: one issue, both areas missing.
    assert "MsiInstallPath" in issues["edge_config_file"] and "edge_config" not in issues
    assert not facts.status.collected(CollectionArea.EDGE_CONFIG)


def test_get_exchangeserver_failing_ends_the_host() -> None:
    host = _Host(CmdletError("ex01", "Get-ExchangeServer", "The term 'Get-ExchangeServer' is not recognized"))
    with pytest.raises(CmdletError):
        collect_host(host, "ex01", CollectOptions(orchestrator_probe=False))
    assert host.calls == ["Get-ExchangeServer"]  # nothing else is asked without the server object


# --- apply's verification: a Get-Queue ErrorRecord is "not verified", never a crash -----------


class _QueueDenied(_Host):
    def run(self, call: CmdletCall, *, timeout: float | None = None) -> tuple[RemoteObject, ...]:
        raise CmdletError("ex01", call.cmdlet, "The term 'Get-Queue' is not recognized")

    def __enter__(self) -> _QueueDenied:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_verification_reports_a_command_error_as_not_verified(tmp_path: Path) -> None:
    before = host_facts(queues=[queue("EX01\\3", next_hop="fabrikam.com", last_error=SERVFAIL_ERROR)])
    plan = HostPlan(host="ex01", directory="ex01", fqdn="ex01.contoso.local", exchange_version="15.2",
                    findings=(), actions=(), advisories=(), fingerprint="0" * 64)  # fmt: skip

    def collect() -> HostFacts:
        raise CmdletError("ex01", "Get-ExchangeServer", "access denied")

    with Journal(tmp_path / "journal.jsonl") as journal:
        rec = Recorder(journal, "run", "tester", None, "0" * 64)
        check = verify_host(rec, plan, before, _QueueDenied, collect, timeout=0.0)  # type: ignore[arg-type]
    assert not check.verified and check.error is not None
    assert "Get-Queue" in check.error and "not recognized" in check.error
    assert [(c.next_hop, c.checked) for c in check.queues] == [("fabrikam.com", False)]


# --- the scan schema: /3 written, /2 and /1 still accepted ----------------------------------


def _validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "agent" / "schemas" / "scan.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_scan_schema_accepts_4_and_stored_3_2_and_1_documents() -> None:
    validator = _validator()
    doc = _report(CLEAN, COMMAND_FAILED).to_dict()
    assert doc["schema"] == "exfix.scan/4" and doc["summary"]["command-failed"] == 1
    validator.validate(doc)

    # What exfix wrote before /2, for a fleet with an unreachable host: still valid.
    old = _report(CLEAN, UNREACHABLE).to_dict()
    old["schema"] = "exfix.scan/1"
    del old["summary"]["command-failed"], old["summary"]["organizations"], old["organizations"]
    del old["summary"]["partial"], old["summary"]["not_judged"]
    for host in old["hosts"]:
        del host["failed_areas"], host["not_judged"], host["dns_servers"]
        for finding in host["findings"]:
            del finding["level"], finding["servers"]
    validator.validate(old)

    def invalid(document: dict[str, Any]) -> bool:
        return any(True for _ in validator.iter_errors(document))

    without_count = {k: v for k, v in doc["summary"].items() if k != "command-failed"}
    assert invalid(dict(doc, schema="exfix.scan/1", summary=without_count))  # /1: no command-failed status
    assert invalid(dict(old, exit_code=7))  # ... and no exit code 7
    assert invalid(dict(old, summary=dict(old["summary"], **{"command-failed": 0})))
    assert invalid(dict(doc, summary=without_count))  # /2 on always counts it

    # exfix.scan/3 as exfix wrote it: no per-server probe statistics.
    three = json.loads(json.dumps(doc))
    three["schema"] = "exfix.scan/3"
    for host in three["hosts"]:
        del host["dns_servers"]
    validator.validate(three)
    assert invalid(dict(doc, schema="exfix.scan/3"))  # /3 has no dns_servers
    assert invalid(dict(three, schema="exfix.scan/4"))  # /4 always has them

    # exfix.scan/2 as exfix wrote it: no failed areas, no not-judged rules, no partial count.
    two = json.loads(json.dumps(three))
    two["schema"] = "exfix.scan/2"
    del two["summary"]["partial"], two["summary"]["not_judged"]
    for host in two["hosts"]:
        del host["failed_areas"], host["not_judged"]
    validator.validate(two)
    assert invalid(dict(two, exit_code=8))  # /2 has no partial exit code
    assert invalid(dict(doc, schema="exfix.scan/2"))  # ... nor the keys /3 added
    assert invalid(dict(doc, summary={k: v for k, v in doc["summary"].items() if k != "partial"}))


def test_a_partial_host_is_scanned_with_its_failed_areas_and_exit_8() -> None:
    validator = _validator()
    doc = _report(CLEAN, PARTIAL).to_dict()
    validator.validate(doc)
    assert doc["exit_code"] == 8 and doc["summary"]["partial"] == 1 and doc["summary"]["not_judged"] == 1
    (host,) = [h for h in doc["hosts"] if h["host"] == "ex06"]
    assert host["status"] == "scanned" and host["error"] is None
    reason = "Get-Queue: The term 'Get-Queue' is not recognized"
    assert host["failed_areas"] == [{"area": "queues", "reason": reason}]
    (skipped,) = host["not_judged"]
    assert skipped["rule"] == "queue-dns-failure" and skipped["areas"] == ["queues"]

    def invalid(document: dict[str, Any]) -> bool:
        return any(True for _ in validator.iter_errors(document))

    broken = json.loads(json.dumps(doc))
    broken["hosts"][1]["failed_areas"][0]["area"] = "registry"  # no such area
    assert invalid(broken)
    broken = json.loads(json.dumps(doc))
    broken["hosts"][1].update(status="unreachable", error="refused")  # only a scanned host is partial
    assert invalid(broken)
    broken = json.loads(json.dumps(doc))
    del broken["hosts"][1]["not_judged"]
    assert invalid(broken)
