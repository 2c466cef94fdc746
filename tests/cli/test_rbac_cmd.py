"""`exfix rbac` as a user runs it: the files, the inventory variable, refusals in one line."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from agent.cli import main
from agent.permissions import build
from agent.permissions.render import Groups, files


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_rbac_writes_the_role_files(tmp_path: Path) -> None:
    out = tmp_path / "roles"
    groups = ("--scan-group", "FAB\\scan", "--remediate-group", "FAB\\fix")
    code, stdout, stderr = _run("rbac", "--out", str(out), *groups)
    assert code == 0, stderr
    assert "inventory: ansible_psrp_configuration_name: exfix" in stdout
    expected = files(build(), Groups("FAB\\scan", "FAB\\fix"), "x")
    for relative, text in expected.items():
        data = (out / relative).read_bytes()
        # PowerShell files carry a byte order mark (Windows PowerShell 5.1 reads them as UTF-8).
        assert data.startswith(b"\xef\xbb\xbf") != relative.endswith(".yml")
        body = data.decode("utf-8-sig")
        # Only the version in the header line differs.
        assert body.split("\n", 1)[1] == text.split("\n", 1)[1]
        assert f"wrote {out}/{relative}" in stdout


def test_rbac_refuses_to_replace_files_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "roles"
    assert _run("rbac", "--out", str(out))[0] == 0
    code, _, stderr = _run("rbac", "--out", str(out))
    assert code == 1
    assert stderr.strip().count("\n") == 0 and "exists: give --overwrite" in stderr
    assert _run("rbac", "--out", str(out), "--overwrite")[0] == 0


def test_rbac_never_writes_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "roles"
    out.mkdir()
    os.symlink(outside, out / "jea")
    code, _, stderr = _run("rbac", "--out", str(out))
    assert code == 1 and "link" in stderr.lower()
    assert list(outside.iterdir()) == []


def test_rbac_refuses_a_group_name_with_control_characters(tmp_path: Path) -> None:
    code, _, stderr = _run("rbac", "--out", str(tmp_path / "r"), "--scan-group", "A\\b\nc")
    assert code == 1 and "--scan-group must be a group name" in stderr
