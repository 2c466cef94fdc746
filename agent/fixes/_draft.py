"""What a planner returns: draft actions (before ids and fingerprints) and advisories."""

from __future__ import annotations

from dataclasses import dataclass

from agent.model.command import CmdletCall
from agent.model.findings import Finding
from agent.model.plan import Advisory, AdvisoryKind, Change, FactRef


@dataclass(frozen=True, slots=True)
class Draft:
    """An action as a planner proposes it. build_plan merges identical drafts, orders them,
    adds the transport restart, and gives each an id and a fingerprint."""

    kind: str  # a step of its fix (FixSpec.steps)
    fix_id: str
    call: CmdletCall
    description: str
    changes: tuple[Change, ...]
    read_back: CmdletCall | None
    rollback: tuple[CmdletCall, ...]
    restart_required: bool
    finding_ids: tuple[str, ...]
    depends_on: tuple[FactRef, ...]
    manual: bool = False
    disruptive: bool = False


@dataclass(frozen=True, slots=True)
class Planned:
    drafts: tuple[Draft, ...] = ()
    advisories: tuple[Advisory, ...] = ()



def advise(kind: AdvisoryKind, finding: Finding, message: str, *, variable: str | None = None) -> Planned:
    """A plan of no action for ``finding``, and why (one paragraph, plain words)."""
    return Planned(
        advisories=(
            Advisory(
                kind=kind,
                fix_id=finding.fix_id,
                finding_ids=(finding.id,),
                message=" ".join(message.split()),
                variable=variable,
            ),
        )
    )


def text_tuple(finding: Finding, key: str) -> tuple[str, ...]:
    """A tuple-of-strings datum of the finding; () when absent or not a tuple of strings."""
    try:
        value = finding.datum(key)
    except KeyError:
        return ()
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return tuple(str(v) for v in value)
    return ()


def text(finding: Finding, key: str) -> str | None:
    try:
        value = finding.datum(key)
    except KeyError:
        return None
    return value if isinstance(value, str) else None


def integer(finding: Finding, key: str) -> int | None:
    try:
        value = finding.datum(key)
    except KeyError:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
