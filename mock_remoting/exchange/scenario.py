"""Lab scenario files: loading, validation and fleet generation.

A scenario (``mock_remoting/scenarios/<name>.yaml``, format in ``mock_remoting/README.md``)
describes one organisation: its DNS (validated by :class:`DnsWorld`), its send connectors and
its Exchange hosts with their NICs, transport DNS settings, queues and replayed captures.

Everything here is immutable. The mutable run-time state lives in ``state.py``; it is built
from these values by :class:`~mock_remoting.exchange.host.Fleet`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from agent.errors import ScenarioError
from mock_remoting.dns.world import DnsWorld

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"

RULE_IDS = (
    "queue-dns-failure",
    "nic-dns-registration-disabled",
    "nic-external-dns-server",
    "transport-external-dns-unresolvable",
    "transport-internal-dns-misconfigured",
    "transport-no-dns-configured",
    "remote-domain-aaaa-broken",
    "remote-domain-no-mail-dns",
    "dns-server-unreachable",
    "dns-fault-tolerance",
)

EXTERNAL_DELIVERY_TYPES = ("DnsConnectorDelivery", "SmartHostConnectorDelivery")
INTERNAL_DELIVERY_TYPES = (
    "SmtpRelayToMailboxDeliveryGroup",
    "SmtpRelayToDag",
    "SmtpRelayToRemoteAdSite",
    "SmtpRelayToRemoteActiveDirectorySite",
    "SmtpDeliveryToMailbox",
)
PROTOCOL_OPTIONS = ("Any", "UseTcpOnly", "UseUdpOnly")
FAULT_TOLERANCE = ("Lenient", "Normal")
AUTH_MECHANISMS = ("None", "BasicAuth", "BasicAuthRequireTLS", "ExchangeServer", "ExternalAuthoritative")

_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,13}[A-Za-z0-9])?$")
_VERSION = re.compile(r"^(8|14|15)\.(\d+)\.(\d+)\.(\d+)$")


@dataclass(frozen=True, slots=True)
class NicSpec:
    """One network adapter. ``mapi`` marks the MAPI/primary NIC (the one with the gateway)."""

    alias: str
    index: int
    ipv4: str
    prefix_length: int
    mapi: bool
    gateway: str | None
    dns_servers: tuple[str, ...]
    ipv6_dns_servers: tuple[str, ...]
    dhcp_dns_servers: tuple[str, ...]
    register: bool
    use_suffix: bool
    suffix: str
    description: str
    mac: str


@dataclass(frozen=True, slots=True)
class TransportSpec:
    """Get-/Set-TransportService DNS settings (the defaults are Exchange's)."""

    external_dns_adapter_enabled: bool = True
    external_dns_servers: tuple[str, ...] = ()
    external_dns_protocol_option: str = "Any"
    internal_dns_adapter_enabled: bool = True
    internal_dns_servers: tuple[str, ...] = ()
    internal_dns_protocol_option: str = "Any"


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One delivery queue at load. ``target`` is the server an internal queue delivers to."""

    next_hop: str
    delivery_type: str
    messages: int
    target: str | None

    @property
    def external(self) -> bool:
        return self.delivery_type in EXTERNAL_DELIVERY_TYPES


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    name: str
    address_spaces: tuple[str, ...]
    source_transport_servers: tuple[str, ...]
    dns_routing_enabled: bool = True
    smart_hosts: tuple[str, ...] = ()
    use_external_dns_servers_enabled: bool = False
    smart_host_auth_mechanism: str = "None"
    enabled: bool = True
    port: int = 25
    comment: str = ""


@dataclass(frozen=True, slots=True)
class HostSpec:
    name: str
    fqdn: str
    version: str
    site: str
    edition: str
    nics: tuple[NicSpec, ...]
    transport: TransportSpec
    dns_fault_tolerance: str | None
    transport_running: bool
    queues: tuple[QueueSpec, ...]
    replay: Mapping[str, Path]
    faults: Mapping[str, Any]
    expect_rules: tuple[str, ...]

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])

    @property
    def mapi_nic(self) -> NicSpec:
        return next(nic for nic in self.nics if nic.mapi)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    expect_rules: tuple[str, ...]
    organization: Mapping[str, Any]
    dns: Mapping[str, Any]
    exchange_organization: str
    send_connectors: tuple[ConnectorSpec, ...]
    hosts: tuple[HostSpec, ...]
    source: Path
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ad_domain(self) -> str:
        return str(self.organization["ad_domain"]).lower().rstrip(".")

    @property
    def ad_site(self) -> str:
        return str(self.organization.get("ad_site") or "Default-First-Site-Name")

    def internet_addresses(self) -> frozenset[str]:
        """Every IPv4 address that is an A record in the lab internet (a real mail host)."""
        found: set[str] = set()
        for zone in (self.dns.get("internet") or {}).values():
            for addresses in ((zone or {}).get("a") or {}).values():
                found.update(str(a) for a in addresses or ())
        return frozenset(found)


# --- loading -------------------------------------------------------------------------------


def scenario_path(name_or_path: str | Path) -> Path:
    """A bare name means a shipped scenario; anything with a separator or suffix is a path."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or "\\" in text or text.endswith((".yaml", ".yml")):
        return Path(name_or_path)
    return SCENARIO_DIR / f"{text}.yaml"


def shipped_scenarios() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))


