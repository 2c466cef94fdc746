"""apply refuses (exit 4) and touches nothing: a wrong digest, a changed plan or script, a host
that drifted since the plan, a restart without --allow-restart."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.apply import read_plan_file
from agent.errors import (
    EXIT_REFUSED,
    DigestMismatchError,
    RefusedError,
    RestartNotAllowedError,
    StalePlanError,
)
from agent.model.command import CmdletCall, Endpoint
from agent.transport.connection import connect
from apply._apply_support import LabFleet, full_state, journal_lines, lab_fleet

pytestmark = pytest.mark.lab

HOST = "ex01.contoso.local"


def _refused(fleet: LabFleet, tmp_path: Path, tamper: Callable[[Path], None], error: type[RefusedError],
             **options: object) -> str:  # fmt: skip
    fleet.plan(tmp_path / "plan")
    tamper(tmp_path / "plan")
    before = full_state(fleet.lab, HOST)
    with pytest.raises(error) as caught:
        fleet.apply(read_plan_file(tmp_path / "plan"), allow_restart=True, **options)
    assert caught.value.exit_code == EXIT_REFUSED
    assert full_state(fleet.lab, HOST) == before
    lines = journal_lines(tmp_path / "plan" / "journal.jsonl")
    assert [r["phase"] for r in lines] == ["start", "refused"]
    assert not any(r["phase"] in ("execute", "before") for r in lines)
    return str(caught.value)


def test_a_wrong_digest_is_refused(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        message = _refused(fleet, tmp_path, lambda d: None, DigestMismatchError, approve="0" * 64)
        assert "is not this plan's digest" in message


def test_a_changed_plan_json_is_refused_even_with_its_digest(tmp_path: Path) -> None:
    def tamper(directory: Path) -> None:
        path = directory / "plan.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        data["hosts"][0]["actions"][0]["call"]["parameters"][1][1] = ["10.0.0.10", "192.0.2.66"]
        path.write_text(json.dumps(data), encoding="utf-8")

    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        message = _refused(fleet, tmp_path, tamper, DigestMismatchError)
        assert "was changed after it was made" in message


def test_a_changed_script_is_refused(tmp_path: Path) -> None:
    def tamper(directory: Path) -> None:
        script = next(directory.glob("hosts/*/remediate.ps1"))
        script.write_text(
            script.read_text(encoding="utf-8") + "\nRemove-Item C:\\ -Recurse\n", encoding="utf-8"
        )

    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        message = _refused(fleet, tmp_path, tamper, DigestMismatchError)
        assert "remediate.ps1" in message


def test_a_restart_without_allow_restart_is_refused(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        before = full_state(fleet.lab, HOST)
        with pytest.raises(RestartNotAllowedError) as caught:
            fleet.apply(plan_file)
        assert caught.value.exit_code == EXIT_REFUSED
        assert "--allow-restart" in str(caught.value)
        assert full_state(fleet.lab, HOST) == before


def test_a_host_that_drifted_since_the_plan_is_refused_and_untouched(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        # Someone changes the NIC between plan and apply, over the real protocol.
        servers = ("8.8.8.8", "10.0.0.10")
        fleet.set_nic_dns_servers(servers)
        drifted = full_state(fleet.lab, HOST)
        with pytest.raises(StalePlanError) as caught:
            fleet.apply(plan_file, allow_restart=True)
        assert caught.value.exit_code == EXIT_REFUSED
        assert "01-set-nic-dns-servers" in str(caught.value) and HOST in str(caught.value)
        # The refusal names what drifted as fields too (tests/apply/test_stale_fields.py has more).
        assert [(d.host, d.action, d.area, d.key, d.setting, d.planned, d.current)
                for d in caught.value.drift] == [
            (HOST, "01-set-nic-dns-servers", "nic-dns-servers", "4", "ServerAddresses",
             ("10.0.0.10", "8.8.8.8"), servers),
        ]  # fmt: skip
        assert full_state(fleet.lab, HOST) == drifted
        lines = journal_lines(plan_file.default_journal)
        assert [(r["phase"], r["result"]) for r in lines] == [
            ("start", "ok"),
            ("lock", "acquired"),  # the host is held for the whole run, stale check included
            ("stale-check", "drifted"),
            ("refused", "StalePlanError"),
            ("unlock", "released"),
        ]


def test_an_unrelated_change_does_not_make_the_plan_stale(tmp_path: Path) -> None:
    """The fingerprint covers only what the steps depend on: a queue draining is not drift."""
    with lab_fleet("remote-domain-aaaa-broken", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        (target,) = fleet.targets
        with connect(target, fleet.credentials().resolve(target)) as conn:
            conn.run(CmdletCall(Endpoint.EXCHANGE, "Retry-Queue", (("Identity", "EX01\\2"),)))
        report = fleet.apply(plan_file)
        assert report.exit_code == 0


def test_the_cli_refuses_with_exit_4_and_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from agent.cli import main

    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        runner = CliRunner()
        result = runner.invoke(main, ["apply", str(plan_file.path), "--approve", "f" * 64])
        assert result.exit_code == EXIT_REFUSED
        assert result.output.count("\n") == 1 and "refused, nothing changed" in result.output
        result = runner.invoke(main, ["apply", str(plan_file.path), "--approve", plan_file.plan.digest])
        assert result.exit_code == EXIT_REFUSED and "--allow-restart" in result.output


def test_a_plan_host_missing_from_the_inventory_is_refused(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        with pytest.raises(RefusedError) as caught:
            from agent.apply import apply_plan

            apply_plan(plan_file, (), fleet.credentials(), approve=plan_file.plan.digest, allow_restart=True)
        assert "not in the inventory" in str(caught.value)
