"""The orchestrator-side DNS probe: asks a host's DNS servers directly, with dnspython.

This is one of exfix's IO edges. It sends real DNS queries from where exfix runs and returns
frozen :mod:`agent.model.probe` values for the pure rules; nothing here interprets them.

Where a query goes: the inventory's ``exfix_dns_address_map`` maps a DNS server address, as
the Exchange host knows it ("10.0.0.10"), to the ``ip:port`` really queried
("127.0.0.1:53123"); the lab uses it to route every scenario address to a loopback responder.

- No map (empty): every server is queried at its own address, port 53.
- A map is given: it is the complete list of where exfix may send DNS queries. An address
  missing from it is not queried (outcome ``error``, saying so) unless it is itself a loopback
  address. This keeps a lab run, or a run through a tunnel, from ever leaking a query to a
  real 10.x or public address because a host happened to list a server nobody mapped.

Every query has its own timeout; a probe runs a handful of queries one after another.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from agent.model import dns_servers
from agent.model.probe import DnsQueryResult, DomainProbe, Outcome, ServerProbe, Vantage

DEFAULT_TIMEOUT = 2.0
DEFAULT_PORT = 53
DEFAULT_WORKERS = 16
# EDNS0 with the 2020 DNS flag day buffer size; a truncated UDP reply is retried over TCP.
EDNS_PAYLOAD = 1232

AddressMap = Mapping[str, str]

_R = TypeVar("_R")
_K = TypeVar("_K", bound=Hashable)


class TargetRefused(Exception):
    """The probe will not send to this server (not an address, or unmapped under a map)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a query to ``server`` really goes."""

    server: str
    host: str
    port: int

    @property
    def queried(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def resolve_target(server: str, address_map: AddressMap) -> Target:
    """Where a query to ``server`` goes under ``address_map`` (see the module docstring).

    Raises :class:`TargetRefused` with a one-line reason. Sends nothing.
    """
    key = _canonical_ip(server)
    if key is None:
        raise TargetRefused(f"{_show(server)} is not an IP address")
    mapping = {(_canonical_ip(k) or str(k).strip()): v for k, v in address_map.items()}
    if key in mapping:
        host, port = _parse_endpoint(mapping[key])
        return Target(key, host, port)
    if mapping and not ipaddress.ip_address(key).is_loopback:
        raise TargetRefused(
            f"{key} is not in exfix_dns_address_map; with a map, exfix queries only mapped or "
            "loopback addresses")
    return Target(key, key, DEFAULT_PORT)


class ProbeCache:
    """The orchestrator's DNS answers of one run, shared by its hosts. Thread-safe.

    The orchestrator-side probe asks from where exfix runs, so its answer to one question does
    not depend on which Exchange host named the server: in a fleet, most hosts list the same
    few servers and ask them the same AD SRV and public MX questions (and the same failing
    remote domains), each the same number of rounds. One question, keyed by everything that
    makes its result (the server as named, where the query really goes under the host's
    address map, the name and type as asked, the timeout and the round), is sent once per
    run; every host asking it gets that result, its ``attempt`` included. A host asking while
    the first asker waits for the answer waits with it (a server that does not answer costs
    its timeout once per round, not once per host and round). Within one host too, a remote
    domain's MX that is the public probe name's MX of the same round is that one answer. A
    round is still its own
    question: ``--probe-repeat`` asks each server N times, and an intermittent server shows
    the same mix of answers and failures to every host that lists it. The host's own A record
    (ProbeTargets.internal_host) differs per host and so is asked per host.

    What is shared is the one measured answer, ``elapsed_ms`` included: every host of the run
    reports the same reply and latency for the same server, question and round."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[object, ...], DnsQueryResult] = {}
        self._asking: dict[tuple[object, ...], threading.Event] = {}

    def query(self, server: str, qname: str, rdtype: str, *, address_map: AddressMap,
              timeout: float, attempt: int) -> DnsQueryResult:
        try:
            target = resolve_target(server, address_map)
            where: tuple[str, int] | None = (target.host, target.port)
        except TargetRefused:
            where = None  # nothing is sent; the refusal is the result
        key = (server, where, qname, rdtype, float(timeout), attempt)
        while True:
            with self._lock:
                known = self._known.get(key)
                if known is not None:
                    return known
                waiting = self._asking.get(key)
                if waiting is None:
                    asking = self._asking[key] = threading.Event()
                    break
            waiting.wait()  # the first asker's answer, or its failure: then ask again
        try:
            result = _attempt(_query(server, qname, rdtype, address_map, timeout), attempt)
            with self._lock:
                self._known[key] = result
            return result
        finally:
            with self._lock:
                del self._asking[key]
            asking.set()


