"""What several commands share: choosing the fleet (--inventory or --lab), output, progress."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from agent.collect.runner import PROBE_ROUND_INTERVAL
from agent.errors import UsageError
from agent.inventory import CredentialResolver, Inventory, inventory_from_mapping, load_inventory
from agent.inventory.limit import log as inventory_log
from agent.model.probe import PROBE_REPEAT_MAX
from agent.model.results import HostScan, HostStatus
from agent.model.target import HostTarget
from agent.report.safe import terminal
from agent.scan import DEFAULT_FORKS
from agent.transport.tls import unvalidated_warning

DEFAULT_LAB_SCENARIO = "mixed-fleet"
FORMATS = ("text", "json", "markdown")

F = Callable[..., Any]


INVENTORY_HELP = ("Ansible inventory: a YAML or INI file, a directory, an inventory script, '-' for "
                  "ansible-inventory --list JSON on stdin, or ansible:PATH (read by Ansible itself).")


def inventory_option(func: F) -> F:
    """-i/--inventory, required (exfix inventory)."""
    return click.option("--inventory", "-i", "inventory", required=True, metavar="SOURCE",
                        help=INVENTORY_HELP)(func)


def load_with_warnings(source: str) -> Inventory:
    """The inventory ``-i`` names; what it holds that exfix does not use is warned about on
    stderr, one line per variable."""
    inv = load_inventory(source)
    for warning in inv.warnings:
        inventory_log.warning("%s", warning)
    return inv


def fleet_options(func: F) -> F:
    """--inventory / --lab / --limit / --forks / --host-timeout / --ask-pass."""
    options = [
        click.option("--inventory", "-i", "inventory", metavar="SOURCE", help=INVENTORY_HELP),
        click.option("--lab", "lab", is_flag=False, flag_value=DEFAULT_LAB_SCENARIO, default=None,
                     metavar="[SCENARIO]",
                     help=f"Start the lab in-process and use its fleet (default {DEFAULT_LAB_SCENARIO})."),
        click.option("--limit", "-l", "limit", metavar="PATTERN",
                     help="Only hosts or groups matching PATTERN, as Ansible's --limit."),
        click.option("--forks", "-f", type=click.IntRange(1, 256), default=DEFAULT_FORKS, show_default=True,
                     help="Hosts worked on at once."),
        click.option("--host-timeout", type=click.FloatRange(1, 86400), default=300.0, show_default=True,
                     help="Seconds one host may take in all before it counts as unreachable."),
        click.option("--ask-pass", "-k", is_flag=True, help="Prompt for the connection password."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _probe_repeat(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    # Checked here rather than by click.IntRange: a bad value is bad input, a one-line error
    # and exit 1 like every other (click's own usage errors exit 2, which here means findings).
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= PROBE_REPEAT_MAX:
        raise UsageError(
            f"--probe-repeat: expected a whole number from 1 to {PROBE_REPEAT_MAX}, got {value!r}"
        )
    return int(text)


def probe_repeat_option(func: F) -> F:
    """--probe-repeat N: ask each DNS server's standard questions N times, from both vantages."""
    return click.option(
        "--probe-repeat", "probe_repeat", default="1", show_default=True, metavar="N", callback=_probe_repeat,
        help=f"Ask every DNS server the probe questions N times (1-{PROBE_REPEAT_MAX}), "
             f"{PROBE_ROUND_INTERVAL:g}s apart, to tell a server that fails some queries from one "
             "that fails all.",
    )(func)


@dataclass
class Fleet:
    inventory: Inventory
    targets: tuple[HostTarget, ...]
    credentials: CredentialResolver
    source: str


@contextlib.contextmanager
def open_fleet(inventory: str | None, lab: str | None, limit: str | None, ask_pass: bool) -> Iterator[Fleet]:
    """The hosts to work on. With --lab, the lab runs for as long as the block does."""
    if (inventory is None) == (lab is None):
        raise UsageError("give exactly one of --inventory FILE or --lab [SCENARIO]")
    prompt = _prompt if ask_pass else None
    if inventory is not None:
        loaded = _fleet(load_with_warnings(inventory), limit, prompt, inventory)
        with _fleet_gc():
            yield loaded
        return
    from mock_remoting.lab import Lab  # lazy: the lab (psrpcore, TLS, DNS) loads only for --lab

    assert lab is not None
    with Lab(lab) as running:
        source = f"lab:{running.scenario.name}"
        loaded = _fleet(inventory_from_mapping(running.inventory(), source=source), limit, prompt, source)
        with _fleet_gc():
            yield loaded


