# Copyright: exfix developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What exfix.exchange's action plugins share: the host's variables as Ansible resolved them,
handed to exfix's own inventory code, and exfix's results as Ansible task results.

The plugins run on the controller (or the execution node): exfix reaches the host named by
``inventory_hostname`` itself, over PowerShell remoting, with the connection variables Ansible
resolved for it (vault, group_vars, templates and all). What those variables mean is exfix's
(``agent.inventory.inventory_from_variables``), never decided here.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

try:
    from agent.apply import HostHold, apply_plan, hold_hosts, plan_fleet
    from agent.errors import ExfixError, HostError, RefusedError, RemoteCommandError
    from agent.inventory import CredentialResolver, Inventory, inventory_from_variables, reads_variable
    from agent.model.plan import HostPlan, Plan, action_to_dict
    from agent.model.results import HostStatus, ScanReport
    from agent.planning import render_plan
    from agent.scan import scan_fleet

    EXFIX_IMPORT_ERROR: str | None = None
except ImportError as exc:  # the controller's Python has no exfix: said by every task, not a traceback
    EXFIX_IMPORT_ERROR = str(exc)
    ExfixError = Exception  # type: ignore[assignment,misc]

SCAN_SCHEMA = "exfix.scan/4"
# HostStatus values Ansible calls unreachable: exfix could not open a session to the host.
_UNREACHABLE = ("unreachable", "auth-failed")


def missing_exfix() -> dict[str, Any] | None:
    """The failed result of a task whose Python cannot import exfix (None: it can)."""
    if EXFIX_IMPORT_ERROR is None:
        return None
    return {
        "failed": True,
        "msg": "exfix.exchange needs the exfix Python package in the Python that runs Ansible "
        f"(pip install exfix, or the execution environment's requirements.txt): {EXFIX_IMPORT_ERROR}",
    }


def plain(value: Any) -> Any:
    """An Ansible value (its str subclasses, a decrypted vault value, lazy containers) as plain
    Python: what exfix's reader accepts."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return str(value)


def host_variables(templar: Any, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The variables exfix reads of one host, templated as Ansible templates a task's."""
    wanted = {k: v for k, v in variables.items() if reads_variable(str(k))}
    wanted["group_names"] = variables.get("group_names") or []
    return {str(k): plain(templar.template(v)) for k, v in wanted.items()}


def command_line(play_context: Any) -> dict[str, Any]:
    """The account and password given on the command line (``-u``, ``-k`` or
    ``--connection-password-file``), which is how an AWX Machine credential hands them over:
    what a host's own ``ansible_user`` and ``ansible_password`` override, as in Ansible."""
    given: dict[str, Any] = {}
    if getattr(play_context, "remote_user", None):
        given["ansible_user"] = str(play_context.remote_user)
    if getattr(play_context, "password", None):
        given["ansible_password"] = str(play_context.password)
    return given


def inventory(
    templar: Any, task_vars: Mapping[str, Any], names: list[str], given: Mapping[str, Any] | None = None
) -> Inventory:
    """An exfix inventory of ``names``: the task's host from ``task_vars``, others from
    ``hostvars``, over what the command line gave (:func:`command_line`). Raises ExfixError
    (InventoryError) with exfix's one-line message."""
    me = task_vars["inventory_hostname"]
    hostvars = task_vars.get("hostvars") or {}
    resolved = {}
    for name in names:
        variables = task_vars if name == me else hostvars[name]
        resolved[name] = {**(given or {}), **host_variables(templar, variables)}
    return inventory_from_variables(resolved, source="ansible inventory")