def query(server: str, qname: str, rdtype: str, *, address_map: AddressMap,
          timeout: float = DEFAULT_TIMEOUT, attempt: int = 1,
          cache: ProbeCache | None = None) -> DnsQueryResult:
    """Ask ``server`` one question; never raises for anything the network or the name does.
    ``attempt`` is recorded in the result (the round of a repeated probe). With ``cache``, a
    question the run asked before is answered from it (:class:`ProbeCache`)."""
    if cache is not None:
        return cache.query(server, qname, rdtype, address_map=address_map, timeout=timeout, attempt=attempt)
    return _attempt(_query(server, qname, rdtype, address_map, timeout), attempt)


def _attempt(result: DnsQueryResult, attempt: int) -> DnsQueryResult:
    return result if result.attempt == attempt else dataclasses.replace(result, attempt=attempt)


def _query(server: str, qname: str, rdtype: str, address_map: AddressMap, timeout: float) -> DnsQueryResult:
    rtype = str(rdtype).strip().upper()
    try:
        target = resolve_target(server, address_map)
    except TargetRefused as refused:
        return _result(server, "", qname, rtype, Outcome.ERROR, detail=str(refused))
    try:
        name = dns.name.from_text(qname)
        type_code = dns.rdatatype.from_text(rtype)
    except (dns.exception.DNSException, ValueError, UnicodeError) as bad:
        return _result(target.server, "", qname, rtype, Outcome.ERROR,
                       detail=f"cannot ask for {_show(qname)} {_show(rtype)}: {_describe(bad)}")

    message = dns.message.make_query(name, type_code, use_edns=0, payload=EDNS_PAYLOAD)
    started = time.monotonic()

    def done(outcome: Outcome, records: tuple[str, ...] = (), detail: str = "") -> DnsQueryResult:
        elapsed = round((time.monotonic() - started) * 1000.0, 3)
        return _result(target.server, target.queried, qname, rtype, outcome, records, detail, elapsed)

    try:
        response, _ = dns.query.udp_with_fallback(message, target.host, timeout=timeout,
                                                  port=target.port, ignore_unexpected=True)
    except dns.exception.Timeout:
        return done(Outcome.TIMEOUT, detail=f"no reply within {timeout:g}s")
    except (dns.exception.DNSException, OSError, ValueError, EOFError) as failed:
        return done(Outcome.ERROR, detail=_describe(failed))

    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return done(Outcome.NXDOMAIN)
    if rcode == dns.rcode.SERVFAIL:
        return done(Outcome.SERVFAIL)
    if rcode == dns.rcode.REFUSED:
        return done(Outcome.REFUSED)
    if rcode != dns.rcode.NOERROR:
        return done(Outcome.ERROR, detail=f"rcode {dns.rcode.to_text(rcode)}")
    records = tuple(
        rdata.to_text()
        for rrset in response.answer
        if rrset.rdtype == type_code and rrset.rdclass == dns.rdataclass.IN
        for rdata in rrset
    )
    if not records:
        return done(Outcome.NODATA)
    return done(Outcome.ANSWER, records)


def probe_server(server: str, ad_domain: str, internal_host_fqdn: str, public_name: str, *,
                 address_map: AddressMap, timeout: float = DEFAULT_TIMEOUT,
                 attempt: int = 1, cache: ProbeCache | None = None) -> ServerProbe:
    """Tell a DNS server's role: the AD SRV record, the A record of an internal Exchange host,
    and the MX of a public name (its A when it has no MX). ``attempt`` numbers the round."""
    ask = _asker(server, address_map, timeout, attempt, cache)
    ad = _bare(ad_domain)
    # The host's own name is asked by that host alone: kept out of the run's cache, which
    # would only grow with the fleet (a 10,000-host scan) and never be read again.
    own = _asker(server, address_map, timeout, attempt)
    results = [ask(f"_ldap._tcp.dc._msdcs.{ad}", "SRV"), own(internal_host_fqdn, "A")]
    mx = ask(public_name, "MX")
    results.append(mx)
    if mx.outcome is Outcome.NODATA:
        results.append(ask(public_name, "A"))
    queried = next((r.queried for r in results if r.queried), "")
    return ServerProbe(server=server, queried=queried, ad_domain=ad, internal_host=internal_host_fqdn,
                       public_name=public_name, results=tuple(results))


def probe_domain(domain: str, servers: Sequence[str], *, address_map: AddressMap,
                 timeout: float = DEFAULT_TIMEOUT, cache: ProbeCache | None = None) -> DomainProbe:
    """Follow a remote domain's mail routing (MX, then A and AAAA of the lowest-preference MX
    host, or of the domain when it has no MX) through the first server whose MX answer is
    definitive. Servers that time out, fail or refuse are passed over, as a resolver does.
    Only configured servers are asked (agent/model/dns_servers.py)."""
    tried = dns_servers.configured(servers)
    results: list[DnsQueryResult] = []
    for server in tried:
        mx = query(server, domain, "MX", address_map=address_map, timeout=timeout, cache=cache)
        results.append(mx)
        if not mx.outcome.definitive:
            continue
        partial = DomainProbe(domain=domain, servers=tried, server=server, results=(mx,))
        host = partial.mail_host
        if host is not None:
            results.append(query(server, host, "A", address_map=address_map, timeout=timeout, cache=cache))
            results.append(query(server, host, "AAAA", address_map=address_map, timeout=timeout, cache=cache))
        return DomainProbe(domain=domain, servers=tried, server=server, results=tuple(results))
    return DomainProbe(domain=domain, servers=tried, server=None, results=tuple(results))


