"""KeyboardInterrupt during apply and again during its undo, and during ``exfix rollback``,
against the lab: the IO loop hands each to the step machine, which stops the undo, journals the
step in flight as failed (exit 6) and leaves the rest, the hosts not started included, to the
next ``exfix rollback``, which finishes it from the journal (the organisation unit's ``org-``
steps too: they are journaled under the server the unit ran through)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.apply import HostOutcome, JournalEntry, StepStatus, rollback_journal
from agent.errors import EXIT_OK, EXIT_ROLLBACK_FAILED
from apply._apply_support import (
    CONNECTOR_SWITCH,
    EXTERNAL_DNS_VARS,
    config_state,
    connector_flags,
    full_state,
    journal_lines,
    lab_fleet,
    phases,
    unstamped,
)

pytestmark = pytest.mark.lab

HOST = "ex01.contoso.local"
STEP1 = "01-set-transport-external-dns"
RESTART = "02-restart-transport"


def test_a_second_interrupt_stops_the_undo_and_exfix_rollback_finishes_it(tmp_path: Path) -> None:
    """transport-external-dns-unresolvable: the organisation unit's Set-SendConnector runs
    first and is done; the interrupts land inside ex01's own steps, where its undo has
    something to do (before, they landed after the Set-SendConnector step, then ex01's
    second). The undo is stopped before it restores Set-TransportService, so that step and the
    finished organisation step are left to exfix rollback, which undoes both."""
    with lab_fleet("transport-external-dns-unresolvable", tmp_path, EXTERNAL_DNS_VARS) as fleet:
        lab = fleet.lab
        _, plan_file = fleet.plan(tmp_path / "plan")
        before = full_state(lab, HOST)

        def on_event(entry: JournalEntry) -> None:
            # Ctrl-C twice, as an API caller without the SIGINT handler sees it: once when step
            # 01 has been read back, once as its undo is about to be sent.
            if (entry.phase, entry.action, entry.result) in (("verify", STEP1, "ok"),
                                                             ("rollback", STEP1, "started")):  # fmt: skip
                raise KeyboardInterrupt

        report = fleet.apply(plan_file, allow_restart=True, on_event=on_event)

        assert report.exit_code == EXIT_ROLLBACK_FAILED and report.interrupted
        assert [o.outcome for o in report.organizations] == [HostOutcome.DONE]
        outcome = report.host(HOST)
        assert outcome.outcome is HostOutcome.ROLLBACK_FAILED
        assert [s.status for s in outcome.steps] == [StepStatus.ROLLBACK_FAILED, StepStatus.NOT_RUN]
        lines = journal_lines(plan_file.default_journal)
        mine = phases(lines, HOST)
        assert mine[mine.index(("organization", None, "done")) :] == [
            ("organization", None, "done"),
            ("before", STEP1, "ok"),
            ("execute", STEP1, "started"),
            ("execute", STEP1, "ok"),
            ("verify", STEP1, "ok"),
            ("interrupted", None, "stopping"),
            ("rollback", STEP1, "started"),
            ("rollback", STEP1, "failed"),
            ("host", None, "rollback-failed"),
        ]
        assert lines[-1]["phase"] == "end"
        assert lab.fleet.host(HOST).state.transport.external_dns_servers == ["8.8.8.8"]  # still changed
        assert connector_flags(lab) == {"Internet": True}

        # The restart never started, so none is needed to undo.
        undone = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials())
        assert undone.exit_code == EXIT_OK
        (host,) = undone.hosts
        expected = [(STEP1, StepStatus.ROLLED_BACK), (CONNECTOR_SWITCH, StepStatus.ROLLED_BACK)]
        assert [(s.action, s.status) for s in host.steps] == expected
        # Undoing the connector change sets it again, so only its WhenChanged stamp moved.
        assert unstamped(full_state(lab, HOST)) == unstamped(before)


def test_an_interrupt_during_exfix_rollback_leaves_the_hosts_not_started_for_the_next_one(
    tmp_path: Path,
) -> None:
    """mixed-fleet, applied cleanly; then exfix rollback is interrupted in its first host's
    undo. That host is the server the organisation unit ran through (ex04): its org- step was
    the first the apply ran, so exfix rollback undoes it first, with ex04's own steps."""
    with lab_fleet("mixed-fleet", tmp_path, EXTERNAL_DNS_VARS) as fleet:
        lab = fleet.lab
        result, plan_file = fleet.plan(tmp_path / "plan")
        (unit,) = result.plan.organizations
        through = unit.host
        hosts = [through, *(h.host for h in result.plan.hosts if h.automatic and h.host != through)]
        before = {h: config_state(lab, h) for h in hosts}
        assert fleet.apply(plan_file, allow_restart=True).exit_code == EXIT_OK

        def on_event(entry: JournalEntry) -> None:
            if entry.host == through and (entry.phase, entry.result) == ("rollback", "started"):
                raise KeyboardInterrupt

        report = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials(),
                                  allow_restart=True, on_event=on_event)  # fmt: skip
        assert report.exit_code == EXIT_ROLLBACK_FAILED
        assert [h.host for h in report.hosts] == hosts
        assert report.hosts[0].error == "interrupted during the undo"
        assert all(h.error == "interrupted before this host was started" and h.steps == ()
                   for h in report.hosts[1:])  # fmt: skip
        untouched = {r["host"] for r in journal_lines(plan_file.default_journal)
                     if r.get("undoes") is not None and r["host"] not in (None, through)}  # fmt: skip
        assert not untouched  # nothing was sent to them, nothing journaled

        again = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials(),
                                 allow_restart=True)  # fmt: skip
        assert again.exit_code == EXIT_OK and [h.host for h in again.hosts] == hosts
        assert any(s.action == unit.automatic[0].id and s.status is StepStatus.ROLLED_BACK
                   for s in again.hosts[0].steps)  # fmt: skip
        for host in hosts:
            state = unstamped(config_state(lab, host))
            assert state["nics"] == before[host]["nics"]
            assert state["transport"] == before[host]["transport"]
            assert state["connectors"] == unstamped(before[host])["connectors"]
