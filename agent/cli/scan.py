"""``exfix scan`` and ``exfix evaluate``."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from agent.cli._common import (
    FORMATS,
    fleet_options,
    open_fleet,
    probe_repeat_option,
    progress,
    stdout_console,
)
from agent.errors import FactsFileError, UsageError
from agent.model import snapshot
from agent.model.results import HostScan, ScanReport
from agent.report import json_report, junit, markdown, nagios, prometheus, rundeck, text
from agent.rules.registry import RULES
from agent.scan import evaluate_snapshot, scan_fleet

SCAN_FORMATS = (*FORMATS, "junit", "prometheus", "rundeck")


def _emit(report: ScanReport, fmt: str, details: str = "failing", quiet: bool = False) -> None:
    if fmt == "json":
        sys.stdout.write(json_report.render(report))
    elif fmt == "markdown":
        sys.stdout.write(markdown.render(report))
    elif fmt == "junit":
        sys.stdout.write(junit.render(report, [rule.id for rule in RULES]))
    elif fmt == "prometheus":
        sys.stdout.write(prometheus.render(report))
    elif fmt == "rundeck":
        buffer = io.StringIO()
        text.render(report, Console(file=buffer, width=140, no_color=True, highlight=False, soft_wrap=False),
                    details=text.Details(details), quiet=quiet)  # fmt: skip
        sys.stdout.write(rundeck.render(buffer.getvalue(), text.rundeck_pairs(report)))
    else:
        text.render(report, stdout_console(), details=text.Details(details), quiet=quiet)


def _text_options(func: Any) -> Any:
    """--details and -q, which shape the text output (json and markdown are whole documents)."""
    quiet = "Text: the recap only (a line per host, the rules, the summary)."
    func = click.option("-q", "--quiet", is_flag=True, help=quiet)(func)
    return click.option(
        "--details", type=click.Choice([d.value for d in text.Details]), default="failing", show_default=True,
        help=f"Text: whose evidence to print above the recap (failing: the first {text.DETAIL_LIMIT} hosts "
        "with findings or problems).",
    )(func)


@contextlib.contextmanager
def _facts_file(path: str | None, order: list[str]) -> Iterator[snapshot.SnapshotWriter | None]:
    """The --save-facts file, written as hosts finish under a temporary name beside it and
    renamed over it at the end (also when the scan is cut short: the hosts that finished are
    kept, as valid JSON). Opened before any host is asked, so a path that cannot be written is
    a one-line error (exit 1) before the scan, not after it."""
    if path is None:
        yield None
        return
    target = Path(path)
    try:
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    except OSError as exc:
        raise UsageError(f"--save-facts {path}: cannot write there: {exc.strerror or exc}") from None
    try:
        with open(fd, "w", encoding="utf-8") as out:
            writer = snapshot.SnapshotWriter(out, order)
            try:
                yield writer
            finally:
                writer.close()
    finally:
        os.replace(partial, target)


@click.command()
@fleet_options
@probe_repeat_option
@click.option("--format", "fmt", type=click.Choice(SCAN_FORMATS), default="text", show_default=True,
              help="text for a person; json (exfix.scan/4), markdown, junit (CI job views), prometheus "
              "(a node_exporter textfile), rundeck (the text, then RUNDECK:DATA lines) for machines.")
@_text_options
@click.option("--save-facts", type=click.Path(dir_okay=False, writable=True),
              help="Also write the collected facts (exfix.facts/4 JSON, readable by you only) for "
                   "`exfix evaluate`, host by host as they finish.")
def scan(inventory: str | None, lab: str | None, limit: str | None, forks: int, host_timeout: float,
         ask_pass: bool, probe_repeat: int, fmt: str, save_facts: str | None, details: str,
         quiet: bool) -> None:
    """Collect facts from every host, evaluate every rule, report the findings.

    Exit 0: every host clean; 2: findings; 8: no findings, but on a host a fact area could not
    be collected and the rules reading it were not judged (partial); 3: a host could not be
    reached; 7: a host answered Get-ExchangeServer with an error (3 wins over 7, 7 over 2, 2
    over 8); 1: bad input.
    """
    with open_fleet(inventory, lab, limit, ask_pass) as fleet, \
            _facts_file(save_facts, [t.name for t in fleet.targets]) as writer, \
            progress(len(fleet.targets), "scanning") as advance:

        def done(host: HostScan) -> None:
            advance(host)
            if writer is not None:
                writer.finished(host.host)

        # Each host's facts go to the file as it finishes and are then let go: the report
        # keeps what it shows, so a 10,000-host scan does not hold 10,000 hosts' facts.
        report = scan_fleet(fleet.targets, fleet.credentials, source=fleet.source, forks=forks,
                            host_timeout=host_timeout, on_host_done=done, probe_repeat=probe_repeat,
                            keep_facts=False, on_facts=None if writer is None else writer.add)  # fmt: skip
    _emit(report, fmt, details, quiet)
    sys.exit(report.exit_code)


@click.command()
@fleet_options
@probe_repeat_option
def check(inventory: str | None, lab: str | None, limit: str | None, forks: int, host_timeout: float,
          ask_pass: bool, probe_repeat: int) -> None:
    """Scan as a Nagios/Icinga plugin: one status line with perfdata, the hosts with findings,
    and the plugin's exit code: 0 OK, 1 WARNING (medium or low findings, a partial host),
    2 CRITICAL (a critical or high finding), 3 UNKNOWN (a host not scanned; bad input).
    """
    with open_fleet(inventory, lab, limit, ask_pass) as fleet:
        report = scan_fleet(fleet.targets, fleet.credentials, source=fleet.source, forks=forks,
                            host_timeout=host_timeout, probe_repeat=probe_repeat,
                            keep_facts=False)  # fmt: skip
    out, state = nagios.render(report)
    sys.stdout.write(out)
    sys.exit(int(state))


@click.command()
@click.argument("facts_file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(SCAN_FORMATS), default="text", show_default=True,
              help="text for a person; json (exfix.scan/4), markdown, junit (CI job views), prometheus "
              "(a node_exporter textfile), rundeck (the text, then RUNDECK:DATA lines) for machines.")
@_text_options
def evaluate(facts_file: str, fmt: str, details: str, quiet: bool) -> None:
    """Evaluate every rule offline over a facts file saved by `exfix scan --save-facts`."""
    try:
        text_in = Path(facts_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FactsFileError(facts_file, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    report = evaluate_snapshot(snapshot.from_json(text_in, source=facts_file), source=facts_file)
    _emit(report, fmt, details, quiet)
    sys.exit(report.exit_code)
