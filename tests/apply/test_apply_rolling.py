"""apply over the lab with restarts that roll: hosts in parallel, never two members of one DAG
and never more than --serial restarts at once, read from the journal's order (no timing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apply._apply_support import journal_lines, lab_fleet
from e2e.conftest import base_scenario, host_spec, write_scenario

pytestmark = pytest.mark.lab

# EX01/EX02 in DAG1, EX03/EX04 in DAG2 (all in the organisation's site), EX05 alone in its own
# site; on every one the MAPI NIC does not register in DNS, and that fix restarts
# MSExchangeTransport (transport reads its addresses at start).
DAGS = {"EX01": "DAG1", "EX02": "DAG1", "EX03": "DAG2", "EX04": "DAG2", "EX05": None}


def _scenario(tmp_path: Path) -> Path:
    data = base_scenario()
    hosts = []
    for i, (name, dag) in enumerate(DAGS.items()):
        spec = host_spec(name, 21 + i)
        spec["nics"][0]["register"] = False
        if dag is not None:
            spec["dag"] = dag
        else:
            spec["site"] = "Branch-Site"
        hosts.append(spec)
    data["hosts"] = hosts
    data["send_connectors"][0]["source_transport_servers"] = list(DAGS)
    return write_scenario(tmp_path / "rolling.yaml", data)


def _spans(lines: list[dict[str, Any]], *, until: str = "steps") -> dict[str, tuple[int, int]]:
    """Per host, the journal positions of its first step record and of its last one (``until``
    "steps": while it is out of mail flow) or of its ``host`` outcome (``until`` "host", after
    its verification)."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, line in enumerate(lines):
        host = line.get("host")
        if host is None or line["phase"] in ("lock", "unlock", "stale-check", "refused"):
            continue
        if line.get("action") is not None:
            first.setdefault(host, i)
            if until == "steps":
                last[host] = i + 1
        if line["phase"] == "host" and until == "host":
            last[host] = i
    return {h: (first[h], last[h]) for h in first}


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_restarts_roll_by_dag_and_serial_while_hosts_run_in_parallel(tmp_path: Path) -> None:
    with lab_fleet(_scenario(tmp_path), tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        assert all(any(a.disruptive for a in h.automatic) for h in plan_file.plan.hosts)
        states = [fleet.host(f"{n.lower()}.contoso.local").state for n in DAGS]
        starts = [s.transport_starts for s in states]
        report = fleet.apply(plan_file, allow_restart=True, serial=2, forks=16)
        assert {h.outcome.value for h in report.hosts} == {"done"}, report.hosts
        assert [s.transport_starts for s in states] == [n + 1 for n in starts]  # each restarted once
    spans = _spans(journal_lines(plan_file.default_journal))
    name = {n: f"{n.lower()}.contoso.local" for n in DAGS}
    # One DAG's members one after the other; never more than two restarts at once.
    assert not _overlap(spans[name["EX01"]], spans[name["EX02"]])
    assert not _overlap(spans[name["EX03"]], spans[name["EX04"]])
    for moment in range(max(end for _, end in spans.values())):
        active = [h for h, (start, end) in spans.items() if start <= moment < end]
        assert len(active) <= 2, (moment, active)
    # ... and yet in parallel: some two hosts of different DAGs overlapped.
    assert any(_overlap(spans[a], spans[b]) for a in spans for b in spans if a < b)


def test_a_restarted_server_is_verified_while_the_next_one_restarts(tmp_path: Path) -> None:
    """The restart slot is the steps' time only: once a server's transport runs again (read
    back Running) it is back in mail flow, and its verification (queues drain, collected
    again) overlaps the next restart instead of holding it up."""
    with lab_fleet(_scenario(tmp_path), tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        report = fleet.apply(plan_file, allow_restart=True, serial=1, forks=16)
        assert {h.outcome.value for h in report.hosts} == {"done"}
        assert all(h.verified for h in report.hosts), report.hosts
    lines = journal_lines(plan_file.default_journal)
    steps = _spans(lines)
    whole = _spans(lines, until="host")
    assert not any(_overlap(a, b) for a in steps.values() for b in steps.values() if a < b)
    assert any(_overlap(whole[a], steps[b]) for a in whole for b in steps if a != b)


def test_serial_one_restarts_one_server_at_a_time(tmp_path: Path) -> None:
    with lab_fleet(_scenario(tmp_path), tmp_path) as fleet:
        _, plan_file = fleet.plan(tmp_path / "plan")
        report = fleet.apply(plan_file, allow_restart=True, serial=1, forks=16)
        assert {h.outcome.value for h in report.hosts} == {"done"}
    spans = list(_spans(journal_lines(plan_file.default_journal)).values())
    assert not any(_overlap(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :])
