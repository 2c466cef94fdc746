"""``exfix scan`` and ``exfix evaluate``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from agent.cli._common import (
    FORMATS,
    fleet_options,
    open_fleet,
    probe_repeat_option,
    progress,
    stdout_console,
)
from agent.errors import FactsFileError
from agent.model import snapshot
from agent.model.results import ScanReport
from agent.report import json_report, markdown, text
from agent.scan import evaluate_snapshot, scan_fleet


def _emit(report: ScanReport, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json_report.render(report))
    elif fmt == "markdown":
        sys.stdout.write(markdown.render(report))
    else:
        text.render(report, stdout_console())


@click.command()
@fleet_options
@probe_repeat_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--save-facts", type=click.Path(dir_okay=False, writable=True),
              help="Also write the collected facts (exfix.facts/4 JSON) for `exfix evaluate`.")
def scan(inventory: str | None, lab: str | None, limit: str | None, forks: int, host_timeout: float,
         ask_pass: bool, probe_repeat: int, fmt: str, save_facts: str | None) -> None:
    """Collect facts from every host, evaluate every rule, report the findings.

    Exit 0: every host clean; 2: findings; 8: no findings, but on a host a fact area could not
    be collected and the rules reading it were not judged (partial); 3: a host could not be
    reached; 7: a host answered Get-ExchangeServer with an error (3 wins over 7, 7 over 2, 2
    over 8); 1: bad input.
    """
    with open_fleet(inventory, lab, limit, ask_pass) as fleet, \
            progress(len(fleet.targets), "scanning") as advance:
        report = scan_fleet(fleet.targets, fleet.credentials, source=fleet.source, forks=forks,
                            host_timeout=host_timeout, on_host_done=lambda h: advance(h.host),
                            probe_repeat=probe_repeat)
    if save_facts is not None:
        facts = [h.facts for h in report.hosts if h.facts is not None]
        Path(save_facts).write_text(snapshot.to_json(facts), encoding="utf-8")
    _emit(report, fmt)
    sys.exit(report.exit_code)


@click.command()
@click.argument("facts_file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def evaluate(facts_file: str, fmt: str) -> None:
    """Evaluate every rule offline over a facts file saved by `exfix scan --save-facts`."""
    try:
        text_in = Path(facts_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FactsFileError(facts_file, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    report = evaluate_snapshot(snapshot.from_json(text_in, source=facts_file), source=facts_file)
    _emit(report, fmt)
    sys.exit(report.exit_code)
