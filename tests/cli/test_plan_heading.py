"""What `exfix plan` prints above each server's steps."""

from __future__ import annotations

import dataclasses

from agent.cli.plan import _unit_heading
from agent.model.plan import HostPlan
from support.plan_builders import host_plan


def _clean(name: str) -> HostPlan:
    return HostPlan(host=name, directory="h", fqdn=name, exchange_version="15.2.1118.7", findings=(),
                    actions=(), advisories=(), fingerprint="e" * 64)  # fmt: skip


def test_a_server_without_findings_has_nothing_to_do_not_no_automatic_step() -> None:
    assert _unit_heading(_clean("ex01.contoso.local")).endswith(": nothing to do (no findings)")


def test_a_server_with_findings_but_no_step_says_so() -> None:
    plan = dataclasses.replace(host_plan("x"), actions=())
    assert _unit_heading(plan).endswith(": no automatic step")
