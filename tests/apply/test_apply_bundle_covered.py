"""The digest covers the whole plan bundle: apply renders every file again from plan.json's
approved content and refuses (exit 4, nothing changed) when one byte differs.

Each file of the bundle is edited as an attacker with write access to the plan directory
would: a script's line swapped for ``Remove-Item C:\\ -Recurse -Force`` with and without its
hash updated in plan.json, a page's text changed, plan.json's content changed with its digest
updated and approved, plan.json re-encoded with the same content. Every one is refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.apply import read_plan_file
from agent.cli import main
from agent.errors import EXIT_REFUSED, DigestMismatchError
from agent.model.plan import canonical_json, sha256_hex
from apply._apply_support import LabFleet, full_state, journal_lines, lab_fleet

pytestmark = pytest.mark.lab

HOST = "ex01.contoso.local"
EVIL = "Remove-Item C:\\ -Recurse -Force"


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabFleet, Path]]:
    """One lab and one pristine plan of it (nic-external-dns: a NIC change and a restart);
    each test edits its own copy."""
    tmp = tmp_path_factory.mktemp("bundle")
    with lab_fleet("nic-external-dns", tmp) as fleet:
        fleet.plan(tmp / "pristine")
        yield fleet, tmp / "pristine"


def _copy(planned: tuple[LabFleet, Path], tmp_path: Path) -> tuple[LabFleet, Path]:
    fleet, pristine = planned
    out = tmp_path / "plan"
    shutil.copytree(pristine, out)
    return fleet, out


def _plan_json(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "plan.json").read_text(encoding="utf-8"))
    return data


def _save(directory: Path, data: dict[str, Any]) -> None:
    # As exfix writes it (indent 2, ASCII), so only the edit itself differs.
    (directory / "plan.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=True) + "\n", encoding="utf-8"
    )


def _digest_of(data: dict[str, Any]) -> str:
    """The digest of plan.json's content, computed as agent/model/plan.py documents it (the
    document without ``digest`` and without each unit's ``scripts``): what a forger can do."""
    content = {k: v for k, v in data.items() if k != "digest"}
    for group in ("hosts", "organizations"):
        content[group] = [{k: v for k, v in u.items() if k != "scripts"} for u in data[group]]
    return sha256_hex(canonical_json(content))


def _unit(data: dict[str, Any], script: Path) -> dict[str, Any]:
    directory = script.parent.name
    unit: dict[str, Any] = next(
        u for u in data["hosts"] + data["organizations"] if u["directory"] == directory
    )
    return unit


def _swap_restart(script: Path) -> None:
    data = script.read_bytes()
    assert b"Restart-Service -Name 'MSExchangeTransport'" in data
    script.write_bytes(data.replace(b"Restart-Service -Name 'MSExchangeTransport'", EVIL.encode("ascii")))


def _refused(fleet: LabFleet, directory: Path, approve: str | None = None) -> str:
    before = full_state(fleet.lab, HOST)
    plan_file = read_plan_file(directory / "plan.json")
    with pytest.raises(DigestMismatchError) as caught:
        fleet.apply(plan_file, allow_restart=True, approve=approve or plan_file.plan.digest)
    assert caught.value.exit_code == EXIT_REFUSED
    assert full_state(fleet.lab, HOST) == before
    lines = journal_lines(directory / "journal.jsonl")
    assert [r["phase"] for r in lines] == ["start", "refused"]
    return str(caught.value)


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "journal.jsonl")


def test_the_untouched_bundle_is_approved(planned: tuple[LabFleet, Path], tmp_path: Path) -> None:
    _, directory = _copy(planned, tmp_path)
    plan_file = read_plan_file(directory / "plan.json")
    assert plan_file.approval_problem(plan_file.plan.digest) is None
    names = [p.relative_to(directory).as_posix() for p in _files(directory)]
    assert names == [
        "REVIEW.md",
        f"hosts/{HOST}/remediate.ps1",
        f"hosts/{HOST}/rollback.ps1",
        "plan.json",
        "review.html",
    ]


