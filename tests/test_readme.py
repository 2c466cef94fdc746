"""The README's two set-up commands are the contract with a new user; CI must run the same."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _sh_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_readme_has_exactly_the_two_setup_commands() -> None:
    setup = (REPO / "README.md").read_text(encoding="utf-8").split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = _sh_blocks(setup)
    assert len(blocks) == 2, blocks
    main_job, tests = blocks
    assert main_job.startswith("pip install . && exfix ")
    assert tests == "pip install '.[test]' && pytest"


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    setup = (REPO / "README.md").read_text(encoding="utf-8").split("## Set-up", 1)[1]
    test_command = _sh_blocks(setup)[1]
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert test_command in ci_lines


def test_readme_permissions_are_the_generated_roles() -> None:
    from agent.permissions import build
    from agent.permissions.render import markdown

    text = (REPO / "README.md").read_text(encoding="utf-8")
    shown = text.split("<!-- permissions:begin -->\n", 1)[1].split("<!-- permissions:end -->", 1)[0]
    assert shown == markdown(build())
