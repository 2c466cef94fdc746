"""Running a playbook: scan, keep what is in the playbook's scope, plan, and apply what the
playbook's approval rule allows; then report per host.

The steps, by mode:

- ``diagnose``: scan and evaluate. Nothing is planned.
- ``plan``: plan the fixes in ``fixes.plan`` and write the plan directory for review.
- ``apply`` with ``approval: required``: plan as above. Without ``--approve`` the run stops
  there (pending-approval, exit 2). With ``--approve <digest>`` it applies the plan whose
  digest matches: the plan made now from fresh facts when its digest is the approved one
  (planning is deterministic: same facts, same digest), else a plan of that digest already in
  the run directory, written by the run the change board reviewed (apply refuses it if a host
  drifted since). Neither: refused, nothing changed (exit 4).
- ``apply`` with ``approval: auto``: plan only the fixes in ``fixes.apply`` (non-disruptive by
  validation) and apply that plan at once; then scan again, plan everything in
  ``fixes.plan`` from the new facts, and leave that plan for approval.

Planning uses the planning core (agent.planning.build_plan) on the in-scope findings of each
host, so the plan (and its digest) is the one ``exfix plan`` would make for the same findings;
applying uses agent.apply.apply_plan, which checks the digest and drift, journals every step,
reads every change back, rolls back on failure and verifies that the queues drain.

A run that will apply (``auto``; ``required`` with ``--approve``) holds its hosts first
(agent.apply.hold_hosts: each host's flock and change marker), then scans ("before"), plans
and applies under the hold, with the scan's facts: no other exfix run could change a held
host since the scan, so apply's stale check compares every fingerprint with those facts
instead of collecting the host again, and each step's before-read still catches a change made
by hand. apply lets go of the hold's markers at its end, before the "after" scan; a run that
ends up applying nothing lets go of them once it knows. A host the hold could not take is not
held, and apply treats it as it treats any host: it locks it (another run holding it refuses
the apply, as it always did: nothing changed, exit 4) and collects it for the stale check. A
run with approval required and no ``--approve`` holds nothing: it stops at pending-approval.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.apply import (
    ApplyReport,
    HostApply,
    HostHold,
    HostOutcome,
    StepStatus,
    apply_plan,
    hold_hosts,
    read_plan_file,
)
from agent.apply.results import CheckStatus
from agent.errors import HostError, RefusedError, RemoteCommandError, StalePlanError, StaleSetting, UsageError
from agent.fixes.registry import KINDS
from agent.inventory import CredentialResolver
from agent.model.findings import Finding
from agent.model.plan import Blocker, HostPlan, HostVars, Outstanding, Plan, PlanSource, plan_from_json
from agent.model.playbook_run import (
    ActionStatus,
    ActionView,
    HostResult,
    Outcome,
    PlanArtifact,
    PlanRole,
    PlaybookRun,
    QueueView,
    VarValue,
)
from agent.model.results import HostScan, HostStatus, ScanReport
from agent.model.target import HostTarget
from agent.planning import build_plan
from agent.planning.schedule import DEFAULT_APPLY_FORKS
from agent.report.playbook_run import render_json
from agent.review import apply_command, write_plan_dir
from agent.review.files import OwnedDir
from agent.rules.metadata import RuleKind
from agent.rules.registry import RULES_BY_ID
from agent.scan import DEFAULT_FORKS, DEFAULT_HOST_TIMEOUT, now_iso, scan_fleet
from agent.workflow.playbook import Approval, Mode, Playbook, Scope, fix_filter, scope_for

TICKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DIGEST = re.compile(r"^[0-9a-f]{64}$")
JOURNAL_FILE = "journal.jsonl"

Log = Callable[[str], None]


def check_ticket(ticket: str) -> str:
    """A ticket id is untrusted input that names files and tags the journal: letters, digits,
    '.', '_' and '-' only, 1 to 64 characters, starting with a letter or digit (so never '..')."""
    if not TICKET.match(ticket):
        raise UsageError(
            "--ticket must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return ticket


def check_digest(digest: str) -> str:
    if not DIGEST.match(digest):
        raise UsageError("--approve must be a plan digest: 64 lower-case hexadecimal characters")
    return digest


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Everything about a run that does not come from the playbook."""

    out_dir: Path
    operator: str
    ticket: str | None = None
    approve: str | None = None
    plan_source: PlanSource | None = None
    forks: int = DEFAULT_FORKS
    host_timeout: float = DEFAULT_HOST_TIMEOUT
    # Builds the command that runs this playbook again with --approve <digest> (for the ticket).
    approve_command: Callable[[str], str] | None = None


