"""How a change was verified, check by check (agent/apply/symptom.py makes them): values the
apply report and the playbook run both carry."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from agent.model.document import encode_object


class CheckStatus(str, enum.Enum):
    """One check of the symptom after a change."""

    PASS = "pass"
    FAIL = "fail"
    NOT_AVAILABLE = "not-available"  # could not be made here (with the reason): never a failure


@dataclass(frozen=True, slots=True)
class ProbeCheck:
    """A lookup a failing queue needed, re-run on the host after the change (Resolve-DnsName
    against a server transport asks for that next hop now). ``before``: the host-side outcome
    before the change (None: not asked then); ``server`` None when there was none to ask."""

    next_hop: str
    qname: str
    rdtype: str
    server: str | None
    before: str | None
    after: str | None
    status: CheckStatus
    detail: str = ""  # the Windows error, or why the check was not available

    def to_dict(self) -> dict[str, Any]:
        return encode_object(self)


@dataclass(frozen=True, slots=True)
class TrackingCheck:
    """Get-MessageTrackingLog's SEND events to one next hop since the change: how many, the
    first one's time (ISO 8601) and the connector and server it went through."""

    next_hop: str
    status: CheckStatus
    count: int = 0
    first: str | None = None
    connector: str | None = None
    server_hostname: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return encode_object(self)
