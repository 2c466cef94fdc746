"""REVIEW.md: the page a change board reads before it approves a plan.

The same :class:`~agent.review.model.Review` as review.html, in Markdown: the digest and the
apply command, plain language (what is wrong, what will change, whether mail stops, for how
long), what apply refuses, then one section per group of identical changes with a compact
list of its servers, apply's schedule and the rollback order, the healthy servers on one line;
in appendices each server's findings with their evidence and steps, and the exact scripts
with their sha256.

Every value that came from a host goes through agent.report.safe (``markdown`` in text and
tables, ``markdown_code`` in inline code). The scripts go in fenced blocks whose fence is
longer than any run of backticks in them, so no line of a script can close its block.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.model.findings import Finding, Level
from agent.model.plan import REMEDIATE_SCRIPT, ROLLBACK_SCRIPT, HostPlan, Plan, Resolution
from agent.planning.render import RenderedHost
from agent.report.display import cause_label, change_before, format_value, plural
from agent.report.safe import markdown, markdown_code, terminal
from agent.review.model import BLOCKER_TEXT, NAMES_SHOWN, Group, Review, build_review, minutes


def code_block(text: str, info: str = "") -> str:
    """``text`` in a fenced code block that nothing inside it can close (CommonMark: a closing
    fence is a run of backticks at least as long as the opening one)."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{fence}{info}\n{body}{fence}\n"


def _summary(review: Review) -> list[str]:
    plan = review.plan
    lines = [
        "## In plain words",
        "",
        f"exfix looked at {plural(len(plan.hosts), 'Exchange server')} and found "
        f"{plural(review.findings, 'problem')} behind '451 4.4.0 DNS query failed'.",
    ]
    if review.automatic:
        where = [f"on {plural(review.changed, 'server')}"] if review.changed else []
        if review.shared:
            where.append("on what the servers of the organisation share (once, before the servers)")
        lines.append(
            f"It plans {plural(review.automatic, 'change')} {' and '.join(where)}. "
            "Each change sets one setting to a value shown below, is read back afterwards, and has an "
            "undo step in the rollback.ps1 beside it."
        )
        for step in review.no_undo:
            lines.append(f"No undo step for {markdown(step)}")
    else:
        lines.append("It plans no automatic change.")
    restarting = review.restarting
    if restarting:
        # A fleet's list would bury the sentence: the first few, and the count (every server is
        # in its group and in the schedule below).
        shown = ", ".join(markdown(h) for h in restarting[:NAMES_SHOWN])
        names = shown if len(restarting) <= NAMES_SHOWN else (
            f"{plural(len(restarting), 'server')} ({shown} and {len(restarting) - NAMES_SHOWN} more)"
        )  # fmt: skip
        each = review.schedule.restarts[0].outage_s
        how_long = f"for {minutes(each)} (an estimate)" if each else "for the restart"
        lines.append(
            f"**Mail flow is interrupted** on {names}: the Exchange transport service (MSExchangeTransport) "
            f"is restarted so the changes take effect, one server at a time. Mail on that server stops "
            f"{how_long}; queued messages are kept and delivered afterwards. apply restarts only with "
            "`--allow-restart`."
        )
    else:
        lines.append("**Mail flow is not interrupted** by the automatic changes: nothing is restarted.")
    if review.manual:
        lines.append(
            f"{plural(review.manual, 'step')} must be done by a person on the server (marked MANUAL); "
            "apply reports them and does not run them."
        )
    if review.prevented:
        lines.append(
            "exfix predicted that some steps would break something else "
            f"({plural(review.prevented, 'fault')}); "
            "the plan also makes the changes that prevent it (see What the plan would break)."
        )
    if review.refused:
        lines.append(
            f"exfix left out the steps that would create {plural(review.refused, 'new fault')} it cannot "
            "prevent (see What the plan would break)."
        )
    if review.outstanding:
        verb = "stays" if review.outstanding == 1 else "stay"
        lines.append(
            f"{plural(review.outstanding, 'finding')} {verb} after this plan; each says what stands in its "
            "way "
            "(see Not fixed by this plan)."
        )
    if review.partial:
        names = ", ".join(markdown(h) for h in review.partial)
        lines.append(
            f"**Not everything was looked at** on {names}: some facts could not be read there, and the "
            'checks that need them were not made (see "Not judged" under each server). The plan cannot '
            "fix what was not judged."
        )
    lines.append("Nothing has been changed yet. Nothing changes until someone runs the apply command above.")
    lines.append("")
    return lines


