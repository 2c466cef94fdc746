"""A playbook whose approved apply stops at the stale check because a host answers
Get-ExchangeServer with an ErrorRecord: that host's outcome is command-failed (exit 7), the
others still wait for approval, nothing changed; over the lab's real sockets.

The playbook's "before" scan runs while the run holds its hosts, and apply takes the facts of
that scan for every host it reached (agent/apply/hold.py). A host the scan could not read has
no such facts: when the plan approved (the one the review saw, stored in the run directory)
changes it, the stale check collects it again, and meets the same error."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from workflow._playbook_support import count_collections, run_cli

pytestmark = pytest.mark.lab

HOST = "ex02.contoso.local"




def test_a_command_failure_at_apply_is_the_hosts_outcome_and_exit_7(
    tmp_path: Path, lab: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    running = lab("mixed-fleet")
    inventory = running.inventory()
    inventory["all"]["vars"]["exfix_external_dns_servers"] = ["8.8.8.8"]
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    base = ("--inventory", str(path), "--out", str(tmp_path / "runs"), "--format", "json")

    code, first = run_cli("playbook", "run", "dns-451-remediate", *base)
    assert code == 2 and first["outcome"] == "pending-approval"
    before = {h.name: copy.deepcopy((h.state.nics, h.state.transport)) for h in running.fleet.hosts}

    # From now on EX02's Get-ExchangeServer fails (the lab replays it from an unreadable
    # capture: a terminating ErrorRecord over the wire): the approved run's scan cannot read it,
    # so the plan made now leaves it out and is not the approved one; the reviewed plan in the
    # run directory is, and its stale check collects EX02 again (no facts of it to take).
    broken = tmp_path / "not-clixml.xml"
    broken.write_text("not CLIXML\n", encoding="utf-8")
    replay = cast(dict[str, Path], running.fleet.host(HOST).state.spec.replay)
    replay["get-exchangeserver"] = broken
    collected = count_collections(monkeypatch)
    code, second = run_cli("playbook", "run", "dns-451-remediate", *base, "--approve", first["digest"])
    assert code == 7, second
    assert second["outcome"] == "command-failed" and second["exit_code"] == 7
    by_host = {h["host"]: h for h in second["hosts"]}
    assert by_host[HOST]["outcome"] == "command-failed"
    assert "Get-ExchangeServer" in by_host[HOST]["error"] and "nothing was changed" in by_host[HOST]["reason"]
    assert by_host["ex03.contoso.local"]["outcome"] == "pending-approval"  # the others still wait
    assert second["approval"]["refused"] is None
    assert {h.name: (h.state.nics, h.state.transport) for h in running.fleet.hosts} == before  # unchanged
    # Only EX02 was collected again: the other planned hosts' facts were the scan's, under the hold.
    assert collected == [HOST]
