"""The playbook run's ``partial`` outcome (exfix.playbook-run/4): exit 8, ranked as
agent.errors.EXIT_PRECEDENCE ranks 8 (below findings, above healthy), and the schema's view of
it in /4 and in the older documents it still accepts. Plain data."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from agent.errors import EXIT_PARTIAL, EXIT_PRECEDENCE
from agent.model.playbook_run import Outcome

_PATH = Path(__file__).resolve().parents[2] / "agent" / "schemas" / "playbook-run.schema.json"
SCHEMA = json.loads(_PATH.read_text("utf-8"))


def test_partial_exits_8_and_ranks_as_the_precedence_does() -> None:
    assert Outcome.PARTIAL.exit_code == EXIT_PARTIAL == 8
    # The rank order of outcomes that are not apply's agrees with EXIT_PRECEDENCE.
    pairs = (
        (Outcome.FINDINGS, Outcome.PARTIAL), (Outcome.PARTIAL, Outcome.HEALTHY),
        (Outcome.PARTIAL, Outcome.REMEDIATED), (Outcome.COMMAND_FAILED, Outcome.PARTIAL),
    )  # fmt: skip
    for worse, better in pairs:
        assert worse.rank > better.rank
        assert EXIT_PRECEDENCE.index(worse.exit_code) <= EXIT_PRECEDENCE.index(better.exit_code)


def _doc(schema: str, outcome: str, exit_code: int) -> dict[str, Any]:
    host = {
        "host": "ex01.contoso.local", "outcome": outcome, "reason": "r", "error": None,
        "exchange_version": "15.2.1118.7", "findings": [], "remaining_findings": None, "actions": [],
        "queues": {"before": [], "after": None}, "outstanding": [], "new_findings": [],
    }  # fmt: skip
    if schema == "exfix.playbook-run/4":
        host["verification"] = None  # /4: each host says how a change was verified (null: none)
    counts = {o.value: 0 for o in Outcome}
    counts[outcome] = 1
    return {
        "schema": schema, "ticket": None,
        "playbook": {"name": "dns-451-diagnose", "file": "p.yaml", "sha256": "0" * 64, "mode": "diagnose",
                     "approval": "required", "rules": [], "fixes": {"plan": [], "apply": []},
                     "allow_restart": False, "serial": 1, "max_fail": 0,
                     "verify": {"retry_queues": True, "timeout": 120}},
        "variables": {}, "source": "inventory.yaml", "operator": "op",
        "started": "2026-12-01T10:00:00+00:00", "finished": "2026-12-01T10:00:01+00:00",
        "outcome": outcome, "exit_code": exit_code, "message": "m", "digest": None,
        "approval": {"approved": None, "refused": None, "stale": [], "apply_command": None,
                     "approve_command": None},
        "artifacts": {"directory": "d", "run": "d/run.json", "journal": None, "plans": []},
        "summary": {"hosts": 1, **counts}, "hosts": [host],
    }  # fmt: skip


def _errors(doc: dict[str, Any]) -> list[str]:
    return [e.message for e in Draft202012Validator(SCHEMA).iter_errors(doc)]


def test_v4_accepts_partial_and_requires_its_count() -> None:
    doc = _doc("exfix.playbook-run/4", "partial", 8)
    assert _errors(doc) == []
    missing = copy.deepcopy(doc)
    del missing["summary"]["partial"]
    assert _errors(missing)


def test_older_documents_still_validate_and_never_say_partial() -> None:
    healthy = _doc("exfix.playbook-run/3", "healthy", 0)
    del healthy["summary"]["partial"]
    assert _errors(healthy) == []
    with_count = _doc("exfix.playbook-run/3", "healthy", 0)  # /3 has no partial count
    assert _errors(with_count)
    verification = _doc("exfix.playbook-run/3", "healthy", 0)
    del verification["summary"]["partial"]
    verification["hosts"][0]["verification"] = None  # nor a verification
    assert _errors(verification)
    for bad in (_doc("exfix.playbook-run/3", "partial", 8), _doc("exfix.playbook-run/2", "partial", 8)):
        assert _errors(bad)
