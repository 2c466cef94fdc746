"""What `exfix plan` prints: each server's steps for a few, the groups of identical changes for
a fleet, and the plan in one line either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.apply.fleet_plan import FleetPlan
from agent.cli.plan import render_text
from agent.model.results import ScanReport
from review._fleet import fleet_plan


def _text(size: int, capsys: pytest.CaptureFixture[str]) -> list[str]:
    plan = fleet_plan(size)
    scan = ScanReport(hosts=(), started="2026-12-01T00:00:00+00:00", finished="2026-12-01T00:00:01+00:00",
                      source="inventory.yaml")  # fmt: skip
    render_text(FleetPlan(plan, scan), Path("/plans/change/plan.json"))
    return capsys.readouterr().out.splitlines()


def test_a_fleet_plan_is_its_groups_and_one_line_not_every_server(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _text(200, capsys)
    assert len(lines) < 20, "\n".join(lines)
    groups = [line for line in lines if line.startswith("Group ")]
    assert len(groups) == 3 and all("40 servers:" in g and "restart MSExchangeTransport" in g for g in groups)
    assert any("RegisterThisConnectionsAddress: False → True" in g for g in groups)
    # Each group names its first servers and counts the rest.
    assert sum(1 for line in lines if line.endswith("and 30 more")) == 3
    assert "80 servers with nothing to do (no findings)" in lines
    (summary,) = [line for line in lines if line.startswith("Plan: ")]
    assert summary.startswith("Plan: 120 servers to change in 3 groups of identical changes, 120 restarts")
    assert summary.endswith("80 with nothing to do")
    assert not any("01-enable-nic-dns-registration" in line for line in lines)  # no server's own steps


def test_a_few_servers_are_shown_with_their_steps(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _text(5, capsys)
    assert not any(line.startswith("Group ") for line in lines)
    assert any(line.startswith("ex001.contoso.local (Exchange ") for line in lines)
    assert any("[DISRUPTIVE: restarts MSExchangeTransport]" in line for line in lines)
    (summary,) = [line for line in lines if line.startswith("Plan: ")]
    assert summary.startswith("Plan: 3 servers to change")
