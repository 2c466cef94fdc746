"""DNS probe results: one query, from one vantage point, against one DNS server.

Produced by two edges: the host-side probe (Resolve-DnsName run on the Exchange host, parsed
in agent/collect) and the orchestrator-side probe (dnspython, agent/collect/dns_probe.py).
Consumed by the pure rules, whose evidence names the vantage, server, query and outcome.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.model.document import encode_object

# --probe-repeat: how often each server's three standard questions are asked. One attempt
# cannot tell a server that drops or SERVFAILs some queries (overload, rate limiting, packet
# loss) from one that is down or broken; a few attempts spread over a short window can,
# without turning a scan into a load test of the customer's DNS.
PROBE_REPEAT_MAX = 10


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

    @property
    def responded(self) -> bool:
        """The server sent a DNS reply (of any rcode): it is reachable and speaks DNS."""
        return self not in (Outcome.TIMEOUT, Outcome.ERROR)

    @property
    def definitive(self) -> bool:
        """The reply settles the question (records, NXDOMAIN or NODATA); a resolver would not
        ask another server. SERVFAIL and REFUSED make it move on."""
        return self in (Outcome.ANSWER, Outcome.NXDOMAIN, Outcome.NODATA)


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
    # Which round of ``--probe-repeat`` asked it (1 for the first or only one). Facts saved
    # before repeats existed have no such key: their one attempt is the first.
    attempt: int = 1

    @property
    def failed(self) -> bool:
        """The server let this query down: no reply, or SERVFAIL/REFUSED (what an overloaded
        or rate-limiting server gives; a resolver then moves on, RFC 1034 5.3.3). NXDOMAIN and
        NODATA are answers; an ``error`` whose query was never sent says nothing of the server."""
        if self.outcome in (Outcome.TIMEOUT, Outcome.SERVFAIL, Outcome.REFUSED):
            return True
        return self.outcome is Outcome.ERROR and bool(self.queried)

    def to_dict(self) -> dict[str, Any]:
        return encode_object(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DnsQueryResult:
        elapsed = data.get("elapsed_ms")
        attempt = data.get("attempt", 1)
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
            attempt=int(attempt) if isinstance(attempt, int) and not isinstance(attempt, bool) else 1,
        )


@dataclass(frozen=True, slots=True)
class QuestionAttempts:
    """Every attempt of one question (``qname``/``rdtype``) to one server from one vantage,
    in the order they were made."""

    qname: str
    rdtype: str
    outcomes: tuple[Outcome, ...]

    @property
    def failures(self) -> int:
        return sum(1 for o in self.outcomes if o in (Outcome.TIMEOUT, Outcome.SERVFAIL, Outcome.REFUSED))

    @property
    def mixed(self) -> bool:
        """Some attempts failed and some were answered (records, NXDOMAIN or NODATA): the
        same question, so the difference is the server's, not the name's."""
        return self.failures > 0 and any(o.definitive for o in self.outcomes)


@dataclass(frozen=True, slots=True)
class ServerProbeStats:
    """How one DNS server did over every attempt from one vantage: how many queries, how many
    it let down (:attr:`DnsQueryResult.failed`), the latency of those it answered, and each
    question's attempts."""

    server: str
    vantage: Vantage
    attempts: int
    failures: int
    latency_min_ms: float | None
    latency_avg_ms: float | None
    latency_max_ms: float | None
    questions: tuple[QuestionAttempts, ...]

    @property
    def failure_rate(self) -> float:
        return round(self.failures / self.attempts, 3) if self.attempts else 0.0

    @property
    def rounds(self) -> int:
        """How often each question was asked (the largest count over the questions)."""
        return max((len(q.outcomes) for q in self.questions), default=0)

    @property
    def intermittent(self) -> bool:
        """At least one question both failed and was answered: the server fails some but not
        all of the same queries (overload, rate limiting, packet loss)."""
        return any(q.mixed for q in self.questions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "vantage": self.vantage.value,
            "attempts": self.attempts,
            "failures": self.failures,
            "failure_rate": self.failure_rate,
            "latency_ms": {
                "min": self.latency_min_ms, "avg": self.latency_avg_ms, "max": self.latency_max_ms
            },
        }


