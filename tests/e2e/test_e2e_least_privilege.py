"""The main stories under the least-privilege roles `exfix rbac` writes: the lab's account
holds only those roles (Lab(account=...), mock_remoting/lab.py), so a cmdlet, parameter or
value exfix needs and the roles lack fails the story here.

- every shipped scenario scans to its own expectations with the scanning account;
- every fix's plan / apply / plan-again passes with the remediating account;
- the scanning account cannot apply: the first change is refused, and exfix says which cmdlet
  and why, and changes nothing.

``EXFIX_LAB_ACCOUNT=remediate pytest tests/apply tests/e2e tests/workflow`` runs the whole of
those suites under the remediating account.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.apply import StepStatus
from agent.errors import EXIT_COMMAND_FAILED, RIGHTS_HINT
from apply._apply_support import full_state, lab_fleet
from apply.test_apply_three_runs import CASES, DERIVED
from e2e.conftest import SCENARIOS, run_exfix
from e2e.test_e2e_scenarios import SHIPPED, expected_failed_areas, expected_rules
from mock_remoting.exchange import load_scenario

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_scans_with_the_scanning_roles(name: str) -> None:
    data = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
    repeat = (data.get("expect") or {}).get("probe_repeat")
    extra = ("--probe-repeat", str(repeat)) if repeat is not None else ()
    run = run_exfix("scan", "--lab", name, "--format", "json", *extra, env={"EXFIX_LAB_ACCOUNT": "scan"})
    assert run.exit_code in (0, 2, 8), run.describe()
    expected = expected_rules(name)
    got = run.rules()
    if "*" in expected:
        assert set().union(*got.values()) == expected["*"], run.describe()
    else:
        assert got == expected, run.describe()
    failed = expected_failed_areas(name)
    for host in run.doc["hosts"]:
        areas = {a["area"] for a in host.get("failed_areas", ())}
        assert areas == failed[host["host"].lower()], (host["host"], host.get("failed_areas"))


@pytest.mark.parametrize(("scenario", "fix_id", "extra_vars"), CASES, ids=[c[0] for c in CASES])
def test_plan_apply_plan_again_with_the_remediating_roles(
    tmp_path: Path, scenario: str, fix_id: str, extra_vars: dict[str, Any]
) -> None:
    source: str | Path = DERIVED[scenario](tmp_path) if scenario in DERIVED else scenario
    host_name = load_scenario(source).hosts[0].fqdn
    with lab_fleet(source, tmp_path, extra_vars, account="remediate") as fleet:
        result, plan_file = fleet.plan(tmp_path / "plan")
        assert result.exit_code == 2
        report = fleet.apply(plan_file, allow_restart=True)
        outcome = report.host(host_name)
        assert report.exit_code == 0, outcome
        assert outcome.verified is True, outcome
        steps = [s for o in report.organizations for s in o.steps] + list(outcome.steps)
        assert steps and all(s.status is StepStatus.OK for s in steps)
        again, _ = fleet.plan(tmp_path / "plan-again")
        assert again.plan.actions == ()


def test_the_scanning_account_cannot_apply_and_exfix_says_why(tmp_path: Path) -> None:
    host_name = load_scenario("nic-registration-disabled").hosts[0].fqdn
    with lab_fleet("nic-registration-disabled", tmp_path, account="scan") as fleet:
        before = full_state(fleet.lab, host_name)
        result, _ = fleet.plan(tmp_path / "plan")
        assert result.exit_code == 2
        run = run_exfix(
            "apply", str(tmp_path / "plan"), "--inventory", str(fleet.inventory_path),
            "--approve", result.plan.digest, "--allow-restart",
        )  # fmt: skip
        assert run.exit_code not in (0, 2), run.describe()
        text = run.stdout + run.stderr
        # One cmdlet outside the scanning roles: the change marker's New-Item, the first
        # change apply makes, is not in the session at all.
        assert "New-Item: The term 'New-Item' is not recognized" in text, run.describe()
        assert RIGHTS_HINT in text
        assert run.exit_code == EXIT_COMMAND_FAILED
        assert full_state(fleet.lab, host_name) == before


def test_without_the_jea_configuration_name_the_os_endpoint_is_access_denied(tmp_path: Path) -> None:
    extra = {"ansible_psrp_configuration_name": "Microsoft.PowerShell"}
    with lab_fleet("nic-registration-disabled", tmp_path, extra, account="scan") as fleet:
        run = run_exfix("scan", "--inventory", str(fleet.inventory_path))
    assert run.exit_code == 3, run.describe()
    assert "WSMan fault 5: Access is denied." in run.stdout, run.describe()
    assert "ansible_psrp_configuration_name" in run.stdout