def _head(review: Review) -> list[str]:
    """The digest, the command and the fleet in one line: what an approver needs first."""
    plan = review.plan
    groups = plural(review.change_groups, "group")
    fleet = f"{plural(len(plan.hosts), 'server')}: {review.changed} changed in {groups} of identical changes"
    if review.shared:
        fleet += " (and the organisation's shared settings, first)"
    if review.restarting:
        fleet += (
            f", {plural(len(review.restarting), 'restart')} one at a time "
            f"({minutes(review.schedule.outage_s)} out of mail flow in all, an estimate)"
        )
    else:
        fleet += ", no restart"
    fleet += f", {len(review.healthy)} healthy."
    return [
        f"**Digest to approve:** {markdown_code(plan.digest)}",
        "",
        "The command that applies exactly this plan, run in the plan directory (the one holding this page):",
        "",
        code_block(terminal(review.apply_command), "sh").rstrip("\n"),
        "",
        markdown(fleet),
        "",
    ]


def _outage(seconds: int | None) -> str:
    if seconds is None:
        return "not estimated"
    return f"{minutes(seconds)} (estimate)" if seconds else "none"


def _group(group: Group) -> list[str]:
    lines = [f"### Group {group.number} · {markdown(group.summary)}", ""]
    if group.steps:
        lines.append("| # | step | changes | runs by | mail flow |")
        lines.append("|---|---|---|---|---|")
        for n, step in enumerate(group.steps, start=1):
            changes = "<br>".join(markdown(c) for c in step.changes) or "no setting changes"
            runs = "a person (MANUAL)" if step.manual else "apply"
            flow = "not interrupted"
            if step.disruptive:
                flow = f"**interrupted**, {_outage(None if step.manual else group.outage_s)}"
            lines.append(f"| {n} | {markdown_code(step.kind)} | {changes} | {runs} | {flow} |")
        lines.append("")
        if group.rollback:
            undo = ", then ".join("; ".join(markdown(c) for c in s.undo) for s in group.rollback)
            what = "Rollback of this change" if group.organization else "Rollback on a server of this group"
            lines.append(f"{what}, last step first: {undo}.")
        for step in group.steps:
            if step.no_undo:
                lines.append(f"{markdown_code(step.kind)} has no undo: {markdown(step.no_undo)}")
    elif group.remaining:
        lines.append(
            f"exfix plans no step here. What stands in the way: {markdown('; '.join(group.remaining))}."
        )
    elif group.covered:
        lines.append(
            "exfix plans no step on these servers: their findings come from what the organisation shares, "
            "which the organisation change (applied first) sets; apply then checks that their queues drain."
        )
    else:
        lines.append("exfix plans no step here; each server says why.")
    rules = ", ".join(markdown_code(r) for r in group.rules) or "none"
    lines.extend(["", f"Rules: {rules}.", ""])
    what = "Organisation" if group.organization else "Servers"
    order = ", in apply's order (#: the place in the schedule)" if group.steps else ""
    lines.extend([f"{what} ({len(group.hosts)}){order}; each in detail in the appendix:", ""])
    for host in group.hosts:
        place = f"#{host.turn.position}" if host.turn else "no change"
        counts = plural(len(host.plan.findings), "finding")
        rules_here = ", ".join(dict.fromkeys(f.rule_id for f in host.plan.findings))
        lines.append(
            f"- {markdown(host.name)}: {place}; {counts}"
            + (f" ({markdown(rules_here)})" if rules_here else "")
        )
    lines.append("")
    return lines