def server_stats(results: tuple[DnsQueryResult, ...]) -> tuple[ServerProbeStats, ...]:
    """Per (server, vantage), in first-seen order: the counts, failure rate and latency of
    ``results``. Queries never sent (refused by the address map) are left out."""
    groups: dict[tuple[str, Vantage], list[DnsQueryResult]] = {}
    for result in results:
        if result.outcome is Outcome.ERROR and not result.queried:
            continue
        groups.setdefault((result.server, result.vantage), []).append(result)
    out = []
    for (server, vantage), items in groups.items():
        questions: dict[tuple[str, str], list[Outcome]] = {}
        for item in sorted(items, key=lambda r: r.attempt):
            questions.setdefault((_name_key(item.qname), item.rdtype.upper()), []).append(item.outcome)
        answered = [r.elapsed_ms for r in items if r.elapsed_ms is not None and not r.failed]
        out.append(ServerProbeStats(
            server=server,
            vantage=vantage,
            attempts=len(items),
            failures=sum(1 for r in items if r.failed),
            latency_min_ms=round(min(answered), 1) if answered else None,
            latency_avg_ms=round(sum(answered) / len(answered), 1) if answered else None,
            latency_max_ms=round(max(answered), 1) if answered else None,
            questions=tuple(_question(q, t, tuple(o)) for (q, t), o in questions.items()),
        ))
    return tuple(out)


# The hosts of a fleet ask their DNS servers mostly the same questions (the AD domain's SRV,
# the public name's MX: only the host's own A differs) and get the same outcomes, and a
# finished host's report keeps its servers' stats (HostScan.dns_servers): equal questions are
# one shared value instead of one per host. Bounded: past _SHARED_MAX distinct questions a
# host's are its own.
_SHARED_MAX = 4096
_SHARED_QUESTIONS: dict[tuple[str, str, tuple[Outcome, ...]], QuestionAttempts] = {}


def _question(qname: str, rdtype: str, outcomes: tuple[Outcome, ...]) -> QuestionAttempts:
    key = (qname, rdtype, outcomes)
    known = _SHARED_QUESTIONS.get(key)
    if known is None:
        known = QuestionAttempts(qname, rdtype, outcomes)
        if len(_SHARED_QUESTIONS) < _SHARED_MAX:  # two threads adding an equal one is harmless
            _SHARED_QUESTIONS[key] = known
    return known


def _find(results: tuple[DnsQueryResult, ...], qname: str, rdtype: str) -> DnsQueryResult | None:
    """The last result for (qname, rdtype), names compared case- and dot-insensitively."""
    wanted = _name_key(qname)
    found = None
    for result in results:
        if _name_key(result.qname) == wanted and result.rdtype.upper() == rdtype.upper():
            found = result
    return found


def _name_key(name: str) -> str:
    text = name.strip().lower()
    return text[:-1] if text.endswith(".") else text


