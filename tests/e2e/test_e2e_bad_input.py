"""Bad input: one clear line on stderr, nothing on stdout, exit 1, never a traceback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.conftest import Run, run_exfix

pytestmark = pytest.mark.lab

UNSET = "EXFIX_E2E_PASSWORD_THAT_IS_NOT_SET"


@pytest.fixture(scope="module")
def lab_inventory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real lab's inventory (the hosts listen, so only the input can be at fault)."""
    from mock_remoting.lab import Lab

    with Lab("healthy") as lab:
        yield lab.inventory()


def _write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _password_env(inventory: dict[str, Any]) -> dict[str, Any]:
    variables = inventory["all"]["vars"]
    del variables["ansible_password"]
    variables["exfix_password_env"] = UNSET
    return inventory


CASES: dict[str, tuple[Callable[[Path, dict[str, Any]], list[str]], str]] = {
    "inventory is not YAML": (
        lambda d, inv: ["scan", "-i", str(_text(d / "inv.yaml", "all: [unclosed\n"))],
        "not valid YAML",
    ),
    "inventory of the wrong type": (
        lambda d, inv: ["scan", "-i", str(_write(d / "inv.yaml", ["a", "list"]))],
        "must be a mapping",
    ),
    "inventory with an unknown exfix_ key": (
        lambda d, inv: ["scan", "-i", str(_write(d / "inv.yaml", _with_var(inv, "exfix_hots_timeout", 3)))],
        "exfix_hots_timeout",
    ),
    "inventory that does not exist": (
        lambda d, inv: ["scan", "-i", str(d / "absent.yaml")],
        "absent.yaml",
    ),
    "--limit matching no host": (
        lambda d, inv: ["scan", "-i", str(_write(d / "inv.yaml", inv)), "--limit", "nomatch"],
        "nomatch",
    ),
    "password variable not set": (
        lambda d, inv: ["scan", "-i", str(_write(d / "inv.yaml", _password_env(inv)))],
        UNSET,
    ),
    "neither --inventory nor --lab": (lambda d, inv: ["scan"], "--inventory"),
    "both --inventory and --lab": (
        lambda d, inv: ["scan", "-i", str(_write(d / "inv.yaml", inv)), "--lab", "healthy"],
        "--inventory",
    ),
    "unknown lab scenario": (lambda d, inv: ["scan", "--lab", "no-such-scenario"], "no-such-scenario"),
    "lab scenario file that is malformed": (
        lambda d, inv: ["scan", "--lab", str(_text(d / "bad.yaml", "description: x\nhosts: 3\n"))],
        "bad.yaml",
    ),
    "facts file missing": (lambda d, inv: ["evaluate", str(d / "absent.json")], "absent.json"),
    "facts file not JSON": (
        lambda d, inv: ["evaluate", str(_text(d / "facts.json", "{not json"))],
        "not valid JSON",
    ),
    "facts file of the wrong shape": (
        lambda d, inv: [
            "evaluate",
            str(_text(d / "facts.json", '{"schema": "exfix.facts/1", "hosts": [{"host": 3}]}')),
        ],
        "facts.json",
    ),
    "facts file that is a list": (
        lambda d, inv: ["evaluate", str(_text(d / "facts.json", "[1, 2]"))],
        "facts.json",
    ),
    "facts file that is not UTF-8": (
        lambda d, inv: ["evaluate", str(_bytes(d / "facts.json", b"\xff\xfe\x00garbage"))],
        "facts.json",
    ),
}


def _text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _with_var(inventory: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    inventory["all"]["vars"][key] = value
    return inventory


def assert_one_line_error(run: Run, mentions: str) -> None:
    assert run.exit_code == 1, run.describe()
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and run.stderr.endswith("\n"), run.describe()
    assert lines[0].startswith("exfix: error: "), run.describe()
    assert "internal error" not in lines[0]
    assert mentions in lines[0], run.describe()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_1(
    case: str, tmp_path: Path, lab_inventory: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    monkeypatch.delenv(UNSET, raising=False)
    make, mentions = CASES[case]
    run = run_exfix(*make(tmp_path, copy.deepcopy(lab_inventory)))
    assert_one_line_error(run, mentions)


def test_a_set_password_variable_is_used(
    tmp_path: Path, lab_inventory: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterpart of the unset variable: set, it is what the scan authenticates with."""
    import copy

    password = lab_inventory["all"]["vars"]["ansible_password"]
    inventory = _write(tmp_path / "inv.yaml", _password_env(copy.deepcopy(lab_inventory)))
    monkeypatch.setenv(UNSET, password)
    run = run_exfix("scan", "-i", str(inventory), "--limit", "ex01*", "--format", "json")
    assert run.exit_code == 0, run.describe()
    assert [h["status"] for h in run.doc["hosts"]] == ["scanned"]
    monkeypatch.setenv(UNSET, "not-the-password")
    run = run_exfix("scan", "-i", str(inventory), "--limit", "ex01*", "--format", "json")
    assert run.exit_code == 3, run.describe()
    assert [h["status"] for h in run.doc["hosts"]] == ["auth-failed"]
