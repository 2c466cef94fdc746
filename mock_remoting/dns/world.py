"""The DNS world of a lab scenario: which server answers what. Pure data and lookups, no sockets.

Three places read it: the loopback responders (``responder.py``) that exfix's probe and the
hosts' ``Resolve-DnsName`` query over real sockets, the mail-flow model that asks
:meth:`DnsWorld.answer` directly, and the host emulation that registers A records
(``Register-DnsClient``) through :meth:`DnsWorld.register`.

The answering rules are the table in ``mock_remoting/README.md`` ("DNS semantics"). In short:
an ``internal`` server is authoritative for the Active Directory zone and, with ``forward``,
recurses into the lab internet; a ``public`` server knows only the lab internet; the
misbehaving kinds (``ignore-aaaa``, ``servfail``, ``unreachable``) model the failures behind
Exchange's ``451 4.4.0 DNS query failed``.

Names are compared case-insensitively (RFC 4343) and a trailing dot is optional. Records come
back with absolute owner names (``mx1.fabrikam.com.``) and data in zone-file text.
"""

from __future__ import annotations

import dataclasses
import fractions
import ipaddress
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import ScenarioError

NOERROR = "NOERROR"
NXDOMAIN = "NXDOMAIN"
SERVFAIL = "SERVFAIL"
NO_REPLY = "NO_REPLY"  # the server stays silent: the client times out

KINDS = ("internal", "public", "ignore-aaaa", "servfail", "unreachable")

# TTLs as a Windows DNS server hands them out: 3600 for static zone data, 1200 for records a
# client registered itself (the DnsClient's default RegistrationTtl).
STATIC_TTL = 3600
REGISTERED_TTL = 1200

_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """One resource record. ``data`` is zone-file text: ``"203.0.113.10"``,
    ``"10 mx1.fabrikam.com."``, ``"0 100 389 dc01.contoso.local."``."""

    name: str
    rdtype: str
    ttl: int
    data: str


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """What one server answers to one question. ``rcode`` is ``NOERROR``, ``NXDOMAIN``,
    ``SERVFAIL`` or ``NO_REPLY`` (no answer at all). NOERROR with no records is NODATA."""

    rcode: str
    records: tuple[DnsRecord, ...] = ()


_EMPTY = DnsAnswer(NOERROR)
_NXDOMAIN = DnsAnswer(NXDOMAIN)
_SERVFAIL = DnsAnswer(SERVFAIL)
_NO_REPLY = DnsAnswer(NO_REPLY)


def normalize_name(name: str) -> str:
    """The comparison form of a DNS name: lower case, no trailing dot. Never raises."""
    text = str(name).strip().lower()
    return text[:-1] if text.endswith(".") else text


def _absolute(name: str) -> str:
    return f"{name}."