@pytest.mark.parametrize("name", ["remediate.ps1", "rollback.ps1"])
def test_a_script_edited_with_its_hash_updated_in_plan_json_is_refused(
    planned: tuple[LabFleet, Path], tmp_path: Path, name: str
) -> None:
    fleet, directory = _copy(planned, tmp_path)
    script = directory / "hosts" / HOST / name
    if name == "remediate.ps1":
        _swap_restart(script)
    else:
        script.write_bytes(script.read_bytes() + f"\n{EVIL}\n".encode("ascii"))
    data = _plan_json(directory)
    _unit(data, script)["scripts"][name] = hashlib.sha256(script.read_bytes()).hexdigest()
    _save(directory, data)  # the scripts' hashes are outside the digest: it still matches
    message = _refused(fleet, directory)
    assert f"{name} is not what" in message and "line" in message


@pytest.mark.parametrize("name", ["remediate.ps1", "rollback.ps1"])
def test_a_script_edited_without_its_hash_is_refused(
    planned: tuple[LabFleet, Path], tmp_path: Path, name: str
) -> None:
    fleet, directory = _copy(planned, tmp_path)
    script = directory / "hosts" / HOST / name
    script.write_bytes(script.read_bytes().replace(b"MSExchangeTransport", b"MSExchangeTransporT", 1))
    assert name in _refused(fleet, directory)


@pytest.mark.parametrize("page", ["REVIEW.md", "review.html"])
def test_a_page_the_board_read_edited_is_refused(
    planned: tuple[LabFleet, Path], tmp_path: Path, page: str
) -> None:
    fleet, directory = _copy(planned, tmp_path)
    path = directory / page
    text = path.read_text(encoding="utf-8")
    # The page hides the restart: the board approves a plan it believes does not stop mail.
    assert "MSExchangeTransport" in text
    path.write_text(text.replace("MSExchangeTransport", "the DNS client cache"), encoding="utf-8")
    assert f"{page} is not what" in _refused(fleet, directory)


@pytest.mark.parametrize("page", ["REVIEW.md", "review.html"])
def test_a_page_with_one_byte_added_is_refused(
    planned: tuple[LabFleet, Path], tmp_path: Path, page: str
) -> None:
    fleet, directory = _copy(planned, tmp_path)
    with (directory / page).open("ab") as file:
        file.write(b"\n")
    assert page in _refused(fleet, directory)


def test_plan_json_changed_and_its_digest_updated_is_refused_for_that_digest(
    planned: tuple[LabFleet, Path], tmp_path: Path
) -> None:
    fleet, directory = _copy(planned, tmp_path)
    data = _plan_json(directory)
    action = data["hosts"][0]["actions"][0]
    assert action["call"]["cmdlet"] == "Set-DnsClientServerAddress"
    action["call"]["parameters"][1][1] = ["192.0.2.66"]
    data["digest"] = _digest_of(data)
    _save(directory, data)
    plan_file = read_plan_file(directory / "plan.json")
    assert plan_file.plan.digest == data["digest"] and plan_file.content_digest == data["digest"]
    # The original digest no longer matches; the forged one approves a plan whose scripts and
    # pages (which show the original digest and servers) the board never saw.
    assert "is not this plan's digest" in _refused(fleet, directory, approve=_plan_json(planned[1])["digest"])
    (directory / "journal.jsonl").unlink()
    message = _refused(fleet, directory, approve=data["digest"])
    assert "is not what" in message


def test_plan_json_changed_without_its_digest_is_refused(
    planned: tuple[LabFleet, Path], tmp_path: Path
) -> None:
    fleet, directory = _copy(planned, tmp_path)
    data = _plan_json(directory)
    data["hosts"][0]["actions"][0]["description"] = "Harmless"
    _save(directory, data)
    assert "was changed after it was made" in _refused(fleet, directory)


