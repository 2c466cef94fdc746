"""A step fails mid-apply: the unit (a host, or the organisation's unit) is rolled back to its
before-state exactly, journaled, exit 5; a rollback that cannot finish is exit 6; ``exfix
rollback`` undoes a journaled apply, the organisation's ``org-`` steps included.

Since the organisation level, transport-external-dns-unresolvable plans the connector change
(``org-01-use-external-dns-on-connector``, Set-SendConnector) once, in the organisation's unit,
applied through ex01 before ex01's own steps (``01-set-transport-external-dns``, then the
restart). A host with two steps before its restart is nic-registration-disabled's ex01."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.apply import HostOutcome, JournalEntry, StepStatus, rollback_journal
from agent.apply.lock import TAKE_COMMANDS as LOCK_COMMANDS
from agent.errors import EXIT_OK, EXIT_ROLLBACK_FAILED, EXIT_ROLLED_BACK, RestartNotAllowedError
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
TRANSPORT_STEP = "01-set-transport-external-dns"
RESTART_STEP = "02-restart-transport"


def test_http_500_on_the_second_step_rolls_the_host_back(tmp_path: Path) -> None:
    """nic-registration-disabled plans Set-DnsClient, Register-DnsClient, the restart, all on
    the OS endpoint, and no organisation unit. The fault hits exactly the Register-DnsClient
    call, counted from the plan: the stale check's collection sends as many OS commands as
    planning's did, then step 01 sends three (read, set, read back) and step 02, which has no
    read-back, sends its call first. Register-DnsClient has no undo (it only re-registers the
    addresses), so it is journaled ``no-undo`` and step 01 is undone and read back."""
    with lab_fleet("nic-registration-disabled", tmp_path) as fleet:
        lab = fleet.lab
        before_plan = lab.counters.get(HOST, "os", "Command")
        result, plan_file = fleet.plan(tmp_path / "plan")
        per_collection = lab.counters.get(HOST, "os", "Command") - before_plan
        assert result.plan.organizations == ()
        actions = result.plan.host(HOST).automatic
        assert [a.call.cmdlet for a in actions] == ["Set-DnsClient", "Register-DnsClient", "Restart-Service"]
        assert all(a.call.endpoint.value == "os" for a in actions)
        first, second = actions[0].id, actions[1].id
        os_before_call = sum(
            (a.read_back is not None) * 2 + 1 if i == 0 else (a.read_back is not None)
            for i, a in enumerate(actions[:2])
        )
        assert os_before_call == 3
        before = full_state(lab, HOST)
        # The host's lock comes first: the install path is read, then the marker made (New-Item).
        lab.inject(HOST, {"fail": {"kind": "http-500", "on": "Command", "endpoint": "os",
                                   "after": LOCK_COMMANDS + per_collection + os_before_call,
                                   "times": 1}})  # fmt: skip

        report = fleet.apply(plan_file, allow_restart=True)

        assert report.exit_code == EXIT_ROLLED_BACK
        outcome = report.host(HOST)
        assert outcome.outcome is HostOutcome.ROLLED_BACK
        assert "500" in (outcome.error or "")
        assert [s.status for s in outcome.steps] == [StepStatus.ROLLED_BACK, StepStatus.NO_UNDO,
                                                     StepStatus.NOT_RUN]  # fmt: skip
        assert full_state(lab, HOST) == before  # NICs, settings, service, queues: exactly
        lines = journal_lines(plan_file.default_journal)
        assert phases(lines, HOST) == [
            ("stale-check", None, "fresh"),
            ("before", first, "ok"),
            ("execute", first, "started"),
            ("execute", first, "ok"),
            ("verify", first, "ok"),
            ("before", second, "ok"),
            ("execute", second, "started"),
            ("execute", second, "failed"),
            ("rollback", second, "no-undo"),
            ("rollback", first, "started"),
            ("rollback", first, "ok"),
            ("rollback-verify", first, "ok"),
            ("host", None, "rolled-back"),
        ]
        assert lines[-1]["phase"] == "end" and lines[-1]["detail"]["exit_code"] == EXIT_ROLLED_BACK
        # Nothing left for exfix rollback to do.
        again = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials(),
                                 allow_restart=True)  # fmt: skip
        assert again.hosts == () and again.exit_code == EXIT_OK


def test_a_dropped_connection_on_a_step_rolls_back_over_a_new_connection(tmp_path: Path) -> None:
    """The connection drops on ex01's restart, after the organisation unit is done: the host
    is undone on a new connection (Set-TransportService restored and read back), and, since the
    restart may have run, a closing restart makes the restored settings take effect. The
    organisation unit finished before ex01 started, so its connector change stays."""
    with lab_fleet("transport-external-dns-unresolvable", tmp_path, EXTERNAL_DNS_VARS) as fleet:
        lab = fleet.lab
        _, plan_file = fleet.plan(tmp_path / "plan")
        before = full_state(lab, HOST)
        shells: dict[str, int] = {}

        def on_event(entry: JournalEntry) -> None:
            # The restart's before record follows its read (Get-Service): the next OS request
            # after it is the Restart-Service call itself.
            if (entry.phase, entry.action) == ("before", RESTART_STEP):
                shells["at drop"] = lab.counters.get(HOST, "os", "Create")
                lab.inject(HOST, {"fail": {"kind": "drop", "on": "Command", "endpoint": "os", "times": 1}})

        report = fleet.apply(plan_file, allow_restart=True, on_event=on_event)

        assert report.exit_code == EXIT_ROLLED_BACK
        (org,) = report.organizations
        assert org.outcome is HostOutcome.DONE
        assert [(s.action, s.status) for s in org.steps] == [(CONNECTOR_SWITCH, StepStatus.OK)]
        outcome = report.host(HOST)
        assert outcome.outcome is HostOutcome.ROLLED_BACK
        assert [(s.action, s.status) for s in outcome.steps] == [
            (TRANSPORT_STEP, StepStatus.ROLLED_BACK),
            (RESTART_STEP, StepStatus.NO_UNDO),
            ("rollback-restart-transport", StepStatus.ROLLED_BACK),
        ]
        # The undo opened a new OS shell rather than trusting the dropped one.
        assert lab.counters.get(HOST, "os", "Create") > shells["at drop"]
        after = full_state(lab, HOST)
        assert connector_flags(lab) == {"Internet": True}  # the organisation unit's change
        assert after["transport"] == before["transport"] and after["nics"] == before["nics"]
        assert after["cache"] == before["cache"]  # the closing restart loaded the old settings
        assert after["transport_starts"] == before["transport_starts"] + 1  # the closing one only
        lines = journal_lines(plan_file.default_journal)
        mine = phases(lines, HOST)
        assert mine[mine.index(("organization", None, "done")) + 1 :] == [
            ("before", TRANSPORT_STEP, "ok"),
            ("execute", TRANSPORT_STEP, "started"),
            ("execute", TRANSPORT_STEP, "ok"),
            ("verify", TRANSPORT_STEP, "ok"),
            ("before", RESTART_STEP, "ok"),
            ("execute", RESTART_STEP, "started"),
            ("execute", RESTART_STEP, "failed"),
            ("rollback", RESTART_STEP, "no-undo"),
            ("rollback", TRANSPORT_STEP, "started"),
            ("rollback", TRANSPORT_STEP, "ok"),
            ("rollback-verify", TRANSPORT_STEP, "ok"),
            ("rollback", "rollback-restart-transport", "started"),
            ("rollback", "rollback-restart-transport", "ok"),
            ("rollback-verify", "rollback-restart-transport", "ok"),
            ("host", None, "rolled-back"),
        ]


def test_a_fault_in_the_organisation_unit_rolls_it_back_and_skips_the_hosts(tmp_path: Path) -> None:
    """HTTP 500 on the organisation unit's Set-SendConnector call: the unit is rolled back (the
    read shows the connector as before: nothing to undo), journaled under the server it runs
    through, and, with the default --max-fail 0, the failed unit counts as a failure, so ex01,
    not started, is skipped and nothing on it changes."""
    with lab_fleet("transport-external-dns-unresolvable", tmp_path, EXTERNAL_DNS_VARS) as fleet:
        lab = fleet.lab
        result, plan_file = fleet.plan(tmp_path / "plan")
        (unit,) = result.plan.organizations
        assert unit.host == HOST and [a.id for a in unit.automatic] == [CONNECTOR_SWITCH]
        before = full_state(lab, HOST)

        def on_event(entry: JournalEntry) -> None:
            # Its before record follows its read (Get-SendConnector): the next Exchange
            # request is the Set-SendConnector call.
            if (entry.phase, entry.action) == ("before", CONNECTOR_SWITCH):
                lab.inject(HOST, {"fail": {"kind": "http-500", "on": "Command", "endpoint": "exchange",
                                           "times": 1}})  # fmt: skip

        report = fleet.apply(plan_file, allow_restart=True, on_event=on_event)

        assert report.exit_code == EXIT_ROLLED_BACK
        (org,) = report.organizations
        assert org.host == unit.organization
        assert org.outcome is HostOutcome.ROLLED_BACK and "500" in (org.error or "")
        assert [(s.action, s.status) for s in org.steps] == [(CONNECTOR_SWITCH, StepStatus.UNCHANGED)]
        host = report.host(HOST)
        assert host.outcome is HostOutcome.SKIPPED and host.steps == ()
        assert host.error == "more than 0 host(s) failed"
        assert full_state(lab, HOST) == before  # connector, settings, service, queues: exactly
        lines = journal_lines(plan_file.default_journal)
        assert phases(lines, HOST) == [
            # The stale check reads ex01 once for the organisation unit, once for its own steps.
            ("stale-check", None, "fresh"),
            ("stale-check", None, "fresh"),
            ("before", CONNECTOR_SWITCH, "ok"),
            ("execute", CONNECTOR_SWITCH, "started"),
            ("execute", CONNECTOR_SWITCH, "failed"),
            ("rollback", CONNECTOR_SWITCH, "unchanged"),
            ("organization", None, "rolled-back"),
            ("host", None, "skipped"),
        ]
        organization = next(r for r in lines if r["phase"] == "organization")
        assert organization["detail"]["organization"] == unit.organization
        end = lines[-1]
        assert end["phase"] == "end" and end["detail"]["exit_code"] == EXIT_ROLLED_BACK
        assert end["detail"]["organizations"] == {unit.organization: "rolled-back"}
        assert end["detail"]["hosts"] == {HOST: "skipped"}


def test_a_rollback_that_cannot_run_is_exit_6(tmp_path: Path) -> None:
    """Every command fails from ex01's restart on: the restart fails, and undoing
    Set-TransportService cannot even read (exit 6). Once ex01 answers again, exfix rollback
    finishes from the journal: Set-TransportService, then the organisation unit's
    Set-SendConnector (journaled under ex01, the server it ran through, and done before ex01
    started), then the closing restart the restart that may have run calls for."""
    with lab_fleet("transport-external-dns-unresolvable", tmp_path, EXTERNAL_DNS_VARS) as fleet:
        lab = fleet.lab
        _, plan_file = fleet.plan(tmp_path / "plan")
        before = config_state(lab, HOST)

        def on_event(entry: JournalEntry) -> None:
            if (entry.phase, entry.action) == ("before", RESTART_STEP):
                lab.inject(HOST, {"fail": {"kind": "http-500", "on": "Command", "endpoint": "any"}})

        report = fleet.apply(plan_file, allow_restart=True, on_event=on_event)
        assert report.exit_code == EXIT_ROLLBACK_FAILED
        assert [o.outcome for o in report.organizations] == [HostOutcome.DONE]
        outcome = report.host(HOST)
        assert outcome.outcome is HostOutcome.ROLLBACK_FAILED
        assert [(s.action, s.status) for s in outcome.steps] == [
            (TRANSPORT_STEP, StepStatus.ROLLBACK_FAILED),
            (RESTART_STEP, StepStatus.NO_UNDO),
        ]
        state = lab.fleet.host(HOST).state
        assert state.transport.external_dns_servers == ["8.8.8.8"]  # still changed
        assert connector_flags(lab) == {"Internet": True}

        # Once the host answers again, exfix rollback finishes the job from the journal.
        lab.clear_faults(HOST)
        undone = rollback_journal(plan_file.default_journal, fleet.targets, fleet.credentials(),
                                  allow_restart=True)  # fmt: skip
        assert undone.exit_code == EXIT_OK
        (host,) = undone.hosts
        assert host.host == HOST
        assert [(s.action, s.status) for s in host.steps] == [
            (TRANSPORT_STEP, StepStatus.ROLLED_BACK),
            (CONNECTOR_SWITCH, StepStatus.ROLLED_BACK),
            ("rollback-restart-transport", StepStatus.ROLLED_BACK),
        ]
        assert unstamped(config_state(lab, HOST)) == unstamped(before)
        assert connector_flags(lab) == {"Internet": False}


def test_max_fail_skips_the_hosts_not_started(tmp_path: Path) -> None:
    """mixed-fleet: the organisation unit (through ex04) is done first; then the first host
    with steps fails on its first call, and with --max-fail 0 the other hosts are skipped, with
    no command sent to them after the stale check. (The next hosts with a restart in line may
    have had their connection opened ahead, authenticated with a runspace pool and nothing
    else, to be ready when their turn came: so commands are counted, not requests.)"""
    with lab_fleet("mixed-fleet", tmp_path, EXTERNAL_DNS_VARS) as fleet:
        lab = fleet.lab
        result, plan_file = fleet.plan(tmp_path / "plan")
        first = next(h.host for h in result.plan.hosts if h.automatic)
        later = [h.host for h in result.plan.hosts if h.automatic and h.host != first]
        assert later
        states = {h: config_state(lab, h) for h in [first, *later]}
        commands: dict[str, int] = {}

        at_skip: dict[str, int] = {}

        def on_event(entry: JournalEntry) -> None:
            if entry.phase == "host" and entry.result == "skipped" and entry.host is not None:
                at_skip[entry.host] = lab.counters.get(entry.host, action="Command")
            if entry.phase == "before" and entry.host == first and not commands:  # after the org unit
                commands.update((h, lab.counters.get(h, action="Command")) for h in later)
                lab.inject(
                    first, {"fail": {"kind": "http-500", "on": "Command", "endpoint": "os", "times": 1}}
                )

        report = fleet.apply(plan_file, allow_restart=True, on_event=on_event)
        assert report.exit_code == EXIT_ROLLED_BACK
        assert [o.outcome for o in report.organizations] == [HostOutcome.DONE]
        failed = report.host(first)
        assert failed.outcome is HostOutcome.ROLLED_BACK
        assert failed.steps[0].status is StepStatus.UNCHANGED  # its call never reached the host
        assert {s.status for s in failed.steps[1:]} == {StepStatus.NOT_RUN}
        lines = journal_lines(plan_file.default_journal)
        # The connectors are the organisation's: the unit changed them before any host started.
        connectors = config_state(lab, first)["connectors"]
        assert any(c.use_external_dns_servers_enabled for c in connectors)
        for host in [first, *later]:
            assert config_state(lab, host) == {**states[host], "connectors": connectors}
        for host in later:
            skipped = report.host(host)
            assert skipped.outcome is HostOutcome.SKIPPED and skipped.steps == ()
            assert skipped.error == "more than 0 host(s) failed"
            assert at_skip[host] == commands[host]  # not a command after the stale check...
            assert ("unlock", None, "released") in phases(lines, host, locks=True)  # ...but its unlock
            # Its own records, apart from the stale check and the organisation unit's (ex04
            # is the server the unit ran through): only that it was skipped.
            own = [(r["phase"], r["result"]) for r in lines if r["host"] == host
                   and r["phase"] not in ("stale-check", "organization", "lock", "unlock")
                   and not (r["action"] or "").startswith("org-")]  # fmt: skip
            assert own == [("host", "skipped")]


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
