# Copyright: exfix developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""exfix.exchange.exfix_remediate: plans (check mode) or applies an approved plan, on the
controller; exfix reaches the hosts itself and keeps the journal here."""

from __future__ import annotations

import getpass
import os
import re
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.exfix.exchange.plugins.module_utils.exfix_specs import REMEDIATE_SPEC
from ansible_collections.exfix.exchange.plugins.plugin_utils import exfix_run

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def default_journal(unit: str) -> str:
    """``$XDG_STATE_HOME/exfix/ansible/<unit>.jsonl`` (``~/.local/state`` without it): one
    journal per host (or organisation run), so that forks never share a file."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "exfix", "ansible", _UNSAFE.sub("_", unit) + ".jsonl")


def operator_of(task_vars: dict[str, Any]) -> str:
    """Who runs the job: AWX's launching user where AWX runs it, else the local user."""
    for name in ("awx_user_name", "tower_user_name"):
        if task_vars.get(name):
            return str(task_vars[name])
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers)
        return "unknown"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        missing = exfix_run.missing_exfix()
        if missing is not None:
            return {**result, **missing}
        args = self.validate_argument_spec(argument_spec=REMEDIATE_SPEC)[1]
        me = task_vars["inventory_hostname"]
        if args["scope"] == "organization":
            names = list(args.get("hosts") or task_vars.get("ansible_play_hosts") or [me])
            unit = "organization-" + "-".join(sorted(names))[:80]
        else:
            if args.get("hosts"):
                return {**result, "failed": True, "msg": "hosts is for scope: organization; scope host "
                        "remediates inventory_hostname"}  # fmt: skip
            names, unit = [me], me
        journal = args.get("journal") or default_journal(unit)
        os.makedirs(os.path.dirname(os.path.abspath(journal)), exist_ok=True)
        operator = args.get("operator") or operator_of(task_vars)
        try:
            given = exfix_run.command_line(self._play_context)
            inv = exfix_run.inventory(self._templar, task_vars, names, given)
            for warning in inv.warnings:
                self._display.warning(warning)
            result.update(exfix_run.remediate(inv, args, check_mode=bool(self._task.check_mode),
                                              journal=journal, operator=operator))  # fmt: skip
        except exfix_run.ExfixError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        return result
