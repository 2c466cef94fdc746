"""One apply per host at a time (agent/apply/lock.py), against the lab over real sockets.

Two operators on two workstations are two applies with their own plan directories (so their
own journals and local locks): only the marker on the server can exclude them. Two applies
from one plan directory share a journal, and the local lock excludes them first. A marker left
by an apply killed with SIGKILL is named, said to be stale, and removed only with
``--break-lock`` and that run's id.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.apply import JournalEntry, read_plan_file, rollback_journal
from agent.apply.lock import MARKER_NAME, Holder
from agent.cli import main
from agent.errors import EXIT_REFUSED, HostLockedError, StalePlanError, UsageError
from apply._apply_support import (
    LabFleet,
    config_state,
    exfix_command,
    full_state,
    journal_lines,
    lab_fleet,
    phases,
    subprocess_env,
)

pytestmark = pytest.mark.lab

HOST = "ex01.contoso.local"


def _marker(fleet: LabFleet) -> str | None:
    files = fleet.host(HOST).state.files
    hits = [text for path, text in files.items() if path.endswith(MARKER_NAME)]
    return hits[0] if hits else None


def _workstation(fleet: LabFleet, pristine: Path, name: str) -> Path:
    """Another operator's copy of the approved plan directory (its own journal)."""
    out = pristine.parent / name
    shutil.copytree(pristine, out)
    return out


def _when(phase: str, result: str, action: Callable[[], None]) -> Callable[[JournalEntry], None]:
    done: list[bool] = []

    def hook(entry: JournalEntry) -> None:
        if entry.phase == phase and entry.result == result and not done:
            done.append(True)
            action()

    return hook


def test_three_concurrent_applies_from_three_workstations_apply_once(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, first = fleet.plan(tmp_path / "alice")
        others = [_workstation(fleet, tmp_path / "alice", name) for name in ("bob", "carol")]
        before = full_state(fleet.lab, HOST)
        refusals: dict[str, BaseException] = {}

        def other(directory: Path) -> None:
            try:
                fleet.apply(read_plan_file(directory), allow_restart=True, operator=directory.name)
            except BaseException as exc:
                refusals[directory.name] = exc

        def both_others() -> None:
            # While alice holds the host: bob and carol start at once, on their own threads.
            threads = [threading.Thread(target=other, args=(d,)) for d in others]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)

        report = fleet.apply(first, allow_restart=True, operator="alice",
                             on_event=_when("lock", "acquired", both_others))  # fmt: skip
        assert report.exit_code == 0
        assert fleet.host(HOST).state.transport_starts == before["transport_starts"] + 1  # one restart
        assert sorted(refusals) == ["bob", "carol"]
        for name, error in refusals.items():
            assert isinstance(error, HostLockedError), error
            assert error.exit_code == EXIT_REFUSED and error.host == HOST
            assert (
                error.holder_run == report.run
                and "(alice on" in str(error)
                and "refused, nothing changed" in str(error)
            )
            assert not error.stale
            lines = journal_lines(tmp_path / name / "journal.jsonl")
            assert [(r["phase"], r["result"]) for r in lines] == [
                ("start", "ok"),
                ("lock", "refused"),
                ("refused", "HostLockedError"),
            ]
            assert lines[1]["detail"]["holder"]["run"] == report.run
        # Alice's run let go of the host at its end; the marker is gone.
        assert _marker(fleet) is None
        assert ("unlock", None, "released") in phases(journal_lines(first.default_journal), HOST, locks=True)


