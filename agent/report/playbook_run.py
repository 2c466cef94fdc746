"""A playbook run as JSON (``exfix.playbook-run/2``), text, a markdown ticket work note, or
text with Rundeck key-value lines.

Every value that came from a host goes through agent.report.safe (``terminal`` for text,
``markdown`` / ``markdown_code`` for markdown); JSON is safe through ``json.dumps`` with
``ensure_ascii``. Rundeck lines are reduced further (:func:`rundeck_value`).
"""

from __future__ import annotations

import json

from agent.model.playbook_run import HostResult, Outcome, PlaybookRun, QueueView
from agent.model.verification import CheckStatus, ProbeCheck, TrackingCheck
from agent.report import rundeck
from agent.report.safe import markdown_code, terminal
from agent.report.text import DETAIL_LIMIT, Details

# Inside a line of markdown only these characters make markup (emphasis, code, links, raw
# HTML, table cells). agent.report.safe.markdown escapes more (every '.', '-', '(' ...), which is
# right at the start of a line but litters a work note that a ticket system shows as raw text.
# Every value here goes mid-line, after text exfix writes.
_MD_INLINE = frozenset("\\`*_[]<>|~")


def _md(value: object) -> str:
    """A value made safe in the middle of a markdown line: one line, escapes shown, markup escaped."""
    return "".join("\\" + ch if ch in _MD_INLINE else ch for ch in terminal(value))


def render_json(run: PlaybookRun, details: Details = Details.ALL) -> str:
    """Every host in full, whatever ``details`` (which only the reports for a person take)."""
    return json.dumps(run.to_dict(), indent=2, ensure_ascii=True) + "\n"


# --- shared wording -------------------------------------------------------------------------


Step = tuple[str, str | None]  # a plain sentence, and the path or command it names (or None)


def _next_step(run: PlaybookRun) -> list[Step]:
    """What a person has to do next, in plain words."""
    pending = run.pending
    if run.refused is not None:
        return [("Nothing was changed. Review the new plan and approve its digest, or find out what changed.",
                 None)]  # fmt: skip
    outcome = run.outcome
    if outcome is Outcome.FAILED:
        return [("A person must look at the failed servers now: see each one's reason and the journal:",
                 run.journal)]  # fmt: skip
    if outcome is Outcome.ROLLED_BACK:
        return [("The failed change was undone. Read the error, fix the cause, and plan again.", None)]
    if pending is not None and any(h.outcome is Outcome.PENDING_APPROVAL for h in run.hosts):
        steps: list[Step] = [
            ("A change board reads the review page", pending.review_html),
            ("and approves the digest", pending.digest),
        ]
        if run.approve_command:
            steps.append(("Then this playbook applies exactly that plan:", run.approve_command))
        if pending.apply_command:
            steps.append(("Or the reviewed plan is applied directly:", pending.apply_command))
        return steps
    if pending is not None:
        return [("Review the plan (this playbook does not apply it):", pending.review_html)]
    if outcome is Outcome.UNREACHABLE:
        return [("Check that the unreachable servers are up and that remoting works, then run again.", None)]
    if outcome is Outcome.COMMAND_FAILED:
        return [("Read each failed server's error: the account may lack the RBAC role for the cmdlet, or "
                 "the inventory name may not be the server's name. Fix it, then run again.", None)]
    if outcome is Outcome.PARTIAL:
        return [("Some fact areas could not be collected (see each server's reason): fix what stops them "
                 "being read, then run again to judge the rules that were left out.", None)]
    if outcome is Outcome.FINDINGS:
        variables = sorted({o.variable for h in run.hosts for o in h.outstanding if o.variable})
        if variables:
            sentence = "Set in the inventory, then run again (each finding below says why):"
            return [(sentence, ", ".join(variables))]
        if any(h.outstanding for h in run.hosts):
            return [("Read the findings below: each says what stands in its way.", None)]
        return [("Read the findings below: this playbook does not change them.", None)]
    return [("Nothing to do.", None)]


def _queue_line(queue: QueueView) -> str:
    error = f", {queue.error_class}" if queue.error_class and queue.error_class != "None" else ""
    return f"{queue.identity} -> {queue.next_hop}: {queue.status}, {queue.message_count} message(s){error}"


