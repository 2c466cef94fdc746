"""A fix that would create a new fault (issue 9, class 5), over the lab on real sockets.

EX01's MAPI NIC lists 10.0.0.11 (an AD DNS server without forwarders) and the public 8.8.8.8
(scenario nic-public-secondary-no-forwarders). Dropping 8.8.8.8 cures the internal queues and,
alone, leaves transport with no server that resolves internet names: in the lab, the internet
queues (where mail keeps arriving) then go to Retry with ServerFailure. The plan keeps internet
mail working when the inventory gives exfix_external_dns_servers, refuses the NIC step when it
does not, and apply never says verified when the change created a finding.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from agent.apply import HostOutcome
from agent.cli import main
from agent.model.plan import EXTERNAL_DNS_VARIABLE, AdvisoryKind, Blocker, Resolution
from apply._apply_support import full_state, journal_lines, lab_fleet

pytestmark = pytest.mark.lab

SCENARIO = "nic-public-secondary-no-forwarders"
HOST = "ex01.contoso.local"
NO_FORWARDERS = "10.0.0.11"
INTERNET = ("fabrikam.com", "tailspintoys.com")


def test_the_plan_keeps_internet_mail_working(tmp_path: Path) -> None:
    # The lab's inventory gives exfix_external_dns_servers: its working public resolver.
    with lab_fleet(SCENARIO, tmp_path) as fleet:
        assert fleet.inventory.select(None)[0].external_dns_servers == ("8.8.8.8",)
        result, plan_file = fleet.plan(tmp_path / "plan")
        assert result.exit_code == 2
        hp = result.plan.host(HOST)
        assert [a.kind for a in hp.actions] == ["set-nic-dns-servers", "set-transport-external-dns",
                                                "restart-transport"]  # fmt: skip
        (org,) = result.plan.organizations
        assert [a.kind for a in org.actions] == ["use-external-dns-on-connector"]
        (consequence,) = hp.consequences
        assert consequence.resolution is Resolution.PREVENTED
        assert consequence.finding.rule_id == "transport-external-dns-unresolvable"
        assert f"{NO_FORWARDERS}: SERVFAIL" in consequence.finding.summary  # what the probes saw
        delivered = {q.next_hop: q.delivered for q in fleet.host(HOST).queues}

        report = fleet.apply(plan_file, allow_restart=True)
        outcome = report.host(HOST)
        assert report.exit_code == 0, outcome
        assert outcome.outcome is HostOutcome.DONE and outcome.verified is True
        assert outcome.new_findings == ()
        # The mail that arrived after the change went out to the internet; the internal queue drained.
        for view in fleet.host(HOST).queues:
            assert view.status != "Retry" and view.queued == 0, view
            if view.next_hop in INTERNET:
                assert view.delivered > delivered[view.next_hop]

        again, _ = fleet.plan(tmp_path / "again")
        assert again.exit_code == 0 and not again.plan.actions
        assert all(not u.findings for u in again.plan.units)


def test_without_the_servers_the_plan_refuses_the_nic_step_and_says_why(tmp_path: Path) -> None:
    with lab_fleet(SCENARIO, tmp_path) as fleet:
        data = yaml.safe_load(fleet.inventory_path.read_text(encoding="utf-8"))
        del data["all"]["vars"][EXTERNAL_DNS_VARIABLE]
        inventory = tmp_path / "no-servers.yaml"
        inventory.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        untouched = full_state(fleet.lab, HOST)

        out = tmp_path / "plan"
        result = CliRunner().invoke(main, ["plan", "-i", str(inventory), "--out", str(out)])
        # No action, but findings remain: exit 2, and each says what stands in its way.
        assert result.exit_code == 2, result.output
        assert "no automatic step" in result.output and "Apply it with" not in result.output
        assert "exfix leaves out 'Set the DNS servers of the MAPI NIC" in result.output
        assert "because afterwards: Transport's DNS servers for external lookups cannot" in result.output
        assert f"nic-external-dns-server (refused) [set {EXTERNAL_DNS_VARIABLE}]" in result.output
        assert "queue-dns-failure (cause)" in result.output
        assert "2 finding(s) stay after this plan" in result.output
        assert full_state(fleet.lab, HOST) == untouched

        plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
        assert plan["schema"] == "exfix.plan/4"
        (host,) = plan["hosts"]
        assert host["actions"] == [] and plan["organizations"] == []
        (refusal,) = [a for a in host["advisories"] if a["kind"] == AdvisoryKind.WOULD_BREAK.value]
        assert refusal["fix_id"] == "set-nic-dns-servers" and refusal["variable"] == EXTERNAL_DNS_VARIABLE
        assert [c["resolution"] for c in host["consequences"]] == [Resolution.REFUSED.value]
        blockers = {o["rule_id"]: o["blocker"] for o in host["outstanding"]}
        assert blockers == {"nic-external-dns-server": Blocker.REFUSED.value,
                            "queue-dns-failure": Blocker.CAUSE.value}  # fmt: skip
        review = (out / "REVIEW.md").read_text(encoding="utf-8")
        assert "### What the plan would break" in review and "### Not fixed by this plan" in review
        assert "exfix left its step out: it would break something else" in review
        assert f"set `{EXTERNAL_DNS_VARIABLE}`" in review


def test_apply_reports_the_fault_its_change_created_and_does_not_say_verified(tmp_path: Path) -> None:
    with lab_fleet(SCENARIO, tmp_path) as fleet:
        # When the plan is made, 10.0.0.11 forwards: dropping 8.8.8.8 from the NIC is safe then.
        fleet.lab.world.set_forward(NO_FORWARDERS, True)
        result, _ = fleet.plan(tmp_path / "plan")
        hp = result.plan.host(HOST)
        assert [a.kind for a in hp.actions] == ["set-nic-dns-servers", "restart-transport"]
        assert hp.consequences == ()
        # Before apply, the DNS administrator removes the forwarders. Nothing the plan's steps
        # depend on drifts (the NIC and transport settings are as planned), so apply runs.
        fleet.lab.world.set_forward(NO_FORWARDERS, False)

        journal = tmp_path / "plan" / "journal.jsonl"
        applied = CliRunner().invoke(main, [
            "apply", str(tmp_path / "plan" / "plan.json"), "-i", str(fleet.inventory_path), "--approve",
            result.plan.digest, "--allow-restart", "--verify-timeout", "5",
        ])  # fmt: skip
        assert applied.exit_code == 5, applied.output
        assert f"{HOST}: done NOT VERIFIED" in applied.output
        assert "NEW since the change: transport-external-dns-unresolvable" in applied.output
        assert "NEW since the change: queue-dns-failure on all external domains" in applied.output

        # The lab really broke internet mail: the mail that arrived after the change waits in
        # Retry with the LastError Exchange writes.
        for domain in INTERNET:
            view = fleet.host(HOST).queue(domain)
            assert view.status == "Retry" and view.queued > 0
            assert view.last_error is not None
            assert "451 4.4.0 DNS query failed. The error was: DNS query failed with error ServerFailure" in (
                view.last_error
            )
        assert fleet.host(HOST).queue("site:default-first-site-name; version:15").queued == 0

        [verdict] = [r for r in journal_lines(journal) if r["phase"] == "queues" and r["host"] == HOST
                     and r["result"] in ("verified", "not-verified")]  # fmt: skip
        assert verdict["result"] == "not-verified"
        new = verdict["detail"]["new_findings"]
        assert f"transport-external-dns-unresolvable|{HOST}|external DNS lookups" in new
        assert f"queue-dns-failure|{HOST}|all external domains" in new