# --- the pieces -----------------------------------------------------------------------------


def _host_vars(targets: Sequence[HostTarget], values: Mapping[str, VarValue]) -> dict[str, HostVars]:
    """Inventory host variables, with the playbook's planner variables over them where set."""
    override = values.get("exfix_external_dns_servers")
    external = override if isinstance(override, tuple) and override else None
    return {t.name: HostVars(external_dns_servers=external or t.external_dns_servers) for t in targets}


def _scanned(report: ScanReport) -> tuple[HostScan, ...]:
    return tuple(h for h in report.hosts if h.status is HostStatus.SCANNED and h.facts is not None)


def _view(report: ScanReport) -> tuple[HostScan, ...]:
    """The scanned hosts as a ticket sees them: each with the organisation findings naming it
    beside its own (planning uses the report itself, so nothing is planned twice)."""
    return tuple(dataclasses.replace(h, findings=report.findings_for(h.host)) for h in _scanned(report))


def _make_plan(
    report: ScanReport, scope: Scope, fixes: Sequence[str], host_vars: Mapping[str, HostVars],
    source: PlanSource | None,
) -> Plan:  # fmt: skip
    keep = fix_filter(fixes)
    facts = report.scanned_facts()
    findings = {h.host: tuple(f for f in scope.filter(h.findings) if keep(f)) for h in _scanned(report)}
    shared = tuple(f for o in report.organizations for f in scope.filter(o.findings) if keep(f))
    return build_plan(list(facts.values()), findings, host_vars, source=source, organization_findings=shared)


def _plan_dir(out_dir: Path, plan: Plan) -> Path:
    return out_dir / f"plan-{plan.digest[:16]}"


def _write_bundle(plan: Plan, out_dir: Path, role: PlanRole, log: Log) -> PlanArtifact:
    directory = _plan_dir(out_dir, plan)
    files = write_plan_dir(plan, directory, overwrite=True)
    log(f"plan {plan.digest} written to {directory}")
    return PlanArtifact(
        role=role,
        digest=plan.digest,
        directory=str(directory),
        plan_json=str(files.plan_json),
        review_md=str(files.review),
        review_html=str(files.review_html),
        scripts=tuple(str(p) for p in files.scripts),
        apply_command=None if role is PlanRole.APPLIED else apply_command(plan, str(files.plan_json)),
    )


def _stored_plan(out_dir: Path, digest: str) -> Plan | None:
    """The plan of ``digest`` written to the run directory by an earlier run, if any."""
    candidate = out_dir / f"plan-{digest[:16]}" / "plan.json"
    if not candidate.is_file():
        return None
    plan = plan_from_json(candidate.read_text(encoding="utf-8"), source=str(candidate), kinds=KINDS)
    return plan if plan.digest == digest else None


def _queues(scan: HostScan | None) -> tuple[QueueView, ...]:
    if scan is None or scan.facts is None:
        return ()
    return tuple(QueueView.of(q) for q in scan.facts.queues)


def _concerning(plan: Plan, host: str) -> tuple[HostPlan, ...]:
    """The organisation units done for ``host`` (a send connector for its failing domain)."""
    return tuple(u for u in plan.organizations if host in u.servers)


def _actions(plan: Plan | None, host: str, status: ActionStatus) -> tuple[ActionView, ...]:
    """The steps done for ``host``: the organisation's that concern it, then its own."""
    if plan is None:
        return ()
    try:
        units = (*_concerning(plan, host), plan.host(host))
    except KeyError:
        return ()
    return tuple(
        ActionView(
            a.id,
            a.fix_id,
            a.kind,
            a.description,
            a.disruptive,
            a.manual,
            ActionStatus.MANUAL if a.manual else status,
            plan.digest,
        )
        for unit in units
        for a in unit.actions
    )


_BLOCKED = {
    Blocker.VARIABLE: "needs a value only you can choose",
    Blocker.REFUSED: "its fix would break something else, so exfix left it out",
    Blocker.MANUAL: "a person must run its manual step",
    Blocker.ADVICE: "needs a person (see its advice)",
    Blocker.CAUSE: "waits for its cause",
}


