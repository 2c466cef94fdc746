"""Every write of exfix stays inside the directory it owns: a symbolic link planted in a plan
directory, the apply journal's place or a playbook run's directory is refused (exit 1), and
nothing outside is written through it (agent/review/files.py)."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.apply.journal import Journal, JournalEntry
from agent.cli import main
from agent.errors import EXIT_ERROR, UnsafePathError
from agent.evaluate import evaluate
from agent.model.plan import HostVars, Plan
from agent.planning import build_plan
from agent.review import write_plan_dir
from agent.review.files import OwnedDir
from agent.workflow.runner import open_run_dir
from support.facts_builders import broken, host

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="the platform has no symbolic links")

SECRET = b"the operator's own file\n"


def fleet_plan() -> Plan:
    """A plan with two hosts, one with steps (so hosts/<host>/ holds scripts that do something)."""
    fleet = (broken("ex01.contoso.local"), host(name="ex02.contoso.local"))
    return build_plan(fleet, {f.host: evaluate(f) for f in fleet}, {"ex01.contoso.local": HostVars()})


def _outside(tmp_path: Path) -> tuple[Path, Path]:
    """A file and a directory outside the plan directory, which no write may reach."""
    outside = tmp_path / "outside"
    outside.mkdir()
    file = outside / "bashrc"
    file.write_bytes(SECRET)
    return file, outside


def _untouched(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    assert sorted(p.name for p in outside.iterdir()) == ["bashrc"]
    assert (outside / "bashrc").read_bytes() == SECRET


def _plant_tmp(out: Path, file: Path, _outside: Path) -> Path:
    (out / "plan.json.tmp").symlink_to(file)
    return out / "plan.json.tmp"


def _plant_hosts(out: Path, _file: Path, outside: Path) -> Path:
    (out / "hosts").rename(out / "hosts.old")
    (out / "hosts").symlink_to(outside, target_is_directory=True)
    return out / "hosts"


def _plant_host_dir(out: Path, _file: Path, outside: Path) -> Path:
    host = next((out / "hosts").iterdir())
    for child in host.iterdir():
        child.unlink()
    host.rmdir()
    host.symlink_to(outside, target_is_directory=True)
    return host


def _plant_script(out: Path, file: Path, _outside: Path) -> Path:
    script = next((out / "hosts").iterdir()) / "remediate.ps1"
    script.unlink()
    script.symlink_to(file)
    return script


def _plant_plan_json(out: Path, file: Path, _outside: Path) -> Path:
    (out / "plan.json").unlink()
    (out / "plan.json").symlink_to(file)
    return out / "plan.json"


def _plant_page(out: Path, file: Path, _outside: Path) -> Path:
    (out / "REVIEW.md").unlink()
    (out / "REVIEW.md").symlink_to(file)
    return out / "REVIEW.md"


PLANTS = {
    "plan.json.tmp": _plant_tmp,
    "hosts": _plant_hosts,
    "hosts/<host>": _plant_host_dir,
    "remediate.ps1": _plant_script,
    "plan.json": _plant_plan_json,
    "REVIEW.md": _plant_page,
}


@pytest.mark.parametrize("where", sorted(PLANTS))
def test_overwrite_refuses_a_link_anywhere_in_the_plan_directory(tmp_path: Path, where: str) -> None:
    file, outside = _outside(tmp_path)
    out = tmp_path / "plan"
    write_plan_dir(fleet_plan(), out)
    link = PLANTS[where](out, file, outside)
    with pytest.raises(UnsafePathError) as caught:
        write_plan_dir(fleet_plan(), out, overwrite=True)
    assert caught.value.exit_code == EXIT_ERROR
    assert str(link) in str(caught.value) and "symbolic link" in str(caught.value)
    _untouched(tmp_path)


def test_the_plan_directory_itself_may_not_be_a_link(tmp_path: Path) -> None:
    _, outside = _outside(tmp_path)
    (tmp_path / "plan").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        write_plan_dir(fleet_plan(), tmp_path / "plan", overwrite=True)
    _untouched(tmp_path)


def test_a_dangling_link_as_the_plan_directory_creates_nothing(tmp_path: Path) -> None:
    _outside(tmp_path)
    (tmp_path / "plan").symlink_to(tmp_path / "outside" / "new-dir", target_is_directory=True)
    with pytest.raises(UnsafePathError):
        write_plan_dir(fleet_plan(), tmp_path / "plan")
    _untouched(tmp_path)


def test_the_cli_refuses_with_exit_1_and_one_line(tmp_path: Path) -> None:
    file, outside = _outside(tmp_path)
    out = tmp_path / "plan"
    write_plan_dir(fleet_plan(), out)
    _plant_hosts(out, file, outside)
    result = CliRunner().invoke(main, ["plan", "--lab", "healthy", "--out", str(out), "--overwrite"])
    assert result.exit_code == EXIT_ERROR, result.output
    assert result.output.count("\n") == 1 and "symbolic link" in result.output
    _untouched(tmp_path)


def test_no_temporary_file_is_left_and_files_are_whole(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_plan_dir(fleet_plan(), out)
    write_plan_dir(fleet_plan(), out, overwrite=True)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


# --- the primitives, one by one: each refuses a link without a check before it ---------------


def test_owned_dir_never_opens_through_a_link(tmp_path: Path) -> None:
    file, outside = _outside(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").symlink_to(file)
    (root / "d").symlink_to(outside, target_is_directory=True)
    with OwnedDir.open(root) as directory:
        for action in (
            lambda: directory.read("f"),
            lambda: directory.write("f", b"x"),
            lambda: directory.open_append("f"),
            lambda: directory.subdir("d"),
            lambda: directory.subdir("d", create=True),
        ):
            with pytest.raises(UnsafePathError, match="symbolic link"):
                action()
        with pytest.raises(FileExistsError):
            directory.create("f", b"x")  # O_EXCL: a name taken by a link is taken
        assert sorted(str(p.relative_to(root)) for p in directory.links()) == ["d", "f"]
    _untouched(tmp_path)


# --- the apply journal -----------------------------------------------------------------------


def _entry() -> JournalEntry:
    return JournalEntry(
        "2025-01-15T10:00:00.000000+00:00", "r", "op", None, "d" * 64, None, None, "start", "ok"
    )


def test_the_journal_is_never_opened_through_a_link(tmp_path: Path) -> None:
    file, _ = _outside(tmp_path)
    journal = tmp_path / "journal.jsonl"
    journal.symlink_to(file)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        Journal(journal)
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "outside" / "created-through-link")
    with pytest.raises(UnsafePathError):
        Journal(dangling)
    _untouched(tmp_path)
    with Journal(tmp_path / "real.jsonl") as real:
        real.write(_entry())
    assert (tmp_path / "real.jsonl").stat().st_mode & 0o777 == 0o600


# --- a playbook run's directory (exfix-runs/<ticket>) -----------------------------------------


@pytest.mark.parametrize("linked", ["exfix-runs", "exfix-runs/INC1"])
def test_the_default_run_directory_is_walked_without_following_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linked: str
) -> None:
    _, outside = _outside(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    if linked == "exfix-runs/INC1":
        (work / "exfix-runs").mkdir()
    (work / linked).symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        open_run_dir(Path("exfix-runs") / "INC1")
    _untouched(tmp_path)


def _playbook(tmp_path: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["playbook", "run", "dns-451-diagnose", "--lab", "healthy", "--out", str(out), *extra]
    )
    return result.exit_code, result.output


def test_a_run_file_name_taken_by_a_link_is_skipped_not_written_through(tmp_path: Path) -> None:
    file, _ = _outside(tmp_path)
    out = tmp_path / "runs"
    out.mkdir()
    # Every name the run file could take in the next minutes, planted as links: to the outside
    # file, and (dangling) to a file that writing through them would create outside.
    now = datetime.datetime.now(datetime.timezone.utc)
    for seconds in range(0, 120):
        stamp = (now + datetime.timedelta(seconds=seconds)).strftime("%Y%m%dT%H%M%SZ")
        (out / f"run-{stamp}-1.json").symlink_to(file.parent / f"created-{seconds}")
    code, output = _playbook(tmp_path, out)
    assert code == 0, output
    written = [p for p in out.iterdir() if not p.is_symlink() and p.name.startswith("run-")]
    assert len(written) == 1 and written[0].name.endswith("-2.json")
    _untouched(tmp_path)


def test_a_run_directory_that_is_a_link_is_refused(tmp_path: Path) -> None:
    _, outside = _outside(tmp_path)
    out = tmp_path / "runs"
    out.symlink_to(outside, target_is_directory=True)
    code, output = _playbook(tmp_path, out)
    # The playbook's progress line, then the one-line error.
    assert code == EXIT_ERROR and output.splitlines()[-1].startswith("exfix: error: ")
    assert "symbolic link" in output.splitlines()[-1]
    _untouched(tmp_path)
