"""Verification by symptom over the lab's real sockets: after the fix, the lookups the failing
queues needed are re-run on the host (Resolve-DnsName) and Get-MessageTrackingLog shows SEND
events to each next hop; a lookup that still fails keeps the host unverified although its
queues drained; a tracking log the account may not read is "not available", never a failure."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import agent.apply.run as apply_run
from agent.apply import HostOutcome
from agent.apply.results import APPLY_SCHEMA, CheckStatus
from agent.collect.org import OrgFactsCache
from agent.model.credential import Credential
from agent.model.facts import HostFacts
from agent.model.target import HostTarget
from apply._apply_support import lab_fleet

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
EX2010 = "ex2010.contoso.local"


def _journal(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_a_fix_is_verified_by_its_lookups_and_its_send_events(tmp_path: Path) -> None:
    with lab_fleet("exchange-2010", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        report = fleet.apply(plan_file, allow_restart=True)
        host = report.host(EX2010)
        assert report.exit_code == 0, host
        assert host.outcome is HostOutcome.DONE and host.verified is True
        assert {q.next_hop: q.status for q in host.queues} == {
            "fabrikam.com": CheckStatus.PASS, "tailspintoys.com": CheckStatus.PASS,
        }  # fmt: skip
        # What failed before (SERVFAIL at the adapter's server without forwarders) is asked of
        # the server transport uses now (8.8.8.8, ExternalDNSServers), and answers.
        mx = next(p for p in host.probes if (p.qname, p.rdtype) == ("fabrikam.com", "MX"))
        assert (mx.server, mx.before, mx.after) == ("8.8.8.8", "servfail", "answer")
        assert mx.status is CheckStatus.PASS
        mail_host = next(p for p in host.probes if (p.qname, p.rdtype) == ("mx1.fabrikam.com", "A"))
        assert mail_host.status is CheckStatus.PASS and mail_host.after == "answer"
        assert all(p.server != "10.0.0.11" for p in host.probes)  # off the path after the change
        assert all(p.status is CheckStatus.PASS for p in host.probes)
        # The SEND events: one per message that was queued, after the change, via the connector.
        sent = {t.next_hop: t for t in host.tracking}
        assert sent["fabrikam.com"].status is CheckStatus.PASS and sent["fabrikam.com"].count == 21
        assert sent["tailspintoys.com"].count == 3
        assert sent["fabrikam.com"].connector == "Internet Mail"
        assert sent["fabrikam.com"].server_hostname == "mx1.fabrikam.com"
        first = sent["fabrikam.com"].first
        assert first is not None and datetime.datetime.fromisoformat(first) >= started

        doc = report.to_dict()
        assert doc["schema"] == APPLY_SCHEMA == "exfix.apply/4"
        (unit,) = doc["hosts"]
        assert {q["status"] for q in unit["queues"]} == {"pass"}
        assert {p["status"] for p in unit["probes"]} == {"pass"}
        assert [(t["next_hop"], t["status"], t["count"]) for t in unit["tracking"]] == [
            ("fabrikam.com", "pass", 21), ("tailspintoys.com", "pass", 3),
        ]  # fmt: skip
        (verified,) = [r for r in _journal(report.journal) if r.get("phase") == "queues"
                       and r.get("result") == "verified"]  # fmt: skip
        assert {t["next_hop"] for t in verified["detail"]["tracking"]} == {"fabrikam.com", "tailspintoys.com"}
        assert verified["schema"] == "exfix.journal/6"  # /5 the gate, /6 the hold; queues as in /4
        probes = verified["detail"]["probes"]
        assert probes and all(p["status"] == "pass" for p in probes)


def test_queues_that_drain_with_a_lookup_that_still_fails_are_not_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queues drain; then, before the host's lookups are re-run, the mail host's address
    goes away at the lab internet's servers. Nothing that collect reads changes (the queues are
    empty, so no remote domain is probed), so only the re-run lookup can tell."""
    with lab_fleet("exchange-2010", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        real_collect = apply_run.collect

        def collect(target: HostTarget, credential: Credential, orgs: OrgFactsCache | None = None,
                    *, probe_repeat: int = 1) -> HostFacts:  # fmt: skip
            if orgs is None:  # the verification's second look, after the queues drained
                fleet.lab.fleet.world.withdraw_addresses("mx1.fabrikam.com")
            return real_collect(target, credential, orgs, probe_repeat=probe_repeat)

        monkeypatch.setattr(apply_run, "collect", collect)
        report = fleet.apply(plan_file, allow_restart=True)
        host = report.host(EX2010)
        assert all(q.status is CheckStatus.PASS for q in host.queues)  # drained
        assert host.remaining_findings == () and host.new_findings == ()
        failed = [p for p in host.probes if p.status is CheckStatus.FAIL]
        assert [(p.qname, p.rdtype, p.server, p.after) for p in failed] == [
            ("mx1.fabrikam.com", "A", "8.8.8.8", "nodata")
        ]
        assert host.verified is False and report.exit_code == 5


def _denied_scenario(tmp_path: Path) -> Path:
    data = yaml.safe_load((REPO / "mock_remoting" / "scenarios" / "exchange-2010.yaml").read_text("utf-8"))
    data["hosts"][0]["rbac_denied"] = ["Get-MessageTrackingLog"]
    path = tmp_path / "exchange-2010-no-tracking.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_a_tracking_log_the_account_may_not_read_is_not_available_not_a_failure(tmp_path: Path) -> None:
    with lab_fleet(_denied_scenario(tmp_path), tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        report = fleet.apply(plan_file, allow_restart=True)
        host = report.host(EX2010)
        assert [t.status for t in host.tracking] == [CheckStatus.NOT_AVAILABLE] * 2
        reason = host.tracking[0].reason
        assert reason.startswith("Get-MessageTrackingLog is not available here: ")
        assert "is not recognized as the name of a cmdlet" in reason
        # The other checks could be made and pass: verified.
        assert all(p.status is CheckStatus.PASS for p in host.probes)
        assert host.verified is True and report.exit_code == 0