def _outstanding(plan: Plan | None, host: str, findings: Sequence[Finding]) -> tuple[Outstanding, ...]:
    """What stands in the way of each of ``findings`` (in scope, for ``host``) that the plan
    does not address: as the plan's units say (agent/planning/outstanding.py), and, for a
    finding the plan does not hold because this playbook does not plan its fix, that."""
    if plan is None:
        return ()
    try:
        units = (*_concerning(plan, host), plan.host(host))
    except KeyError:
        return ()
    known = {o.finding_id: o for unit in units for o in unit.outstanding}
    planned = {f.id for unit in units for f in unit.findings}
    out: list[Outstanding] = []
    for finding in findings:
        if finding.id in known:
            out.append(known[finding.id])
        elif finding.id not in planned:
            fix = f"its fix ({finding.fix_id}) is" if finding.fix_id else "it is"
            message = (
                f"This playbook does not plan {fix} outside this playbook's fixes; exfix plan, or a playbook "
                "that plans it, says what it would change."
            )
            out.append(Outstanding(finding.id, finding.rule_id, Blocker.ADVICE, message))
    return tuple(out)


def _stays(outstanding: Sequence[Outstanding]) -> str:
    """One sentence: which findings stay and why, for the host's reason."""
    parts = []
    for item in outstanding:
        why = _BLOCKED[item.blocker]
        if item.variable:
            why += f" (set {item.variable})"
        parts.append(f"{item.rule_id} {why}")
    return f"{len(outstanding)} problem(s) stay: " + "; ".join(parts) + "."


def _advisory_only(findings: Sequence[Finding]) -> bool:
    """True when every finding is advice exfix cannot act on (the cause is outside the host)."""
    return all(
        (rule := RULES_BY_ID.get(f.rule_id)) is not None and rule.metadata.kind is RuleKind.ADVISORY
        for f in findings
    )


def _not_scanned(scan: HostScan) -> HostResult:
    """A host the scan could not read: unreachable (exfix could not talk to it), or
    command-failed (it answered Get-ExchangeServer with an error)."""
    if scan.status is HostStatus.COMMAND_FAILED:
        return HostResult(
            host=scan.host,
            outcome=Outcome.COMMAND_FAILED,
            reason="The server answered with an error, so it could not be scanned (command-failed).",
            error=scan.error,
        )
    return HostResult(
        host=scan.host,
        outcome=Outcome.UNREACHABLE,
        reason=f"The server could not be scanned ({scan.status.value}).",
        error=scan.error,
    )


def _by_host(report: ScanReport | None) -> dict[str, HostScan]:
    if report is None:
        return {}
    return {h.host: dataclasses.replace(h, findings=report.findings_for(h.host)) for h in report.hosts}


# --- outcomes -------------------------------------------------------------------------------


def _not_applied(scan: HostScan, scope: Scope, plan: Plan | None, role: PlanRole | None) -> HostResult:
    """A host the run did not change: healthy, findings only, or planned / pending approval."""
    findings = scope.filter(scan.findings)
    status = ActionStatus.PENDING_APPROVAL if role is PlanRole.PENDING_APPROVAL else ActionStatus.PLANNED
    actions = _actions(plan, scan.host, status)
    outstanding = _outstanding(plan, scan.host, findings)
    if any(not a.manual for a in actions):
        outcome = Outcome.PENDING_APPROVAL if role is PlanRole.PENDING_APPROVAL else Outcome.PLANNED
        steps = sum(1 for a in actions if not a.manual)
        reason = (
            f"{steps} change(s) planned; they wait for approval of the plan's digest."
            if outcome is Outcome.PENDING_APPROVAL
            else f"{steps} change(s) planned for review; this playbook does not apply them."
        )
    elif findings:
        outcome = Outcome.FINDINGS
        if plan is None:
            reason = f"{len(findings)} problem(s) found; this playbook only diagnoses, it plans no change."
        elif outstanding:
            reason = _stays(outstanding)
        elif actions:
            reason = "Only manual steps are planned: a person must carry them out on the server."
        elif _advisory_only(findings):
            reason = "The cause is outside the server's configuration; see the advice in the findings."
        else:
            reason = f"{len(findings)} problem(s) found that this playbook does not change."
    else:
        outcome, reason = _clean(scan)
    return HostResult(
        host=scan.host,
        outcome=outcome,
        reason=reason,
        exchange_version=scan.exchange_version,
        findings=findings,
        actions=actions,
        queues_before=_queues(scan),
        outstanding=outstanding,
    )


