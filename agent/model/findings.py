"""What a rule concluded about a host: a finding, its evidence, and the rule's typed data
(agent/model/finding_data.py: what a fix's planner acts on).

Findings carry no presentation (no colours, no markup): the reporters in agent/report decide
how to show them. Every value that came from a host is kept as the host sent it; reporters
make it safe to show (agent/report/safe.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from agent.model.finding_data import FindingData
from agent.model.probe import DnsQueryResult


class Severity(str, enum.Enum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Level(str, enum.Enum):
    """The level a finding is about, and a fix runs at: one host, or the organisation (what
    lives in Active Directory and every server shares: send connectors, accepted domains)."""

    HOST = "host"
    ORGANIZATION = "organization"


# A value in evidence: plain, JSON-friendly, immutable.
DataValue = str | int | bool | None | tuple[str, ...] | tuple[int, ...]


def _json_value(value: DataValue) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One observation that made a rule fire: where it was read (a cmdlet, or a DNS probe and
    its vantage), about what (a NIC, a queue, a DNS server), and the exact values."""

    source: str  # "Get-DnsClient", "Get-Queue", "Resolve-DnsName", "dns-probe", ...
    subject: str  # "NIC 'Ethernet0' (InterfaceIndex 12)"
    values: tuple[tuple[str, DataValue], ...]
    vantage: str | None = None  # "host" / "orchestrator" for DNS probes; None for cmdlet reads

    def value(self, key: str) -> DataValue:
        for name, value in self.values:
            if name == key:
                return value
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "vantage": self.vantage,
            "subject": self.subject,
            "values": {name: _json_value(value) for name, value in self.values},
        }

    @classmethod
    def from_probe(cls, probe: DnsQueryResult) -> EvidenceItem:
        """A DNS probe result as evidence: which server, from where, what was asked, what came back."""
        source = "Resolve-DnsName" if probe.vantage.value == "host" else "dns-probe"
        values: list[tuple[str, DataValue]] = [
            ("server", probe.server),
            ("queried", probe.queried),
            ("qname", probe.qname),
            ("type", probe.rdtype),
            ("outcome", probe.outcome.value),
        ]
        if probe.records:
            values.append(("records", probe.records))
        if probe.detail:
            values.append(("detail", probe.detail))
        return cls(
            source=source,
            subject=f"DNS server {probe.server}",
            values=tuple(values),
            vantage=probe.vantage.value,
        )


@dataclass(frozen=True, slots=True)
class Finding:
    """One conclusion of one rule about one subject on one host, or (``level`` ORGANIZATION)
    about one subject of the organisation, naming the servers it affects.

    ``id`` (rule, host, subject) is stable across runs, so findings can be linked
    (``explained_by``), compared between scans and named in plans.
    """

    rule_id: str
    host: str
    subject: str  # what the finding is about: "NIC 'Ethernet0' (InterfaceIndex 12)", "fabrikam.com"
    severity: Severity
    title: str
    summary: str  # one line naming the exact values that made the rule fire
    evidence: tuple[EvidenceItem, ...]
    fix_id: str | None
    # Whether the fix interrupts mail flow: the fix's declaration (agent/fixes), which
    # agent.evaluate copies onto the finding so that every report can show it.
    fix_disrupts_mail_flow: bool = False
    # The rule's typed data (agent/model/finding_data.py): the request a cause's planner acts on,
    # what linking reads of a symptom. None only for a finding built by hand without any.
    data: FindingData | None = None
    explained_by: tuple[str, ...] = ()  # ids of the cause findings that explain this symptom
    # An organisation finding (agent.evaluate.organise): ``host`` is the organisation's name and
    # ``servers`` the inventory names of the servers it affects, in inventory order.
    level: Level = Level.HOST
    servers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.data is not None and self.rule_id != self.data.RULE:
            raise ValueError(
                f"a {self.rule_id} finding cannot carry {type(self.data).__name__} "
                f"(the data of {self.data.RULE})"
            )

    @property
    def id(self) -> str:
        return f"{self.rule_id}|{self.host}|{self.subject}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "host": self.host,
            "subject": self.subject,
            "severity": self.severity.value,
            "title": self.title,
            "summary": self.summary,
            "evidence": [item.to_dict() for item in self.evidence],
            "fix_id": self.fix_id,
            "fix_disrupts_mail_flow": self.fix_disrupts_mail_flow,
            "data": {} if self.data is None else self.data.to_dict(),
            "explained_by": list(self.explained_by),
            "level": self.level.value,
            "servers": list(self.servers),
        }


@dataclass(frozen=True, slots=True)
class NotJudged:
    """A rule exfix did not run on a host, because a fact area it reads could not be collected
    there (agent.evaluate.not_judged): neither a finding nor a clean bill for what it checks.

    ``areas`` are the failed areas it reads (agent.model.facts.CollectionArea values), ``reason``
    one line saying why, naming the area's own reason."""

    rule_id: str
    host: str
    title: str
    areas: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule_id, "title": self.title, "areas": list(self.areas), "reason": self.reason}