def _probe_text(probe: ProbeCheck) -> str:
    where = "no server to ask" if probe.server is None else f"at {probe.server}"
    was = f", before {probe.before}" if probe.before else ""
    now = f": now {probe.after}" if probe.after else ""
    why = f" ({probe.detail})" if probe.detail and probe.status is not CheckStatus.PASS else ""
    return f"[{probe.status.value}] {probe.rdtype} {probe.qname} {where}{now}{was}{why}"


def _tracking_text(sent: TrackingCheck) -> str:
    if sent.status is CheckStatus.PASS:
        return (f"[pass] {sent.count} SEND event(s) to {sent.next_hop} since the change, the first at "
                f"{sent.first} via {sent.connector} to {sent.server_hostname}")  # fmt: skip
    return f"[{sent.status.value}] SEND events to {sent.next_hop}: {sent.reason}"


# --- text -----------------------------------------------------------------------------------


def _needs_a_look(host: HostResult) -> bool:
    return host.outcome not in (Outcome.HEALTHY, Outcome.REMEDIATED)


def detailed_hosts(run: PlaybookRun, details: Details) -> tuple[list[HostResult], int]:
    """The hosts a text or Markdown report prints in full, and how many more it leaves to the
    run record. ``failing``: the hosts that need a look, worst outcome first, then those a
    change fixed, the first DETAIL_LIMIT of them; ``all``: every host as listed; ``none``."""
    if details is Details.NONE:
        return [], 0
    if details is Details.ALL:
        return list(run.hosts), 0
    look = sorted((h for h in run.hosts if _needs_a_look(h)), key=lambda h: -h.outcome.rank)
    changed = [h for h in run.hosts if h.outcome is Outcome.REMEDIATED]
    chosen = look + changed
    return chosen[:DETAIL_LIMIT], max(0, len(chosen) - DETAIL_LIMIT)


def _host_text(host: HostResult) -> list[str]:
    lines = [f"{host.host}: {host.outcome.value}: {host.reason}"]
    if host.error:
        lines.append(f"    error: {host.error}")
    for finding in host.findings:
        lines.append(f"    finding [{finding.severity.value}] {finding.rule_id}: {finding.summary}")
    for finding in host.new_findings:
        severity = finding.severity.value
        lines.append(f"    NEW since the change [{severity}] {finding.rule_id}: {finding.summary}")
    for action in host.actions:
        lines.append(f"    {action.status.value}: {action.description}")
    for item in host.outstanding:
        variable = f" [set {item.variable}]" if item.variable else ""
        lines.append(f"    stays ({item.blocker.value}){variable} {item.rule_id}: {item.message}")
    for queue in host.queues_before:
        if queue.failing:
            lines.append(f"    queue before: {_queue_line(queue)}")
    if host.queues_after is not None:
        for queue in host.queues_after:
            lines.append(f"    queue after:  {_queue_line(queue)}")
    lines.extend(f"    lookup on the host {_probe_text(p)}" for p in host.probes)
    lines.extend(f"    message tracking {_tracking_text(t)}" for t in host.tracking)
    return lines


def _recap(run: PlaybookRun) -> list[str]:
    """One line per host, as ``exfix scan`` and ``exfix apply`` end: its outcome, how many
    findings, changes (planned or made: the outcome says which) and findings left, and why.
    The lines are made safe with the rest of the report, so the padding counts the name as
    it will be shown."""
    width = max(len("host"), *(len(terminal(h.host)) for h in run.hosts))
    lines = ["Recap", f"{'host':<{width}}  {'outcome':<16}  found  changes  stays  why"]
    for host in run.hosts:
        pad = " " * (width - len(terminal(host.host)))
        lines.append(f"{host.host}{pad}  {host.outcome.value:<16}  {len(host.findings):>5}  "
                     f"{len(host.actions):>7}  {len(host.outstanding):>5}  {host.reason}")  # fmt: skip
    return lines


def _by_rule(run: PlaybookRun) -> list[str]:
    """Each rule that fired before any change, across the fleet: on how many hosts, and on
    how many of them it is still there (a run that changed nothing leaves them all)."""
    hosts: dict[str, set[str]] = {}
    left: dict[str, set[str]] = {}
    severity: dict[str, str] = {}
    for host in run.hosts:
        for finding in host.findings:
            hosts.setdefault(finding.rule_id, set()).add(host.host)
            severity.setdefault(finding.rule_id, finding.severity.value)
        for finding in host.findings if host.remaining is None else host.remaining:
            left.setdefault(finding.rule_id, set()).add(host.host)
    if not hosts:
        return []
    lines = ["Findings by rule"]
    for rule_id in sorted(hosts, key=lambda r: (-len(hosts[r]), r)):
        n, still = len(hosts[rule_id]), len(left.get(rule_id, ()))
        lines.append(f"  {rule_id} [{severity[rule_id]}]: {n} host(s), still there on {still}")
    return lines


