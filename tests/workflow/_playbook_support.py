"""What the playbook tests share: `exfix playbook run` in-process with its JSON held to the
published schema, counting what apply collects, and an inventory host nothing answers for."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

import agent.apply.run as apply_run
from agent.cli import main
from agent.collect.org import OrgFactsCache
from agent.model.credential import Credential
from agent.model.facts import HostFacts
from agent.model.target import HostTarget

REPO = Path(__file__).resolve().parents[2]
_SCHEMA = REPO / "agent" / "schemas" / "playbook-run.schema.json"


def run_cli(*args: str) -> tuple[int, dict[str, Any]]:
    """The exit code and the run's JSON document (``--format json`` among ``args``)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    data = json.loads(result.stdout)
    Draft202012Validator(json.loads(_SCHEMA.read_text(encoding="utf-8"))).validate(data)
    assert isinstance(data, dict)
    return result.exit_code, data


def count_collections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hosts apply collects from now on (its stale check and its verification both collect
    through agent.apply.run.collect), in order; each call still collects over the lab."""
    seen: list[str] = []
    real = apply_run.collect

    def collect(target: HostTarget, credential: Credential, orgs: OrgFactsCache | None = None,
                *, probe_repeat: int = 1) -> HostFacts:  # fmt: skip
        seen.append(target.name)
        return real(target, credential, orgs, probe_repeat=probe_repeat)

    monkeypatch.setattr(apply_run, "collect", collect)
    return seen


def refuse_connections(inventory: Path, host: str) -> None:
    """Point ``host`` of a lab inventory at a loopback port nothing listens on: every
    connection to it is refused at once."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    data = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    entry = data["all"]["children"]["exchange"]["hosts"][host]
    entry["ansible_port"] = entry["exfix_exchange_port"] = port
    inventory.write_text(yaml.safe_dump(data), encoding="utf-8")
