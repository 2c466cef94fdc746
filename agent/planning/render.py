"""Rendering a host's plan as the two scripts a change board reads: remediate.ps1 and
rollback.ps1.

The templates (ps_templates/) spell out every cmdlet and parameter name; values reach the
text through exactly two filters:

- ``ps`` (agent.pwsh.literal, the one audited quoting filter) for values in code;
- ``comment`` (agent.report.safe.terminal) for values in ``#`` comments: one line, every
  control or format character escaped, so a newline in a NIC alias cannot end the comment
  and start a line of code. Scripts use line comments only: a value holding ``#>`` could
  close a block comment.

Both filters mark their output; the environment's ``finalize`` refuses any other value in a
``{{ }}``, so a template that prints a value without a filter fails loudly instead of
writing it raw. ``StrictUndefined`` makes a misspelt variable fail too.

Scripts are written as UTF-8 with a byte order mark: Windows PowerShell 5.1 reads a file
without one in the ANSI code page, which would change any non-ASCII character inside a
quoted value. The sha256 the plan records is over exactly those bytes (:func:`script_bytes`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from agent import pwsh
from agent.fixes import registry
from agent.model.command import CmdletCall
from agent.model.findings import Finding
from agent.model.plan import (
    REMEDIATE_SCRIPT,
    RESTART_KIND,
    ROLLBACK_SCRIPT,
    Action,
    HostPlan,
    Plan,
    restart_transport_call,
)
from agent.report import safe
from agent.report.display import cause_label, change_before, evidence_line, format_value
from agent.resources import data_dir

BOM = b"\xef\xbb\xbf"


class Safe(str):
    """Text a filter (or a rendered template) made safe for where it goes in a script."""

    __slots__ = ()


def _ps(value: Any) -> Safe:
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the missing variable
    return Safe(pwsh.literal(value))


def _comment(value: Any) -> Safe:
    return Safe(safe.terminal(value))


def _finalize(value: Any) -> Any:
    if isinstance(value, Safe):
        return value
    raise jinja2.TemplateError(
        f"a template printed {type(value).__name__} {value!r:.60} without the 'ps' or 'comment' filter"
    )


def _unknown_action(action: Any) -> Safe:
    kind = getattr(getattr(action, "kind", None), "value", action)
    raise jinja2.TemplateError(f"the template has no case for action kind {kind!r}")


def _param_names(call: CmdletCall) -> tuple[str, ...]:
    return tuple(name for name, _ in call.parameters)


def environment(directory: Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment for the PowerShell templates in ``directory`` (the shipped
    ps_templates/ by default)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory or data_dir("ps_templates"))),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    env.filters["ps"] = _ps
    env.filters["comment"] = _comment
    env.filters["cause_label"] = cause_label
    env.globals["unknown_action"] = _unknown_action
    env.globals["param_names"] = _param_names
    return env


@functools.lru_cache(maxsize=1)
def _default_environment() -> jinja2.Environment:
    return environment()


def template_name(kind: str) -> str:
    """The template of the fix that declares step ``kind`` (ps_templates/<template>.ps1.j2)."""
    owner, _ = registry.step(kind)
    return f"{owner.template}.ps1.j2"


LAYOUT = "_host.ps1.j2"


# --- what the layout shows ------------------------------------------------------------------




@dataclass(frozen=True, slots=True)
class StepView:
    number: int
    action: Action
    body: Safe
    changes: tuple[str, ...]
    verify: str | None


@dataclass(frozen=True, slots=True)
class FindingView:
    finding: Finding
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HostView:
    plan: HostPlan
    digest: str
    findings: tuple[FindingView, ...]
    steps: tuple[StepView, ...]
    rollback_steps: tuple[StepView, ...]
    final_restart: Safe | None
    risks: tuple[str, ...]
    restart_step: int | None
    manual_restart_step: int | None
    no_undo: tuple[tuple[int, str], ...] = ()  # (step number, why it has no undo step)


def _changes(action: Action) -> tuple[str, ...]:
    return tuple(
        f"{c.property}: {change_before(action, c)} -> {format_value(c.after)}" for c in action.changes
    )


def _undo(action: Action) -> tuple[str, ...]:
    return tuple(f"{c.property}: {format_value(c.after)} -> {format_value(c.before)}" for c in action.changes)


def _verify(action: Action) -> str | None:
    if action.read_back is None or not action.changes:
        return None
    props = ", ".join(c.property for c in action.changes)
    return f"{pwsh.command(action.read_back)} -> {props}"


def _macro(env: jinja2.Environment, kind: str, name: str) -> Any:
    """The template macro ``<name>_<kind>`` (dashes as underscores) that renders step ``kind``:
    one macro per step, so a template never branches on the kind."""
    _, step = registry.step(kind)
    module = env.get_template(template_name(kind)).module
    macro = getattr(module, f"{name}_{step.macro_suffix}", None)
    if macro is None:
        raise jinja2.TemplateError(f"{template_name(kind)} has no macro {name}_{step.macro_suffix}")
    return macro


def without_undo(actions: Iterable[Action]) -> tuple[str, ...]:
    """"<kind>: <why>" for each kind of step among ``actions`` that declares it has no undo
    step (Step.no_undo), each once."""
    out: list[str] = []
    for action in actions:
        reason = registry.step(action.kind)[1].no_undo
        if reason is not None and not action.rollback:
            out.append(f"{action.kind}: {reason}")
    return tuple(dict.fromkeys(out))


def host_view(host: HostPlan, digest: str, env: jinja2.Environment) -> HostView:
    steps = []
    for number, action in enumerate(host.actions, start=1):
        body = Safe(_macro(env, action.kind, "remediate")(action))
        steps.append(StepView(number, action, body, _changes(action), _verify(action)))
    rollback_steps = []
    for step in reversed(steps):
        if step.action.rollback:
            body = Safe(_macro(env, step.action.kind, "rollback")(step.action))
            rollback_steps.append(StepView(step.number, step.action, body, _undo(step.action), None))
    calls = host.rollback_calls()
    final_restart = None
    if calls and calls[-1] == restart_transport_call():
        restart = env.get_template(template_name(RESTART_KIND)).module
        final_restart = Safe(restart.restart(calls[-1]))  # type: ignore[attr-defined]
    automatic_restart = next(
        (s.number for s in steps if s.action.kind == RESTART_KIND and not s.action.manual),
        None,
    )
    manual_restart = next(
        (s.number for s in steps if s.action.kind == RESTART_KIND and s.action.manual), None
    )
    risks = tuple(dict.fromkeys(r for a in host.actions if (r := registry.step(a.kind)[1].risk) is not None))
    return HostView(
        plan=host,
        digest=digest,
        findings=tuple(FindingView(f, tuple(evidence_line(e) for e in f.evidence)) for f in host.findings),
        steps=tuple(steps),
        rollback_steps=tuple(rollback_steps),
        final_restart=final_restart,
        risks=risks,
        restart_step=automatic_restart,
        manual_restart_step=manual_restart,
        no_undo=tuple(
            (s.number, reason)
            for s in steps
            if not s.action.rollback and (reason := registry.step(s.action.kind)[1].no_undo) is not None
        ),
    )


@dataclass(frozen=True, slots=True)
class RenderedHost:
    remediate: str
    rollback: str

    def texts(self) -> dict[str, str]:
        return {REMEDIATE_SCRIPT: self.remediate, ROLLBACK_SCRIPT: self.rollback}

    def files(self) -> dict[str, bytes]:
        return {name: script_bytes(text) for name, text in self.texts().items()}

    def sha256(self) -> dict[str, str]:
        return {name: hashlib.sha256(data).hexdigest() for name, data in self.files().items()}


def script_bytes(text: str) -> bytes:
    """The bytes of a script file: UTF-8 with a byte order mark (see the module docstring)."""
    return BOM + text.encode("utf-8")


def render_host(host: HostPlan, digest: str, env: jinja2.Environment | None = None) -> RenderedHost:
    """remediate.ps1 and rollback.ps1 for one host. Deterministic: the same plan content and
    digest always give the same text."""
    env = env or _default_environment()
    view = host_view(host, digest, env)
    layout = env.get_template(LAYOUT).module
    return RenderedHost(
        remediate=str(layout.remediate_script(view)),  # type: ignore[attr-defined]
        rollback=str(layout.rollback_script(view)),  # type: ignore[attr-defined]
    )


def render_plan(plan: Plan, env: jinja2.Environment | None = None) -> Mapping[str, RenderedHost]:
    """Every unit's scripts (the organisations' and the hosts'), by directory."""
    return {unit.directory: render_host(unit, plan.digest, env) for unit in plan.units}
