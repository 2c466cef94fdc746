"""Reading a plan directory for apply, and what makes it unapproved.

A plan file is read strictly (agent/model/plan.py), but without refusing a digest that does
not match: that is not a malformed file but an unapproved one, and apply refuses it with exit
4 like any other digest problem. Every other file of the bundle (the scripts a person runs by
hand, the pages the change board read) and plan.json's own bytes are checked by rendering the
bundle again from the approved content (agent/review/bundle.py: ``bundle_problems``): what the
board approved is the digest, and everything in the directory must follow from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from agent.errors import FactsFileError, UnsafePathError
from agent.fixes.registry import KINDS
from agent.model.plan import Plan, plan_from_dict
from agent.review.bundle import PLAN_FILE, bundle_problems
from agent.review.files import OwnedDir


@dataclass(frozen=True, slots=True)
class PlanFile:
    """A plan as read from disk. ``content_digest`` is what the content hashes to now;
    ``bundle_problems`` names every file of the bundle that is missing, a link, or not byte
    for byte what the content renders to (empty when the content does not match its digest:
    that is the refusal then)."""

    path: Path
    plan: Plan
    content_digest: str
    bundle_problems: tuple[str, ...]

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
        if self.bundle_problems:
            more = len(self.bundle_problems) - 1
            suffix = f" (and {more} more file(s))" if more else ""
            return f"{self.bundle_problems[0]}{suffix}; what was reviewed is not what would run: plan again"
        return None


def read_plan_file(path: str | Path) -> PlanFile:
    """Read DIR/plan.json (or a directory holding one) and check its bundle. Raises
    FactsFileError (exit 1) when plan.json is unreadable or malformed, UnsafePathError (exit 1)
    when the plan directory itself is a link."""
    file = Path(path)
    if file.is_dir():
        file = file / PLAN_FILE
    source = str(file)
    try:
        with OwnedDir.open(file.parent) as directory:
            raw = directory.read(file.name)
        text = raw.decode("utf-8")
    except UnsafePathError as exc:
        if Path(exc.path) == file.parent:
            raise
        raise FactsFileError(source, exc.problem.split(";")[0]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FactsFileError(source, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactsFileError(source, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    plan = plan_from_dict(data, source=source, check_digest=False, kinds=KINDS)
    content = plan.compute_digest()
    # A plan whose content is not its digest is refused for that; rendering it would say less.
    problems = bundle_problems(plan, file.parent) if content == plan.digest else ()
    return PlanFile(file.resolve(), plan, content, problems)