def _clock(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"+{hours}:{rest // 60:02d}"


def _schedule(review: Review) -> list[str]:
    schedule = review.schedule
    limits = schedule.limits
    lines = ["## Schedule: the order apply changes the servers", ""]
    if not schedule.turns:
        lines.extend(["apply changes no server.", ""])
    else:
        first = (
            "the organisation changes first, one at a time; then "
            if any(t.organization for t in schedule.turns)
            else ""
        )
        lines.append(
            f"As the command above runs it (apply's defaults: `--forks {limits.workers}`, "
            f"`--serial {limits.serial}`), by the scheduler apply itself runs: {first}up to "
            f"{limits.workers} servers at once, in the order below, of which at most "
            f"{plural(limits.serial, 'server')} {'restarts' if limits.serial == 1 else 'restart'} "
            "MSExchangeTransport at a time. A server without a restart starts as soon as a place is free, so "
            "those run beside the restarts and may finish in any order; the restarts follow exactly this "
            "order, never two together."
            + (
                " With `--serial` above 1, apply restarts several at once but never two members of one DAG "
                "nor the last server of an AD site; plan.json does not record DAGs and sites, so that order "
                "is not shown here."
                if limits.serial == 1
                else ""
            )
        )
        lines.append("")
        outage = (
            f"**Out of mail flow:** {plural(len(schedule.restarts), 'server')}, "
            f"{minutes(schedule.outage_s)} in all, one after another (an estimate"
        )
        if schedule.restarts:
            each = schedule.restarts[0].outage_s
            outage += f": {minutes(each)} a server for the transport restart" if each else ""
        outage += ")"
        if schedule.unestimated:
            outage += f"; not estimated for {', '.join(markdown(h) for h in schedule.unestimated)}"
        lines.extend([outage + ". Beside each server that restarts: when its restart begins, counted from "
                      "apply's first change (h:mm), if each restart takes its estimate.", ""])  # fmt: skip
        for turn, host in review.order:
            when = "no restart"
            if turn.disruptive:
                when = f"restart at {_clock(turn.at)}, {_outage(turn.outage_s)}"
            lines.append(f"{turn.position}. {markdown(host.name)}: {when}")
        lines.append("")
    if schedule.untouched:
        lines.extend([f"apply changes nothing on {plural(len(schedule.untouched), 'server')} "
                      "(no automatic step): they are not in the order.", ""])  # fmt: skip
    lines.extend(
        [
            "### Rollback order",
            "",
            "If a step fails on a server, apply undoes that server's steps already done, last step first "
            "(its rollback.ps1, shown in each group above), and starts no further server; the servers "
            "already done stay changed. To undo them too, `exfix rollback` reads the journal and undoes "
            "every server apply changed, each one's steps last first.",
            "",
        ]
    )
    return lines


def _healthy(review: Review) -> list[str]:
    if not review.healthy:
        return ["## Healthy servers", "", "None: every server has a finding or a step.", ""]
    names = ", ".join(markdown(h) for h in review.healthy)
    return [
        "## Healthy servers",
        "",
        f"{plural(len(review.healthy), 'server')}, no finding, nothing to change: {names}",
        "",
    ]


def _approval() -> list[str]:
    return [
        "## Approving this plan",
        "",
        "Approve the digest at the top; the command beside it applies exactly this plan.",
        "",
        "apply refuses, and changes nothing, when:",
        "",
        "- the digest given to `--approve` is not this plan's digest, or a file of this directory "
        "(plan.json, a script, this page) is not byte for byte what the approved plan renders to "
        "(changed after review);",
        "- a host has drifted: the settings a step depends on are no longer what this plan saw (plan again);",
        "- a step interrupts mail flow (the MSExchangeTransport restart) and `--allow-restart` "
        "was not given.",
        "",
        "Manual steps are reported, never run, by apply.",
        "",
    ]


def _finding(finding: Finding) -> list[str]:
    lines = [
        f"#### {markdown(finding.title)} ({markdown(finding.severity.value)})",
        "",
        f"- Rule: {markdown_code(finding.rule_id)}; subject: {markdown(finding.subject)}",
        f"- What was seen: {markdown(finding.summary)}",
    ]
    if finding.fix_id:
        disrupts = " (interrupts mail flow: transport restart)" if finding.fix_disrupts_mail_flow else ""
        lines.append(f"- Fix: {markdown_code(finding.fix_id)}{disrupts}")
    else:
        lines.append("- Fix: none by exfix")
    if finding.explained_by:
        lines.append(f"- Explained by: {', '.join(markdown(cause_label(i)) for i in finding.explained_by)}")
    lines.append("")
    if finding.evidence:
        lines.append("| source | subject | values |")
        lines.append("|---|---|---|")
        for item in finding.evidence:
            source = item.source + (f" ({item.vantage})" if item.vantage else "")
            values = "; ".join(f"{k}={format_value(v)}" for k, v in item.values)
            lines.append(f"| {markdown(source)} | {markdown(item.subject)} | {markdown(values)} |")
        lines.append("")
    return lines


def _not_judged(host: HostPlan) -> list[str]:
    """The areas not collected on the host and the checks not made because of them."""
    if not host.failed_areas and not host.not_judged:
        return []
    lines = ["### Not judged", "", "Facts exfix could not collect on this server:", ""]
    for issue in host.failed_areas:
        area = f"{markdown_code(issue.area.value)} ({markdown(issue.area.description)})"
        lines.append(f"- {area}: {markdown(issue.reason)}")
    lines.append("")
    if host.not_judged:
        lines.extend(["So these checks were not made here (neither a finding nor a clean result):", ""])
        for skipped in host.not_judged:
            areas = ", ".join(markdown_code(a) for a in skipped.areas)
            lines.append(f"- {markdown_code(skipped.rule_id)} ({markdown(skipped.title)}): needs {areas}")
        lines.append("")
    return lines


def _heading(unit: HostPlan) -> list[str]:
    if unit.level is Level.HOST:
        return [
            f"## Host {markdown(unit.host)}",
            "",
            f"- Exchange server: {markdown(unit.fqdn)}, version {markdown(unit.exchange_version)}",
        ]
    servers = ", ".join(markdown(s) for s in unit.servers) or "none"
    return [
        f"## Organisation {markdown(unit.organization)}",
        "",
        "- What it changes lives in Active Directory and is shared by every server of the organisation: "
        "it is planned and applied once, before the servers.",
        f"- Servers it concerns: {servers}",
        f"- Run through the Exchange server {markdown(unit.fqdn)}, version {markdown(unit.exchange_version)}",
    ]


def _host(host: HostPlan) -> list[str]:
    lines = [
        *_heading(host),
        f"- Scripts: {markdown_code('hosts/' + host.directory + '/' + REMEDIATE_SCRIPT)} and "
        f"{markdown_code('hosts/' + host.directory + '/' + ROLLBACK_SCRIPT)}",
    ]
    for name, digest in host.scripts:
        lines.append(f"- sha256 of {name}: {markdown_code(digest)}")
    automatic_restart = any(a.disruptive and not a.manual for a in host.actions)
    if automatic_restart:
        lines.append("- Mail flow: **interrupted** (MSExchangeTransport is restarted)")
    elif host.manual and any(a.disruptive for a in host.manual):
        lines.append("- Mail flow: not interrupted by apply; the manual steps restart MSExchangeTransport")
    else:
        lines.append("- Mail flow: not interrupted")
    lines.append("")
    lines.append("### Findings")
    lines.append("")
    if not host.findings:
        lines.extend(["No findings.", ""])
    for finding in host.findings:
        lines.extend(_finding(finding))
    lines.extend(_not_judged(host))
    lines.extend(["### Steps", ""])
    if host.actions:
        lines.append("| # | what | runs by | interrupts mail flow |")
        lines.append("|---|---|---|---|")
        for n, action in enumerate(host.actions, start=1):
            runs = "a person (MANUAL)" if action.manual else "apply"
            stops = "**yes**" if action.disruptive else "no"
            lines.append(f"| {n} | {markdown(action.description)} | {runs} | {stops} |")
        lines.append("")
        for n, action in enumerate(host.actions, start=1):
            for change in action.changes:
                lines.append(
                    f"- Step {n}: {markdown(change.property)} {markdown(change_before(action, change))} "
                    f"→ {markdown(format_value(change.after))}"
                )
        lines.append("")
    else:
        lines.extend([f"No change {'on this host' if host.level is Level.HOST else 'here'}.", ""])
    if host.consequences:
        lines.extend(["### What the plan would break", ""])
        for consequence in host.consequences:
            verdict = (
                "prevented: the plan makes the changes below too"
                if consequence.resolution is Resolution.PREVENTED
                else "refused: the steps that cause it are not in the plan"
            )
            title = markdown(consequence.finding.title)
            lines.append(f"- **{title}** ({verdict}). {markdown(consequence.message)}")
            for text in consequence.prevented_by:
                lines.append(f"  - added: {markdown(text)}")
        lines.append("")
    if host.advisories:
        lines.extend(["### Advice (not changed by exfix)", ""])
        for advisory in host.advisories:
            variable = f" Set {markdown_code(advisory.variable)}." if advisory.variable else ""
            lines.append(f"- {markdown(advisory.message)}{variable}")
        lines.append("")
    if host.outstanding:
        titles = {f.id: f.title for f in host.findings}
        lines.extend(["### Not fixed by this plan", ""])
        lines.append("| finding | what stands in the way | what to do |")
        lines.append("|---|---|---|")
        for item in host.outstanding:
            title = titles.get(item.finding_id, item.rule_id)
            what = BLOCKER_TEXT[item.blocker]
            if item.variable:
                what += f": set {markdown_code(item.variable)}"
            rule = markdown_code(item.rule_id)
            lines.append(f"| {markdown(title)} ({rule}) | {what} | {markdown(item.message)} |")
        lines.append("")
    return lines


def _scripts(review: Review) -> list[str]:
    lines = [
        "## Appendix: the scripts",
        "",
        "Each server's remediate.ps1 and rollback.ps1 exactly as in the plan directory; the sha256 is that "
        "of the file. The digest covers every one.",
        "",
    ]
    for script in review.scripts:
        lines.extend(
            [
                f"### {markdown(script.path)}",
                "",
                f"sha256 {markdown_code(script.sha256 or '(not recorded)')}",
                "",
                code_block(script.text, "powershell").rstrip("\n"),
                "",
            ]
        )
    return lines


def render_review(plan: Plan, scripts: Mapping[str, RenderedHost], plan_json: str) -> str:
    """REVIEW.md for ``plan``; ``scripts`` by host directory, ``plan_json`` the path of plan.json
    as the apply command should name it."""
    review = build_review(plan, scripts, plan_json)
    lines = ["# exfix plan: review before approval", ""]
    lines.extend(_head(review))
    lines.extend(_summary(review))
    lines.extend(_approval())
    lines.extend(["## Changes, grouped", ""])
    if not review.groups:
        lines.extend(["No server has a finding or a step.", ""])
    for group in review.groups:
        lines.extend(_group(group))
    lines.extend(_schedule(review))
    lines.extend(_healthy(review))
    lines.extend(["## Appendix: every server in detail", ""])
    for unit in plan.units:
        if unit.actions or unit.findings or unit.failed_areas:
            lines.extend(_host(unit))
    lines.extend(_scripts(review))
    lines.extend(["---", "", f"Plan digest: {markdown_code(plan.digest)}", ""])
    return "\n".join(lines)
