"""review.html: the change board's page as one self-contained HTML file.

It says the same as REVIEW.md, laid out for a person reading in a browser, from the same
:class:`~agent.review.model.Review` (which groups the changes and holds apply's schedule):
the digest and the apply command first, an index to find a server or a rule, plain language,
then one section per group of identical changes with its servers (each one's findings,
evidence and steps one click away in ``<details>``), the schedule with the estimated mail-flow
interruption and the rollback order, the healthy servers in one collapsed line, and in an
appendix (after a page break when printed) every script, collapsed, with its sha256.

The page is the Jinja2 template ``templates/review.html.j2``; this module hands it the review
and owns how every value is printed:

- autoescape is on, so what the template itself builds (macros, blocks) is markup and is
  never escaped twice;
- ``finalize`` (:func:`_shown`) passes every value a ``{{ }}`` prints through
  :func:`agent.report.safe.terminal` first, so a bidi override or an escape sequence is shown
  as an escape instead of reordering or hiding what the reviewer reads, then through
  ``html.escape`` (quotes included, for attributes). A filter that returns markup itself
  (``join``, ``e``, ``safe``) would skip ``terminal``: the template loops instead.

Self-contained and inert: the CSS is inline, there is no script, no image, no font, no link
that needs the network, and a Content-Security-Policy of ``default-src 'none'`` tells the
browser to load nothing even if something slipped through. The filter needs no script: an
index of in-page anchors, and CSS ``:target`` marks where a link led.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Mapping

import jinja2
from markupsafe import Markup

from agent.model.plan import Plan
from agent.planning.render import RenderedHost
from agent.report.display import cause_label, format_value, plural
from agent.report.safe import terminal
from agent.review.model import NAMES_SHOWN, build_review, minutes

TEMPLATE = "review.html.j2"


def _shown(value: object) -> Markup:
    """What a ``{{ }}`` prints: markup the template built as it is; any value made safe to read
    (control and format characters escaped) and to put in HTML text or an attribute."""
    if isinstance(value, Markup):
        return value
    # terminal() calls str(), which a StrictUndefined answers with UndefinedError.
    return Markup(html.escape(terminal(value), quote=True))


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
    env.globals["names_shown"] = NAMES_SHOWN
    env.globals["plural"] = plural
    env.globals["minutes"] = minutes
    return env


def render_review_html(plan: Plan, scripts: Mapping[str, RenderedHost], plan_json: str) -> str:
    """review.html for ``plan``; ``scripts`` by host directory (agent.planning.render_plan),
    ``plan_json`` the path of plan.json as the apply command should name it."""
    return page_environment().get_template(TEMPLATE).render(page=build_review(plan, scripts, plan_json))