def load_scenario(name_or_path: str | Path, *, hosts: int | None = None) -> Scenario:
    """Load and validate a scenario. ``hosts=N`` clones the hosts round-robin into N hosts.

    Raises :class:`agent.errors.ScenarioError` (file, key, one-line problem) for any problem.
    """
    path = scenario_path(name_or_path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(shipped_scenarios())
        raise ScenarioError(source, f"no such scenario file (shipped scenarios: {known})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(source, f"cannot read: {error}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ScenarioError(source, f"invalid YAML: {problem}", line=line) from None
    scenario = _Reader(source, path).scenario(raw)
    if hosts is not None:
        scenario = scale_fleet(scenario, hosts)
    return scenario


class _Reader:
    def __init__(self, source: str, path: Path) -> None:
        self.source = source
        self.path = path

    def fail(self, key: str, problem: str) -> ScenarioError:
        return ScenarioError(self.source, problem, key=key)

    # small typed readers

    def mapping(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected a mapping, got {_kind(value)}")
        return value

    def sequence(self, value: Any, key: str) -> Sequence[Any]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise self.fail(key, f"expected a list, got {_kind(value)}")
        return value

    def only(self, value: Mapping[str, Any], key: str, allowed: Sequence[str]) -> None:
        for name in value:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                raise self.fail(where, f"unknown key (expected one of: {', '.join(allowed)})")

    def require(self, value: Mapping[str, Any], key: str, name: str) -> Any:
        if name not in value or value[name] is None:
            raise self.fail(f"{key}.{name}" if key else name, "missing")
        return value[name]

    def text(self, value: Any, key: str, *, empty: bool = False) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(key, f"expected a string, got {_kind(value)}")
        result = str(value)
        if not empty and not result.strip():
            raise self.fail(key, "must not be empty")
        return result

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"expected a whole number from {low} to {high}, got {value!r}")
        return value

    def choice(self, value: Any, key: str, choices: Sequence[str]) -> str:
        for option in choices:
            if isinstance(value, str) and value.lower() == option.lower():
                return option
        raise self.fail(key, f"{value!r} is not one of: {', '.join(choices)}")

    def ipv4(self, value: Any, key: str) -> str:
        try:
            return str(ipaddress.IPv4Address(str(value).strip())) if isinstance(value, str) else _bad()
        except ValueError:
            raise self.fail(key, f"not an IPv4 address: {value!r}") from None

    def ip_list(self, value: Any, key: str, version: int | None = 4) -> tuple[str, ...]:
        result: list[str] = []
        for index, item in enumerate(self.sequence(value if value is not None else [], key)):
            try:
                ip = ipaddress.ip_address(str(item).strip()) if isinstance(item, str) else _bad()
            except ValueError:
                raise self.fail(f"{key}.{index}", f"not an IP address: {item!r}") from None
            if version is not None and ip.version != version:
                raise self.fail(f"{key}.{index}", f"not an IPv{version} address: {item!r}")
            result.append(str(ip))  # duplicates are kept: real NICs show them (EXCHANGE_FACTS)
        return tuple(result)

    def rules(self, value: Any, key: str) -> tuple[str, ...]:
        items = self.sequence(value if value is not None else [], key)
        result: list[str] = []
        for index, item in enumerate(items):
            if item not in RULE_IDS:
                raise self.fail(f"{key}.{index}", f"{item!r} is not a rule id ({', '.join(RULE_IDS)})")
            if item not in result:
                result.append(item)
        return tuple(result)

    # sections

    def scenario(self, raw: Any) -> Scenario:
        top = self.mapping(raw, "")
        self.only(
            top,
            "",
            (
                "name",
                "description",
                "expect",
                "organization",
                "dns",
                "exchange_organization",
                "send_connectors",
                "hosts",
            ),
        )
        name = self.text(top.get("name", self.path.stem), "name")
        description = self.text(self.require(top, "", "description"), "description")
        expect = self.mapping(top.get("expect") or {}, "expect")
        self.only(expect, "expect", ("rules",))
        expect_rules = self.rules(expect.get("rules"), "expect.rules")
        organization = self.mapping(self.require(top, "", "organization"), "organization")
        dns = self.mapping(self.require(top, "", "dns"), "dns")
        world = DnsWorld.from_scenario(dns, organization, source=self.source)
        ad_domain = world.ad_domain
        site = str(organization.get("ad_site") or "Default-First-Site-Name")
        exchange_org = self.text(
            top.get("exchange_organization", "First Organization"), "exchange_organization"
        )

        raw_hosts = self.sequence(self.require(top, "", "hosts"), "hosts")
        if not raw_hosts:
            raise self.fail("hosts", "expected at least one host")
        hosts = tuple(
            self.host(item, f"hosts.{i}", ad_domain, site, world) for i, item in enumerate(raw_hosts)
        )
        self.unique(hosts)

        connectors = tuple(
            self.connector(item, f"send_connectors.{i}", hosts)
            for i, item in enumerate(self.sequence(top.get("send_connectors") or [], "send_connectors"))
        )
        names = [c.name.lower() for c in connectors]
        for i, cname in enumerate(names):
            if cname in names[:i]:
                raise self.fail(
                    f"send_connectors.{i}.name", f"connector {connectors[i].name!r} is listed twice"
                )

        host_rules = [r for h in hosts for r in h.expect_rules]
        if any(h.expect_rules for h in hosts) and set(host_rules) != set(expect_rules):
            raise self.fail(
                "expect.rules",
                f"must be the union of the hosts' expect.rules ({', '.join(sorted(set(host_rules)))})",
            )
        return Scenario(
            name=name,
            description=description,
            expect_rules=expect_rules,
            organization=organization,
            dns=dns,
            exchange_organization=exchange_org,
            send_connectors=connectors,
            hosts=hosts,
            source=self.path,
            raw=top,
        )

    def unique(self, hosts: Sequence[HostSpec]) -> None:
        seen_names: dict[str, int] = {}
        seen_addresses: dict[str, str] = {}
        for i, host in enumerate(hosts):
            for label in (host.name.lower(), host.fqdn):
                if label in seen_names:
                    raise self.fail(f"hosts.{i}.name", f"host {label!r} is listed twice")
                seen_names[label] = i
            for j, nic in enumerate(host.nics):
                if nic.ipv4 in seen_addresses:
                    raise self.fail(
                        f"hosts.{i}.nics.{j}.ipv4",
                        f"{nic.ipv4} is already used by {seen_addresses[nic.ipv4]}",
                    )
                seen_addresses[nic.ipv4] = host.name

    def host(self, raw: Any, key: str, ad_domain: str, site: str, world: DnsWorld) -> HostSpec:
        entry = self.mapping(raw, key)
        self.only(
            entry,
            key,
            (
                "name",
                "fqdn",
                "version",
                "site",
                "edition",
                "nics",
                "transport",
                "dns_fault_tolerance",
                "transport_service",
                "queues",
                "replay",
                "faults",
                "expect",
            ),
        )
        name = self.text(self.require(entry, key, "name"), f"{key}.name")
        if not _HOST_NAME.match(name):
            raise self.fail(
                f"{key}.name",
                f"{name!r} is not a NetBIOS-style server name (1-15 letters, digits or hyphens)",
            )
        fqdn = str(entry.get("fqdn") or f"{name}.{ad_domain}").lower().rstrip(".")
        if not fqdn.endswith("." + ad_domain):
            raise self.fail(f"{key}.fqdn", f"{fqdn!r} is not in the AD domain {ad_domain!r}")
        version = self.text(self.require(entry, key, "version"), f"{key}.version")
        match = _VERSION.match(version)
        if not match:
            raise self.fail(f"{key}.version", f"{version!r} is not a build number like 15.2.1118.7")
        if match.group(1) == "8":
            # Exchange 2007 has no remote PowerShell (EXCHANGE_FACTS): nothing to emulate.
            raise self.fail(
                f"{key}.version", "Exchange 2007 (8.x) has no remote PowerShell; use 14.x or 15.x"
            )

        raw_nics = self.sequence(self.require(entry, key, "nics"), f"{key}.nics")
        nics = tuple(self.nic(item, f"{key}.nics.{i}", world) for i, item in enumerate(raw_nics))
        if sum(1 for n in nics if n.mapi) != 1:
            raise self.fail(f"{key}.nics", "exactly one NIC must have mapi: true (the MAPI/primary NIC)")
        for i, nic in enumerate(nics):
            for j, other in enumerate(nics[:i]):
                if nic.index == other.index:
                    raise self.fail(f"{key}.nics.{i}.index", f"index {nic.index} is also used by nics.{j}")
                if nic.alias.lower() == other.alias.lower():
                    raise self.fail(f"{key}.nics.{i}.alias", f"alias {nic.alias!r} is also used by nics.{j}")

        transport = self.transport(entry.get("transport") or {}, f"{key}.transport", world)
        tolerance = entry.get("dns_fault_tolerance")
        if tolerance is not None:
            tolerance = self.choice(tolerance, f"{key}.dns_fault_tolerance", FAULT_TOLERANCE)
        service = self.choice(
            entry.get("transport_service", "Running"), f"{key}.transport_service", ("Running", "Stopped")
        )
        queues = tuple(
            self.queue(item, f"{key}.queues.{i}", fqdn, ad_domain)
            for i, item in enumerate(self.sequence(entry.get("queues") or [], f"{key}.queues"))
        )
        replay: dict[str, Path] = {}
        for cmdlet, raw_path in self.mapping(entry.get("replay") or {}, f"{key}.replay").items():
            rkey = f"{key}.replay.{cmdlet}"
            if not isinstance(cmdlet, str) or not re.match(r"^[A-Za-z]+-[A-Za-z]+$", cmdlet):
                raise self.fail(rkey, "expected a cmdlet name such as Get-DnsClient")
            capture = Path(self.text(raw_path, rkey))
            if not capture.is_absolute():
                capture = (self.path.parent / capture).resolve()
            if not capture.is_file():
                raise self.fail(rkey, f"capture file not found: {capture}")
            replay[cmdlet.lower()] = capture
        faults = self.mapping(entry.get("faults") or {}, f"{key}.faults")
        expect = self.mapping(entry.get("expect") or {}, f"{key}.expect")
        self.only(expect, f"{key}.expect", ("rules",))
        return HostSpec(
            name=name,
            fqdn=fqdn,
            version=version,
            site=self.text(entry.get("site", site), f"{key}.site"),
            edition=self.text(entry.get("edition", "Standard"), f"{key}.edition"),
            nics=nics,
            transport=transport,
            dns_fault_tolerance=tolerance,
            transport_running=service == "Running",
            queues=queues,
            replay=replay,
            faults=dict(faults),
            expect_rules=self.rules(expect.get("rules"), f"{key}.expect.rules"),
        )

    def listed_servers(self, servers: Sequence[str], key: str, world: DnsWorld) -> None:
        # Every server a host starts with must exist, so the lab runs a responder for it
        # (an address nobody listed would be silently unreachable: say so instead).
        for i, server in enumerate(servers):
            if not world.has_server(server):
                raise self.fail(
                    f"{key}.{i}",
                    f"DNS server {server} is not listed in dns.servers "
                    "(list it, with kind: unreachable if it should not answer)",
                )

    def nic(self, raw: Any, key: str, world: DnsWorld) -> NicSpec:
        entry = self.mapping(raw, key)
        self.only(
            entry,
            key,
            (
                "alias",
                "index",
                "ipv4",
                "mapi",
                "gateway",
                "dns_servers",
                "ipv6_dns_servers",
                "dhcp_dns_servers",
                "register",
                "use_suffix",
                "suffix",
                "description",
                "mac",
            ),
        )
        alias = self.text(self.require(entry, key, "alias"), f"{key}.alias")
        index = self.integer(self.require(entry, key, "index"), f"{key}.index", 1, 2**31 - 1)
        raw_ip = self.text(self.require(entry, key, "ipv4"), f"{key}.ipv4")
        try:
            interface = ipaddress.IPv4Interface(raw_ip.strip() if "/" in raw_ip else f"{raw_ip.strip()}/24")
        except ValueError:
            raise self.fail(f"{key}.ipv4", f"not an IPv4 address with optional /prefix: {raw_ip!r}") from None
        gateway = entry.get("gateway")
        dns_servers = self.ip_list(entry.get("dns_servers"), f"{key}.dns_servers", 4)
        self.listed_servers(dns_servers, f"{key}.dns_servers", world)
        mac = str(entry.get("mac") or f"00-15-5D-00-{(index >> 8) & 0xFF:02X}-{index & 0xFF:02X}").upper()
        if not re.match(r"^([0-9A-F]{2}-){5}[0-9A-F]{2}$", mac):
            raise self.fail(f"{key}.mac", f"not a MAC address like 00-15-5D-00-0A-02: {mac!r}")
        return NicSpec(
            alias=alias,
            index=index,
            ipv4=str(interface.ip),
            prefix_length=interface.network.prefixlen,
            mapi=self.boolean(entry.get("mapi", False), f"{key}.mapi"),
            gateway=None if gateway is None else self.ipv4(gateway, f"{key}.gateway"),
            dns_servers=dns_servers,
            ipv6_dns_servers=self.ip_list(entry.get("ipv6_dns_servers"), f"{key}.ipv6_dns_servers", 6),
            dhcp_dns_servers=self.ip_list(entry.get("dhcp_dns_servers"), f"{key}.dhcp_dns_servers", 4),
            register=self.boolean(entry.get("register", True), f"{key}.register"),
            use_suffix=self.boolean(entry.get("use_suffix", False), f"{key}.use_suffix"),
            suffix=self.text(entry.get("suffix", ""), f"{key}.suffix", empty=True),
            description=self.text(
                entry.get("description", "Microsoft Hyper-V Network Adapter"), f"{key}.description"
            ),
            mac=mac,
        )

    def transport(self, raw: Any, key: str, world: DnsWorld) -> TransportSpec:
        entry = self.mapping(raw, key)
        allowed = (
            "external_dns_adapter_enabled",
            "external_dns_servers",
            "external_dns_protocol_option",
            "internal_dns_adapter_enabled",
            "internal_dns_servers",
            "internal_dns_protocol_option",
        )
        self.only(entry, key, allowed)
        external = self.ip_list(entry.get("external_dns_servers"), f"{key}.external_dns_servers", None)
        internal = self.ip_list(entry.get("internal_dns_servers"), f"{key}.internal_dns_servers", None)
        self.listed_servers(external, f"{key}.external_dns_servers", world)
        self.listed_servers(internal, f"{key}.internal_dns_servers", world)
        return TransportSpec(
            external_dns_adapter_enabled=self.boolean(
                entry.get("external_dns_adapter_enabled", True), f"{key}.external_dns_adapter_enabled"
            ),
            external_dns_servers=external,
            external_dns_protocol_option=self.choice(
                entry.get("external_dns_protocol_option", "Any"),
                f"{key}.external_dns_protocol_option",
                PROTOCOL_OPTIONS,
            ),
            internal_dns_adapter_enabled=self.boolean(
                entry.get("internal_dns_adapter_enabled", True), f"{key}.internal_dns_adapter_enabled"
            ),
            internal_dns_servers=internal,
            internal_dns_protocol_option=self.choice(
                entry.get("internal_dns_protocol_option", "Any"),
                f"{key}.internal_dns_protocol_option",
                PROTOCOL_OPTIONS,
            ),
        )

    def queue(self, raw: Any, key: str, own_fqdn: str, ad_domain: str) -> QueueSpec:
        entry = self.mapping(raw, key)
        self.only(entry, key, ("next_hop", "delivery_type", "messages", "target"))
        next_hop = self.text(self.require(entry, key, "next_hop"), f"{key}.next_hop")
        delivery = self.choice(
            entry.get("delivery_type", "DnsConnectorDelivery"),
            f"{key}.delivery_type",
            EXTERNAL_DELIVERY_TYPES + INTERNAL_DELIVERY_TYPES,
        )
        messages = self.integer(self.require(entry, key, "messages"), f"{key}.messages", 0, 10**9)
        target: str | None = None
        if delivery in INTERNAL_DELIVERY_TYPES:
            target = str(entry.get("target") or next_hop).lower().rstrip(".")
            if not target.endswith("." + ad_domain):
                raise self.fail(
                    f"{key}.target",
                    f"an internal queue delivers to a server in {ad_domain!r}, got {target!r}",
                )
        elif "target" in entry:
            raise self.fail(
                f"{key}.target",
                "only internal queues have a target; external queues resolve next_hop through MX records",
            )
        else:
            next_hop = next_hop.lower().rstrip(".")
        return QueueSpec(next_hop=next_hop, delivery_type=delivery, messages=messages, target=target)

    def connector(self, raw: Any, key: str, hosts: Sequence[HostSpec]) -> ConnectorSpec:
        entry = self.mapping(raw, key)
        self.only(
            entry,
            key,
            (
                "name",
                "address_spaces",
                "source_transport_servers",
                "dns_routing_enabled",
                "smart_hosts",
                "use_external_dns_servers_enabled",
                "smart_host_auth_mechanism",
                "enabled",
                "port",
                "comment",
            ),
        )
        name = self.text(self.require(entry, key, "name"), f"{key}.name")
        spaces = self.sequence(self.require(entry, key, "address_spaces"), f"{key}.address_spaces")
        if not spaces:
            raise self.fail(f"{key}.address_spaces", "expected at least one address space")
        for i, space in enumerate(spaces):
            if parse_address_space(str(space)) is None:
                raise self.fail(
                    f"{key}.address_spaces.{i}", f"not an address space like 'SMTP:*;1': {space!r}"
                )
        known = {h.name.lower(): h.name for h in hosts} | {h.fqdn: h.name for h in hosts}
        sources: list[str] = []
        raw_sources = self.sequence(
            self.require(entry, key, "source_transport_servers"), f"{key}.source_transport_servers"
        )
        for i, server in enumerate(raw_sources):
            found = known.get(str(server).lower())
            if found is None:
                raise self.fail(
                    f"{key}.source_transport_servers.{i}", f"{server!r} is not a host of this scenario"
                )
            sources.append(found)
        dns_routing = self.boolean(entry.get("dns_routing_enabled", True), f"{key}.dns_routing_enabled")
        smart_hosts = tuple(
            self.text(s, f"{key}.smart_hosts.{i}")
            for i, s in enumerate(self.sequence(entry.get("smart_hosts") or [], f"{key}.smart_hosts"))
        )
        if dns_routing and smart_hosts:
            raise self.fail(f"{key}.smart_hosts", "smart hosts need dns_routing_enabled: false")
        if not dns_routing and not smart_hosts:
            raise self.fail(f"{key}.smart_hosts", "dns_routing_enabled: false needs at least one smart host")
        return ConnectorSpec(
            name=name,
            address_spaces=tuple(format_address_space(parse_address_space(str(s))) for s in spaces),  # type: ignore[arg-type]
            source_transport_servers=tuple(sources),
            dns_routing_enabled=dns_routing,
            smart_hosts=smart_hosts,
            use_external_dns_servers_enabled=self.boolean(
                entry.get("use_external_dns_servers_enabled", False),
                f"{key}.use_external_dns_servers_enabled",
            ),
            smart_host_auth_mechanism=self.choice(
                entry.get("smart_host_auth_mechanism", "None"),
                f"{key}.smart_host_auth_mechanism",
                AUTH_MECHANISMS,
            ),
            enabled=self.boolean(entry.get("enabled", True), f"{key}.enabled"),
            port=self.integer(entry.get("port", 25), f"{key}.port", 1, 65535),
            comment=self.text(entry.get("comment", ""), f"{key}.comment", empty=True),
        )


def _bad() -> Any:
    raise ValueError("not text")


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


# --- address spaces ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressSpace:
    type: str
    domain: str  # lower case; "*" or "*.example.com" or "example.com"
    cost: int

    def matches(self, domain: str) -> int | None:
        """How specifically this space matches ``domain``: None for no match, else a score
        (longer is more specific; an exact name beats a wildcard of the same length)."""
        if self.type.upper() != "SMTP":
            return None
        name = domain.lower().rstrip(".")
        if self.domain == "*":
            return 0
        if self.domain.startswith("*."):
            base = self.domain[2:]
            if name == base or name.endswith("." + base):
                return 2 * len(base)
            return None
        return 2 * len(self.domain) + 1 if name == self.domain else None


_SPACE = re.compile(r"^(?:(?P<type>[A-Za-z0-9]+):)?(?P<domain>[^;:\s]+)(?:;(?P<cost>\d{1,3}))?$")


def parse_address_space(text: str) -> AddressSpace | None:
    """``SMTP:contoso.com;1``, ``contoso.com;2``, ``SMTP:*``, ``*.contoso.com`` (cost 1-100)."""
    match = _SPACE.match(text.strip())
    if not match:
        return None
    cost = int(match.group("cost") or 1)
    domain = match.group("domain").lower().rstrip(".")
    if not 1 <= cost <= 100 or not re.match(r"^(\*|(\*\.)?[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?)$", domain):
        return None
    return AddressSpace((match.group("type") or "SMTP").upper(), domain, cost)


def format_address_space(space: AddressSpace) -> str:
    return f"{space.type}:{space.domain};{space.cost}"


# --- fleets for benchmarks -----------------------------------------------------------------


def scale_fleet(scenario: Scenario, count: int) -> Scenario:
    """An ``count``-host fleet cloned round-robin from the scenario's hosts.

    Clones get unique names (``EX01-2``), FQDNs in the same AD domain and NIC addresses from
    10.200.0.0/16, so they never collide with the scenario's own addresses. A connector whose
    source servers include a template host also lists that host's clones.
    """
    if count < 1:
        raise ScenarioError(str(scenario.source), f"hosts must be at least 1, got {count}", key="hosts")
    templates = scenario.hosts
    used = {nic.ipv4 for host in templates for nic in host.nics}
    pool = (str(ip) for ip in ipaddress.IPv4Network("10.200.0.0/16").hosts() if str(ip) not in used)
    hosts: list[HostSpec] = []
    clones_of: dict[str, list[str]] = {t.name: [] for t in templates}
    for i in range(count):
        template = templates[i % len(templates)]
        if i < len(templates):
            hosts.append(template)
            continue
        generation = i // len(templates) + 1
        name = f"{template.name[:9]}-{generation}"
        fqdn = f"{name.lower()}.{scenario.ad_domain}"
        nics = tuple(replace(nic, ipv4=next(pool)) for nic in template.nics)
        # A queue that delivers to the template itself delivers to the clone itself.
        queues = tuple(replace(q, target=fqdn) if q.target == template.fqdn else q for q in template.queues)
        hosts.append(replace(template, name=name, fqdn=fqdn, nics=nics, queues=queues))
        clones_of[template.name].append(name)
    names = [h.name.lower() for h in hosts]
    if len(set(names)) != len(names):
        raise ScenarioError(
            str(scenario.source), "cloned host names collide; shorten the template names", key="hosts"
        )
    connectors = tuple(
        replace(
            c,
            source_transport_servers=tuple(
                s
                for server in c.source_transport_servers
                if server.lower() in names
                for s in (server, *clones_of.get(server, ()))
            ),
        )
        for c in scenario.send_connectors
    )
    return replace(scenario, hosts=tuple(hosts), send_connectors=connectors)