def _is_within(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


FAIL_MODES = ("drop", "servfail")


@dataclass(frozen=True, slots=True)
class _Server:
    kind: str
    forward: bool
    # An intermittent server (overload, rate limiting, packet loss): this fraction of the
    # queries it receives fail, in a fixed pattern, by ``fail_mode`` (no reply, or SERVFAIL).
    fail_fraction: float = 0.0
    fail_mode: str = "drop"


def fails_at(fraction: float, count: int) -> bool:
    """Whether the ``count``-th (1-based) query of a question fails when ``fraction`` of them
    do: query k fails when floor(k * f) steps up, which spreads the failures evenly and
    repeatably (f = 0.5: queries 2, 4, 6, ...; f = 1/3: 3, 6, ...)."""
    if fraction <= 0.0:
        return False
    # As an exact ratio, so that 0.333... read from YAML fails every third query: in floating
    # point 3 * 0.333... is just below 1.
    ratio = fractions.Fraction(fraction).limit_denominator(1000)
    numerator, denominator = ratio.numerator, ratio.denominator
    return (count * numerator) // denominator > ((count - 1) * numerator) // denominator


@dataclass(frozen=True, slots=True)
class _Zone:
    """One zone of the lab internet."""

    name: str
    mx: tuple[tuple[int, str], ...]
    a: Mapping[str, tuple[str, ...]]
    aaaa: Mapping[str, tuple[str, ...]]
    ignore_aaaa: bool


class _Validator:
    """Reads the scenario's raw mappings; every problem becomes one ScenarioError naming its key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ScenarioError:
        return ScenarioError(self.source, problem, key=key)

    def mapping(self, value: Any, key: str) -> Mapping[Any, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected a mapping, got {_kind_of(value)}")
        return value

    def sequence(self, value: Any, key: str) -> Sequence[Any]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise self.fail(key, f"expected a list, got {_kind_of(value)}")
        return value

    def only_keys(self, value: Mapping[Any, Any], key: str, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for name in value:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                raise self.fail(where, f"unknown key (expected one of: {', '.join(allowed)})")

    def name(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a DNS name, got {_kind_of(value)}")
        name = normalize_name(value)
        labels = name.split(".")
        if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
            raise self.fail(key, f"not a valid DNS name: {value!r}")
        return name

    def address(self, value: Any, key: str, *, version: int | None) -> str:
        """An IP address in canonical text; ``version`` None accepts IPv4 and IPv6."""
        try:
            ip = ipaddress.ip_address(value.strip()) if isinstance(value, str) else None
        except ValueError:
            ip = None
        if ip is None or (version is not None and ip.version != version):
            wanted = "an IP" if version is None else f"an IPv{version}"
            raise self.fail(key, f"not {wanted} address: {value!r}")
        return str(ip)

    def addresses(self, value: Any, key: str, *, version: int) -> tuple[str, ...]:
        items = self.sequence(value, key)
        if not items:
            raise self.fail(key, "expected at least one address")
        result: list[str] = []
        for index, item in enumerate(items):
            address = self.address(item, f"{key}.{index}", version=version)
            if address not in result:
                result.append(address)
        return tuple(result)

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        str: "a string", bool: "a boolean", int: "a number", float: "a number",
        list: "a list", tuple: "a list", dict: "a mapping",
    }.get(type(value), type(value).__name__)


class DnsWorld:
    """Every DNS server of a scenario, the Active Directory zone and the lab internet.

    Immutable except for the A records hosts register at run time (:meth:`register`) and the
    forwarders of an internal server (:meth:`set_forward`), and a zone's addresses a test withdraws
    (:meth:`withdraw_addresses`), which a lock guards (a reader sees
    a server's old or new entry, never half of one); every method may be called from any thread.
    """

    def __init__(
        self,
        *,
        ad_domain: str,
        domain_controllers: Sequence[tuple[str, str]],
        servers: Mapping[str, _Server],
        internal_records: Mapping[str, tuple[str, ...]],
        zones: Sequence[_Zone],
    ) -> None:
        # Use from_scenario(); this constructor trusts its (already validated) arguments.
        self.ad_domain = ad_domain
        self._servers = dict(servers)
        self.server_addresses: tuple[str, ...] = tuple(servers)
        self._zones = {zone.name: zone for zone in zones}
        self.internet_zones: tuple[str, ...] = tuple(self._zones)
        self._lock = threading.Lock()
        self._registered: dict[str, tuple[str, ...]] = {}
        self._asked: dict[tuple[str, str, str], int] = {}

        ad = ad_domain
        static: dict[tuple[str, str], list[str]] = {}

        def add(name: str, rdtype: str, data: str) -> None:
            values = static.setdefault((name, rdtype), [])
            if data not in values:
                values.append(data)

        first_dc = domain_controllers[0][0]
        add(ad, "SOA", f"{first_dc}. hostmaster.{ad}. 1 900 600 86400 3600")
        for dc_name, dc_address in domain_controllers:
            add(ad, "NS", _absolute(dc_name))
            add(f"_ldap._tcp.dc._msdcs.{ad}", "SRV", f"0 100 389 {dc_name}.")
            add(dc_name, "A", dc_address)
        for name, addresses in internal_records.items():
            for address in addresses:
                add(name, "A", address)
        self._static = {key: tuple(values) for key, values in static.items()}
        # Every name that exists in the AD zone, empty non-terminals included (RFC 8020:
        # a name with children but no records is NODATA, not NXDOMAIN).
        nodes: set[str] = set()
        for name, _ in self._static:
            nodes.update(_ancestors_within(name, ad))
        self._static_nodes = frozenset(nodes)

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_scenario(
        cls, dns: Mapping[str, Any], organization: Mapping[str, Any], *, source: str
    ) -> DnsWorld:
        """Validate a scenario's ``dns`` and ``organization`` sections and build the world.

        Raises :class:`agent.errors.ScenarioError` naming the offending key
        (``dns.servers.10.0.0.99.kind``) with a one-line problem.
        """
        check = _Validator(source)
        org = check.mapping(organization, "organization")
        if "ad_domain" not in org:
            raise check.fail("organization.ad_domain", "missing: the Active Directory domain")
        ad = check.name(org["ad_domain"], "organization.ad_domain")

        dcs: list[tuple[str, str]] = []
        raw_dcs = check.sequence(org.get("domain_controllers"), "organization.domain_controllers")
        if not raw_dcs:
            raise check.fail("organization.domain_controllers", "expected at least one domain controller")
        for index, raw in enumerate(raw_dcs):
            key = f"organization.domain_controllers.{index}"
            entry = check.mapping(raw, key)
            check.only_keys(entry, key, ("name", "address"))
            for needed in ("name", "address"):
                if needed not in entry:
                    raise check.fail(f"{key}.{needed}", "missing")
            dc_name = check.name(entry["name"], f"{key}.name")
            if not _is_within(dc_name, ad) or dc_name == ad:
                raise check.fail(f"{key}.name", f"{dc_name!r} is not a host in the AD domain {ad!r}")
            dcs.append((dc_name, check.address(entry["address"], f"{key}.address", version=4)))

        section = check.mapping(dns, "dns")
        check.only_keys(section, "dns", ("servers", "internal_records", "internet"))
        if "servers" not in section:
            raise check.fail("dns.servers", "missing: the DNS servers hosts and probes may use")
        servers: dict[str, _Server] = {}
        for raw_address, raw in check.mapping(section["servers"], "dns.servers").items():
            key = f"dns.servers.{raw_address}"
            address = check.address(raw_address, key, version=None)
            if address in servers:
                raise check.fail(key, f"server {address} is listed twice")
            entry = check.mapping(raw, key)
            check.only_keys(entry, key, ("kind", "forward", "fail_fraction", "fail_mode"))
            kind = entry.get("kind")
            if kind not in KINDS:
                raise check.fail(f"{key}.kind", f"{kind!r} is not one of: {', '.join(KINDS)}")
            if "forward" in entry and kind != "internal":
                raise check.fail(f"{key}.forward", "only an internal server forwards")
            # An AD DNS server forwards (or uses root hints) unless told otherwise.
            forward = check.boolean(entry.get("forward", True), f"{key}.forward")
            fraction = entry.get("fail_fraction", 0.0)
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
                raise check.fail(f"{key}.fail_fraction",
                                 f"expected a fraction from 0 up to (not including) 1, got {fraction!r}")
            mode = entry.get("fail_mode", "drop")
            if mode not in FAIL_MODES:
                raise check.fail(f"{key}.fail_mode", f"{mode!r} is not one of: {', '.join(FAIL_MODES)}")
            servers[address] = _Server(kind, forward, float(fraction), str(mode))

        internal: dict[str, tuple[str, ...]] = {}
        raw_internal = section.get("internal_records") or {}
        for raw_name, raw in check.mapping(raw_internal, "dns.internal_records").items():
            key = f"dns.internal_records.{raw_name}"
            name = check.name(raw_name, key)
            if not _is_within(name, ad):
                raise check.fail(key, f"{name!r} is outside the AD domain {ad!r}")
            internal[name] = check.addresses(raw, key, version=4)

        zones: list[_Zone] = []
        raw_internet = section.get("internet") or {}
        for raw_zone, raw in check.mapping(raw_internet, "dns.internet").items():
            zones.append(_read_zone(check, raw_zone, raw, ad, {z.name for z in zones}))

        return cls(ad_domain=ad, domain_controllers=dcs, servers=servers,
                   internal_records=internal, zones=zones)

    # --- queries ------------------------------------------------------------------------

    @property
    def public_resolvers(self) -> tuple[str, ...]:
        """The scenario's working public resolvers (kind ``public``: they answer every lab
        internet name, AAAA included), in scenario order."""
        return tuple(address for address, entry in self._servers.items() if entry.kind == "public")

    def has_server(self, server: str) -> bool:
        """True when the scenario lists ``server``."""
        return _server_key(server) in self._servers

    def kind(self, server: str) -> str:
        """The kind of ``server``. An address the scenario does not list has no DNS server
        behind it, so it behaves as ``unreachable``."""
        entry = self._servers.get(_server_key(server))
        return entry.kind if entry is not None else "unreachable"

    def forwards(self, server: str) -> bool:
        """True when ``server`` resolves lab internet names (public kinds, forwarding internal)."""
        entry = self._servers.get(_server_key(server))
        if entry is None:
            return False
        return entry.kind in ("public", "ignore-aaaa") or (entry.kind == "internal" and entry.forward)

    def in_ad_zone(self, qname: str) -> bool:
        """True when ``qname`` is the AD domain or a name under it."""
        return _is_within(normalize_name(qname), self.ad_domain)

    def is_authoritative(self, server: str, qname: str) -> bool:
        """True when ``server`` holds the zone of ``qname`` (an internal server, AD names)."""
        return self.kind(server) == "internal" and self.in_ad_zone(qname)

    def answer(self, server: str, qname: str, rdtype: str) -> DnsAnswer:
        """Exactly what ``server`` answers to ``qname``/``rdtype``. Any string is accepted;
        a name that cannot exist simply falls in no zone."""
        entry = self._servers.get(_server_key(server))
        if entry is None or entry.kind == "unreachable":
            return _NO_REPLY
        if entry.kind == "servfail":
            return _SERVFAIL
        name = normalize_name(qname)
        rtype = str(rdtype).strip().upper()
        in_ad = _is_within(name, self.ad_domain)
        zone = None if in_ad else self._zone_of(name)

        if entry.kind == "internal":
            if in_ad:
                return self._answer_ad(name, rtype)
            if not entry.forward:
                return _SERVFAIL
            return self._answer_internet(zone, name, rtype) if zone is not None else _NXDOMAIN
        # public and ignore-aaaa: an internet resolver knows nothing of the AD zone
        if zone is None:
            return _NXDOMAIN
        if entry.kind == "ignore-aaaa" and rtype == "AAAA":
            return _NO_REPLY
        return self._answer_internet(zone, name, rtype)

    def serve(self, server: str, qname: str, rdtype: str) -> DnsAnswer:
        """What ``server`` sends back to one query that reached it over the wire: :meth:`answer`,
        except that an intermittent server (``fail_fraction``) lets the scheduled share of the
        queries down. Each (server, name, type) has its own count, so the pattern a question
        sees does not depend on what other hosts or questions were asked in between."""
        key = _server_key(server)
        entry = self._servers.get(key)
        if entry is not None and entry.fail_fraction > 0.0:
            question = (key, normalize_name(qname), str(rdtype).strip().upper())
            with self._lock:
                count = self._asked.get(question, 0) + 1
                self._asked[question] = count
            if fails_at(entry.fail_fraction, count):
                return _NO_REPLY if entry.fail_mode == "drop" else _SERVFAIL
        return self.answer(server, qname, rdtype)

    def fail_fraction(self, server: str) -> float:
        """The share of queries ``server`` lets down (0 for a steady server)."""
        entry = self._servers.get(_server_key(server))
        return entry.fail_fraction if entry is not None else 0.0

    def set_forward(self, server: str, forward: bool) -> None:
        """Give an internal server forwarders, or take them away, as a DNS administrator does
        on the server itself (nothing on the Exchange hosts changes): tests use it to change
        what a server resolves between a plan and its apply. Raises ValueError for a server
        that is not internal."""
        key = _server_key(server)
        entry = self._servers.get(key)
        if entry is None or entry.kind != "internal":
            raise ValueError(f"{server!r} is not an internal DNS server of the scenario")
        with self._lock:
            self._servers[key] = _Server(entry.kind, forward, entry.fail_fraction, entry.fail_mode)

    def withdraw_addresses(self, name: str) -> None:
        """An outage at a lab internet zone's servers: ``name`` loses its A records (queries
        for it get NODATA from then on). For tests of what happens after a check passed."""
        key = normalize_name(name)
        with self._lock:
            zone = self._zone_of(key)
            if zone is None or key not in zone.a:
                raise KeyError(name)
            self._zones[zone.name] = dataclasses.replace(
                zone, a={n: a for n, a in zone.a.items() if n != key}
            )

    def register(self, fqdn: str, addresses: Sequence[str]) -> None:
        """Set the dynamically registered A records of ``fqdn`` (a name in the AD zone), as a
        DNS client's dynamic update (RFC 2136) does: the new set replaces the old one. An empty
        ``addresses`` removes the registration. Raises ValueError for a name outside the AD
        zone or an address that is not IPv4."""
        name = normalize_name(fqdn)
        if not _is_within(name, self.ad_domain) or name == self.ad_domain:
            raise ValueError(f"cannot register {fqdn!r}: not a host in the AD domain {self.ad_domain!r}")
        if isinstance(addresses, str):
            raise ValueError("addresses must be a sequence of IPv4 addresses, not one string")
        clean: list[str] = []
        for address in addresses:
            try:
                ip = ipaddress.IPv4Address(str(address).strip())
            except ValueError:
                raise ValueError(f"cannot register {fqdn!r}: {address!r} is not an IPv4 address") from None
            if str(ip) not in clean:
                clean.append(str(ip))
        with self._lock:
            if clean:
                self._registered[name] = tuple(clean)
            else:
                self._registered.pop(name, None)

    def is_registered(self, fqdn: str) -> bool:
        """True when ``fqdn`` has registered A records (static records do not count)."""
        with self._lock:
            return normalize_name(fqdn) in self._registered

    def registered(self, fqdn: str) -> tuple[str, ...]:
        """The A records ``fqdn`` registered dynamically, in registration order (static
        records do not count)."""
        with self._lock:
            return self._registered.get(normalize_name(fqdn), ())

    # --- internals ----------------------------------------------------------------------

    def _zone_of(self, name: str) -> _Zone | None:
        # The longest matching zone wins, as delegation would have it.
        best: _Zone | None = None
        for zone in self._zones.values():
            if _is_within(name, zone.name) and (best is None or len(zone.name) > len(best.name)):
                best = zone
        return best

    def _answer_ad(self, name: str, rtype: str) -> DnsAnswer:
        owner = _absolute(name)
        records = [DnsRecord(owner, rtype, STATIC_TTL, data) for data in self._static.get((name, rtype), ())]
        with self._lock:
            dynamic = self._registered.get(name, ())
            exists = name in self._static_nodes or any(_is_within(n, name) for n in self._registered)
        if rtype == "A":
            static_data = {record.data for record in records}
            records.extend(DnsRecord(owner, "A", REGISTERED_TTL, address)
                           for address in dynamic if address not in static_data)
        if records:
            return DnsAnswer(NOERROR, tuple(records))
        return _EMPTY if exists else _NXDOMAIN

    def _answer_internet(self, zone: _Zone, name: str, rtype: str) -> DnsAnswer:
        if rtype == "AAAA" and zone.ignore_aaaa:
            # The zone's own servers drop AAAA queries; a recursive resolver gives up after
            # its retries and answers SERVFAIL: one domain fails, others deliver ("Error occurs
            # when you send email to specific remote domains", Microsoft's "451 4.4.0 DNS
            # query failed Exchange Server error in message queue").
            return _SERVFAIL
        owner = _absolute(name)
        data: tuple[str, ...] = ()
        if rtype == "A":
            data = zone.a.get(name, ())
        elif rtype == "AAAA":
            data = zone.aaaa.get(name, ())
        elif rtype == "MX" and name == zone.name:
            data = tuple(f"{preference} {host}." for preference, host in zone.mx)
        elif rtype == "SOA" and name == zone.name:
            data = (f"ns1.{zone.name}. hostmaster.{zone.name}. 1 3600 600 86400 300",)
        if not data:
            return _EMPTY  # README: any name inside a lab internet zone without the type is NODATA
        return DnsAnswer(NOERROR, tuple(DnsRecord(owner, rtype, STATIC_TTL, item) for item in data))


def _server_key(server: str) -> str:
    text = str(server).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _ancestors_within(name: str, zone: str) -> Iterable[str]:
    current = name
    while True:
        yield current
        if current == zone or "." not in current:
            return
        current = current.split(".", 1)[1]


def _read_zone(check: _Validator, raw_zone: Any, raw: Any, ad: str, seen: set[str]) -> _Zone:
    key = f"dns.internet.{raw_zone}"
    zone = check.name(raw_zone, key)
    if zone in seen:
        raise check.fail(key, f"zone {zone!r} is listed twice")
    if _is_within(zone, ad) or _is_within(ad, zone):
        raise check.fail(key, f"zone {zone!r} overlaps the AD domain {ad!r}")
    entry = check.mapping(raw if raw is not None else {}, key)
    check.only_keys(entry, key, ("mx", "a", "aaaa", "ignore_aaaa"))

    mx: list[tuple[int, str]] = []
    for index, raw_mx in enumerate(check.sequence(entry.get("mx") or [], f"{key}.mx")):
        mx_key = f"{key}.mx.{index}"
        item = check.mapping(raw_mx, mx_key)
        check.only_keys(item, mx_key, ("preference", "host"))
        preference = item.get("preference")
        if isinstance(preference, bool) or not isinstance(preference, int) or not 0 <= preference <= 65535:
            raise check.fail(f"{mx_key}.preference", f"expected a number from 0 to 65535, got {preference!r}")
        if "host" not in item:
            raise check.fail(f"{mx_key}.host", "missing")
        mx.append((preference, check.name(item["host"], f"{mx_key}.host")))

    def records(field: str, version: int) -> dict[str, tuple[str, ...]]:
        result: dict[str, tuple[str, ...]] = {}
        for raw_name, raw_addresses in check.mapping(entry.get(field) or {}, f"{key}.{field}").items():
            name_key = f"{key}.{field}.{raw_name}"
            name = check.name(raw_name, name_key)
            if not _is_within(name, zone):
                raise check.fail(name_key, f"{name!r} is outside the zone {zone!r}")
            result[name] = check.addresses(raw_addresses, name_key, version=version)
        return result

    return _Zone(
        name=zone,
        mx=tuple(mx),
        a=records("a", 4),
        aaaa=records("aaaa", 6),
        ignore_aaaa=check.boolean(entry.get("ignore_aaaa", False), f"{key}.ignore_aaaa"),
    )
