"""Rule metadata: what each rule declares beside its logic, validated when it is built.

The fix table is here too, because a rule's metadata names a fix and whether that fix
disrupts mail flow, and the two must agree: a fix that needs a restart of
MSExchangeTransport interrupts mail flow on the server ("DNS query failure sensitivity",
Exchange 2013 docs; Set-TransportService docs: changes need the restart).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from agent.model.findings import Severity


class RuleKind(str, enum.Enum):
    CAUSE = "cause"  # a misconfiguration exfix can fix
    SYMPTOM = "symptom"  # what the admin sees (queues); explained by cause findings
    ADVISORY = "advisory"  # a cause outside the host's configuration: reported, not fixed


@dataclass(frozen=True, slots=True)
class FixInfo:
    id: str
    needs_transport_restart: bool
    summary: str


# Every fix a rule may name. The planner renders each from ps_templates/<fix id>.
FIXES: Mapping[str, FixInfo] = MappingProxyType(
    {
        fix.id: fix
        for fix in (
            FixInfo(
                "enable-nic-dns-registration",
                True,
                "Set-DnsClient -RegisterThisConnectionsAddress $true on the MAPI NIC, Register-DnsClient, "
                "restart MSExchangeTransport",
            ),
            FixInfo(
                "set-nic-dns-servers",
                True,
                "Set-DnsClientServerAddress on the MAPI NIC to internal DNS servers only, "
                "restart MSExchangeTransport",
            ),
            FixInfo(
                "set-transport-external-dns",
                True,
                "Set-TransportService -ExternalDNSServers .. -ExternalDNSAdapterEnabled $false and "
                "Set-SendConnector -UseExternalDNSServersEnabled $true, restart MSExchangeTransport",
            ),
            FixInfo(
                "set-transport-internal-dns",
                True,
                "Set-TransportService -InternalDNSServers / -InternalDNSAdapterEnabled, "
                "restart MSExchangeTransport",
            ),
            FixInfo(
                "add-smarthost-send-connector",
                False,
                "New-SendConnector for the one domain with its MX host's IPv4 address as smart host",
            ),
            FixInfo(
                "set-dns-fault-tolerance",
                True,
                "DnsFaultTolerance=Lenient in EdgeTransport.exe.config, restart MSExchangeTransport",
            ),
        )
    }
)

_RULE_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)+$")
_REFERENCE = re.compile(r"^(?:KB\d{6,7}|https://[^\s]+)$")


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
    fix_disrupts_mail_flow: bool

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
        if self.fix_id is None:
            if self.fix_disrupts_mail_flow:
                problems.append("a rule without a fix cannot have a disruptive fix")
            if self.kind is RuleKind.CAUSE:
                problems.append("a cause rule needs a fix id")
        else:
            fix = FIXES.get(self.fix_id)
            if fix is None:
                problems.append(f"unknown fix id {self.fix_id!r} (known: {', '.join(sorted(FIXES))})")
            elif fix.needs_transport_restart != self.fix_disrupts_mail_flow:
                problems.append(
                    f"fix_disrupts_mail_flow={self.fix_disrupts_mail_flow} but fix {self.fix_id!r} "
                    f"{'needs' if fix.needs_transport_restart else 'does not need'} a transport restart"
                )
            if self.kind is not RuleKind.CAUSE:
                problems.append(f"a {self.kind.value} rule has no fix")
        if problems:
            raise MetadataError(f"rule {self.id!r}: " + "; ".join(problems))

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.value,
            "kind": self.kind.value,
            "explanation": self.explanation,
            "references": list(self.references),
            "fix_id": self.fix_id,
            "fix_disrupts_mail_flow": self.fix_disrupts_mail_flow,
        }
