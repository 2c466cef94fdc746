"""`exfix rules`: the rule catalogue, as a table or as JSON."""

from __future__ import annotations

import json

import click

from agent.fixes.registry import FIXES_BY_ID
from agent.rules.registry import RULES, Rule

_COLUMNS = ("id", "severity", "kind", "fix", "restart", "title")


def _rows() -> list[tuple[str, ...]]:
    return [
        (
            rule.id,
            rule.metadata.severity.value,
            rule.metadata.kind.value,
            ", ".join(rule.metadata.fix_ids) or "-",
            "yes" if _disrupts(rule) else "no",
            rule.metadata.title,
        )
        for rule in RULES
    ]


def _disrupts(rule: Rule) -> bool:
    return any(FIXES_BY_ID[fix_id].disrupts_mail_flow for fix_id in rule.metadata.fix_ids)


def _rule_json(rule: Rule) -> dict[str, object]:
    # fix_disrupts_mail_flow is the fix's own declaration (agent/fixes), shown beside the rule.
    return {**rule.metadata.to_dict(), "fix_disrupts_mail_flow": _disrupts(rule)}


def render_table() -> str:
    rows = [_COLUMNS, *_rows()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    # What each rule rests on, under the table (the table stays one line per rule).
    lines.extend(["", "references"])
    width = max(len(rule.id) for rule in RULES)
    for rule in RULES:
        lines.append(f"{rule.id.ljust(width)}  {', '.join(rule.metadata.references)}")
    return "\n".join(lines)


def render_json() -> str:
    return json.dumps({"rules": [_rule_json(rule) for rule in RULES]}, indent=2)


@click.command("rules")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for tools",
)
def rules(output_format: str) -> None:
    """List the rules exfix evaluates: id, severity, fix, and whether the fix restarts transport."""
    click.echo(render_json() if output_format == "json" else render_table())
