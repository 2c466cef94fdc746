"""Planning: findings -> structured actions -> the scripts a change board reviews. Pure except
for reading the templates; agent.review writes the result to disk.

- :func:`build_plan` turns a fleet's facts and findings into a :class:`~agent.model.plan.Plan`;
- :func:`fingerprint_for` is the one function that fingerprints the facts an action depends
  on, at planning time and when apply checks for drift;
- :func:`render_host` renders remediate.ps1 / rollback.ps1.
"""

from __future__ import annotations

from agent.fixes.fingerprint import facts_for, fingerprint_for
from agent.model.plan import HostVars, Plan, plan_from_json
from agent.planning.build import build_plan, host_fingerprint
from agent.planning.render import RenderedHost, render_host, render_plan

__all__ = [
    "HostVars",
    "Plan",
    "RenderedHost",
    "build_plan",
    "facts_for",
    "fingerprint_for",
    "host_fingerprint",
    "plan_from_json",
    "render_host",
    "render_plan",
]
