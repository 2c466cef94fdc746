"""Rule metadata: what each rule declares beside its logic, validated when it is built.

A rule names its fix by id; what the fix changes and whether it interrupts mail flow is the
fix's own declaration (agent/fixes: FixSpec), and the fix registry checks that every fix id a
rule names exists. A cause rule also declares which symptoms it explains (``explains``): the
symptom-to-cause table evaluate links by is derived from these. Each rule names the class of
the data its findings carry (``data``, agent/model/finding_data.py), which names the rule back,
and the fact areas it reads (``reads``): on a host where one of them could not be collected the
rule is not run but reported as not judged (agent.evaluate), so that a missing area is never
mistaken for a clean one.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from agent.model.facts import CollectionArea
from agent.model.finding_data import FindingData, RemoteDomain, SymptomScope
from agent.model.findings import Level, Severity


class RuleKind(str, enum.Enum):
    CAUSE = "cause"  # a misconfiguration exfix can fix
    SYMPTOM = "symptom"  # what the admin sees (queues); explained by cause findings
    ADVISORY = "advisory"  # a cause outside the host's configuration: reported, not fixed


_RULE_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)+$")
_REFERENCE = re.compile(r"^(?:KB\d{6,7}|https://[^\s]+)$")


@dataclass(frozen=True, slots=True)
class Explains:
    """A symptom this cause explains: the symptom rule, the scopes of it (queue-dns-failure's
    ``scope``: internal, all-external, domain) and, with ``same_domain``, only where the cause's
    ``domain`` is one of the symptom's domains."""

    symptom: str
    scopes: tuple[SymptomScope, ...]
    same_domain: bool = False


class MetadataError(ValueError):
    """A rule's metadata is inconsistent. Raised when the rule module is imported or loaded."""


@dataclass(frozen=True, slots=True)
class RuleMetadata:
    """What a rule declares about itself. Validated on construction."""

    id: str
    title: str
    severity: Severity
    kind: RuleKind
    explanation: str  # plain language, for a change board
    references: tuple[str, ...]  # "KB3007623" or https URLs of Microsoft docs
    fix_id: str | None
    data: type[FindingData]  # the class of its findings' data; its RULE is this id
    # Every fact area its evaluate reads (agent.model.facts.CollectionArea), at least one: where
    # one of them failed on a host, the rule is not judged there.
    reads: tuple[CollectionArea, ...]
    explains: tuple[Explains, ...] = ()  # the symptoms this cause explains, and at which scopes
    level: Level = Level.HOST  # ORGANIZATION: one finding per organisation, naming the servers
    # Areas its evaluate uses where they were collected, for evidence and its fix, but does not
    # need for its verdict: where one failed, the rule is still judged and its finding names
    # what could not be read (host-firewall-blocks-dns and the firewall rules).
    reads_if_collected: tuple[CollectionArea, ...] = ()
    # Fixes a finding of this rule may name instead of ``fix_id``, where its facts need another
    # change (host-firewall-blocks-dns: an allow rule where the profile blocks by default, the
    # block rule's removal where a block rule matches). Each finding names one fix.
    other_fix_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not _RULE_ID.match(self.id):
            problems.append(f"id {self.id!r} is not lower-case words joined by '-'")
        if not self.title.strip() or "\n" in self.title:
            problems.append("title must be one non-empty line")
        if not isinstance(self.severity, Severity):
            problems.append(f"severity {self.severity!r} is not a Severity")
        if not isinstance(self.kind, RuleKind):
            problems.append(f"kind {self.kind!r} is not a RuleKind")
        if len(self.explanation.split()) < 8:
            problems.append("explanation must say in plain words what is wrong and why it matters")
        if not self.references:
            problems.append("at least one reference (KB number or Microsoft docs URL) is required")
        for reference in self.references:
            if not _REFERENCE.match(reference):
                problems.append(f"reference {reference!r} is neither KBnnnnnnn nor an https URL")
        if self.fix_id is None and self.kind is RuleKind.CAUSE:
            problems.append("a cause rule needs a fix id")
        if self.fix_id is not None and self.kind is not RuleKind.CAUSE:
            problems.append(f"a {self.kind.value} rule has no fix")
        if self.other_fix_ids and self.fix_id is None:
            problems.append("other fix ids without a fix id")
        if self.fix_id is not None and self.fix_id in self.other_fix_ids:
            problems.append(f"{self.fix_id!r} is both its fix id and another fix id")
        if self.explains and self.kind is RuleKind.SYMPTOM:
            problems.append("a symptom explains nothing: causes explain symptoms")
        for explained in self.explains:
            if not explained.scopes:
                problems.append(f"explains {explained.symptom!r} at no scope")
            if not all(isinstance(scope, SymptomScope) for scope in explained.scopes):
                problems.append(f"explains {explained.symptom!r} at a scope that is no SymptomScope")
        if not self.reads:
            problems.append("reads no fact area (declare the CollectionAreas its evaluate reads)")
        for area in self.reads:
            if not isinstance(area, CollectionArea):
                problems.append(f"reads {area!r}, which is not a CollectionArea")
        if len(set(self.reads)) != len(self.reads):
            problems.append("reads an area twice")
        for area in self.reads_if_collected:
            if not isinstance(area, CollectionArea):
                problems.append(f"reads_if_collected {area!r}, which is not a CollectionArea")
            elif area in self.reads:
                problems.append(f"{area.value} is in both reads and reads_if_collected")
        if not (isinstance(self.data, type) and issubclass(self.data, FindingData)):
            problems.append(f"data {self.data!r} is not a FindingData class")
        else:
            named = getattr(self.data, "RULE", None)
            if named != self.id:
                problems.append(f"data {self.data.__name__} is the data of rule {named!r}, not of this one")
            if any(e.same_domain for e in self.explains) and not issubclass(self.data, RemoteDomain):
                problems.append("explains a symptom for the same domain, but its data names no domain")
        if problems:
            raise MetadataError(f"rule {self.id!r}: " + "; ".join(problems))

    @property
    def fix_ids(self) -> tuple[str, ...]:
        """Every fix a finding of this rule may name: ``fix_id`` first."""
        return () if self.fix_id is None else (self.fix_id, *self.other_fix_ids)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.value,
            "kind": self.kind.value,
            "explanation": self.explanation,
            "references": list(self.references),
            "fix_id": self.fix_id,
            "other_fix_ids": list(self.other_fix_ids),
            "reads": [area.value for area in self.reads],
            "reads_if_collected": [area.value for area in self.reads_if_collected],
        }