def _clean(scan: HostScan) -> tuple[Outcome, str]:
    """A host with nothing in scope found: healthy, or partial when a fact area could not be
    collected (its rules were not judged, so "nothing found" is not "nothing wrong": exit 8, as
    ``exfix scan`` exits for the same host)."""
    if not scan.partial:
        return Outcome.HEALTHY, "Nothing in this playbook's scope is wrong."
    areas = ", ".join(f"{a.area.value} ({a.reason})" for a in scan.failed_areas)
    rules = ", ".join(dict.fromkeys(j.rule_id for j in scan.not_judged)) or "none"
    return Outcome.PARTIAL, (
        f"Nothing found, but not everything could be judged: the fact area(s) {areas} could not be "
        f"collected, so these rules were not run: {rules}."
    )


def _applied(
    before: HostScan, after: HostScan | None, scope: Scope, plan: Plan, applied: HostApply,
    shared: Sequence[HostApply] = (),
) -> HostResult:  # fmt: skip
    """A host whose plan was applied: the apply engine's HostApply says what happened, and
    ``shared`` what the organisation units done for it did."""
    step_status = {s.action: s for unit in (*shared, applied) for s in unit.steps}
    mapping = {
        StepStatus.OK: ActionStatus.APPLIED,
        StepStatus.FAILED: ActionStatus.FAILED,
        StepStatus.MANUAL: ActionStatus.MANUAL,
        StepStatus.NOT_RUN: ActionStatus.NOT_RUN,
        StepStatus.ROLLED_BACK: ActionStatus.ROLLED_BACK,
        StepStatus.UNCHANGED: ActionStatus.UNCHANGED,
        StepStatus.ROLLBACK_FAILED: ActionStatus.ROLLBACK_FAILED,
    }
    views = []
    for view in _actions(plan, before.host, ActionStatus.NOT_RUN):
        step = step_status.get(view.id)
        status = mapping[step.status] if step is not None else view.status
        error = None if step is None else step.error
        views.append(dataclasses.replace(view, status=status, error=error))
    remaining = scope.filter(after.findings) if after is not None and after.facts is not None else None
    outcome_map = {
        HostOutcome.ROLLBACK_FAILED: (
            Outcome.FAILED,
            "A change failed and undoing it failed too: a person must look at this server now.",
        ),
        HostOutcome.ROLLED_BACK: (
            Outcome.ROLLED_BACK,
            "A change failed; the changes already made were undone and read back as before.",
        ),
        HostOutcome.SKIPPED: (
            Outcome.PENDING_APPROVAL,
            "Not started: another server failed first (max_fail), so this one was left untouched.",
        ),
    }
    if applied.outcome in outcome_map:
        outcome, reason = outcome_map[applied.outcome]
    elif applied.outcome is HostOutcome.NOTHING_TO_DO and applied.verified and any(
        u.outcome is HostOutcome.DONE for u in shared
    ):
        outcome, reason = (
            Outcome.REMEDIATED,
            "The organisation's change for this server was applied and read back, and its queues drain.",
        )
    elif applied.outcome is HostOutcome.NOTHING_TO_DO:
        left = remaining if remaining is not None else scope.filter(before.findings)
        stays = _outstanding(plan, before.host, left)
        if not left:
            outcome, reason = _clean(after if after is not None and after.facts is not None else before)
        elif stays:
            outcome, reason = Outcome.FINDINGS, _stays(stays)
        else:
            reason = "Only manual steps or advice: a person must act on the server."
            outcome = Outcome.FINDINGS
    elif applied.verified:
        outcome, reason = Outcome.REMEDIATED, "Every change was applied and read back; " + _checked(applied)
    elif applied.new_findings:
        outcome = Outcome.FAILED
        names = ", ".join(dict.fromkeys(f"{f.rule_id} ({f.subject})" for f in applied.new_findings))
        reason = (
            f"The changes were applied and read back, but they created a fault the server did not have: "
            f"{names}. Roll them back (exfix rollback) or fix what the new finding says."
        )
    else:
        outcome = Outcome.FAILED
        names = ", ".join(sorted({f.rule_id for f in applied.remaining_findings})) or _failed_checks(applied)
        reason = f"The changes were applied and read back, but the symptom persists ({names})."
    return HostResult(
        host=before.host,
        outcome=outcome,
        reason=reason,
        error=applied.error,
        exchange_version=before.exchange_version,
        findings=scope.filter(before.findings),
        remaining=remaining,
        actions=tuple(views),
        queues_before=_queues(before),
        queues_after=_queues(after) if after is not None else None,
        outstanding=_outstanding(plan, before.host, remaining) if remaining else (),
        new_findings=applied.new_findings,
        verified=applied.verified,
        probes=applied.probes,
        tracking=applied.tracking,
    )


