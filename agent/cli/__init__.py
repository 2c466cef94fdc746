"""The ``exfix`` command line. Subcommands live in sibling modules and are added here explicitly."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from agent.cli import apply, inventory_cmd, lab, plan, playbook, rbac, rules_cmd, scan
from agent.errors import EXIT_ERROR, ExfixError, one_line
from agent.report import nagios

# `exfix check` answers as a monitoring plugin does: whatever goes wrong before the fleet's
# state is known (bad options, an unreadable inventory) is UNKNOWN, exit 3, on stdout, where
# Nagios and Icinga read the status line (plugin guidelines: invalid arguments are UNKNOWN).
PLUGIN_COMMAND = "check"
EXIT_BROKEN_PIPE = 141


def _plugin_unknown(message: str) -> None:
    click.echo(f"EXFIX UNKNOWN - {one_line(message)}")
    sys.exit(int(nagios.State.UNKNOWN))


class _Group(click.Group):
    """Turns every exfix error into one line on stderr and its exit code; never a traceback.

    A usage error (an unknown option, a missing argument, a bad value) is exit 1 with one line,
    like every other bad input: click's own exit 2 is what exfix means by "findings / waiting
    for approval", and a ticket system reading it would take a typo for a pending change."""

    def main(  # one signature for both of click's overloads
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            value = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} -h')" if exc.ctx is not None else ""
            if exc.ctx is not None and exc.ctx.command.name == PLUGIN_COMMAND:
                _plugin_unknown(f"{exc.format_message()}{where}")
            click.echo(f"exfix: error: {one_line(exc.format_message())}{where}", err=True)
            sys.exit(EXIT_ERROR)
        except click.ClickException as exc:
            click.echo(f"exfix: error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("exfix: aborted", err=True)
            sys.exit(EXIT_ERROR)
        if not standalone_mode:
            return value
        sys.exit(value if isinstance(value, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ExfixError as exc:
            if ctx.invoked_subcommand == PLUGIN_COMMAND:
                _plugin_unknown(str(exc))
            click.echo(f"exfix: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("exfix: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # The reader went away (`exfix apply ... | head`): stop writing, quietly. What was
            # done is done and journaled; only the rest of the output is not read. stdout is
            # pointed at /dev/null so that the interpreter's own flush at exit does not fail
            # again (Python docs, "Note on SIGPIPE"); 141 is the shell's 128 + SIGPIPE.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception as exc:  # the last line of defence: one line, exit 1
            click.echo(f"exfix: internal error: {type(exc).__name__}: {one_line(str(exc))}", err=True)
            sys.exit(EXIT_ERROR)


# -h as --help on every command (subcommands inherit the group's context settings).
@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="exfix")
@click.option("--no-color", "no_color", is_flag=True,
              help="No colours in the output (as NO_COLOR=1 in the environment does).")
def main(no_color: bool) -> None:
    """Find and fix the causes of Exchange '451 4.4.0 DNS query failed' across a fleet."""


def _register() -> None:
    main.add_command(scan.scan)
    main.add_command(scan.evaluate)
    main.add_command(scan.check)
    main.add_command(rules_cmd.rules)
    main.add_command(lab.lab)
    main.add_command(plan.plan)
    main.add_command(apply.apply)
    main.add_command(apply.rollback)
    main.add_command(playbook.playbook)
    main.add_command(inventory_cmd.inventory)
    main.add_command(rbac.rbac)


_register()