def test_two_applies_from_one_plan_directory_meet_the_local_lock_first(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        caught: list[BaseException] = []
        counted: dict[str, int] = {}

        def second() -> None:
            counted["before"] = fleet.lab.counters.get(HOST)
            try:
                fleet.apply(read_plan_file(tmp_path / "plan"), allow_restart=True, operator="second")
            except BaseException as exc:
                caught.append(exc)
            counted["after"] = fleet.lab.counters.get(HOST)

        report = fleet.apply(plan_file, allow_restart=True, on_event=_when("lock", "acquired", second))
        assert report.exit_code == 0
        (error,) = caught
        assert isinstance(error, HostLockedError) and "on this machine: wait for it to finish" in str(error)
        assert error.holder_run == report.run
        assert counted["after"] == counted["before"]  # refused before a request reached the host


def _killed_apply(fleet: LabFleet, plan_file: Any, tmp_path: Path) -> str:
    """An ``exfix apply`` subprocess killed with SIGKILL once it holds the host (it hangs in the
    stale check); returns its run id. The host is unchanged, and the marker stays."""
    fleet.lab.inject(HOST, {"fail": {"kind": "hang", "on": "Command", "endpoint": "exchange"}})
    journal = plan_file.default_journal
    process = subprocess.Popen(
        [*exfix_command(), "apply", str(plan_file.path), "--approve", plan_file.plan.digest,
         "--allow-restart", "--operator", "killed"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = journal_lines(journal) if journal.exists() else []
            if any(r["phase"] == "lock" and r["result"] == "acquired" for r in lines):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the apply never took the lock")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    fleet.lab.clear_faults(HOST)
    run: str = next(r["run"] for r in journal_lines(journal) if r["phase"] == "lock")
    return run


def test_a_marker_left_by_a_killed_apply_is_named_stale_and_broken_only_on_request(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        before = config_state(fleet.lab, HOST)
        killed = _killed_apply(fleet, plan_file, tmp_path)
        holder = Holder.from_text(_marker(fleet) or "")
        assert holder is not None and holder.run == killed and holder.operator == "killed"
        assert config_state(fleet.lab, HOST) == before

        # The next apply is refused: who, since when, that its process is gone, and the way out.
        with pytest.raises(HostLockedError) as caught:
            fleet.apply(read_plan_file(tmp_path / "plan"), allow_restart=True)
        message = str(caught.value)
        assert caught.value.stale and caught.value.holder_run == killed
        assert "the marker is stale" in message and f"--break-lock {killed[:12]}" in message
        assert caught.value.where.endswith(f"Logging\\{MARKER_NAME}") and "exfix rollback" in message

        # Breaking another run's lock does not remove this one.
        with pytest.raises(HostLockedError):
            fleet.apply(read_plan_file(tmp_path / "plan"), allow_restart=True, break_lock="0" * 32)
        with pytest.raises(UsageError):
            fleet.apply(read_plan_file(tmp_path / "plan"), allow_restart=True, break_lock="not a run")
        assert _marker(fleet) is not None

        # The id as the refusal shows it (its first 12 characters) is enough.
        report = fleet.apply(read_plan_file(tmp_path / "plan"), allow_restart=True, break_lock=killed[:12])
        assert report.exit_code == 0
        lines = journal_lines(plan_file.default_journal)
        broken = [r for r in lines if r["phase"] == "lock" and r["result"] == "broken"]
        assert len(broken) == 1 and broken[0]["run"] == report.run
        assert broken[0]["detail"]["holder"]["run"] == killed
        assert _marker(fleet) is None


def test_a_marker_from_another_machine_is_not_called_stale_and_the_cli_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        install = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"
        other = Holder("ab" * 16, "CONTOSO\\bob", "ws17.contoso.local", 4242, plan_file.plan.digest,
                       "2025-01-15T10:00:00.000000+00:00")  # fmt: skip
        fleet.host(HOST).state.files[f"{install}Logging\\{MARKER_NAME}".lower()] = other.to_json()
        before = full_state(fleet.lab, HOST)
        args = ["apply", str(plan_file.path), "--approve", plan_file.plan.digest, "--allow-restart"]
        result = CliRunner().invoke(main, [*args, "--inventory", str(fleet.inventory_path)])
        assert result.exit_code == EXIT_REFUSED, result.output
        assert result.output.count("\n") == 1
        line = result.output
        assert "(CONTOSO\\bob on ws17.contoso.local, pid 4242" in line and "since 2025-01-15" in line
        assert "stale" not in line and f"--break-lock {other.run[:12]}" in line
        assert full_state(fleet.lab, HOST) == before


def test_an_unreadable_marker_still_holds_the_host(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        install = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"
        fleet.host(HOST).state.files[f"{install}Logging\\{MARKER_NAME}".lower()] = "\x1b[2J not json"
        with pytest.raises(HostLockedError) as caught:
            fleet.apply(plan_file, allow_restart=True)
        assert "unreadable marker" in str(caught.value) and "\x1b" not in str(caught.value)


def test_rollback_takes_the_lock_too(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        report = fleet.apply(plan_file, allow_restart=True)
        assert report.exit_code == 0
        caught: list[BaseException] = []

        def apply_meanwhile() -> None:
            try:
                fleet.apply(
                    read_plan_file(_workstation(fleet, tmp_path / "plan", "other")), allow_restart=True
                )
            except BaseException as exc:
                caught.append(exc)

        undone = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials(),
                                  allow_restart=True, operator="tester",
                                  on_event=_when("lock", "acquired", apply_meanwhile))  # fmt: skip
        assert undone.exit_code == 0
        (error,) = caught
        # The other apply met the rollback's marker while the rollback ran.
        assert isinstance(error, HostLockedError) and error.holder_run == undone.run
        assert _marker(fleet) is None
        rollback_lines = [r for r in journal_lines(plan_file.default_journal) if r["run"] == undone.run]
        assert [r["phase"] for r in rollback_lines][:2] == ["start", "lock"]
        assert json.dumps(rollback_lines).count('"unlock"') == 1


def test_a_marker_whose_run_ended_is_taken_over_and_journaled(tmp_path: Path) -> None:
    """An apply that ended but could not remove its marker (the host went away at the very end):
    its journal has its end, so the next run from that journal knows the marker is over."""
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        first = fleet.apply(plan_file, allow_restart=True)
        assert first.exit_code == 0 and _marker(fleet) is None
        left = Holder(first.run, "tester", "elsewhere", 1, plan_file.plan.digest, first.started)
        install = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"
        fleet.host(HOST).state.files[f"{install}Logging\\{MARKER_NAME}".lower()] = left.to_json()
        # The host is fixed now, so the second apply of the same plan is refused as stale: but
        # only after it took the lock over, which is what this test is about.
        with pytest.raises(StalePlanError):
            fleet.apply(read_plan_file(tmp_path / "plan"), allow_restart=True)
        lines = journal_lines(plan_file.default_journal)
        (broken,) = [r for r in lines if r["phase"] == "lock" and r["result"] == "broken"]
        assert broken["detail"]["holder"]["run"] == first.run and "ended" in broken["detail"]["reason"]
        assert _marker(fleet) is None
