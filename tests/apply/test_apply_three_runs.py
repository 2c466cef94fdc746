"""The three-run test for every fix apply runs (ansible.windows style): plan leaves the host
untouched, apply cures the symptom, planning again finds nothing to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.apply import HostOutcome, StepStatus
from apply._apply_support import full_state, journal_lines, lab_fleet
from mock_remoting.exchange import load_scenario

pytestmark = pytest.mark.lab

SCENARIOS = Path(__file__).resolve().parents[2] / "mock_remoting" / "scenarios"


def internal_dns_scenario(tmp: Path) -> Path:
    """EX01's transport resolves internal names with the public 8.8.8.8 (adapter off), so the
    queues to other Exchange servers fail with NXDOMAIN while internet mail delivers."""
    data = yaml.safe_load((SCENARIOS / "nic-external-dns.yaml").read_text(encoding="utf-8"))
    data["name"] = "internal-dns-public"
    data["description"] = "Transport's InternalDNSServers is the public 8.8.8.8 with the adapter off."
    data["expect"] = {"rules": ["transport-internal-dns-misconfigured", "queue-dns-failure"]}
    host = data["hosts"][0]
    host["nics"][0]["dns_servers"] = ["10.0.0.10"]
    host["transport"] = {"internal_dns_adapter_enabled": False, "internal_dns_servers": ["8.8.8.8"]}
    path = tmp / "internal-dns-public.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def firewall_scenario(tmp: Path) -> Path:
    """EX01 of host-firewall-blocks-dns alone: its firewall blocks UDP 53 to its DNS server."""
    data = yaml.safe_load((SCENARIOS / "host-firewall-blocks-dns.yaml").read_text(encoding="utf-8"))
    data["name"] = "host-firewall-ex01"
    data["hosts"] = data["hosts"][:1]
    data["send_connectors"][0]["source_transport_servers"] = ["EX01"]
    data["expect"] = {"rules": data["hosts"][0]["expect"]["rules"]}
    path = tmp / "host-firewall-ex01.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def default_block_scenario(index: int) -> Callable[[Path], Path]:
    """One host of host-firewall-default-block alone: EX01, whose profile blocks outbound by
    default with no allow rule for its DNS server (the allow rules cure it), or EX03, which also
    has a block rule for it (the block rule off and the allow rules, together)."""

    def write(tmp: Path) -> Path:
        data = yaml.safe_load((SCENARIOS / "host-firewall-default-block.yaml").read_text(encoding="utf-8"))
        data["name"] = f"host-firewall-default-block-{index}"
        data["hosts"] = [data["hosts"][index]]
        data["send_connectors"][0]["source_transport_servers"] = [data["hosts"][0]["name"]]
        data["expect"] = {"rules": data["hosts"][0]["expect"]["rules"]}
        path = tmp / f"{data['name']}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    return write


DERIVED = {
    "internal": internal_dns_scenario,
    "firewall": firewall_scenario,
    "firewall-default-block": default_block_scenario(0),
    "firewall-default-block-and-rule": default_block_scenario(2),
}

CASES = [
    ("nic-registration-disabled", "enable-nic-dns-registration", {}),
    ("nic-external-dns", "set-nic-dns-servers", {}),
    ("transport-external-dns-unresolvable", "set-transport-external-dns",
     {"exfix_external_dns_servers": ["8.8.8.8"]}),
    ("internal", "set-transport-internal-dns", {}),
    ("remote-domain-aaaa-broken", "add-smarthost-send-connector", {}),
    ("exchange-2010", "set-transport-external-dns", {"exfix_external_dns_servers": ["8.8.8.8"]}),
    ("dns-client-cache-negative", "clear-dns-client-cache", {}),
    ("firewall", "disable-dns-firewall-block", {}),
    ("firewall-default-block", "allow-dns-through-firewall", {}),
    ("firewall-default-block-and-rule", "allow-dns-through-firewall", {}),
]  # fmt: skip


@pytest.mark.parametrize(("scenario", "fix_id", "extra_vars"), CASES, ids=[c[0] for c in CASES])
def test_plan_apply_plan_again(
    tmp_path: Path, scenario: str, fix_id: str, extra_vars: dict[str, Any]
) -> None:
    source: str | Path = DERIVED[scenario](tmp_path) if scenario in DERIVED else scenario
    host_name = load_scenario(source).hosts[0].fqdn
    with lab_fleet(source, tmp_path, extra_vars) as fleet:
        lab = fleet.lab
        totals = {q.next_hop: q.queued + q.delivered for q in fleet.host(host_name).queues}
        untouched = full_state(lab, host_name)

        # 1. plan: a dry run; the host is exactly as it was (settings, service, queues).
        result, plan_file = fleet.plan(tmp_path / "plan")
        assert full_state(lab, host_name) == untouched
        assert result.exit_code == 2
        # The host's own unit, after the organisation's units that concern it (a send
        # connector lives in Active Directory: it is the organisation's step, run first).
        hp = result.plan.host(host_name)
        units = [u for u in result.plan.organizations if host_name in u.servers] + [hp]
        automatic = [a for u in units for a in u.automatic]
        assert fix_id in {a.fix_id for a in automatic}
        fixed_rules = {f.rule_id for u in units for f in u.findings if f.fix_id == fix_id}
        assert fixed_rules

        # 2. apply: every step reads back as planned, the finding is gone, the queues drain.
        report = fleet.apply(plan_file, allow_restart=True)
        outcome = report.host(host_name)
        assert report.exit_code == 0, outcome
        expected = HostOutcome.DONE if hp.automatic else HostOutcome.NOTHING_TO_DO
        assert outcome.outcome is expected and outcome.verified is True
        steps = [s for o in report.organizations for s in o.steps] + list(outcome.steps)
        assert all(o.verified is True for o in report.organizations)
        assert steps and all(s.status is StepStatus.OK for s in steps)
        assert not {f.rule_id for f in outcome.remaining_findings} & (fixed_rules | {"queue-dns-failure"})
        assert outcome.queues and all(q.drained for q in outcome.queues)
        for queue in fleet.host(host_name).queues:
            assert queue.queued == 0, queue
            assert queue.delivered == totals[queue.next_hop]

        # The journal holds every step, with the plan's digest and operator on each line.
        lines = journal_lines(plan_file.default_journal)
        assert {r["plan_digest"] for r in lines} == {result.plan.digest}
        assert {r["operator"] for r in lines} == {"tester"}
        executed = [r for r in lines if r["phase"] == "execute" and r["result"] == "started"]
        assert [r["action"] for r in executed] == [a.id for a in automatic]
        assert [r["call"]["cmdlet"] for r in executed] == [a.call.cmdlet for a in automatic]
        if scenario == "exchange-2010":
            assert "Set-TransportServer" in {r["call"]["cmdlet"] for r in executed}
        if scenario == "dns-client-cache-negative":
            # A flush with no undo: no rollback calls, no restart, and the stale entry is gone.
            (flush,) = [a for a in automatic if a.fix_id == fix_id]
            assert flush.rollback == () and not flush.disruptive and not flush.restart_required
            assert "has no undo, and needs none" in flush.description
            assert fleet.host(host_name).state.dns_cache == []
            # The change board reads that there is no undo, and why, in the review and in
            # rollback.ps1 beside the remediation.
            review = (tmp_path / "plan" / "REVIEW.md").read_text(encoding="utf-8")
            assert "No undo step for clear-dns-client-cache: A cache flush has no undo, and needs none" in (
                review
            )
            (rollback,) = (tmp_path / "plan" / "hosts").glob("*/rollback.ps1")
            undo = rollback.read_text("utf-8-sig")
            assert "# --- Step 1 has no undo step: A cache flush has no undo" in undo
            assert fleet.host(host_name).state.transport_starts == untouched["transport_starts"]

        if scenario.startswith("firewall-default-block"):
            # Exactly the servers the host could not reach, under the fixed names the rollback
            # removes; with a block rule beside the default Block, it is turned off first.
            rules = {r.name: r for r in fleet.host(host_name).state.firewall_rules}
            for protocol in ("UDP", "TCP"):
                added = rules[f"exfix-allow-dns-{protocol.lower()}"]
                assert (added.direction, added.action, added.enabled) == ("Outbound", "Allow", True)
                assert (added.protocol, added.remote_port) == (protocol, ("53",))
                assert added.remote_address == ("10.0.0.10",)
                assert added.profile == ("Domain",)
            blocks = [r for r in rules.values() if r.action == "Block"]
            assert all(not r.enabled for r in blocks)
            kinds = [a.kind for a in automatic]
            expected_kinds = ["new-dns-allow-firewall-rule"] * 2
            if scenario.endswith("and-rule"):
                expected_kinds = ["disable-firewall-rule", *expected_kinds]
            assert kinds == expected_kinds
            assert not any(a.disruptive or a.restart_required for a in automatic)
            assert fleet.host(host_name).state.transport_starts == untouched["transport_starts"]

        # 3. plan again: nothing to do.
        again, _ = fleet.plan(tmp_path / "plan-again")
        assert again.plan.actions == ()
        assert again.exit_code == 0
