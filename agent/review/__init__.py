"""Review: the stage between planning and apply that writes what a change board approves.

Planning ends in values and text (a :class:`~agent.model.plan.Plan` and its rendered
scripts); this stage puts them on disk as the plan bundle and adds the two pages people read:

- :func:`write_plan_dir` writes plan.json, REVIEW.md, review.html and each host's scripts;
- :func:`render_review` is REVIEW.md, :func:`render_review_html` is review.html (a Jinja2
  template in ``templates/``);
- :func:`apply_command` is the exact command that applies a plan, as both pages and the CLI
  print it.
"""

from __future__ import annotations

from agent.review.bundle import HOSTS_DIR, PLAN_FILE, REVIEW_FILE, REVIEW_HTML, PlanFiles, write_plan_dir
from agent.review.model import apply_command
from agent.review.review_html import render_review_html
from agent.review.review_md import code_block, render_review

__all__ = [
    "HOSTS_DIR",
    "PLAN_FILE",
    "REVIEW_FILE",
    "REVIEW_HTML",
    "PlanFiles",
    "apply_command",
    "code_block",
    "render_review",
    "render_review_html",
    "write_plan_dir",
]
