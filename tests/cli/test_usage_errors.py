"""Every usage error is exit 1 with one line on stderr, never click's exit 2 (which is exfix's
"findings / waiting for approval": a ticket system would take a typo for a pending change)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from agent.cli import main


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "--bogus"],
        ["nosuch"],
        ["lab", "serve"],  # a missing required option
        ["scan", "--lab", "--forks", "0"],  # a value out of range
        ["scan", "--format", "yaml\x1b[2J", "--lab"],  # a bad choice, with an escape in it
        ["apply"],  # a missing argument
        ["plan", "--lab", "--probe-repeat", "many"],
        ["--no-color", "--nope"],
    ],
)
def test_a_usage_error_is_exit_1_with_one_line(args: list[str]) -> None:
    run = CliRunner().invoke(main, args, prog_name="exfix")
    assert run.exit_code == 1, (run.exit_code, run.output)
    assert run.stdout == ""
    (line,) = run.stderr.splitlines()
    assert line.startswith("exfix: error: ")
    assert "\x1b" not in line and "Traceback" not in line


def test_help_and_version_still_exit_0() -> None:
    for args in (["-h"], ["--version"], ["scan", "--help"]):
        assert CliRunner().invoke(main, args, prog_name="exfix").exit_code == 0


def test_a_reader_that_goes_away_ends_the_output_quietly() -> None:
    """`exfix rules | head -1`: once the pipe's reader has closed it, exfix stops with 141
    (128 + SIGPIPE, as a shell reports it), not with an internal error on stderr."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from agent.cli import main; main()", "rules"],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""