@dataclass(frozen=True, slots=True)
class ServerProbeRequest:
    server: str
    ad_domain: str
    internal_host_fqdn: str
    public_name: str


@dataclass(frozen=True, slots=True)
class DomainProbeRequest:
    domain: str
    servers: tuple[str, ...]


def probe_servers(requests: Iterable[ServerProbeRequest], *, address_map: AddressMap,
                  timeout: float = DEFAULT_TIMEOUT,
                  max_workers: int = DEFAULT_WORKERS) -> dict[ServerProbeRequest, ServerProbe]:
    """Run many server probes on at most ``max_workers`` threads. Equal requests (the same
    server seen by many hosts) are probed once; the result keeps the requests' order."""
    return run_bounded(
        lambda r: probe_server(r.server, r.ad_domain, r.internal_host_fqdn, r.public_name,
                               address_map=address_map, timeout=timeout),
        requests, max_workers=max_workers)


def probe_domains(requests: Iterable[DomainProbeRequest], *, address_map: AddressMap,
                  timeout: float = DEFAULT_TIMEOUT,
                  max_workers: int = DEFAULT_WORKERS) -> dict[DomainProbeRequest, DomainProbe]:
    """Like :func:`probe_servers`, for remote domains."""
    return run_bounded(
        lambda r: probe_domain(r.domain, r.servers, address_map=address_map, timeout=timeout),
        requests, max_workers=max_workers)


def run_bounded(work: Callable[[_K], _R], items: Iterable[_K], *,
                max_workers: int = DEFAULT_WORKERS) -> dict[_K, _R]:
    """``work`` on each distinct item, on at most ``max_workers`` threads, in item order.
    ``work`` is expected not to raise (the probes never do); if it does, the error propagates."""
    unique = list(dict.fromkeys(items))
    if not unique:
        return {}
    workers = max(1, min(max_workers, len(unique)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="exfix-dns-probe") as pool:
        futures = [pool.submit(work, item) for item in unique]
        return {item: future.result() for item, future in zip(unique, futures, strict=True)}


# --- helpers ------------------------------------------------------------------------------


def _asker(server: str, address_map: AddressMap, timeout: float,
           attempt: int = 1, cache: ProbeCache | None = None) -> Callable[[str, str], DnsQueryResult]:
    def ask(qname: str, rdtype: str) -> DnsQueryResult:
        return query(server, qname, rdtype, address_map=address_map, timeout=timeout, attempt=attempt,
                     cache=cache)
    return ask


def _result(server: str, queried: str, qname: str, rdtype: str, outcome: Outcome,
            records: tuple[str, ...] = (), detail: str = "",
            elapsed_ms: float | None = None) -> DnsQueryResult:
    return DnsQueryResult(vantage=Vantage.ORCHESTRATOR, server=server, queried=queried, qname=qname,
                          rdtype=rdtype, outcome=outcome, records=records, detail=detail,
                          elapsed_ms=elapsed_ms)


def _canonical_ip(value: object) -> str | None:
    return _canonical_text(str(value))


# A fleet's hosts name the same few DNS servers, and every probe maps its server and the
# address map's keys again: ipaddress parses in Python, a few microseconds an address.
@functools.lru_cache(maxsize=4096)
def _canonical_text(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip().split("%", 1)[0]))
    except ValueError:
        return None


def _parse_endpoint(value: str) -> tuple[str, int]:
    """``"127.0.0.1:53123"``, ``"[::1]:53"``, ``"127.0.0.1"`` or ``"::1"`` -> (ip, port).
    Names are refused: resolving them would itself be an unmapped DNS query."""
    text = str(value).strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise TargetRefused(f"bad exfix_dns_address_map entry {_show(value)}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    ip = _canonical_ip(host)
    if ip is None:
        raise TargetRefused(f"exfix_dns_address_map entry {_show(value)} is not ip:port")
    if not port_text:
        return ip, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise TargetRefused(f"exfix_dns_address_map entry {_show(value)} has a bad port")
    return ip, int(port_text)


def _bare(name: str) -> str:
    text = name.strip()
    return text[:-1] if text.endswith(".") else text


def _show(value: object, limit: int = 80) -> str:
    text = repr(str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    name = type(error).__name__
    return f"{name}: {text}" if text else name
