"""A planned host that answers the stale check's Get-ExchangeServer with an ErrorRecord (the
account lost its RBAC role between plan and apply, say): apply changes nothing and stops with
a RemoteCommandError, exit 7, not "unreachable" (3); over the lab's real sockets."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from click.testing import CliRunner

from agent.cli import main
from agent.errors import EXIT_COMMAND_FAILED, HostError, RemoteCommandError
from apply._apply_support import LabFleet, full_state, journal_lines, lab_fleet

pytestmark = pytest.mark.lab

HOST = "ex01.contoso.local"


def _break_get_exchangeserver(fleet: LabFleet, tmp_path: Path) -> None:
    """From now on the lab answers Get-ExchangeServer on EX01 with a terminating ErrorRecord
    (its replay of an unreadable capture fails the pipeline)."""
    broken = tmp_path / "not-clixml.xml"
    broken.write_text("not CLIXML\n", encoding="utf-8")
    replay = fleet.host(HOST).state.spec.replay
    cast(dict[str, Path], replay)["get-exchangeserver"] = broken


def test_a_command_failure_at_the_stale_check_changes_nothing_and_is_exit_7(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        _break_get_exchangeserver(fleet, tmp_path)
        before = full_state(fleet.lab, HOST)
        with pytest.raises(RemoteCommandError) as caught:
            fleet.apply(plan_file, allow_restart=True)
        assert not isinstance(caught.value, HostError)
        assert caught.value.exit_code == EXIT_COMMAND_FAILED and caught.value.host == HOST
        assert "Get-ExchangeServer" in str(caught.value) and "changed nothing" in str(caught.value)
        assert full_state(fleet.lab, HOST) == before
        lines = journal_lines(plan_file.default_journal)
        assert [(r["phase"], r["result"]) for r in lines] == [
            ("start", "ok"),
            ("lock", "acquired"),  # the host is held for the whole run, stale check included
            ("stale-check", "command-failed"),
            ("refused", "RemoteCommandError"),
            ("unlock", "released"),
        ]

        # The CLI: one line on stderr, exit 7.
        result = CliRunner().invoke(main, ["apply", str(plan_file.path), "--approve", plan_file.plan.digest,
                                           "--allow-restart"])  # fmt: skip
        assert result.exit_code == EXIT_COMMAND_FAILED, result.output
        assert result.output.count("\n") == 1 and "Get-ExchangeServer" in result.output
        assert full_state(fleet.lab, HOST) == before
