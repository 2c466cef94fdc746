"""REVIEW.md: the page a change board reads before it approves a plan.

Plain language first (what is wrong, what will change, whether mail stops), then per host the
findings with their evidence, the steps, the advice, and the exact scripts. Then the digest to
approve and the exact apply command, and what apply refuses.

Every value that came from a host goes through agent.report.safe (``markdown`` in text and
tables, ``markdown_code`` in inline code). The scripts go in fenced blocks whose fence is
longer than any run of backticks in them, so no line of a script can close its block.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from agent.model.findings import Finding, Level
from agent.model.plan import REMEDIATE_SCRIPT, ROLLBACK_SCRIPT, Blocker, HostPlan, Plan, Resolution
from agent.planning.render import RenderedHost, without_undo
from agent.report.display import cause_label, change_before, format_value
from agent.report.safe import markdown, markdown_code, terminal

_BLOCKER_TEXT = {
    Blocker.VARIABLE: "a value only you can choose",
    Blocker.REFUSED: "exfix left its step out: it would break something else",
    Blocker.MANUAL: "a manual step",
    Blocker.ADVICE: "outside what exfix changes",
    Blocker.CAUSE: "its cause is not fixed",
}


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


def apply_command(plan: Plan, plan_json: str) -> str:
    """The exact command that applies this plan (``--allow-restart`` when a step restarts
    MSExchangeTransport). The path is quoted for a POSIX shell or PowerShell alike."""
    restart = " --allow-restart" if any(a.disruptive and not a.manual for a in plan.actions) else ""
    return f"exfix apply {shlex.quote(plan_json)} --approve {plan.digest}{restart}"


NAMES_SHOWN = 10  # servers named in a sentence; the rest are counted


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _summary(plan: Plan) -> list[str]:
    findings = sum(len(h.findings) for h in plan.units)
    automatic = [a for a in plan.actions if not a.manual]
    manual = [a for a in plan.actions if a.manual]
    changed = [h for h in plan.hosts if h.automatic]
    shared = [o for o in plan.organizations if o.automatic]
    restarting = [h for h in plan.hosts if any(a.disruptive and not a.manual for a in h.actions)]
    lines = [
        "## In plain words",
        "",
        f"exfix looked at {_plural(len(plan.hosts), 'Exchange server')} and found "
        f"{_plural(findings, 'problem')} behind '451 4.4.0 DNS query failed'.",
    ]
    if automatic:
        where = [f"on {_plural(len(changed), 'server')}"] if changed else []
        if shared:
            where.append("on what the servers of the organisation share (once, before the servers)")
        lines.append(
            f"It plans {_plural(len(automatic), 'change')} {' and '.join(where)}. "
            "Each change sets one setting to a value shown below, is read back afterwards, and has an "
            "undo step in the rollback.ps1 beside it."
        )
        for step in without_undo(automatic):
            lines.append(f"No undo step for {markdown(step)}")
    else:
        lines.append("It plans no automatic change.")
    if restarting:
        # A fleet's list would bury the sentence: the first few, and the count (every server is
        # under its own heading below).
        shown = ", ".join(markdown(h.host) for h in restarting[:NAMES_SHOWN])
        names = shown if len(restarting) <= NAMES_SHOWN else (
            f"{_plural(len(restarting), 'server')} ({shown} and {len(restarting) - NAMES_SHOWN} more)"
        )  # fmt: skip
        lines.append(
            f"**Mail flow is interrupted** on {names}: the Exchange transport service (MSExchangeTransport) "
            "is restarted so the changes take effect. Mail on that server stops for the restart; queued "
            "messages are kept and delivered afterwards. apply restarts only with `--allow-restart`."
        )
    else:
        lines.append("**Mail flow is not interrupted** by the automatic changes: nothing is restarted.")
    if manual:
        lines.append(
            f"{_plural(len(manual), 'step')} must be done by a person on the server (marked MANUAL); "
            "apply reports them and does not run them."
        )
    prevented = sum(1 for u in plan.units for c in u.consequences if c.resolution is Resolution.PREVENTED)
    refused = sum(1 for u in plan.units for c in u.consequences if c.resolution is Resolution.REFUSED)
    if prevented:
        lines.append(
            f"exfix predicted that some steps would break something else ({_plural(prevented, 'fault')}); "
            "the plan also makes the changes that prevent it (see What the plan would break)."
        )
    if refused:
        lines.append(
            f"exfix left out the steps that would create {_plural(refused, 'new fault')} it cannot prevent "
            "(see What the plan would break)."
        )
    outstanding = sum(len(h.outstanding) for h in plan.units)
    if outstanding:
        verb = "stays" if outstanding == 1 else "stay"
        lines.append(
            f"{_plural(outstanding, 'finding')} {verb} after this plan; each says what stands in its way "
            "(see Not fixed by this plan)."
        )
    partial = [h for h in plan.hosts if h.failed_areas]
    if partial:
        names = ", ".join(markdown(h.host) for h in partial)
        lines.append(
            f"**Not everything was looked at** on {names}: some facts could not be read there, and the "
            "checks that need them were not made (see \"Not judged\" under each server). The plan cannot "
            "fix what was not judged."
        )
    lines.append("Nothing has been changed yet. Nothing changes until someone runs the apply command below.")
    lines.append("")
    return lines


def _approval(plan: Plan, plan_json: str) -> list[str]:
    return [
        "## Approving this plan",
        "",
        f"Digest to approve: {markdown_code(plan.digest)}",
        "",
        "The command that applies exactly this plan, run in the plan directory (the one holding this page):",
        "",
        code_block(terminal(apply_command(plan, plan_json)), "sh").rstrip("\n"),
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


def _host(host: HostPlan, rendered: RenderedHost) -> list[str]:
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
            what = _BLOCKER_TEXT[item.blocker]
            if item.variable:
                what += f": set {markdown_code(item.variable)}"
            rule = markdown_code(item.rule_id)
            lines.append(f"| {markdown(title)} ({rule}) | {what} | {markdown(item.message)} |")
        lines.append("")
    lines.extend(
        [
            f"### {REMEDIATE_SCRIPT}",
            "",
            code_block(rendered.remediate, "powershell").rstrip("\n"),
            "",
            f"### {ROLLBACK_SCRIPT}",
            "",
            code_block(rendered.rollback, "powershell").rstrip("\n"),
            "",
        ]
    )
    return lines


def render_review(plan: Plan, scripts: Mapping[str, RenderedHost], plan_json: str) -> str:
    """REVIEW.md for ``plan``; ``scripts`` by host directory, ``plan_json`` the path of plan.json
    as the apply command should name it."""
    lines = ["# exfix plan: review before approval", ""]
    lines.extend(_summary(plan))
    lines.extend(_approval(plan, plan_json))
    for host in plan.units:
        lines.extend(_host(host, scripts[host.directory]))
    lines.extend(["---", "", f"Plan digest: {markdown_code(plan.digest)}", ""])
    return "\n".join(lines)
