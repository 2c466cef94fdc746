"""-h is --help on every command; --no-color turns colours off as NO_COLOR does (bold and
dim stay: https://no-color.org is about colour); click's shell completion answers."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from agent.cli import main

_COLOUR = re.compile(r"\x1b\[(?:\d+;)*(?:3[0-7]|9[0-7]|38;[25];[\d;]+)m")


@pytest.mark.parametrize("args", [[], ["scan"], ["plan"], ["apply"], ["lab", "serve"], ["rbac"]])
def test_dash_h_is_help(args: list[str]) -> None:
    short = CliRunner().invoke(main, [*args, "-h"], prog_name="exfix")
    long = CliRunner().invoke(main, [*args, "--help"], prog_name="exfix")
    assert short.exit_code == long.exit_code == 0
    assert short.output == long.output and short.output.startswith("Usage: exfix")


@pytest.mark.lab
def test_no_color_drops_the_colours_a_forced_terminal_would_get() -> None:
    env = {"FORCE_COLOR": "1", "NO_COLOR": ""}
    coloured = CliRunner().invoke(main, ["scan", "--lab", "nic-external-dns"], env=env)
    plain = CliRunner().invoke(main, ["--no-color", "scan", "--lab", "nic-external-dns"], env=env)
    assert coloured.exit_code == plain.exit_code == 2
    assert _COLOUR.search(coloured.stdout) and not _COLOUR.search(plain.stdout)
    assert "\x1b[1m" in plain.stdout  # bold stays: NO_COLOR is about colour


def test_shell_completion_lists_the_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from agent.cli import main; main(prog_name='exfix')"],
        env={"_EXFIX_COMPLETE": "bash_complete", "COMP_WORDS": "exfix sc", "COMP_CWORD": "1", "PATH": ""},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "plain,scan" in out.stdout.splitlines(), out.stdout