@pytest.mark.parametrize(
    "rewrite",
    [
        pytest.param(lambda text: json.dumps(json.loads(text)), id="re-encoded"),
        # JSON readers disagree on a duplicate key (most keep the last, a person reads the first).
        pytest.param(
            lambda text: text.replace('{\n  "schema"', '{\n  "hosts": [],\n  "schema"', 1), id="duplicate-key"
        ),
    ],
)
def test_plan_json_with_the_same_content_written_otherwise_is_refused(
    planned: tuple[LabFleet, Path], tmp_path: Path, rewrite: Callable[[str], str]
) -> None:
    fleet, directory = _copy(planned, tmp_path)
    path = directory / "plan.json"
    path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    assert "plan.json is not what" in _refused(fleet, directory)


def test_a_missing_file_is_refused(planned: tuple[LabFleet, Path], tmp_path: Path) -> None:
    fleet, directory = _copy(planned, tmp_path)
    (directory / "review.html").unlink()
    assert "review.html is missing" in _refused(fleet, directory)


def test_the_cli_refuses_an_edited_script_with_exit_4(planned: tuple[LabFleet, Path], tmp_path: Path) -> None:
    fleet, directory = _copy(planned, tmp_path)
    script = directory / "hosts" / HOST / "remediate.ps1"
    _swap_restart(script)
    data = _plan_json(directory)
    _unit(data, script)["scripts"]["remediate.ps1"] = hashlib.sha256(script.read_bytes()).hexdigest()
    _save(directory, data)
    before = full_state(fleet.lab, HOST)
    args = ["apply", str(directory / "plan.json"), "--approve", data["digest"], "--allow-restart"]
    result = CliRunner().invoke(main, [*args, "--inventory", str(fleet.inventory_path)])
    assert result.exit_code == EXIT_REFUSED, result.output
    assert "remediate.ps1 is not what" in result.output and result.output.count("\n") == 1
    assert full_state(fleet.lab, HOST) == before


def test_a_plan_written_before_the_bundle_was_covered_is_read_but_not_applied(
    planned: tuple[LabFleet, Path], tmp_path: Path
) -> None:
    # exfix.plan/3 is /4 without each host's failed areas and rules not judged and the plan's
    # probe rounds; its pages named
    # plan.json by the path it was written to, so they cannot be rendered again to check them.
    fleet, directory = _copy(planned, tmp_path)
    data = _plan_json(directory)
    data["schema"] = "exfix.plan/3"
    assert data.pop("probe_repeat") == 1
    for unit in data["hosts"]:
        assert unit.pop("failed_areas") == [] and unit.pop("not_judged") == []
    data["digest"] = _digest_of(data)
    _save(directory, data)
    plan_file = read_plan_file(directory)
    assert plan_file.plan.schema == "exfix.plan/3" and plan_file.content_digest == data["digest"]
    message = _refused(fleet, directory)
    assert "exfix.plan/3" in message and "plan again" in message


def test_a_journal_planted_as_a_link_is_refused_and_nothing_is_written_through_it(
    planned: tuple[LabFleet, Path], tmp_path: Path
) -> None:
    fleet, directory = _copy(planned, tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("the operator's own file\n", encoding="utf-8")
    (directory / "journal.jsonl").symlink_to(outside)
    before = full_state(fleet.lab, HOST)
    args = [
        "apply",
        str(directory / "plan.json"),
        "--approve",
        _plan_json(directory)["digest"],
        "--allow-restart",
    ]
    result = CliRunner().invoke(main, [*args, "--inventory", str(fleet.inventory_path)])
    assert result.exit_code == 1 and "symbolic link" in result.output, result.output
    assert outside.read_text(encoding="utf-8") == "the operator's own file\n"
    assert full_state(fleet.lab, HOST) == before