def render_text(run: PlaybookRun, details: Details = Details.FAILING) -> str:
    """The outcome and the next step, the hosts ``details`` picks in full, then a line per host.
    On the 200-host lab every host in full was 808 lines (dns-451-diagnose) and 1,252
    (dns-451-remediate); with the recap, 267 and 298."""
    lines = [
        f"exfix playbook {run.playbook.name}" + (f" (ticket {run.ticket})" if run.ticket else ""),
        run.message(),
        "",
    ]
    lines.extend(f"  {sentence} {code}" if code else f"  {sentence}" for sentence, code in _next_step(run))
    lines.append("")
    shown, more = detailed_hosts(run, details)
    for host in shown:
        lines.extend(_host_text(host))
    if more:
        lines.append(f"... and {more} more host(s) to look at or changed: --details all prints them all, "
                     f"the run record has everything ({run.run_file})")  # fmt: skip
    if shown or more:
        lines.append("")
    if run.hosts:
        lines.extend(_recap(run))
        lines.append("")
    rules = _by_rule(run)
    if rules:
        lines.extend([*rules, ""])
    if run.digest:
        lines.append(f"plan digest: {run.digest}")
    lines.append(f"run record: {run.run_file}")
    lines.append(f"exit code: {run.exit_code}")
    return "\n".join(terminal(line) for line in lines) + "\n"


# --- markdown (a ticket work note) ----------------------------------------------------------


def _md_host(host: HostResult) -> list[str]:
    lines = [f"### {_md(host.host)}: {_md(host.outcome.value)}", "", _md(host.reason), ""]
    if host.error:
        lines.extend([f"Error: {_md(host.error)}", ""])
    if host.findings:
        lines.append("Found:")
        lines.extend(f"- {_md(f.title)}: {_md(f.summary)} ({markdown_code(f.rule_id)})"
                     for f in host.findings)  # fmt: skip
        lines.append("")
    if host.new_findings:
        lines.append("Created by the change (not there before):")
        lines.extend(
            f"- {_md(f.title)}: {_md(f.summary)} ({markdown_code(f.rule_id)})" for f in host.new_findings
        )
        lines.append("")
    if host.outstanding:
        lines.append("Stays as it is, and what stands in the way:")
        for item in host.outstanding:
            variable = f" Set {markdown_code(item.variable)}." if item.variable else ""
            rule, blocker = markdown_code(item.rule_id), _md(item.blocker.value)
            lines.append(f"- {rule} ({blocker}): {_md(item.message)}{variable}")
        lines.append("")
    if host.actions:
        lines.append("Changes:")
        lines.extend(f"- {_md(a.status.value)}: {_md(a.description)}"
                     + (" (interrupts mail flow)" if a.disruptive else "") for a in host.actions)  # fmt: skip
        lines.append("")
    failing_before = [q for q in host.queues_before if q.failing]
    if failing_before or host.queues_after:
        lines.append("| queue | next hop | before | after |")
        lines.append("|---|---|---|---|")
        after = {q.next_hop.lower(): q for q in host.queues_after or ()}
        shown = failing_before or list(host.queues_before)
        for queue in shown:
            later = after.get(queue.next_hop.lower())
            then = f"{queue.status}, {queue.message_count} msg"
            if host.queues_after is None:
                now = "not checked"
            else:
                now = "gone (empty)" if later is None else f"{later.status}, {later.message_count} msg"
            lines.append(f"| {_md(queue.identity)} | {_md(queue.next_hop)} | {_md(then)} | "
                         f"{_md(now)} |")  # fmt: skip
        lines.append("")
    if host.probes or host.tracking:
        lines.append("Verified on the server:")
        lines.extend(f"- lookup (Resolve-DnsName on the host) {_md(_probe_text(p))}" for p in host.probes)
        lines.extend(f"- Get-MessageTrackingLog {_md(_tracking_text(t))}" for t in host.tracking)
        lines.append("")
    return lines


