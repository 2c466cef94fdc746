"""A playbook that applies holds its hosts from before its "before" scan to the end of its apply
(agent/apply/hold.py): apply's stale check takes that scan's facts instead of collecting the
planned hosts again, a host another run holds is refused as before, and a run that stops at
pending-approval holds nothing. Over the lab's real sockets."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.apply.lock import MARKER_NAME, Holder
from workflow._playbook_support import count_collections, refuse_connections, run_cli

pytestmark = pytest.mark.lab

INSTALL = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"




def _inventory(running: Any, tmp_path: Path) -> Path:
    inventory = running.inventory()
    inventory["all"]["vars"]["exfix_external_dns_servers"] = ["8.8.8.8"]
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return path


def _journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _markers(running: Any) -> dict[str, list[str]]:
    return {h.name: [t for p, t in h.state.files.items() if p.endswith(MARKER_NAME.lower())]
            for h in running.fleet.hosts}  # fmt: skip


def test_an_approved_playbook_applies_on_the_facts_of_its_own_scan(
    tmp_path: Path, lab: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    running = lab("mixed-fleet")
    inventory = _inventory(running, tmp_path)
    base = ("--inventory", str(inventory), "--out", str(tmp_path / "runs"), "--format", "json")
    code, first = run_cli("playbook", "run", "dns-451-remediate", *base)
    assert code == 2 and first["outcome"] == "pending-approval"
    assert not (tmp_path / "runs" / "journal.jsonl").exists()  # no --approve: nothing held

    collected = count_collections(monkeypatch)
    code, second = run_cli("playbook", "run", "dns-451-remediate", *base, "--approve", first["digest"])
    assert code == 0, second
    remediated = sorted(h["host"] for h in second["hosts"] if h["outcome"] == "remediated")
    assert len(remediated) == 4
    # apply collected each host with steps of its own once, to verify it; none for its stale
    # check (a server changed only through the organisation's unit is verified by its queues).
    [applied] = [p for p in second["artifacts"]["plans"] if p["role"] == "applied"]
    plan = json.loads(Path(applied["plan_json"]).read_text(encoding="utf-8"))
    own = sorted(h["host"] for h in plan["hosts"] if any(not a["manual"] for a in h["actions"]))
    assert own and sorted(collected) == own
    lines = _journal(Path(second["artifacts"]["journal"]))
    checks = [r for r in lines if r["phase"] == "stale-check"]
    assert checks and all(r["result"] == "fresh" and r["detail"]["facts"] == "reused" for r in checks)
    hold = lines[0]
    assert hold["phase"] == "hold" and len(hold["detail"]["hosts"]) == 5
    since = next(r for r in lines if r["phase"] == "start")["detail"]["held_since"]
    assert all(r["detail"]["held_since"] == since for r in checks)
    # The healthy host, held before the scan, is let go of as soon as the plan says so.
    healthy = [r["phase"] for r in lines if r["host"] == "ex01.contoso.local"]
    assert healthy[:2] == ["lock", "unlock"]
    assert all(m == [] for m in _markers(running).values())


def test_a_host_held_by_another_run_refuses_the_apply_as_before(
    tmp_path: Path, lab: Callable[..., Any]
) -> None:
    running = lab("mixed-fleet")
    inventory = _inventory(running, tmp_path)
    base = ("--inventory", str(inventory), "--out", str(tmp_path / "runs"), "--format", "json")
    code, first = run_cli("playbook", "run", "dns-451-remediate", *base)
    assert code == 2
    other = Holder("ab" * 16, "CONTOSO\\bob", "ws17.contoso.local", 4242, "0" * 64,
                   "2025-01-15T10:00:00.000000+00:00")  # fmt: skip
    running.fleet.host("ex02.contoso.local").state.files[f"{INSTALL}Logging\\{MARKER_NAME}".lower()] = (
        other.to_json()
    )
    before = {h.name: copy.deepcopy((h.state.nics, h.state.transport)) for h in running.fleet.hosts}

    code, second = run_cli("playbook", "run", "dns-451-remediate", *base, "--approve", first["digest"])
    assert code == 4, second
    refused = second["approval"]["refused"]
    assert "ex02.contoso.local is being changed by another exfix run" in refused and "CONTOSO\\bob" in refused
    assert second["outcome"] == "pending-approval"
    outcomes = {h["host"]: h["outcome"] for h in second["hosts"]}
    assert outcomes.pop("ex01.contoso.local") == "healthy"
    assert set(outcomes.values()) == {"pending-approval"}
    assert {h.name: (h.state.nics, h.state.transport) for h in running.fleet.hosts} == before  # unchanged
    markers = _markers(running)
    assert markers.pop("ex02.contoso.local") == [other.to_json()]  # bob's, untouched
    assert all(m == [] for m in markers.values())
    lines = _journal(tmp_path / "runs" / "journal.jsonl")
    assert [(r["phase"], r["result"]) for r in lines if r["host"] == "ex02.contoso.local"] == [
        ("lock", "refused"),  # the hold leaves it out
        ("lock", "refused"),  # apply, which changes it, is refused
        ("refused", "HostLockedError"),
    ]
    assert lines[-1]["phase"] == "unlock" and not any(r["phase"] == "stale-check" for r in lines)


def test_a_host_the_hold_cannot_reach_is_left_out_and_the_run_goes_on(
    tmp_path: Path, lab: Callable[..., Any]
) -> None:
    running = lab("mixed-fleet")
    inventory = _inventory(running, tmp_path)
    refuse_connections(inventory, "ex03.contoso.local")
    code, doc = run_cli("playbook", "run", "dns-451-auto-safe", "--inventory", str(inventory), "--out",
                     str(tmp_path / "runs"), "--format", "json")  # fmt: skip
    assert code == 3, doc
    outcomes = {h["host"]: h["outcome"] for h in doc["hosts"]}
    assert outcomes["ex03.contoso.local"] == "unreachable" and outcomes["ex05.contoso.local"] == "remediated"
    lines = _journal(Path(doc["artifacts"]["journal"]))
    [failed] = [r for r in lines if r["host"] == "ex03.contoso.local"]
    assert (failed["phase"], failed["result"]) == ("lock", "failed") and "refused" in failed["error"]
    assert all(m == [] for m in _markers(running).values())
