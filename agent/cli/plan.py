"""``exfix plan``: collect, evaluate and write the plan directory. Dry-run: changes nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from agent.apply import FleetPlan, plan_fleet
from agent.cli._common import fleet_options, open_fleet, probe_repeat_option, progress
from agent.model.findings import Level
from agent.model.plan import HostPlan, Outstanding, PlanSource, SourceKind
from agent.report.display import plural
from agent.report.safe import terminal
from agent.report.text import DETAIL_LIMIT
from agent.review import apply_command, write_plan_dir
from agent.review.model import NAMES_SHOWN, Review, build_review

# /2 adds "findings" and "outstanding" (what stands in the way of each finding no automatic
# step addresses, as plan.json's units hold it) and counts the organisations' advice too.
PLAN_RESULT_SCHEMA = "exfix.plan-result/2"


def _outstanding_dicts(unit: HostPlan) -> list[dict[str, object]]:
    return [
        {"finding_id": o.finding_id, "rule_id": o.rule_id, "blocker": o.blocker.value, "message": o.message,
         "variable": o.variable}
        for o in unit.outstanding
    ]  # fmt: skip


def plan_source(inventory: str | None, lab: str | None) -> PlanSource:
    """What plan.json records to reach the hosts again: the inventory as an absolute path, or
    the lab scenario (a path made absolute; a shipped name as it is)."""
    if inventory is not None:
        return PlanSource(SourceKind.INVENTORY, str(Path(inventory).resolve()))
    assert lab is not None
    looks_like_path = "/" in lab or "\\" in lab or lab.endswith((".yaml", ".yml"))
    return PlanSource(SourceKind.LAB, str(Path(lab).resolve()) if looks_like_path else lab)


def _echo(text: str = "") -> None:
    click.echo(text)


def _unit_heading(unit: HostPlan) -> str:
    automatic, manual = unit.automatic, unit.manual
    if automatic:
        state = f"{len(automatic)} step(s)"
    elif not manual and not unit.findings and not unit.outstanding:
        state = "nothing to do (no findings)"  # not "no automatic step": nothing is wrong here
    else:
        state = "no automatic step"
    if manual:
        state += f", {len(manual)} manual step(s)"
    if unit.level is Level.ORGANIZATION:
        return (f"organisation {terminal(unit.organization)} (through {terminal(unit.host)}, for "
                f"{terminal(', '.join(unit.servers))}): {state}")  # fmt: skip
    return f"{terminal(unit.host)} (Exchange {terminal(unit.exchange_version)}): {state}"


def _outstanding_line(item: Outstanding) -> str:
    variable = f" [set {item.variable}]" if item.variable else ""
    return f"    {terminal(item.rule_id)} ({item.blocker.value}){variable}: {terminal(item.message)}"


def _render_unit(unit: HostPlan) -> None:
    _echo(_unit_heading(unit))
    for action in unit.actions:
        flags = " [MANUAL: not run by apply]" if action.manual else ""
        if action.disruptive and not action.manual:
            flags += " [DISRUPTIVE: restarts MSExchangeTransport]"
        _echo(f"  {action.id}: {terminal(action.description)}{flags}")
    shown = {o.message for o in unit.outstanding}
    for consequence in unit.consequences:
        if consequence.message in shown:
            continue  # a refusal: the finding it was for says it below, with what would lift it
        _echo(f"  would break ({consequence.resolution.value}): {terminal(consequence.message)}")
    for advisory in unit.advisories:
        if advisory.message not in shown:
            _echo(f"  advice ({advisory.kind.value}): {terminal(advisory.message)}")
    if unit.outstanding:
        count = len(unit.outstanding)
        _echo(f"  not fixed by this plan ({count} finding(s)), and what stands in the way:")
        for item in unit.outstanding:
            _echo(_outstanding_line(item))
    for issue in unit.failed_areas:
        _echo(f"  not collected: {issue.area.value} ({issue.area.description}): {terminal(issue.reason)}")
    if unit.not_judged:
        _echo(f"  not judged (nothing planned for them): {', '.join(j.rule_id for j in unit.not_judged)}")


def _names(names: list[str]) -> str:
    shown = ", ".join(terminal(n) for n in names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _render_groups(review: Review) -> None:
    """A fleet's plan as its groups of identical changes (the review pages' groups): a title
    and the servers, not every server's steps (those are in REVIEW.md and review.html)."""
    for group in review.groups:
        _echo(terminal(f"Group {group.number} · {group.summary}"))
        _echo(f"  {_names([h.name for h in group.hosts])}")
    if review.healthy:
        _echo(f"{plural(len(review.healthy), 'server')} with nothing to do (no findings)")


