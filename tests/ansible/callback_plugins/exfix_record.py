"""A callback for the collection's tests: every task result, the recap and set_stats' data, as
JSON lines in the file $EXFIX_RECORD (ansible-core ships no JSON callback; ansible.posix's is
not installed here). Loaded by ansible-playbook from ANSIBLE_CALLBACK_PLUGINS, never imported
by the tests (ansible-core is GPL: the tests use it as a program)."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "exfix_record"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, record: dict[str, Any]) -> None:
        with open(os.environ["EXFIX_RECORD"], "a", encoding="utf-8") as out:
            out.write(json.dumps(record, default=str) + "\n")

    def _result(self, status: str, result: Any) -> None:
        self._write({
            "kind": "result",
            "status": status,
            "host": result._host.get_name(),
            "task": result._task.get_name(),
            "result": self._plain(result._result),
        })

    def _plain(self, value: Any) -> Any:
        return json.loads(json.dumps(value, default=str))

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result("changed" if result._result.get("changed") else "ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result("failed", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result("unreachable", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result("skipped", result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        hosts = sorted(stats.processed.keys())
        self._write({
            "kind": "stats",
            "hosts": {h: stats.summarize(h) for h in hosts},
            "custom": self._plain(stats.custom),
        })
