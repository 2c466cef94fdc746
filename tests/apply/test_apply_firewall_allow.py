"""allow-dns-through-firewall against the lab, beyond the three-run test: exfix rollback puts
a hardened host back exactly as it was (the rules apply added removed by their Name, the block
rule it turned off on again), and the host's DNS is dropped again as before; and every undo a
plan can hold is one exfix rollback accepts from the journal."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.apply import StepStatus, rollback_journal
from agent.apply.rollback import UNDO_CMDLETS
from apply._apply_support import full_state, lab_fleet
from mock_remoting.exchange import load_scenario
from support.plan_builders import every_step

pytestmark = pytest.mark.lab

SCENARIOS = Path(__file__).resolve().parents[2] / "mock_remoting" / "scenarios"
SERVER = "10.0.0.10"


def ex03_alone(tmp: Path) -> Path:
    """EX03 of host-firewall-default-block: a default Block and a block rule for its server."""
    data = yaml.safe_load((SCENARIOS / "host-firewall-default-block.yaml").read_text(encoding="utf-8"))
    data["name"] = "host-firewall-default-block-ex03"
    data["hosts"] = [data["hosts"][2]]
    data["send_connectors"][0]["source_transport_servers"] = ["EX03"]
    data["expect"] = {"rules": data["hosts"][0]["expect"]["rules"]}
    path = tmp / "ex03.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_exfix_rollback_removes_the_allow_rules_by_name_and_turns_the_block_rule_on_again(
    tmp_path: Path,
) -> None:
    source = ex03_alone(tmp_path)
    host_name = load_scenario(source).hosts[0].fqdn
    with lab_fleet(source, tmp_path) as fleet:
        state = fleet.host(host_name).state
        before = full_state(fleet.lab, host_name)["firewall_rules"]
        _, plan_file = fleet.plan(tmp_path / "plan")
        report = fleet.apply(plan_file, allow_restart=False)
        assert report.exit_code == 0, report.host(host_name)
        assert not state.dns_blocked(SERVER)
        names = {r.name for r in state.firewall_rules}
        assert {"exfix-allow-dns-udp", "exfix-allow-dns-tcp"} <= names

        undone = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials())
        assert undone.exit_code == 0
        (host,) = undone.hosts
        assert host.steps and all(s.status is StepStatus.ROLLED_BACK for s in host.steps)
        assert full_state(fleet.lab, host_name)["firewall_rules"] == before
        assert state.dns_blocked(SERVER)


def test_every_planned_undo_is_a_cmdlet_exfix_rollback_accepts_from_the_journal() -> None:
    # exfix rollback reads the journal strictly (agent/apply/rollback.py UNDO_CMDLETS): a fix
    # whose undo it refused could be applied and never rolled back from the journal. Manual
    # steps are a person's: apply never runs them, so the journal never holds their undo.
    undo = {call.cmdlet for draft in every_step("v") if not draft.manual for call in draft.rollback}
    assert {"Enable-NetFirewallRule", "Remove-NetFirewallRule"} <= undo
    assert {c.lower() for c in undo} <= UNDO_CMDLETS
