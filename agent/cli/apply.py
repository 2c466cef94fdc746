"""``exfix apply`` and ``exfix rollback``."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections import Counter
from collections.abc import Iterator

import click

from agent.apply import (
    DEFAULT_VERIFY_TIMEOUT,
    ApplyReport,
    RollbackReport,
    apply_plan,
    read_apply,
    read_plan_file,
    rollback_journal,
    sigint_cancels,
)
from agent.apply.results import (
    CheckStatus,
    HostApply,
    HostOutcome,
    ProbeCheck,
    StepResult,
    StepStatus,
    TrackingCheck,
    values_to_json,
)
from agent.cli._common import Fleet, open_fleet
from agent.errors import StalePlanError, UsageError
from agent.model.plan import RESTART_KIND, PlanSource, SourceKind
from agent.planning.schedule import DEFAULT_APPLY_FORKS
from agent.report.display import plural
from agent.report.safe import terminal
from agent.report.text import DETAIL_LIMIT, Details

_EXIT_MEANING = {
    0: "done and verified (or nothing to do)",
    5: "not done and verified: a step failed and was rolled back, a host was skipped or interrupted, "
    "the symptom persists, or the change created a finding the host did not have",
    6: "a step failed and the rollback failed too: a person must look at the host",
}


def _target_options(func: click.decorators.FC) -> click.decorators.FC:
    for option in reversed([
        click.option("--inventory", "-i", "inventory", type=click.Path(dir_okay=False),
                     help="Inventory to reach the hosts with (default: the one the plan recorded)."),
        click.option("--lab", "lab", metavar="SCENARIO",
                     help="Start the lab in-process with SCENARIO and use its fleet."),
        click.option("--ask-pass", "-k", is_flag=True, help="Prompt for the connection password."),
        click.option("--operator", help="Who runs this, for the journal (default: the local user name)."),
        click.option("--ticket", help="A change or incident id recorded in every journal line."),
        click.option("--break-lock", "break_lock", metavar="RUN",
                     help="First remove the change marker a killed run RUN left on a host (the refusal "
                          "names it); only a marker that still names RUN is removed, and that is journaled."),
        click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
                     show_default=True),
    ]):  # fmt: skip
        func = option(func)
    return func


@contextlib.contextmanager
def _fleet(inventory: str | None, lab: str | None, recorded: PlanSource | None, ask_pass: bool,
           what: str) -> Iterator[Fleet]:  # fmt: skip
    if inventory is None and lab is None:
        if recorded is None:
            raise UsageError(f"{what} records no inventory or lab; give --inventory FILE or --lab SCENARIO")
        if recorded.kind is SourceKind.INVENTORY:
            inventory = recorded.value
        else:
            lab = recorded.value
    with open_fleet(inventory, lab, None, ask_pass) as fleet:
        yield fleet


def _step(step: StepResult) -> str:
    text = f"    {step.action}: {step.status.value}"
    if step.before:
        text += f" before={json.dumps(values_to_json(step.before), ensure_ascii=True)}"
    if step.after:
        text += f" after={json.dumps(values_to_json(step.after), ensure_ascii=True)}"
    if step.error:
        text += f" ({step.error})"
    return terminal(text)


def _probe_line(probe: ProbeCheck) -> str:
    """One re-run lookup: what was asked of which server, before and now, and the verdict."""
    head = f"    lookup {probe.rdtype} {probe.qname} (for {probe.next_hop}) [{probe.status.value}]"
    if probe.server is None:
        return f"{head}: {probe.detail}"
    before = probe.before or "not asked"
    detail = f" {probe.detail}" if probe.detail and probe.status is not CheckStatus.PASS else ""
    asked = f"Resolve-DnsName -Server {probe.server} on the host"
    return f"{head}: {asked}: before {before}, now {probe.after}{detail}"


def _tracking_line(sent: TrackingCheck) -> str:
    """SEND events to one next hop since the change (Get-MessageTrackingLog)."""
    head = f"    sent to {sent.next_hop} [{sent.status.value}]"
    if sent.status is CheckStatus.PASS:
        return (
            f"{head}: {sent.count} SEND event(s) in Get-MessageTrackingLog since the change, the first at "
            f"{sent.first} via {sent.connector} to {sent.server_hostname}"
        )
    return f"{head}: {sent.reason}"


def _needs_a_look(host: HostApply) -> bool:
    """A host whose lines an admin reads: it failed, was skipped or is not verified, a step is
    left to a person, or findings remain."""
    ok = host.outcome in (HostOutcome.DONE, HostOutcome.NOTHING_TO_DO) and host.verified is not False
    manual = any(s.status is StepStatus.MANUAL for s in host.steps)
    return not ok or manual or bool(host.remaining_findings) or host.error is not None


def _host_lines(host: HostApply, label: str) -> Iterator[str]:
    verified = "" if host.verified is None else (" verified" if host.verified else " NOT VERIFIED")
    error = f": {host.error}" if host.error else ""
    yield terminal(f"{label}: {host.outcome.value}{verified}{error}")
    for step in host.steps:
        yield _step(step)
    for queue in host.queues:
        after = queue.after
        now = "gone (empty)" if after is None else f"{after.status}, {after.message_count} message(s)"
        if not queue.checked:
            now = "not read"
        retried = ", Retry-Queue run" if queue.retried else ""
        yield terminal(
            f"    queue {queue.next_hop} [{queue.status.value}]: {queue.before.status}, "
            f"{queue.before.message_count} message(s) -> {now}{retried}"
        )
        if after is not None and after.last_error:
            yield terminal(f"      last error: {after.last_error}")
    for probe in host.probes:
        yield terminal(_probe_line(probe))
    for sent in host.tracking:
        yield terminal(_tracking_line(sent))
    created = {f.id for f in host.new_findings}
    for finding in host.new_findings:
        yield terminal(f"    NEW since the change: {finding.rule_id} on {finding.subject}: {finding.summary}")
    for finding in host.remaining_findings:
        if finding.id not in created:
            yield terminal(f"    still found: {finding.rule_id} on {finding.subject}: {finding.summary}")


def _recap_note(host: HostApply) -> str:
    if host.error:
        return host.error
    if host.new_findings:
        return f"{len(host.new_findings)} new finding(s) since the change"
    manual = sum(1 for s in host.steps if s.status is StepStatus.MANUAL)
    notes = [f"{manual} step(s) for a person"] if manual else []
    if host.remaining_findings:
        notes.append(f"{len(host.remaining_findings)} finding(s) remain")
    return "; ".join(notes)


def render_apply(report: ApplyReport, *, details: Details = Details.FAILING) -> None:
    """Each organisation unit and the chosen hosts in full (``details``: those that need a
    look, the first DETAIL_LIMIT; or all; or none), then the recap: one line per host, as
    ``exfix scan`` ends, and the fleet's counts. At 200 hosts every host in full was 1,600
    lines; the recap is a line a host."""
    for unit in report.organizations:
        for line in _host_lines(unit, f"organisation {unit.host}"):
            click.echo(line)
    if details is not Details.NONE:
        # The hosts to look at first, then those that changed: a small fleet reads in full, a
        # large one shows its problems and, room left, a few changes as they were made.
        look = [h for h in report.hosts if _needs_a_look(h)]
        changed = [h for h in report.hosts if h.steps and not _needs_a_look(h)]
        chosen = list(report.hosts) if details is Details.ALL else look + changed
        shown = chosen if details is Details.ALL else chosen[:DETAIL_LIMIT]
        for host in shown:
            for line in _host_lines(host, host.host):
                click.echo(line)
        if len(shown) < len(chosen):
            more = len(chosen) - len(shown)
            click.echo(f"... and {plural(more, 'more host')} changed or to look at: --details all prints "
                       "them all, --format json gives everything")  # fmt: skip
    if report.hosts:
        click.echo("")
        click.echo("Recap")
        width = max(len(terminal(h.host)) for h in report.hosts)
        click.echo(f"{'host':<{width}}  {'outcome':<15}  {'verified':<8}  {'steps':>5}  restart  note")
        for host in report.hosts:
            verified = "-" if host.verified is None else ("yes" if host.verified else "NO")
            ran = [s for s in host.steps if s.status not in (StepStatus.NOT_RUN, StepStatus.MANUAL)]
            restart = "yes" if any(s.kind == RESTART_KIND for s in ran) else "-"
            line = (f"{host.host:<{width}}  {host.outcome.value:<15}  {verified:<8}  {len(ran):>5}  "
                    f"{restart:<7}  {_recap_note(host)}")  # fmt: skip
            click.echo(terminal(line.rstrip()))
        click.echo("")
        click.echo(_summary(report))
    if report.interrupted:
        click.echo("Interrupted: hosts in the middle of their steps were rolled back, those waiting for "
                   "their restart were undone and skipped, the hosts not started were skipped.")  # fmt: skip
    click.echo(f"Journal: {terminal(report.journal)} (run {report.run})")
    click.echo(f"exit {report.exit_code}: {_EXIT_MEANING.get(report.exit_code, '')}")


def _summary(report: ApplyReport) -> str:
    """The fleet in one line: hosts by outcome, how many verified, how many restarted."""
    counts = Counter(h.outcome for h in report.hosts)
    parts = [f"{counts[o]} {o.value}" for o in HostOutcome if counts[o]]
    done = [h for h in report.hosts if h.outcome is HostOutcome.DONE]
    verified = sum(1 for h in report.hosts if h.verified is True)
    not_verified = sum(1 for h in report.hosts if h.verified is False)
    restarted = sum(1 for h in done if any(s.kind == RESTART_KIND and s.status is not StepStatus.NOT_RUN
                                           for s in h.steps))  # fmt: skip
    line = f"{plural(len(report.hosts), 'host')}: {', '.join(parts)}; {verified} verified"
    if not_verified:
        line += f", {not_verified} NOT VERIFIED"
    return line + f"; {restarted} restarted"


@click.command("apply")
@click.argument("plan_json", type=click.Path(exists=True))
@click.option("--approve", required=True, metavar="SHA256", help="The plan digest the change board approved.")
@click.option("--allow-restart", is_flag=True,
              help="Allow the MSExchangeTransport restart (interrupts mail flow on that server).")
@click.option("--serial", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Hosts restarting MSExchangeTransport at once (out of mail flow), never two of one "
                   "DAG nor the last of an AD site, and hosts prepared for their restart at once (their "
                   "other steps done, waiting for a slot); hosts without a restart are changed --forks "
                   "at once.")
@click.option("--max-fail", type=click.IntRange(0), default=0, show_default=True,
              help="Hosts that may fail (and be rolled back) before the hosts not yet started are skipped.")
@click.option("--verify-timeout", type=click.FloatRange(0, 86400), default=DEFAULT_VERIFY_TIMEOUT,
              show_default=True,
              help="Seconds to wait for the failing queues to drain after a host's changes.")
@click.option("--journal", "journal", type=click.Path(dir_okay=False),
              help="Append-only JSONL journal (default: journal.jsonl beside plan.json).")
@click.option("--forks", type=click.IntRange(1, 256), default=DEFAULT_APPLY_FORKS, show_default=True,
              help="Hosts collected at once for the stale check, and changed at once.")
@click.option("--details", type=click.Choice([d.value for d in Details]), default="failing",
              show_default=True,
              help=f"Text: which hosts to print in full above the recap (failing: the first {DETAIL_LIMIT} "
                   "that failed, were skipped, are not verified or left a step to a person, then those "
                   "that changed).")
@_target_options
def apply(plan_json: str, approve: str, allow_restart: bool, serial: int, max_fail: int,
          verify_timeout: float, journal: str | None, forks: int, details: str, inventory: str | None,
          lab: str | None, ask_pass: bool,
          operator: str | None, ticket: str | None, break_lock: str | None, fmt: str) -> None:  # fmt: skip
    """Apply an approved plan: exactly its structured steps, verified and journaled.

    Refuses, changing nothing (exit 4), when the approved digest is not the plan's, when a
    file of the plan directory (plan.json, a script, REVIEW.md, review.html) is not byte for
    byte what the approved content renders to, when another exfix run (from this machine or
    another) holds a host's change marker, when a host's facts drifted from the plan (every
    planned host is locked, then collected again), or when a step restarts
    MSExchangeTransport and --allow-restart is not given. A stale plan's refusal names each
    drifted host, step, fact slice and setting with its planned and current value; with
    --format json they are also printed on stdout (``refused.drift``) and journaled.

    Per host: each step's setting is read (before-state, journaled), the step runs, the setting
    is read back and must equal the planned value. On a failure the host's steps are undone in
    reverse from the before-state and read back again, and the hosts not started are skipped
    (--max-fail). Manual steps are reported, never run. Ctrl-C lets the command in flight
    finish, then rolls the host back and stops. After a host's steps, its failing queues are
    retried (Retry-Queue) and watched until they drain or --verify-timeout passes; if the
    symptom persists the changes stay (they read back as planned) and the host is reported
    "NOT VERIFIED" with the findings that remain.

    Exit 0: every host done and verified, or nothing to do; 5: a step failed and was rolled
    back, a host was skipped or interrupted, or a host is not verified; 6: a rollback failed
    (a person must look); 4: refused; 3: a planned host could not be reached for the stale
    check, 7: it answered the stale check's commands with an error (nothing changed); 1: bad
    input.
    """
    plan_file = read_plan_file(plan_json)
    cancel = threading.Event()
    with _fleet(inventory, lab, plan_file.plan.source, ask_pass, str(plan_file.path)) as fleet, \
            sigint_cancels(cancel):  # fmt: skip
        try:
            report = apply_plan(
                plan_file, fleet.targets, fleet.credentials, approve=approve, allow_restart=allow_restart,
                serial=serial, max_fail=max_fail, verify_timeout=verify_timeout, journal=journal,
                operator=operator, ticket=ticket, cancel=cancel, forks=forks, break_lock=break_lock,
            )  # fmt: skip
        except StalePlanError as exc:
            if fmt == "json":
                # A ticket system reads what drifted from stdout; the one line on stderr and
                # exit 4 stay as for every refusal.
                sys.stdout.write(json.dumps(_stale_document(plan_file.plan.digest, exc), indent=2,
                                            ensure_ascii=True) + "\n")  # fmt: skip
            raise
    if fmt == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=True) + "\n")
    else:
        render_apply(report, details=Details(details))
    sys.exit(report.exit_code)


def _stale_document(digest: str, error: StalePlanError) -> dict[str, object]:
    return {
        "plan_digest": digest,
        "exit_code": error.exit_code,
        "refused": {"error": type(error).__name__, "message": str(error),
                    "drift": [item.to_dict() for item in error.drift]},
    }  # fmt: skip


def render_rollback(report: RollbackReport) -> None:
    if not report.hosts:
        click.echo(f"Nothing to undo: apply run {report.undoes} left no change that is not undone.")
    for host in report.hosts:
        click.echo(terminal(f"{host.host}: {'rolled back' if host.ok else 'ROLLBACK FAILED'}"))
        for step in host.steps:
            click.echo(_step(step))
    click.echo(f"Journal: {terminal(report.journal)} (run {report.run}, undoing {report.undoes})")
    click.echo(f"exit {report.exit_code}")


@click.command("rollback")
@click.argument("journal_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--host", "hosts", multiple=True, metavar="HOST", help="Only this host (repeatable).")
@click.option("--run", "run", metavar="RUN", help="The apply run to undo (default: the journal's last).")
@click.option("--allow-restart", is_flag=True,
              help="Allow the MSExchangeTransport restart that makes restored settings take effect.")
@_target_options
def rollback(journal_file: str, hosts: tuple[str, ...], run: str | None, allow_restart: bool,
             inventory: str | None, lab: str | None, ask_pass: bool, operator: str | None,
             ticket: str | None, break_lock: str | None, fmt: str) -> None:  # fmt: skip
    """Undo a journaled apply: every step it ran (or may have run) and did not undo, last
    first, from the journaled before-state, each read back afterwards. Journaled in the same
    file. The hosts are reached as the apply reached them unless --inventory/--lab is given.

    Exit 0: everything undone (or nothing left to undo); 6: a step could not be undone;
    4: refused (a restart without --allow-restart, a host not in the inventory); 1: bad input.
    """
    applied = read_apply(journal_file, run)
    with _fleet(inventory, lab, applied.source, ask_pass, journal_file) as fleet:
        report = rollback_journal(journal_file, fleet.targets, fleet.credentials, run=applied.run,
                                  hosts=hosts, allow_restart=allow_restart, operator=operator,
                                  ticket=ticket, break_lock=break_lock)  # fmt: skip
    if fmt == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=True) + "\n")
    else:
        render_rollback(report)
    sys.exit(report.exit_code)