def _checked(applied: HostApply) -> str:
    """One sentence: what verified the change, and what could not be checked."""
    drained = sum(1 for q in applied.queues if q.status is CheckStatus.PASS)
    parts = [f"the queues drain ({drained} watched)" if applied.queues else "no queue was failing"]
    resolved = sum(1 for p in applied.probes if p.status is CheckStatus.PASS)
    if resolved:
        parts.append(f"{resolved} lookup(s) the queues need resolve on the host")
    sent = [t for t in applied.tracking if t.status is CheckStatus.PASS]
    if sent:
        events = sum(t.count for t in sent)
        parts.append(f"{events} SEND event(s) to {len(sent)} next hop(s) since the change")
    missing = {c.detail for c in applied.probes if c.status is CheckStatus.NOT_AVAILABLE}
    missing |= {c.reason for c in applied.tracking if c.status is CheckStatus.NOT_AVAILABLE}
    text = ", ".join(parts) + "."
    if missing:
        more = "; ..." if len(missing) > 2 else ""
        text += " Not available: " + "; ".join(sorted(missing)[:2]) + more + "."
    return text


def _failed_checks(applied: HostApply) -> str:
    """The checks of the symptom that failed, in a few words each (the first three)."""
    parts = [f"queue {q.next_hop} did not drain" for q in applied.queues if q.status is CheckStatus.FAIL]
    parts += [f"{p.rdtype} {p.qname} still {p.after or 'unanswered'} at {p.server or 'the host'}"
              for p in applied.probes if p.status is CheckStatus.FAIL]  # fmt: skip
    parts += [f"no SEND event to {t.next_hop} since the change" for t in applied.tracking
              if t.status is CheckStatus.FAIL]  # fmt: skip
    if not parts:
        return applied.error or "the queues did not drain"
    return "; ".join(parts[:3]) + ("; ..." if len(parts) > 3 else "")


# --- the run --------------------------------------------------------------------------------


