"""Writing the plan bundle: the directory a change board reviews and apply reads.

::

    <out>/plan.json                      the plan (agent/model/plan.py)
    <out>/REVIEW.md                      the change board's page (review_md.py)
    <out>/review.html                    the same page for a browser (review_html.py)
    <out>/hosts/<directory>/remediate.ps1
    <out>/hosts/<directory>/rollback.ps1

``<directory>`` is each host's safe, unique name recorded in plan.json. The scripts are
rendered again here (agent.planning.render) and must match the sha256 the plan recorded; a
mismatch means the templates changed between planning and writing, and nothing is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UsageError
from agent.model.plan import SCRIPT_NAMES, Plan
from agent.planning.render import render_plan
from agent.review.review_html import render_review_html
from agent.review.review_md import render_review

PLAN_FILE = "plan.json"
REVIEW_FILE = "REVIEW.md"
REVIEW_HTML = "review.html"
HOSTS_DIR = "hosts"


@dataclass(frozen=True, slots=True)
class PlanFiles:
    directory: Path
    plan_json: Path
    review: Path
    review_html: Path
    scripts: tuple[Path, ...]


def _write(path: Path, data: bytes) -> None:
    # Write beside, then rename: a reader never sees half a file.
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def write_plan_dir(plan: Plan, out_dir: str | Path, *, overwrite: bool = False) -> PlanFiles:
    """Write ``plan`` into ``out_dir``. Refuses (UsageError) a directory that already holds
    files unless ``overwrite``; files of an earlier plan that this one does not name are left
    alone then, and plan.json says which host directories belong to this plan."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{out}: the directory is not empty; choose a new one or allow overwriting")
    rendered = render_plan(plan)
    for host in plan.units:
        if rendered[host.directory].sha256() != dict(host.scripts):
            raise RuntimeError(f"the scripts of {host.host!r} no longer render as the plan recorded")
    out.mkdir(parents=True, exist_ok=True)
    scripts: list[Path] = []
    for host in plan.units:
        directory = out / HOSTS_DIR / host.directory
        directory.mkdir(parents=True, exist_ok=True)
        files = rendered[host.directory].files()
        for name in SCRIPT_NAMES:
            _write(directory / name, files[name])
            scripts.append(directory / name)
    plan_json = out / PLAN_FILE
    _write(plan_json, plan.to_json().encode("utf-8"))
    review = out / REVIEW_FILE
    _write(review, render_review(plan, rendered, str(plan_json)).encode("utf-8"))
    review_html = out / REVIEW_HTML
    _write(review_html, render_review_html(plan, rendered, str(plan_json)).encode("utf-8"))
    return PlanFiles(
        directory=out, plan_json=plan_json, review=review, review_html=review_html, scripts=tuple(scripts)
    )
