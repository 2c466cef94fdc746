"""The apply exit codes the README's table names that no other test reaches through the
command line: 6, a step failed and its rollback failed too. The CLI runs in-process on a lab
over sockets; the fault is injected on the lab at the moment the journal says the restart is
about to run (apply's own event hook), so the failure is the lab's, not a stand-in."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import agent.cli.apply as cli_apply
from agent.apply.journal import JournalEntry
from agent.cli import main
from agent.errors import EXIT_ROLLBACK_FAILED
from apply._apply_support import EXTERNAL_DNS_VARS, journal_lines, lab_fleet

pytestmark = pytest.mark.lab

HOST = "ex01.contoso.local"
RESTART_STEP = "02-restart-transport"


def test_a_rollback_that_fails_is_exit_6_through_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with lab_fleet("transport-external-dns-unresolvable", tmp_path, EXTERNAL_DNS_VARS) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        lab = fleet.lab

        def on_event(entry: JournalEntry) -> None:
            if (entry.phase, entry.action) == ("before", RESTART_STEP):
                lab.inject(HOST, {"fail": {"kind": "http-500", "on": "Command", "endpoint": "any"}})

        real = cli_apply.apply_plan

        def with_fault(*args: Any, **kwargs: Any) -> Any:
            return real(*args, **kwargs, on_event=on_event)

        monkeypatch.setattr(cli_apply, "apply_plan", functools.wraps(real)(with_fault))
        run = CliRunner().invoke(main, [
            "apply", str(plan_file.path), "--approve", plan_file.plan.digest, "--allow-restart",
            "-i", str(fleet.inventory_path), "--verify-timeout", "5", "--operator", "tester",
        ], prog_name="exfix")  # fmt: skip
    assert run.exit_code == EXIT_ROLLBACK_FAILED, run.output
    assert f"{HOST}" in run.stdout and "rollback-failed" in run.stdout
    assert "exit 6: a step failed and the rollback failed too: a person must look at the host" in run.stdout
    end = journal_lines(plan_file.default_journal)[-1]
    assert end["phase"] == "end" and end["detail"]["exit_code"] == EXIT_ROLLBACK_FAILED
