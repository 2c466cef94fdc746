# Copyright: exfix developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""exfix.exchange.exfix_scan: runs on the controller; exfix reaches inventory_hostname itself."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.exfix.exchange.plugins.module_utils.exfix_specs import SCAN_SPEC
from ansible_collections.exfix.exchange.plugins.plugin_utils import exfix_run


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
        args = self.validate_argument_spec(argument_spec=SCAN_SPEC)[1]
        try:
            given = exfix_run.command_line(self._play_context)
            inv = exfix_run.inventory(self._templar, task_vars, [task_vars["inventory_hostname"]], given)
            for warning in inv.warnings:
                self._display.warning(warning)
            result.update(exfix_run.scan(inv, args))
        except exfix_run.ExfixError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        return result