def render_text(result: FleetPlan, plan_json: Path) -> None:
    """Each unit with its steps, for a small fleet; past DETAIL_LIMIT units with something to
    show, the groups of identical changes instead (at 200 hosts every unit was 490 lines). Then
    a line for the whole plan, where it is written, its digest and the apply command."""
    plan = result.plan
    review = build_review(plan, None, str(plan_json))
    for scan in result.unscanned[:DETAIL_LIMIT]:
        _echo(f"{terminal(scan.host)}: NOT SCANNED ({scan.status.value}): {terminal(scan.error or '')}")
    if len(result.unscanned) > DETAIL_LIMIT:
        more = len(result.unscanned) - DETAIL_LIMIT
        _echo(f"... and {more} more host(s) not scanned: --format json lists them")
    units = [u for u in plan.units
             if not (u.level is Level.ORGANIZATION and not u.actions and not u.findings)]  # fmt: skip
    busy = [u for u in units if u.actions or u.findings or u.failed_areas]
    if len(busy) <= DETAIL_LIMIT:
        for unit in units:
            _render_unit(unit)
    else:
        _render_groups(review)
    _echo()
    _echo(_plan_line(review, len(result.unscanned)))
    _echo(f"Plan written to {terminal(plan_json)} (review {terminal(plan_json.parent / 'REVIEW.md')}).")
    _echo(f"Digest: {plan.digest}")
    remaining = sum(len(u.outstanding) for u in plan.units)
    if any(not a.manual for a in plan.actions):
        _echo("Apply it with:")
        _echo(f"  {terminal(apply_command(plan, str(plan_json)))}")
    elif plan.actions:
        _echo("No automatic step: the manual steps are in the hosts' remediate.ps1, for a person.")
    elif not remaining:
        _echo("Nothing to do.")
    if remaining:
        where = "above" if len(busy) <= DETAIL_LIMIT else "in REVIEW.md"
        _echo(f"{remaining} finding(s) stay after this plan; each says {where} what stands in its way.")


def _plan_line(review: Review, unscanned: int) -> str:
    """The plan in one line, as Terraform's "Plan: 1 to add, 2 to change": servers changed,
    in how many groups, restarts, the organisation change, and what is left alone."""
    changed = f"{plural(review.changed, 'server')} to change"
    if review.changed:
        changed += f" in {plural(review.change_groups, 'group')} of identical changes"
    parts = [changed]
    if review.restarting:
        parts.append(f"{plural(len(review.restarting), 'restart')} of MSExchangeTransport, "
                     f"{review.limits.serial} at a time")  # fmt: skip
    if review.shared:
        parts.append("the organisation's shared settings first")
    if review.manual:
        parts.append(f"{plural(review.manual, 'manual step')}")
    parts.append(f"{len(review.healthy)} with nothing to do")
    if unscanned:
        parts.append(f"{unscanned} not scanned")
    return "Plan: " + ", ".join(parts)


@click.command()
@fleet_options
@probe_repeat_option
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory to write plan.json, hosts/<host>/remediate.ps1 + rollback.ps1 and REVIEW.md.")
@click.option("--overwrite", is_flag=True, help="Write into a directory that already holds files.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="json: plan.json's path, digest, apply command, hosts and exit code, for automation.")
def plan(inventory: str | None, lab: str | None, limit: str | None, forks: int, host_timeout: float,
         ask_pass: bool, probe_repeat: int, out: str, overwrite: bool, fmt: str) -> None:  # fmt: skip
    """Scan the fleet and write a reviewable plan. Changes nothing on any host.

    plan.json records how to reach the hosts again (the inventory's absolute path or the lab
    scenario), never a secret; `exfix apply` uses it unless given --inventory or --lab.

    Exit 0: every host clean, nothing to do; 2: steps are planned (waiting for approval), or
    findings remain (each says what stands in its way: the inventory variable to set, the
    manual step, the advice); 8: nothing planned and nothing found, but on a host a fact area
    could not be collected and the rules reading it were not judged; 3: a host could not be
    reached, 7: a host answered with an error (the others are planned; 3 wins over 7, 7 over 2,
    2 over 8); 1: bad input.
    """
    source = plan_source(inventory, lab)
    with open_fleet(inventory, lab, limit, ask_pass) as fleet, \
            progress(len(fleet.targets), "planning") as advance:  # fmt: skip
        result = plan_fleet(fleet.targets, fleet.credentials, source=source, scan_source=fleet.source,
                            forks=forks, host_timeout=host_timeout,
                            on_host_done=advance, probe_repeat=probe_repeat)  # fmt: skip
    files = write_plan_dir(result.plan, out, overwrite=overwrite)
    plan_json = files.plan_json.resolve()
    if fmt == "json":
        document = {
            "schema": PLAN_RESULT_SCHEMA,
            "plan": str(plan_json),
            "digest": result.plan.digest,
            "apply_command": apply_command(result.plan, str(plan_json)),
            "actions": len(result.plan.actions),
            "automatic": sum(1 for a in result.plan.actions if not a.manual),
            "advisories": sum(len(h.advisories) for h in result.plan.units),
            "findings": sum(len(u.findings) for u in result.plan.units),
            "outstanding": [
                {"host": u.host, **o} for u in result.plan.units for o in _outstanding_dicts(u)
            ],
            "unscanned": [
                {"host": h.host, "status": h.status.value, "error": h.error} for h in result.unscanned
            ],
            "exit_code": result.exit_code,
        }
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=True) + "\n")
    else:
        render_text(result, files.plan_json.resolve())
    sys.exit(result.exit_code)