def unreachable_or_failed(status: str, error: str | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Ansible's result for a host exfix could not scan: unreachable when no session opened."""
    result: dict[str, Any] = dict(extra)
    result["msg"] = f"{status}: {error}"
    result["unreachable" if status in _UNREACHABLE else "failed"] = True
    result["changed"] = False
    return result


def ticket_of(args: Mapping[str, Any]) -> dict[str, Any]:
    return {"ticket": args["ticket"]} if args.get("ticket") else {}


# --- exfix_scan ------------------------------------------------------------------------------


def scan(inv: Inventory, args: Mapping[str, Any]) -> dict[str, Any]:
    """The task's host scanned: the scan JSON's part for that host, never changed."""
    report: ScanReport = scan_fleet(
        inv.hosts,
        inv.credentials(environ=os.environ),
        source=inv.source,
        forks=1,
        host_timeout=args["host_timeout"],
        probe_repeat=args["probe_repeat"],
    )
    (host,) = report.hosts
    extra = ticket_of(args)
    if host.status is not HostStatus.SCANNED:
        return unreachable_or_failed(host.status.value, host.error, {**extra, "host": host.to_dict()})
    organizations = [o.to_dict() for o in report.organizations if host.host in o.servers]
    rules = sorted({f.rule_id for f in report.findings_for(host.host)})
    result: dict[str, Any] = {
        "changed": False,
        **extra,
        "schema": SCAN_SCHEMA,
        "host": host.to_dict(),
        "organizations": organizations,
        "rules": rules,
        "exit_code": report.exit_code,
    }
    if host.partial:
        result["warnings"] = [
            f"{host.host}: {issue.area.value} not collected: {issue.reason}" for issue in host.failed_areas
        ]
    return result


# --- exfix_remediate -------------------------------------------------------------------------


def scoped(plan: Plan, scope: str) -> Plan:
    """The part of a plan one task applies, with its own digest: the host's own units
    (``host``), or the organisation's shared ones (``organization``) with the servers they are
    for kept as units without steps, so that apply verifies the change on each of them (their
    failing queues drain) and changes nothing of their own."""
    hosts: tuple[HostPlan, ...]
    organizations: tuple[HostPlan, ...]
    if scope == "host":
        hosts, organizations = plan.hosts, ()
    else:
        hosts = tuple(
            dataclasses.replace(h, actions=(), advisories=(), outstanding=(), consequences=())
            for h in plan.hosts
        )
        organizations = plan.organizations
    part = Plan(plan.schema, hosts, "", plan.source, organizations, plan.probe_repeat)
    return dataclasses.replace(part, digest=part.compute_digest())


def _setting(value: Any) -> str:
    if value is None:  # the facts hold no value: a connector not there yet, a service state
        return "(as found)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def diff(plan: Plan) -> list[dict[str, str]]:
    """Ansible's ``diff``: one before/after per setting an automatic step changes."""
    out = []
    for unit in plan.units:
        for action in unit.actions:
            if action.manual:
                continue
            if not action.changes:  # a step with no setting to read back (Register-DnsClient)
                header = f"{unit.host}: {action.id}"
                out.append({"before_header": header, "after_header": header, "before": "",
                            "after": f"runs: {action.description}\n"})  # fmt: skip
            for change in action.changes:
                header = f"{unit.host}: {action.id} {change.property}"
                out.append({
                    "before_header": header,
                    "after_header": header,
                    "before": f"{change.property}: {_setting(change.before)}\n",
                    "after": f"{change.property}: {_setting(change.after)}\n",
                })  # fmt: skip
    return out


def planned(plan: Plan) -> dict[str, Any]:
    """What check mode shows and the approval is for."""
    scripts = {host: rendered.texts() for host, rendered in render_plan(plan).items()}
    return {
        "digest": plan.digest,
        "actions": [
            {"unit": unit.host, "level": unit.level.value, **action_to_dict(action)}
            for unit in plan.units
            for action in unit.actions
        ],
        "scripts": scripts,
        "plan": plan.to_dict(),
        "diff": diff(plan),
        "outstanding": [
            {
                "unit": unit.host,
                "rule_id": o.rule_id,
                "blocker": o.blocker.value,
                "message": o.message,
                "variable": o.variable,
            }
            for unit in plan.units
            for o in unit.outstanding
        ],
    }


def _refused(result: Mapping[str, Any], msg: str, **more: Any) -> dict[str, Any]:
    """A failed task that changed nothing: what was planned (not the whole plan and scripts
    again, which check mode returned) and why it was refused."""
    keys = ("ticket", "scope", "digest", "actions", "diff", "outstanding")
    kept = {k: result[k] for k in keys if k in result}
    return {**kept, **more, "changed": False, "failed": True, "msg": msg}


def remediate(
    inv: Inventory, args: Mapping[str, Any], *, check_mode: bool, journal: str, operator: str
) -> dict[str, Any]:
    """Plan (check mode) or apply the approved plan, verify it, and roll back on failure.

    A task that will apply (not check mode, a digest given) holds its hosts first
    (agent.apply.hold_hosts: this controller's lock beside the journal and each server's change
    marker), then collects and plans them under the hold, and applies with the facts collected
    there: no other exfix run can change a held host in between, so apply's stale check takes
    them instead of collecting every host a second time (it still recomputes every fingerprint,
    and each step's before-read still catches a change made by hand). The hold's records are in
    the journal (and in ``journal_records``) before apply's; whatever the task ends with, a
    refusal included, the markers are let go of when it returns. Check mode, or a task without
    a digest, holds nothing and writes no journal."""
    credentials = inv.credentials(environ=os.environ)
    if check_mode or not (args.get("digest") or "").strip():
        return _remediate(inv, credentials, args, check_mode=check_mode, journal=journal, held=None,
                          records=[])  # fmt: skip
    ticket = args.get("ticket")
    purpose = "ansible exfix.exchange.exfix_remediate" + (f", ticket {ticket}" if ticket else "")
    records: list[dict[str, Any]] = []
    with hold_hosts(inv.hosts, credentials, journal=journal, purpose=purpose, operator=operator,
                    ticket=ticket, on_event=lambda entry: records.append(entry.to_dict()),
                    forks=max(1, len(inv.hosts))) as held:  # fmt: skip
        return _remediate(inv, credentials, args, check_mode=False, journal=journal, held=held,
                          records=records)  # fmt: skip


def _remediate(
    inv: Inventory, credentials: CredentialResolver, args: Mapping[str, Any], *, check_mode: bool,
    journal: str, held: HostHold | None, records: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """remediate's work; ``held``: the hold of the hosts when the task will apply (None: check
    mode or no digest, so that nothing is applied), ``records`` the journal records written."""
    fleet = plan_fleet(inv.hosts, credentials, source=None, scan_source=inv.source, forks=len(inv.hosts),
                       host_timeout=args["host_timeout"], probe_repeat=args["probe_repeat"])  # fmt: skip
    extra = ticket_of(args)
    scope = args["scope"]
    if fleet.unscanned and scope == "host":
        (host,) = fleet.unscanned
        return unreachable_or_failed(host.status.value, host.error, {**extra, "host": host.host})
    if fleet.unscanned:  # the task runs once for the organisation: another host is not this one
        named = "; ".join(f"{h.host}: {h.status.value}: {h.error}" for h in fleet.unscanned)
        return {**extra, "changed": False, "failed": True, "scope": scope,
                "msg": f"the organisation's plan needs every server it is made from: {named}"}  # fmt: skip
    plan = scoped(fleet.plan, scope)
    shown = planned(plan)
    automatic = [a for a in plan.actions if not a.manual]
    result: dict[str, Any] = {"changed": bool(automatic), **extra, "scope": scope, **shown}
    warnings = []
    if scope == "host" and fleet.plan.organizations and any(u.actions for u in fleet.plan.organizations):
        count = sum(len(u.actions) for u in fleet.plan.organizations)
        warnings.append(
            f"{count} organisation step(s) (what the organisation's servers share, such as a send "
            "connector) are not run per host: they are exfix_remediate's with scope: organization, "
            "run once (run_once: true), as the collection's remediate playbook does"
        )
    if warnings:
        result["warnings"] = warnings
    if check_mode:
        return result
    if not automatic:
        result["msg"] = "nothing to change: no automatic step is needed now"
        return result
    approved = (args.get("digest") or "").strip().lower()
    if not approved or held is None:  # held is None only in check mode or without a digest
        return _refused(result, "no digest: run this task in check mode, review its actions and diff, and "
                        "give the plan's digest as the digest option to apply it")
    if approved != plan.digest:
        return _refused(result, f"the approved digest {approved[:64]} is not the plan for these hosts now "
                        f"({plan.digest}): they changed since check mode showed the plan; review the "
                        "actions shown here (check mode) and approve the new digest")
    # The hold's run: its journal, operator and ticket; the stale check takes the facts
    # collected under it (agent/apply/hold.py).
    collected = fleet.scan.scanned_facts()
    try:
        report = apply_plan(
            plan, inv.hosts, credentials, approve=approved, allow_restart=args["allow_restart"],
            verify_timeout=args["verify_timeout"], forks=max(1, len(inv.hosts)),
            on_event=lambda entry: records.append(entry.to_dict()), held=held, collected=collected,
        )  # fmt: skip
    except (HostError, RemoteCommandError) as exc:
        status = getattr(exc, "status", "failed")
        return unreachable_or_failed(status, str(exc), {**extra, "digest": plan.digest, "journal": journal})
    except RefusedError as exc:
        msg = str(exc).replace("give --allow-restart", "set the allow_restart option")
        return _refused(result, msg, journal=journal, journal_records=records)
    applied = report.to_dict()
    in_effect = any(
        step.status.value in ("ok", "no-undo", "rollback-failed")
        for host in (*report.organizations, *report.hosts)
        for step in host.steps
    )
    result.update(changed=in_effect, apply=applied, journal=journal, run=report.run,
                  exit_code=report.exit_code, journal_records=records)  # fmt: skip
    verified = [h.verified for h in (*report.organizations, *report.hosts) if h.verified is not None]
    result["verified"] = bool(verified) and all(verified)
    if report.exit_code != 0:
        result["failed"] = True
        outcomes = ", ".join(
            f"{h.host}: {h.outcome.value}{'' if h.verified is not False else ' (not verified)'}"
            + (f" ({h.error})" if h.error else "")
            for h in (*report.organizations, *report.hosts)
        )
        result["msg"] = f"exit {report.exit_code}: {outcomes}; journal {journal} (run {report.run})"
    return result


__all__ = [
    "ExfixError",
    "command_line",
    "host_variables",
    "inventory",
    "missing_exfix",
    "remediate",
    "scan",
]
