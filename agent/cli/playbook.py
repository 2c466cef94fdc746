"""``exfix playbook list | validate | run``: playbooks for ticket workflows.

Machine output (the run document, the work note, Rundeck data) goes to stdout; progress and
log lines go to stderr, so a ticket system can capture stdout as the result.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import click

from agent.apply import current_operator
from agent.cli._common import fleet_options, open_fleet
from agent.cli.plan import plan_source
from agent.errors import UsageError
from agent.report.playbook_run import RENDERERS
from agent.report.safe import terminal
from agent.report.text import DETAIL_LIMIT, Details
from agent.workflow.playbook import (
    Mode,
    Playbook,
    find_playbook,
    load_playbook,
    parse_assignments,
    resolve_variables,
    shipped_playbooks,
)
from agent.workflow.runner import RunSettings, check_digest, check_ticket, run_playbook

RUN_FORMATS = tuple(RENDERERS)
DEFAULT_RUNS_DIR = "exfix-runs"


@click.group()
def playbook() -> None:
    """Playbooks for ticket workflows: diagnose, plan, and apply with or without approval."""


def _describe(book: Playbook) -> str:
    if book.mode is Mode.DIAGNOSE:
        return "mode diagnose: scans and explains, never plans"
    plans = ", ".join(book.plan_fixes)
    if book.mode is Mode.PLAN:
        return f"mode plan: plans {plans}; never applies"
    restart = "; may restart MSExchangeTransport once approved" if book.allow_restart else ""
    applies = ", ".join(book.apply_fixes)
    return f"mode apply, approval {book.approval.value}: plans {plans}; applies {applies}{restart}"


@playbook.command("list")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def list_playbooks(fmt: str) -> None:
    """The playbooks shipped with exfix."""
    books = [load_playbook(path) for path in shipped_playbooks()]
    if fmt == "json":
        data = {"playbooks": [{**b.to_dict(), "description": " ".join(b.description.split()),
                               "variables": [{"name": v.name, "type": v.type.value, "required": v.required}
                                             for v in b.variables]}
                              for b in books]}  # fmt: skip
        click.echo(json.dumps(data, indent=2, ensure_ascii=True))
        return
    width = max((len(b.name) for b in books), default=0)
    for book in books:
        variables = " ".join(f"--var {v.name}=..." for v in book.variables if v.required)
        approval = book.approval.value if book.mode is Mode.APPLY else "-"
        click.echo(f"{book.name.ljust(width)}  {book.mode.value:<8}  {approval:<8}  {book.summary}"
                   + (f"  (needs {variables})" if variables else ""))  # fmt: skip


@playbook.command()
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file: str) -> None:
    """Check a playbook file. Exit 0 when valid; 1 with FILE:LINE, the key and the problem."""
    book = load_playbook(file)
    click.echo(f"{terminal(file)}: valid playbook {book.name} ({_describe(book)})")


def _approve_command(
    book_arg: str, inventory: str | None, lab: str | None, limit: str | None, ticket: str | None,
    variables: dict[str, str], out: Path,
) -> Callable[[str], str]:  # fmt: skip
    def build(digest: str) -> str:
        words = ["exfix", "playbook", "run", book_arg]
        words += ["--inventory", inventory] if inventory is not None else ["--lab", lab or ""]
        if limit:
            words += ["--limit", limit]
        if ticket:
            words += ["--ticket", ticket]
        for name, value in variables.items():
            words += ["--var", f"{name}={value}"]
        words += ["--out", str(out), "--approve", digest]
        return " ".join(shlex.quote(w) for w in words)

    return build


@playbook.command()
@click.argument("file_or_name")
@fleet_options
@click.option("--ticket", metavar="ID", help="Ticket id: tags the journal and names the run directory.")
@click.option(
    "--var", "assignments", multiple=True, metavar="NAME=VALUE", help="Set a playbook variable (repeatable)."
)
@click.option("--format", "fmt", type=click.Choice(RUN_FORMATS), default="text", show_default=True)
@click.option("--details", type=click.Choice([d.value for d in Details]), default="failing",
              show_default=True,
              help=f"Text, worknote, markdown, rundeck: which hosts to print in full above the recap "
                   f"(failing: the first {DETAIL_LIMIT} that need a look, worst first, then those a change "
                   "fixed; the JSON and the run record have every host).")  # fmt: skip
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    help=f"Directory for the run's artifacts [{DEFAULT_RUNS_DIR}/<ticket or playbook name>].",
)
@click.option("--approve", metavar="SHA256", help="Apply the plan with this digest (after review).")
@click.option("--operator", metavar="NAME", help="Who runs this, for the journal [the local user].")
def run(file_or_name: str, inventory: str | None, lab: str | None, limit: str | None, forks: int,
        host_timeout: float, ask_pass: bool, ticket: str | None, assignments: tuple[str, ...], fmt: str,
        details: str, out: str | None, approve: str | None, operator: str | None) -> None:  # fmt: skip
    """Run a playbook (a file, or the name of a shipped one) over the fleet.

    Exit 0: healthy, or remediated and verified; 2: findings, or a plan waits for approval;
    3: a host unreachable; 7: a host answered with an error (command-failed); 4: the approved
    digest matches no plan; 5: a change failed and was rolled back; 6: a change failed and the
    rollback failed too; 8: nothing found, but a fact area could not be collected (partial);
    1: bad input.
    """
    if ticket is not None:
        check_ticket(ticket)
    if approve is not None:
        check_digest(approve)
    book = load_playbook(find_playbook(file_or_name))
    overrides = parse_assignments(assignments)
    values = resolve_variables(book, overrides)
    out_dir = Path(out) if out is not None else Path(DEFAULT_RUNS_DIR) / (ticket or book.name)
    if (inventory is None) == (lab is None):
        raise UsageError("give exactly one of --inventory FILE or --lab [SCENARIO]")
    source = plan_source(inventory, lab)  # the same as exfix plan records
    settings = RunSettings(
        out_dir=out_dir,
        operator=operator or current_operator(),
        ticket=ticket,
        approve=approve,
        plan_source=source,
        forks=forks,
        host_timeout=host_timeout,
        approve_command=_approve_command(file_or_name, inventory, lab, limit, ticket, overrides, out_dir),
    )

    def log(message: str) -> None:
        click.echo(f"exfix: {terminal(message)}", err=True)

    log(f"playbook {book.name} ({_describe(book)})" + (f", ticket {ticket}" if ticket else ""))
    with open_fleet(inventory, lab, limit, ask_pass) as fleet:
        result = run_playbook(book, values, fleet.targets, fleet.credentials, settings, source=fleet.source,
                              log=log)  # fmt: skip
    log(f"{result.message()} Run record: {result.run_file}")
    sys.stdout.write(RENDERERS[fmt](result, Details(details)))
    sys.exit(result.exit_code)
