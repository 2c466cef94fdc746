"""KeyboardInterrupt during apply and again during its undo, and during ``exfix rollback``,
against the lab: the IO loop hands each to the step machine, which stops the undo, journals the
step in flight as failed (exit 6) and leaves the rest, the hosts not started included, to the
next ``exfix rollback``, which finishes it from the journal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agent.apply import HostOutcome, JournalEntry, StepStatus, rollback_journal
from agent.errors import EXIT_OK, EXIT_ROLLBACK_FAILED
from apply._apply_support import config_state, full_state, journal_lines, lab_fleet, phases

pytestmark = pytest.mark.lab

HOST = "ex01.contoso.local"
EXTERNAL = {"exfix_external_dns_servers": ["8.8.8.8"]}
STEP1 = "01-set-transport-external-dns"
STEP2 = "02-use-external-dns-on-connector"


def test_a_second_interrupt_stops_the_undo_and_exfix_rollback_finishes_it(tmp_path: Path) -> None:
    with lab_fleet("transport-external-dns-unresolvable", tmp_path, EXTERNAL) as fleet:
        lab = fleet.lab
        _, plan_file = fleet.plan(tmp_path / "plan")
        before = full_state(lab, HOST)

        def on_event(entry: JournalEntry) -> None:
            # Ctrl-C twice, as an API caller without the SIGINT handler sees it: once when step
            # 02 has been read back, once as its undo is about to be sent.
            if (entry.phase, entry.action, entry.result) in (("verify", STEP2, "ok"),
                                                             ("rollback", STEP2, "started")):  # fmt: skip
                raise KeyboardInterrupt

        report = fleet.apply(plan_file, allow_restart=True, on_event=on_event)

        assert report.exit_code == EXIT_ROLLBACK_FAILED and report.interrupted
        outcome = report.host(HOST)
        assert outcome.outcome is HostOutcome.ROLLBACK_FAILED
        assert [s.status for s in outcome.steps] == [StepStatus.OK, StepStatus.ROLLBACK_FAILED,
                                                     StepStatus.NOT_RUN]  # fmt: skip
        lines = journal_lines(plan_file.default_journal)
        mine = phases(lines, HOST)
        assert mine[mine.index(("verify", STEP2, "ok")):] == [
            ("verify", STEP2, "ok"),
            ("interrupted", None, "stopping"),
            ("rollback", STEP2, "started"),
            ("rollback", STEP2, "failed"),
            ("host", None, "rollback-failed"),
        ]
        assert lines[-1]["phase"] == "end"
        assert lab.fleet.host(HOST).state.transport.external_dns_servers == ["8.8.8.8"]  # still changed

        undone = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials(),
                                  allow_restart=True)  # fmt: skip
        assert undone.exit_code == EXIT_OK
        (host,) = undone.hosts
        assert [(s.action, s.status) for s in host.steps] == [(STEP2, StepStatus.ROLLED_BACK),
                                                              (STEP1, StepStatus.ROLLED_BACK)]  # fmt: skip
        after = full_state(lab, HOST)
        # Undoing the connector change sets it again, so only its WhenChanged stamp moved.
        for state in (before, after):
            state["connectors"] = [dataclasses.replace(c, changed=None) for c in state["connectors"]]
        assert after == before


def test_an_interrupt_during_exfix_rollback_leaves_the_hosts_not_started_for_the_next_one(
    tmp_path: Path,
) -> None:
    with lab_fleet("mixed-fleet", tmp_path, EXTERNAL) as fleet:
        lab = fleet.lab
        result, plan_file = fleet.plan(tmp_path / "plan")
        hosts = [h.host for h in result.plan.hosts if h.automatic]
        before = {h: config_state(lab, h) for h in hosts}
        assert fleet.apply(plan_file, allow_restart=True).exit_code == EXIT_OK
        first = hosts[0]

        def on_event(entry: JournalEntry) -> None:
            if entry.host == first and (entry.phase, entry.result) == ("rollback", "started"):
                raise KeyboardInterrupt

        report = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials(),
                                  allow_restart=True, on_event=on_event)  # fmt: skip
        assert report.exit_code == EXIT_ROLLBACK_FAILED
        assert [h.host for h in report.hosts] == hosts
        assert report.hosts[0].error == "interrupted during the undo"
        assert all(h.error == "interrupted before this host was started" and h.steps == ()
                   for h in report.hosts[1:])  # fmt: skip
        untouched = {r["host"] for r in journal_lines(plan_file.default_journal)
                     if r.get("undoes") is not None and r["host"] not in (None, first)}  # fmt: skip
        assert not untouched  # nothing was sent to them, nothing journaled

        again = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials(),
                                 allow_restart=True)  # fmt: skip
        assert again.exit_code == EXIT_OK and [h.host for h in again.hosts] == hosts
        for host in hosts:
            assert config_state(lab, host)["nics"] == before[host]["nics"]
            assert config_state(lab, host)["transport"] == before[host]["transport"]
