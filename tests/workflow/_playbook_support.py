"""`exfix playbook run` in-process, its JSON read and held to the published schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from jsonschema import Draft202012Validator

from agent.cli import main

REPO = Path(__file__).resolve().parents[2]
_SCHEMA = REPO / "agent" / "schemas" / "playbook-run.schema.json"


def run_cli(*args: str) -> tuple[int, dict[str, Any]]:
    """The exit code and the run's JSON document (``--format json`` among ``args``)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    data = json.loads(result.stdout)
    Draft202012Validator(json.loads(_SCHEMA.read_text(encoding="utf-8"))).validate(data)
    assert isinstance(data, dict)
    return result.exit_code, data