@dataclass(frozen=True, slots=True)
class ServerProbe:
    """What one DNS server answered to the three questions that tell its role: can it find the
    AD domain controllers (SRV ``_ldap._tcp.dc._msdcs.<ad_domain>``), an internal Exchange host
    (A), and a public name (MX, then A when the name has no MX)?"""

    server: str  # as the Exchange host knows it: "10.0.0.10"
    queried: str  # what was really contacted: "127.0.0.1:53123"; "" when nothing was sent
    ad_domain: str
    internal_host: str
    public_name: str
    results: tuple[DnsQueryResult, ...]

    @property
    def srv(self) -> DnsQueryResult | None:
        return _find(self.results, f"_ldap._tcp.dc._msdcs.{_name_key(self.ad_domain)}", "SRV")

    @property
    def internal(self) -> DnsQueryResult | None:
        return _find(self.results, self.internal_host, "A")

    @property
    def public(self) -> DnsQueryResult | None:
        """The public name's MX result, or its A result where the MX query found no records."""
        mx = _find(self.results, self.public_name, "MX")
        a = _find(self.results, self.public_name, "A")
        if mx is not None and (mx.outcome is Outcome.ANSWER or a is None):
            return mx
        return a

    @property
    def responded(self) -> bool:
        return any(result.outcome.responded for result in self.results)

    @property
    def resolves_ad(self) -> bool:
        return self.srv is not None and self.srv.outcome is Outcome.ANSWER

    @property
    def resolves_public(self) -> bool:
        public = self.public
        return public is not None and public.outcome is Outcome.ANSWER

    def to_dict(self) -> dict[str, Any]:
        return encode_object(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerProbe:
        return cls(
            server=str(data["server"]),
            queried=str(data["queried"]),
            ad_domain=str(data["ad_domain"]),
            internal_host=str(data["internal_host"]),
            public_name=str(data["public_name"]),
            results=tuple(DnsQueryResult.from_dict(item) for item in data["results"]),
        )


@dataclass(frozen=True, slots=True)
class MxHost:
    preference: int
    host: str  # without the trailing dot; "" for a null MX (RFC 7505: the domain takes no mail)


@dataclass(frozen=True, slots=True)
class DomainProbe:
    """How a remote domain's mail is routed, as the orchestrator sees it: its MX records, then
    the A and AAAA records of the lowest-preference MX host (of the domain itself when it has
    no MX, RFC 5321 5.1), all through the first server that gave a definitive MX answer.

    ``results`` holds every query, including those that failed on servers tried earlier.
    """

    domain: str
    servers: tuple[str, ...]  # the servers offered, in the order they were tried
    server: str | None  # the server that answered; None when none did
    results: tuple[DnsQueryResult, ...]

    def _through(self, qname: str, rdtype: str) -> DnsQueryResult | None:
        mine = tuple(r for r in self.results if self.server is not None and r.server == self.server)
        return _find(mine, qname, rdtype)

    @property
    def mx_result(self) -> DnsQueryResult | None:
        """The MX result of the answering server, else the last MX attempt."""
        return self._through(self.domain, "MX") or _find(self.results, self.domain, "MX")

    @property
    def mx(self) -> tuple[MxHost, ...]:
        """The MX records, lowest preference first."""
        result = self.mx_result
        if result is None or result.outcome is not Outcome.ANSWER:
            return ()
        hosts = []
        for text in result.records:
            preference, _, host = text.strip().partition(" ")
            try:
                hosts.append(MxHost(int(preference), _name_key(host)))
            except ValueError:
                continue
        return tuple(sorted(hosts, key=lambda mx: (mx.preference, mx.host)))

    @property
    def mail_host(self) -> str | None:
        """Where mail goes: the lowest-preference MX host, or the domain itself when the
        domain has no MX records. None when the MX lookup failed or the MX is null."""
        result = self.mx_result
        if result is None or not result.outcome.definitive:
            return None
        if result.outcome is Outcome.ANSWER:
            mx = self.mx
            return (mx[0].host or None) if mx else None
        return _name_key(self.domain)

    @property
    def a(self) -> DnsQueryResult | None:
        host = self.mail_host
        return self._through(host, "A") if host else None

    @property
    def aaaa(self) -> DnsQueryResult | None:
        host = self.mail_host
        return self._through(host, "AAAA") if host else None

    @property
    def ipv4(self) -> tuple[str, ...]:
        a = self.a
        return a.records if a is not None and a.outcome is Outcome.ANSWER else ()

    @property
    def ipv6(self) -> tuple[str, ...]:
        aaaa = self.aaaa
        return aaaa.records if aaaa is not None and aaaa.outcome is Outcome.ANSWER else ()

    @property
    def has_mail_dns(self) -> bool:
        """True when mail for the domain has somewhere to go (an MX, or an A/AAAA record)."""
        return bool(self.mx) or bool(self.ipv4) or bool(self.ipv6)

    def to_dict(self) -> dict[str, Any]:
        return encode_object(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DomainProbe:
        server = data.get("server")
        return cls(
            domain=str(data["domain"]),
            servers=tuple(str(s) for s in data.get("servers", ())),
            server=str(server) if server is not None else None,
            results=tuple(DnsQueryResult.from_dict(item) for item in data["results"]),
        )
