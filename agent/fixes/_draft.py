"""What a planner returns: draft actions (before ids and fingerprints) and advisories; and how
it reads the typed request a rule handed it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from agent.model.command import CmdletCall
from agent.model.finding_data import FindingData
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


R = TypeVar("R", bound=FindingData)


def request(finding: Finding, kind: type[R]) -> R | None:
    """The finding's data if it is the request ``kind`` a planner acts on, else None (a finding
    built without data, or of another rule)."""
    data = finding.data
    return data if isinstance(data, kind) else None


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


def nic_gone(finding: Finding) -> Planned:
    """The advice when a NIC finding names a NIC the facts no longer hold (or no NIC)."""
    message = "The finding does not name a NIC present in the facts; scan the host again."
    return advise(AdvisoryKind.CANNOT_PLAN, finding, message)
