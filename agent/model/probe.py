"""DNS probe results: one query, from one vantage point, against one DNS server.

Produced by two edges: the host-side probe (Resolve-DnsName run on the Exchange host, parsed
in agent/collect) and the orchestrator-side probe (dnspython, agent/collect/dns_probe.py).
Consumed by the pure rules, whose evidence names the vantage, server, query and outcome.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Vantage(str, enum.Enum):
    HOST = "host"  # Resolve-DnsName on the Exchange server itself
    ORCHESTRATOR = "orchestrator"  # dnspython from where exfix runs, through exfix_dns_address_map


class Outcome(str, enum.Enum):
    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    ERROR = "error"

    @property
    def resolved(self) -> bool:
        return self is Outcome.ANSWER


@dataclass(frozen=True, slots=True)
class DnsQueryResult:
    """What ``server`` (as the Exchange host knows it, e.g. "10.0.0.10") answered for
    (``qname``, ``rdtype``). ``queried`` is what was really contacted: the host name for
    host-side probes, "ip:port" for orchestrator probes (after the address map)."""

    vantage: Vantage
    server: str
    queried: str
    qname: str
    rdtype: str
    outcome: Outcome
    records: tuple[str, ...] = ()
    detail: str = ""
    elapsed_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "vantage": self.vantage.value,
            "server": self.server,
            "queried": self.queried,
            "qname": self.qname,
            "rdtype": self.rdtype,
            "outcome": self.outcome.value,
            "records": list(self.records),
            "detail": self.detail,
            "elapsed_ms": self.elapsed_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DnsQueryResult:
        elapsed = data.get("elapsed_ms")
        return cls(
            vantage=Vantage(data["vantage"]),
            server=str(data["server"]),
            queried=str(data["queried"]),
            qname=str(data["qname"]),
            rdtype=str(data["rdtype"]),
            outcome=Outcome(data["outcome"]),
            records=tuple(str(r) for r in data.get("records", ())),
            detail=str(data.get("detail", "")),
            elapsed_ms=float(elapsed) if elapsed is not None else None,
        )