class _Run:
    def __init__(
        self,
        playbook: Playbook,
        values: Mapping[str, VarValue],
        targets: Sequence[HostTarget],
        credentials: CredentialResolver,
        settings: RunSettings,
        source: str,
        log: Log,
    ) -> None:
        self.playbook = playbook
        self.values = dict(values)
        self.targets = tuple(targets)
        self.credentials = credentials
        self.settings = settings
        self.source = source
        self.log = log
        self.scope = scope_for(playbook, values)
        self.host_vars = _host_vars(targets, values)
        self.started = now_iso()
        self.plans: list[PlanArtifact] = []
        self.journal: str | None = None
        self.refused: str | None = None
        # apply stopped before changing anything because this host could not be checked for
        # drift: unreachable (a HostError) or command-failed (a RemoteCommandError).
        self.refused_host: str | None = None
        self.refused_outcome: Outcome = Outcome.UNREACHABLE
        self.stale: tuple[StaleSetting, ...] = ()  # what drifted, when apply refused a stale plan

    def scan(self, what: str) -> ScanReport:
        self.log(f"{what}: scanning {len(self.targets)} host(s)")
        return scan_fleet(self.targets, self.credentials, source=self.source, forks=self.settings.forks,
                          host_timeout=self.settings.host_timeout)  # fmt: skip

    def plan(self, report: ScanReport, fixes: Sequence[str]) -> Plan:
        return _make_plan(report, self.scope, fixes, self.host_vars, self.settings.plan_source)

    def bundle(self, plan: Plan, role: PlanRole) -> PlanArtifact:
        artifact = _write_bundle(plan, self.settings.out_dir, role, self.log)
        self.plans.append(artifact)
        return artifact

    def hold(self) -> HostHold:
        """The change markers of every host of the run, taken before the "before" scan (a run
        that will apply: agent/apply/hold.py): no other exfix run changes a host between the
        scan and the apply, so apply takes the scan's facts instead of collecting them again.
        A host that cannot be held is left out, and apply locks it as it locks any host."""
        self.log(f"holding {len(self.targets)} host(s) before scanning them")
        ticket = self.settings.ticket
        purpose = f"playbook {self.playbook.name}" + (f", ticket {ticket}" if ticket else "")
        return hold_hosts(self.targets, self.credentials, journal=self.settings.out_dir / JOURNAL_FILE,
                          purpose=purpose, operator=self.settings.operator, ticket=self.settings.ticket,
                          forks=self.settings.forks)  # fmt: skip

    def apply(
        self, artifact: PlanArtifact, before: ScanReport, held: HostHold, *, allow_restart: bool
    ) -> ApplyReport | None:
        """Apply the plan written at ``artifact`` (read back from disk, so its scripts are
        checked against the plan too) under ``held``, with the facts of ``before`` (scanned
        under it). Returns the ApplyReport, or None when apply refused (``self.refused`` says
        why; nothing was changed). The hold's markers are let go of either way."""
        self.journal = str(held.journal)
        self.log(f"applying plan {artifact.digest}")
        try:
            return apply_plan(
                read_plan_file(artifact.plan_json),
                self.targets,
                self.credentials,
                approve=artifact.digest,
                allow_restart=allow_restart,
                serial=self.playbook.serial,
                max_fail=self.playbook.max_fail,
                verify_timeout=self.playbook.verify.timeout,
                # --forks is how many hosts the playbook collects at once; it changes at most
                # apply's own default at once (agent.planning.schedule.DEFAULT_APPLY_FORKS).
                forks=min(self.settings.forks, DEFAULT_APPLY_FORKS),
                held=held,
                collected=before.scanned_facts(),
            )
        except (RefusedError, HostError, RemoteCommandError) as exc:
            self.refused = str(exc)
            self.refused_host = exc.host if isinstance(exc, (HostError, RemoteCommandError)) else None
            self.stale = exc.drift if isinstance(exc, StalePlanError) else ()
            if isinstance(exc, RemoteCommandError):
                self.refused_outcome = Outcome.COMMAND_FAILED
            self.log(f"apply refused, nothing changed: {exc}")
            return None

    def finish(self, hosts: Sequence[HostResult]) -> PlaybookRun:
        out_dir = self.settings.out_dir
        with open_run_dir(out_dir) as directory:
            return self._write_run(directory, hosts)

    def _write_run(self, directory: OwnedDir, hosts: Sequence[HostResult]) -> PlaybookRun:
        out_dir = self.settings.out_dir
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        finished = now_iso()
        for n in itertools.count(1):
            run = self._document(hosts, out_dir / f"run-{stamp}-{n}.json", finished)
            try:
                # Created, never opened by an existing name: a link planted under the next run
                # file's name is skipped like any other taken name, never written through.
                directory.create(Path(run.run_file).name, render_json(run).encode("utf-8"))
            except FileExistsError:
                continue
            return run
        raise AssertionError("unreachable")

    def _document(self, hosts: Sequence[HostResult], run_file: Path, finished: str) -> PlaybookRun:
        return PlaybookRun(
            ticket=self.settings.ticket,
            playbook=self.playbook,
            variables=tuple(sorted(self.values.items())),
            source=self.source,
            operator=self.settings.operator,
            started=self.started,
            finished=finished,
            hosts=tuple(hosts),
            directory=str(self.settings.out_dir),
            run_file=str(run_file),
            plans=tuple(self.plans),
            journal=self.journal,
            approved=self.settings.approve,
            refused=self.refused,
            stale=self.stale if self.refused is not None else (),
            approve_command=self._approve_command(),
        )

    def _approve_command(self) -> str | None:
        pending = next((p for p in self.plans if p.role is PlanRole.PENDING_APPROVAL), None)
        if pending is None or self.settings.approve_command is None:
            return None
        if self.playbook.approval is not Approval.REQUIRED:
            return None  # an auto playbook never applies the rest: exfix apply (or dns-451-remediate) does
        return self.settings.approve_command(pending.digest)


def open_run_dir(out_dir: Path) -> OwnedDir:
    """The run directory, made when absent, with no link at any component exfix chose: a
    relative path (the default ``exfix-runs/<ticket>``) is walked from the working directory
    one component at a time without following a link; of an absolute path the user gave, the
    last component. Raises UnsafePathError (exit 1) on a link."""
    if out_dir.is_absolute() or ".." in out_dir.parts:
        return OwnedDir.open(out_dir, create=True)
    current = OwnedDir.open(".")
    for part in out_dir.parts:
        if part == ".":
            continue
        below = current.subdir(part, create=True)
        current.close()
        current = below
    return current


