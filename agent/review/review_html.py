"""review.html: the change board's page as one self-contained HTML file.

It says the same as REVIEW.md, laid out for a person reading in a browser: plain language
first (what is wrong, what changes, whether mail stops, what to approve), then per host the
findings with their evidence, the steps with their risk, and the exact remediate.ps1 and
rollback.ps1 with line numbers.

The page is the Jinja2 template ``templates/review.html.j2``; this module hands it plain
values (:class:`PageView`) and owns how every value is printed:

- autoescape is on, so what the template itself builds (macros, blocks) is markup and is
  never escaped twice;
- ``finalize`` (:func:`_shown`) passes every value a ``{{ }}`` prints through
  :func:`agent.report.safe.terminal` first, so a bidi override or an escape sequence is shown
  as an escape instead of reordering or hiding what the reviewer reads, then through
  ``html.escape`` (quotes included, for attributes). A filter that returns markup itself
  (``join``, ``e``, ``safe``) would skip ``terminal``: the template loops instead.

Self-contained and inert: the CSS is inline, there is no script, no image, no font, no link
that needs the network, and a Content-Security-Policy of ``default-src 'none'`` tells the
browser to load nothing even if something slipped through.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Mapping
from dataclasses import dataclass

import jinja2
from markupsafe import Markup

from agent.model.plan import REMEDIATE_SCRIPT, ROLLBACK_SCRIPT, HostPlan, Plan
from agent.planning.render import RenderedHost, environment, host_view, without_undo
from agent.report.display import cause_label, change_before, format_value
from agent.report.safe import terminal
from agent.review.review_md import NAMES_SHOWN, apply_command

TEMPLATE = "review.html.j2"


def _shown(value: object) -> Markup:
    """What a ``{{ }}`` prints: markup the template built as it is; any value made safe to read
    (control and format characters escaped) and to put in HTML text or an attribute."""
    if isinstance(value, Markup):
        return value
    # terminal() calls str(), which a StrictUndefined answers with UndefinedError.
    return Markup(html.escape(terminal(value), quote=True))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@functools.lru_cache(maxsize=1)
def page_environment() -> jinja2.Environment:
    """The Jinja2 environment of the review page (templates shipped in agent/review/templates)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("agent.review", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    env.filters["format_value"] = format_value
    env.filters["cause_label"] = cause_label
    env.globals["change_before"] = change_before
    env.globals["names_shown"] = NAMES_SHOWN
    env.globals["plural"] = _plural
    return env


def _restarts(host: HostPlan) -> bool:
    return any(a.disruptive and not a.manual for a in host.actions)


@dataclass(frozen=True, slots=True)
class ScriptView:
    name: str
    sha256: str | None  # as plan.json recorded it
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HostView:
    plan: HostPlan
    restarts: bool  # apply restarts MSExchangeTransport
    manual_restarts: bool  # only a manual step does
    risks: tuple[str, ...]
    scripts: tuple[ScriptView, ...]


@dataclass(frozen=True, slots=True)
class PageView:
    plan: Plan
    apply_command: str
    findings: int
    automatic: int  # automatic steps in the plan
    changed: int  # hosts with an automatic step
    shared: bool  # an organisation unit has an automatic step
    manual: int
    advisories: int
    consequences: int  # faults the plan's steps would create (prevented or refused)
    outstanding: int  # findings that stay after the plan
    restarting: tuple[str, ...]  # hosts whose transport service apply restarts
    hosts: tuple[HostView, ...]
    partial: tuple[str, ...] = ()  # hosts where a fact area could not be collected
    no_undo: tuple[str, ...] = ()  # "<kind>: <why>" of the automatic steps without an undo step


def _script(name: str, text: str, host: HostPlan) -> ScriptView:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return ScriptView(name=name, sha256=dict(host.scripts).get(name), lines=tuple(lines))


def page_view(plan: Plan, scripts: Mapping[str, RenderedHost], plan_json: str) -> PageView:
    env = environment()
    hosts = []
    for host in plan.units:  # the organisations' units first, as apply runs them
        rendered = scripts[host.directory]
        hosts.append(
            HostView(
                plan=host,
                restarts=_restarts(host),
                manual_restarts=any(a.disruptive for a in host.manual),
                risks=host_view(host, plan.digest, env).risks,
                scripts=(
                    _script(REMEDIATE_SCRIPT, rendered.remediate, host),
                    _script(ROLLBACK_SCRIPT, rendered.rollback, host),
                ),
            )
        )
    return PageView(
        plan=plan,
        apply_command=apply_command(plan, plan_json),
        findings=sum(len(h.findings) for h in plan.units),
        automatic=sum(1 for a in plan.actions if not a.manual),
        changed=sum(1 for h in plan.hosts if h.automatic),
        shared=any(o.automatic for o in plan.organizations),
        manual=sum(1 for a in plan.actions if a.manual),
        advisories=sum(len(h.advisories) for h in plan.units),
        consequences=sum(len(h.consequences) for h in plan.units),
        outstanding=sum(len(h.outstanding) for h in plan.units),
        restarting=tuple(h.host for h in plan.hosts if _restarts(h)),
        hosts=tuple(hosts),
        partial=tuple(h.host for h in plan.hosts if h.failed_areas),
        no_undo=without_undo(a for a in plan.actions if not a.manual),
    )


def render_review_html(plan: Plan, scripts: Mapping[str, RenderedHost], plan_json: str) -> str:
    """review.html for ``plan``; ``scripts`` by host directory (agent.planning.render_plan),
    ``plan_json`` the path of plan.json as the apply command should name it."""
    return page_environment().get_template(TEMPLATE).render(page=page_view(plan, scripts, plan_json))