def render_markdown(run: PlaybookRun, details: Details = Details.FAILING) -> str:
    """The work note: the outcome and the next step, a table row per server, the servers
    ``details`` picks in full (as the text report), and the record of the run."""
    title = f"exfix playbook {run.playbook.name}" + (f", ticket {run.ticket}" if run.ticket else "")
    lines = [f"## {_md(title)}", "", f"**{_md(run.message())}**", ""]
    lines.append("What happens next:")
    lines.append("")
    lines.extend(
        f"- {sentence} {markdown_code(code)}" if code else f"- {sentence}"
        for sentence, code in _next_step(run)
    )
    lines.append("")
    if run.hosts:
        lines.append("| server | outcome | why |")
        lines.append("|---|---|---|")
        lines.extend(f"| {_md(h.host)} | {_md(h.outcome.value)} | {_md(h.reason)} |" for h in run.hosts)
        lines.append("")
    if run.digest:
        lines.extend([f"Plan digest: {markdown_code(run.digest)}", ""])
    shown, more = detailed_hosts(run, details)
    if shown or more:
        lines.extend(["### Details", ""])
    for host in shown:
        lines.extend(_md_host(host))
    if more:
        lines.extend([f"And {more} more server(s) to look at or changed: the run record "
                      f"{markdown_code(run.run_file)} has every server in full.", ""])  # fmt: skip
    lines.extend([
        "### Record",
        "",
        f"- Playbook: {_md(run.playbook.name)} ({_md(run.playbook.mode.value)}, approval "
        f"{_md(run.playbook.approval.value)}), file {markdown_code(run.playbook.source)}, sha256 "
        f"{markdown_code(run.playbook.sha256)}",
        f"- Fleet: {_md(run.source)}; operator {_md(run.operator)}",
        f"- Started {_md(run.started)}, finished {_md(run.finished)}; exit code {run.exit_code}",
        f"- Run record: {markdown_code(run.run_file)}",
    ])  # fmt: skip
    for plan in run.plans:
        lines.append(f"- Plan {markdown_code(plan.digest)} ({_md(plan.role.value)}): "
                     f"{markdown_code(plan.review_html)}, {markdown_code(plan.review_md)}")  # fmt: skip
    if run.journal:
        lines.append(f"- Journal: {markdown_code(run.journal)}")
    lines.append("")
    return "\n".join(lines)


# --- plain text (a work note where Markdown is not rendered) ----------------------------------


def render_worknote(run: PlaybookRun, details: Details = Details.FAILING) -> str:
    """The work note for a ticket system that shows notes as plain text (a ServiceNow work
    note, say), where the Markdown note's pipes, asterisks and backticks would be noise: the
    text report, then the record the Markdown note ends with, in plain lines."""
    book = run.playbook
    lines = [
        "",
        "Record",
        f"  playbook: {book.name} ({book.mode.value}, approval {book.approval.value}), file {book.source},"
        f" sha256 {book.sha256}",
        f"  fleet: {run.source}; operator {run.operator}",
        f"  started {run.started}, finished {run.finished}; exit code {run.exit_code}",
        f"  run record: {run.run_file}",
    ]
    lines.extend(f"  plan {p.digest} ({p.role.value}): {p.review_html}, {p.review_md}" for p in run.plans)
    if run.journal:
        lines.append(f"  journal: {run.journal}")
    return render_text(run, details) + "\n".join(terminal(line) for line in lines) + "\n"


# --- Rundeck --------------------------------------------------------------------------------

def rundeck_data(run: PlaybookRun) -> list[tuple[str, str]]:
    pending = run.pending
    pairs: list[tuple[str, object]] = [
        ("ticket", run.ticket or "-"),
        ("playbook", run.playbook.name),
        ("outcome", run.outcome.value),
        ("exit_code", run.exit_code),
        ("digest", run.digest or "-"),
        ("message", run.message()),
        ("hosts_total", len(run.hosts)),
    ]
    pairs.extend((f"hosts_{name.replace('-', '_')}", n) for name, n in run.counts().items())
    pairs.extend([
        ("run_file", run.run_file),
        ("review_html", pending.review_html if pending else "-"),
        ("apply_command", pending.apply_command if pending and pending.apply_command else "-"),
        ("refused", "yes" if run.refused else "no"),
    ])  # fmt: skip
    return rundeck.data(pairs)


def render_rundeck(run: PlaybookRun, details: Details = Details.FAILING) -> str:
    return rundeck.render(render_text(run, details), rundeck_data(run))


RENDERERS = {
    "json": render_json,
    "text": render_text,
    "markdown": render_markdown,
    "worknote": render_worknote,
    "rundeck": render_rundeck,
}