def run_playbook(
    playbook: Playbook,
    values: Mapping[str, VarValue],
    targets: Sequence[HostTarget],
    credentials: CredentialResolver,
    settings: RunSettings,
    *,
    source: str,
    log: Log = lambda _message: None,
) -> PlaybookRun:
    """Run ``playbook`` over ``targets`` and write the run's artifacts into ``settings.out_dir``.
    Raises UsageError (exit 1) for a request the playbook cannot honour; every host problem
    becomes that host's outcome instead."""
    if settings.ticket is not None:
        check_ticket(settings.ticket)
    if settings.approve is not None:
        check_digest(settings.approve)
        if playbook.mode is not Mode.APPLY:
            raise UsageError(
                f"playbook {playbook.name} runs in {playbook.mode.value} mode and never applies: "
                "--approve means nothing here"
            )
        if playbook.approval is Approval.AUTO:
            raise UsageError(
                f"playbook {playbook.name} applies only its automatic fixes; approve the rest with the "
                "`exfix apply` command its plan directory names, or with a playbook whose approval is "
                "required"
            )
    open_run_dir(settings.out_dir).close()
    run = _Run(playbook, values, targets, credentials, settings, source, log)
    applies = playbook.mode is Mode.APPLY and (
        playbook.approval is Approval.AUTO or settings.approve is not None
    )
    # A run that will apply holds its hosts from before its scan to the end of its apply; one
    # with approval required and no --approve stops at pending-approval and holds nothing.
    with run.hold() if applies else contextlib.nullcontext() as held:
        before = run.scan("before")
        unscanned = [_not_scanned(h) for h in before.hosts if h.status is not HostStatus.SCANNED]
        scanned = _view(before)

        if playbook.mode is Mode.DIAGNOSE:
            return run.finish(_ordered(before, [*unscanned, *(_not_applied(h, run.scope, None, None)
                                                               for h in scanned)]))  # fmt: skip

        if playbook.mode is Mode.PLAN:
            plan = run.plan(before, playbook.plan_fixes)
            role = PlanRole.PLANNED
            if plan.actions:
                run.bundle(plan, role)
            return run.finish(_ordered(before, [*unscanned, *(_not_applied(h, run.scope, plan, role)
                                                               for h in scanned)]))  # fmt: skip

        if playbook.approval is Approval.AUTO:
            assert held is not None  # an auto playbook always applies, so it holds
            return _auto(run, before, unscanned, held)
        return _required(run, before, unscanned, held)


def _required(
    run: _Run, before: ScanReport, unscanned: list[HostResult], held: HostHold | None
) -> PlaybookRun:
    """``held``: the hold of the hosts when --approve was given (None: the run stops at
    pending-approval, nothing is applied)."""
    playbook, settings = run.playbook, run.settings
    scanned = _view(before)
    plan = run.plan(before, playbook.plan_fixes)
    role = PlanRole.PENDING_APPROVAL

    def pending(current: Plan) -> PlaybookRun:
        if held is not None:
            held.release()  # nothing (more) to apply: the markers go before the run's report
        if current.actions:
            run.bundle(current, role)
        results = [*unscanned, *(_not_applied(h, run.scope, current, role) for h in scanned)]
        if run.refused_host is not None:
            # apply could not check a planned host for drift: that host is unreachable (exit
            # 3) or command-failed (exit 7); the others were not touched and still wait.
            reason = (
                "The server answered a command with an error before applying; nothing was changed."
                if run.refused_outcome is Outcome.COMMAND_FAILED
                else "The server could not be reached before applying; nothing was changed."
            )
            results = [
                dataclasses.replace(r, outcome=run.refused_outcome, error=run.refused, reason=reason)
                if r.host == run.refused_host else r
                for r in results
            ]  # fmt: skip
            run.refused = None
        return run.finish(_ordered(before, results))

    if not plan.actions or settings.approve is None or held is None:
        if settings.approve is not None:
            run.log("nothing to apply: the fleet needs no change in this playbook's scope")
        return pending(plan)
    chosen: Plan | None = plan if plan.digest == settings.approve else None
    if chosen is None:
        chosen = _stored_plan(settings.out_dir, settings.approve)
        if chosen is not None:
            run.log(f"the fleet's plan is now {plan.digest}; applying the reviewed plan {chosen.digest} "
                    "from the run directory (apply refuses it if a host drifted)")  # fmt: skip
    if chosen is None:
        run.refused = (
            f"the approved digest {settings.approve} is neither the plan made now ({plan.digest}) nor a "
            f"plan in {settings.out_dir}; the fleet changed since the review, or the digest is wrong. "
            "Review the new plan."
        )
        run.log(run.refused)
        return pending(plan)
    artifact = run.bundle(chosen, PlanRole.APPLIED)
    report = run.apply(artifact, before, held, allow_restart=playbook.allow_restart)
    if report is None:  # refused: the reviewed plan still waits
        run.plans.remove(artifact)
        return pending(chosen)
    after = run.scan("after")
    return run.finish(_after_apply(run, before, after, chosen, report, unscanned, None))


