"""Reading a plan directory for apply, and what makes it unapproved.

A plan file is read strictly (agent/model/plan.py), but without refusing a digest that does
not match: that is not a malformed file but an unapproved one, and apply refuses it with exit
4 like any other digest problem. The scripts beside it are checked against the sha256 that
plan.json records, because they are what the change board read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from agent.errors import FactsFileError
from agent.fixes.registry import KINDS
from agent.model.plan import SCRIPT_NAMES, Plan, plan_from_dict
from agent.review.bundle import HOSTS_DIR, PLAN_FILE


@dataclass(frozen=True, slots=True)
class PlanFile:
    """A plan as read from disk. ``content_digest`` is what the content hashes to now;
    ``script_problems`` names every script that is missing or no longer matches."""

    path: Path
    plan: Plan
    content_digest: str
    script_problems: tuple[str, ...]

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def default_journal(self) -> Path:
        return self.directory / "journal.jsonl"

    def approval_problem(self, approve: str) -> str | None:
        """Why ``approve`` does not approve this plan as it is on disk (None: it does)."""
        wanted = approve.strip().lower()
        if wanted != self.plan.digest:
            return (
                f"the approved digest {approve.strip()[:64]!r} is not this plan's digest {self.plan.digest}"
            )
        if self.content_digest != self.plan.digest:
            return (
                f"{self.path} was changed after it was made: its content hashes to {self.content_digest}, "
                f"not to its digest {self.plan.digest}"
            )
        if self.script_problems:
            return f"{self.script_problems[0]} (the reviewed scripts were changed)"
        return None


def read_plan_file(path: str | Path) -> PlanFile:
    """Read DIR/plan.json (or a directory holding one). Raises FactsFileError (exit 1) when it
    is unreadable or malformed."""
    file = Path(path)
    if file.is_dir():
        file = file / PLAN_FILE
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FactsFileError(source, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactsFileError(source, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    plan = plan_from_dict(data, source=source, check_digest=False, kinds=KINDS)
    return PlanFile(file.resolve(), plan, plan.compute_digest(), script_problems(plan, file.parent))


def script_problems(plan: Plan, directory: Path) -> tuple[str, ...]:
    problems = []
    for host in plan.hosts:
        for name in SCRIPT_NAMES:
            script = directory / HOSTS_DIR / host.directory / name
            try:
                digest = hashlib.sha256(script.read_bytes()).hexdigest()
            except OSError:
                problems.append(f"{script} is missing")
                continue
            if digest != host.script_sha256(name):
                problems.append(f"{script} does not match the sha256 plan.json records for it")
    return tuple(problems)
