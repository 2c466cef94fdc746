"""The ``exfix`` command line. Subcommands live in sibling modules and are added here explicitly."""

from __future__ import annotations

import sys
from typing import Any

import click

from agent.cli import apply, inventory_cmd, lab, plan, playbook, rbac, rules_cmd, scan
from agent.errors import EXIT_ERROR, ExfixError, one_line


class _Group(click.Group):
    """Turns every exfix error into one line on stderr and its exit code; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ExfixError as exc:
            click.echo(f"exfix: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("exfix: interrupted", err=True)
            sys.exit(130)
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
    main.add_command(rules_cmd.rules)
    main.add_command(lab.lab)
    main.add_command(plan.plan)
    main.add_command(apply.apply)
    main.add_command(apply.rollback)
    main.add_command(playbook.playbook)
    main.add_command(inventory_cmd.inventory)
    main.add_command(rbac.rbac)


_register()