def _auto(run: _Run, before: ScanReport, unscanned: list[HostResult], held: HostHold) -> PlaybookRun:
    playbook = run.playbook
    automatic = run.plan(before, playbook.apply_fixes)
    report = None
    after: ScanReport | None = None
    if any(a.disruptive for a in automatic.actions):  # validation makes this impossible; never trust it
        run.refused = "the automatic plan holds a step that interrupts mail flow; it needs approval"
    elif any(not a.manual for a in automatic.actions):
        artifact = run.bundle(automatic, PlanRole.APPLIED)
        report = run.apply(artifact, before, held, allow_restart=False)
        if report is None:
            run.plans.remove(artifact)
        else:
            after = run.scan("after")  # the hold's markers were let go of at apply's end
    held.release()  # nothing applied: the markers go before the rest is planned
    rest = run.plan(after or before, playbook.plan_fixes)
    if rest.actions:
        run.bundle(rest, PlanRole.PENDING_APPROVAL)
    return run.finish(_after_apply(run, before, after, automatic, report, unscanned, rest))


def _after_apply(
    run: _Run, before: ScanReport, after: ScanReport | None, applied_plan: Plan, report: ApplyReport | None,
    unscanned: list[HostResult], rest: Plan | None,
) -> list[HostResult]:  # fmt: skip
    after_by_host = _by_host(after)
    applied_hosts = {} if report is None else {h.host: h for h in report.hosts}
    applied_orgs = {}
    if report is not None:
        pairs = zip(applied_plan.organizations, report.organizations, strict=True)
        applied_orgs = {(u.organization, u.host): r for u, r in pairs}
    results = list(unscanned)
    for scan in _view(before):
        later = after_by_host.get(scan.host)
        host_apply = applied_hosts.get(scan.host)
        if host_apply is not None:
            shared = [applied_orgs[(u.organization, u.host)] for u in _concerning(applied_plan, scan.host)]
            result = _applied(scan, later, run.scope, applied_plan, host_apply, shared)
            if rest is not None and result.outcome in (Outcome.REMEDIATED, Outcome.HEALTHY, Outcome.FINDINGS):
                pending = _actions(rest, scan.host, ActionStatus.PENDING_APPROVAL)
                if any(not a.manual for a in pending):
                    result = dataclasses.replace(
                        result,
                        outcome=Outcome.PENDING_APPROVAL,
                        reason="The non-disruptive changes were applied; the others wait for approval.",
                        actions=result.actions + pending,
                    )
            results.append(result)
            continue
        current = later if later is not None and later.status is HostStatus.SCANNED else scan
        if rest is not None:
            result = _not_applied(current, run.scope, rest, PlanRole.PENDING_APPROVAL)
        else:
            result = _not_applied(current, run.scope, None, None)
        results.append(HostResult(
            host=result.host, outcome=result.outcome, reason=result.reason, error=result.error,
            exchange_version=scan.exchange_version, findings=run.scope.filter(scan.findings),
            remaining=None if later is None else run.scope.filter(later.findings), actions=result.actions,
            queues_before=_queues(scan), queues_after=None if later is None else _queues(later),
            outstanding=result.outstanding,
        ))  # fmt: skip
    return _ordered(before, results)


def _ordered(before: ScanReport, results: Sequence[HostResult]) -> list[HostResult]:
    """Results in the inventory's order."""
    rank = {h.host: i for i, h in enumerate(before.hosts)}
    return sorted(results, key=lambda r: rank.get(r.host, len(rank)))