# The collector's youngest generation, in objects allocated: 10,000 instead of CPython's 700.
# Sixty-four hosts in flight keep their pending responses and half-built facts alive across
# many young collections, which then trace the same survivors again and again. At 10,000 a
# young collection comes every twenty-odd hosts, and a garbage cycle waits a few megabytes.
_YOUNG_THRESHOLD = 10_000


@contextlib.contextmanager
def _fleet_gc() -> Iterator[None]:
    """The cyclic collector's settings for a fleet's run, once the fleet is loaded.

    What is loaded by then lives for the whole run: the modules and the inventory (75,000 and,
    for 10,000 hosts, 90,000 more objects the collector tracks). ``gc.freeze`` moves them out of
    the generations, which otherwise trace all of them again at every older collection. The
    youngest generation also collects less often (``_YOUNG_THRESHOLD``). Both are undone
    afterwards, so that a process that runs several commands (the tests, a caller of the CLI)
    still collects what they left.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], _YOUNG_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _fleet(inv: Inventory, limit: str | None, prompt: Callable[[str | None, str], str] | None,
           source: str) -> Fleet:
    targets = _select(inv, limit)
    credentials = inv.credentials(prompt=prompt)
    # Every credential is resolved before any host is touched: a password variable that is not
    # set is bad input (exit 1, one line), not a host failure; and --ask-pass prompts here, once
    # per user, before a progress bar takes the terminal.
    for target in targets:
        credentials.resolve(target)
    # Once per run, however many hosts it concerns: a line per host would bury everything else
    # in a fleet run, and the first host's line alone would hide that it concerns others.
    unchecked = unvalidated_warning(targets)
    if unchecked is not None:
        inventory_log.warning("warning: %s", unchecked)
    return Fleet(inv, targets, credentials, source)


class _Hold(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _select(inv: Inventory, limit: str | None) -> tuple[HostTarget, ...]:
    """``inv.select(limit)``, whose warnings (a --limit term that matches nothing is ignored) are
    shown only when the selection succeeds: when nothing matches at all, the error alone says
    so, in one line."""
    hold = _Hold()
    propagate = inventory_log.propagate
    inventory_log.addHandler(hold)
    inventory_log.propagate = False
    try:
        targets = inv.select(limit)
    finally:
        inventory_log.removeHandler(hold)
        inventory_log.propagate = propagate
    for record in hold.records:
        inventory_log.handle(record)
    return targets


def _prompt(username: str | None, host: str) -> str:
    return str(click.prompt(f"Password for {username or 'the connection'} ({host})", hide_input=True,
                            err=True))


def colour_off() -> bool:
    """``exfix --no-color``; NO_COLOR in the environment (https://no-color.org) rich honours
    itself."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("no_color"))


def stdout_console() -> Console:
    # A report piped to a file or a ticket is read later, on a wide screen: 140 columns there.
    console = Console(file=sys.stdout, highlight=False, soft_wrap=False, no_color=colour_off() or None)
    if not console.is_terminal:
        console = Console(file=sys.stdout, highlight=False, soft_wrap=False, width=140,
                          no_color=colour_off() or None)  # fmt: skip
    return console


@contextlib.contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[HostScan], None]]:
    """A progress bar on stderr when it is a terminal; silent otherwise (CI, pipes, tickets):
    hosts done of all, how many could not be scanned and how many findings so far, the time
    gone and an estimate of the time left, and the host that finished last."""
    console = Console(file=sys.stderr, no_color=colour_off() or None)
    if not console.is_terminal or total == 0:
        yield lambda _host: None
        return
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[tally]}"), TimeElapsedColumn(), TextColumn("eta"),
                   TimeRemainingColumn(), TextColumn("{task.fields[last]}"), console=console,
                   transient=True)  # fmt: skip
    failed = findings = 0
    lock = threading.Lock()

    def advance(host: HostScan) -> None:
        nonlocal failed, findings
        with lock:
            failed += host.status is not HostStatus.SCANNED
            findings += len(host.findings)
            tally = f"{failed} failed, {findings} findings"
            bar.update(task, advance=1, last=terminal(host.host), tally=tally)

    with bar:
        task = bar.add_task(label, total=total, last="", tally="0 failed, 0 findings")
        yield advance
