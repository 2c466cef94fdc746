"""Ctrl-C during ``exfix apply`` (a real SIGINT to a subprocess): the command in flight
finishes, the host is rolled back and journaled, the hosts not started are skipped.

mixed-fleet's organisation unit (the connector's Set-SendConnector, through ex04) runs before
every host; the signal is sent once the first host's steps have started, so the unit is
finished by then and stays applied, as a host finished before the interrupt would (exfix
rollback undoes it)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from agent.errors import EXIT_ROLLED_BACK
from apply._apply_support import (
    config_state,
    connector_flags,
    exfix_command,
    journal_lines,
    lab_fleet,
    subprocess_env,
    wait_in_journal,
)

pytestmark = pytest.mark.lab




def test_sigint_mid_apply_rolls_the_host_back_and_says_so(tmp_path: Path) -> None:
    with lab_fleet("mixed-fleet", tmp_path, {"exfix_external_dns_servers": ["8.8.8.8"]}) as fleet:
        lab = fleet.lab
        result, plan_file = fleet.plan(tmp_path / "plan")
        hosts = [h.host for h in result.plan.hosts if h.automatic]
        first = hosts[0]
        before = {h: config_state(lab, h) for h in hosts}
        flags = connector_flags(lab)
        assert flags["Internet"] is False  # what the organisation unit changes
        # A slow host, so that the signal lands while its steps run.
        lab.inject(first, {"latency_ms": 50})
        journal = plan_file.default_journal
        process = subprocess.Popen(
            [*exfix_command(), "apply", str(plan_file.path), "--approve", result.plan.digest,
             "--allow-restart", "--verify-timeout", "2", "--operator", "tester"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
        )  # fmt: skip
        try:
            wait_in_journal(journal, lambda r: r["phase"] == "execute" and r["host"] == first
                      and r["result"] == "started", timeout=60)  # fmt: skip
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == EXIT_ROLLED_BACK, (out, err)
        assert "Interrupted" in out

        lines = journal_lines(journal)
        mine = [(r["phase"], r["result"]) for r in lines if r["host"] == first]
        assert ("interrupted", "stopping") in mine
        # Every step that was started is either undone (read back as before) or found unchanged.
        started = {r["action"] for r in lines if r["host"] == first and r["phase"] == "execute"
                   and r["result"] == "started"}  # fmt: skip
        settled = {r["action"] for r in lines if r["host"] == first and (
            (r["phase"] == "rollback-verify" and r["result"] == "ok")
            or (r["phase"] == "rollback" and r["result"] in ("unchanged", "no-undo")))}  # fmt: skip
        assert started and started <= settled
        assert ("host", "rolled-back") in mine
        for host in hosts[1:]:
            assert ("host", "skipped") in [(r["phase"], r["result"]) for r in lines if r["host"] == host]
        assert lines[-1]["phase"] == "end"
        assert lines[-1]["detail"]["organizations"] == {result.plan.organizations[0].organization: "done"}
        # The unit was finished before the first host's first record: the signal came later.
        organization = next(i for i, r in enumerate(lines) if r["phase"] == "organization")
        assert lines[organization]["result"] == "done"
        first_step = next(i for i, r in enumerate(lines) if r["host"] == first and r["phase"] == "before")
        assert organization < first_step
        lab.clear_faults(first)
        # The unit's change stays: every step of it was read back as planned, and the connector
        # it changed still shows it (any connector it may add is not compared here).
        unit_steps = {a.id for a in result.plan.organizations[0].automatic}
        assert {r["action"] for r in lines if r["phase"] == "verify" and r["result"] == "ok"} >= unit_steps
        now = connector_flags(lab)
        assert {name: now[name] for name in flags} == {**flags, "Internet": True}
        for host in hosts:
            assert config_state(lab, host)["nics"] == before[host]["nics"]
            assert config_state(lab, host)["transport"] == before[host]["transport"]
