"""A step fails mid-apply: the host is rolled back to its before-state exactly, journaled,
exit 5; a rollback that cannot finish is exit 6; ``exfix rollback`` undoes a journaled apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.apply import HostOutcome, JournalEntry, StepStatus, rollback_journal
from agent.errors import EXIT_OK, EXIT_ROLLBACK_FAILED, EXIT_ROLLED_BACK, RestartNotAllowedError
from apply._apply_support import config_state, full_state, journal_lines, lab_fleet, phases

pytestmark = pytest.mark.lab

HOST = "ex01.contoso.local"
EXTERNAL = {"exfix_external_dns_servers": ["8.8.8.8"]}


def test_http_500_on_the_second_step_rolls_the_host_back(tmp_path: Path) -> None:
    """transport-external-dns-unresolvable plans Set-TransportService, Set-SendConnector, the
    restart: all but the restart on the Exchange endpoint. The fault hits exactly the
    Set-SendConnector call, counted from the plan: the stale check's collection sends as many
    Exchange commands as planning's did, then step 01 sends three (read, set, read back) and
    step 02 one (its read) before its call."""
    with lab_fleet("transport-external-dns-unresolvable", tmp_path, EXTERNAL) as fleet:
        lab = fleet.lab
        before_plan = lab.counters.get(HOST, "exchange", "Command")
        result, plan_file = fleet.plan(tmp_path / "plan")
        per_collection = lab.counters.get(HOST, "exchange", "Command") - before_plan
        actions = result.plan.host(HOST).automatic
        assert [a.call.cmdlet for a in actions[:2]] == ["Set-TransportService", "Set-SendConnector"]
        exchange_before_call = sum(
            (a.read_back is not None) * 2 + 1 if i == 0 else (a.read_back is not None)
            for i, a in enumerate(actions[:2])
        )
        before = full_state(lab, HOST)
        lab.inject(HOST, {"fail": {"kind": "http-500", "on": "Command", "endpoint": "exchange",
                                   "after": per_collection + exchange_before_call, "times": 1}})  # fmt: skip

        report = fleet.apply(plan_file, allow_restart=True)

        assert report.exit_code == EXIT_ROLLED_BACK
        outcome = report.host(HOST)
        assert outcome.outcome is HostOutcome.ROLLED_BACK
        assert "500" in (outcome.error or "")
        assert [s.status for s in outcome.steps] == [StepStatus.ROLLED_BACK, StepStatus.UNCHANGED,
                                                     StepStatus.NOT_RUN]  # fmt: skip
        assert full_state(lab, HOST) == before  # settings, connectors, service, queues: exactly
        lines = journal_lines(plan_file.default_journal)
        assert phases(lines, HOST) == [
            ("stale-check", None, "fresh"),
            ("before", "01-set-transport-external-dns", "ok"),
            ("execute", "01-set-transport-external-dns", "started"),
            ("execute", "01-set-transport-external-dns", "ok"),
            ("verify", "01-set-transport-external-dns", "ok"),
            ("before", "02-use-external-dns-on-connector", "ok"),
            ("execute", "02-use-external-dns-on-connector", "started"),
            ("execute", "02-use-external-dns-on-connector", "failed"),
            ("rollback", "02-use-external-dns-on-connector", "unchanged"),
            ("rollback", "01-set-transport-external-dns", "started"),
            ("rollback", "01-set-transport-external-dns", "ok"),
            ("rollback-verify", "01-set-transport-external-dns", "ok"),
            ("host", None, "rolled-back"),
        ]
        assert lines[-1]["phase"] == "end" and lines[-1]["detail"]["exit_code"] == EXIT_ROLLED_BACK
        # Nothing left for exfix rollback to do.
        again = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials(),
                                 allow_restart=True)  # fmt: skip
        assert again.hosts == () and again.exit_code == EXIT_OK


def test_a_dropped_connection_on_a_step_rolls_back_over_a_new_connection(tmp_path: Path) -> None:
    with lab_fleet("transport-external-dns-unresolvable", tmp_path, EXTERNAL) as fleet:
        lab = fleet.lab
        _, plan_file = fleet.plan(tmp_path / "plan")
        before = full_state(lab, HOST)

        def on_event(entry: JournalEntry) -> None:
            # The next Exchange request after this record is the Set-SendConnector call.
            if (entry.phase, entry.action) == ("before", "02-use-external-dns-on-connector"):
                lab.inject(
                    HOST, {"fail": {"kind": "drop", "on": "Command", "endpoint": "exchange", "times": 1}}
                )

        report = fleet.apply(plan_file, allow_restart=True, on_event=on_event)
        assert report.exit_code == EXIT_ROLLED_BACK
        assert report.host(HOST).outcome is HostOutcome.ROLLED_BACK
        assert full_state(lab, HOST) == before
        results = {(r["phase"], r["action"], r["result"]) for r in journal_lines(plan_file.default_journal)}
        assert ("rollback-verify", "01-set-transport-external-dns", "ok") in results


def test_a_rollback_that_cannot_run_is_exit_6(tmp_path: Path) -> None:
    with lab_fleet("transport-external-dns-unresolvable", tmp_path, EXTERNAL) as fleet:
        lab = fleet.lab
        _, plan_file = fleet.plan(tmp_path / "plan")

        def on_event(entry: JournalEntry) -> None:
            if (entry.phase, entry.action) == ("before", "02-use-external-dns-on-connector"):
                lab.inject(HOST, {"fail": {"kind": "http-500", "on": "Command", "endpoint": "exchange"}})

        report = fleet.apply(plan_file, allow_restart=True, on_event=on_event)
        assert report.exit_code == EXIT_ROLLBACK_FAILED
        outcome = report.host(HOST)
        assert outcome.outcome is HostOutcome.ROLLBACK_FAILED
        assert StepStatus.ROLLBACK_FAILED in {s.status for s in outcome.steps}

        # Once the host answers again, exfix rollback finishes the job from the journal.
        lab.clear_faults(HOST)
        undone = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials())
        assert undone.exit_code == EXIT_OK
        state = lab.fleet.host(HOST).state
        assert state.transport.external_dns_adapter_enabled is True
        assert state.transport.external_dns_servers == []


def test_max_fail_skips_the_hosts_not_started(tmp_path: Path) -> None:
    with lab_fleet("mixed-fleet", tmp_path, EXTERNAL) as fleet:
        lab = fleet.lab
        result, plan_file = fleet.plan(tmp_path / "plan")
        first = next(h.host for h in result.plan.hosts if h.automatic)
        later = [h.host for h in result.plan.hosts if h.automatic and h.host != first]
        states = {h: config_state(lab, h) for h in later}

        def on_event(entry: JournalEntry) -> None:
            if entry.phase == "before" and entry.host == first:  # after the stale check
                lab.inject(
                    first, {"fail": {"kind": "http-500", "on": "Command", "endpoint": "os", "times": 1}}
                )

        report = fleet.apply(plan_file, allow_restart=True, on_event=on_event)
        assert report.exit_code == EXIT_ROLLED_BACK
        assert report.host(first).outcome in (HostOutcome.ROLLED_BACK, HostOutcome.ROLLBACK_FAILED)
        for host in later:
            assert report.host(host).outcome is HostOutcome.SKIPPED
            assert config_state(lab, host) == states[host]


def test_exfix_rollback_undoes_a_successful_apply(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        lab = fleet.lab
        _, plan_file = fleet.plan(tmp_path / "plan")
        before = config_state(lab, HOST)
        assert fleet.apply(plan_file, allow_restart=True).exit_code == EXIT_OK
        assert lab.fleet.host(HOST).state.mapi_nic.dns_servers == ["10.0.0.10"]

        # The NIC change took effect through a restart, so undoing it needs one too.
        with pytest.raises(RestartNotAllowedError):
            rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials())
        report = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials(),
                                  allow_restart=True, operator="tester")  # fmt: skip
        assert report.exit_code == EXIT_OK
        (host,) = report.hosts
        assert [(s.action, s.status) for s in host.steps] == [
            ("02-restart-transport", StepStatus.NO_UNDO),
            ("01-set-nic-dns-servers", StepStatus.ROLLED_BACK),
            ("rollback-restart-transport", StepStatus.ROLLED_BACK),
        ]
        after = config_state(lab, HOST)
        assert after["nics"] == before["nics"]
        assert after["cache"] == before["cache"]  # the transport runs with the old servers again
        lines = journal_lines(plan_file.default_journal)
        undo_lines = [r for r in lines if r.get("undoes") == report.undoes]
        assert undo_lines and all(r["run"] == report.run for r in undo_lines)
        # A second rollback finds nothing left to undo.
        assert rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials()).hosts == ()
