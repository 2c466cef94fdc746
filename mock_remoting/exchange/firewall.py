"""The host's Windows Firewall, as far as it decides the host's own DNS traffic.

A scenario declares a host's rules as Get-NetFirewallRule and its filters show them
(``firewall_rules`` in ``mock_remoting/README.md``). They apply to what the host itself sends:
its Resolve-DnsName queries (``cmdlets/resolve.py``) and transport's lookups
(``mailflow.py``). exfix's orchestrator-side probes do not go through the host, so they reach
the same responders whatever the host's rules say: that contrast is what
``host-firewall-blocks-dns`` reads.

Which rule wins: "If conflicting rules match the same network traffic, the actions determine
the order of precedence. Allow-bypass rules take precedence over block rules, and block rules
take precedence over allow rules" (MS-FASP 2.2.34 FW_RULE_ACTION,
https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-fasp/702e3c23-c9d8-43db-8380-b4c670dd7f7d).
Allow-bypass needs an authenticated (IPsec) rule, which the lab has none of, so an explicit
allow rule added next to a matching block rule changes nothing: traffic a block rule matches
stays blocked until that rule is disabled or removed. Traffic no rule matches gets the
profile's default outbound action (``firewall_profiles`` in ``mock_remoting/README.md``):
"Block: Blocks outbound network traffic that does not match an outbound rule. Allow: Allows
all outbound network traffic, whether or not it matches an outbound rule", and NotConfigured
(what a computer's own store shows when nobody set it) is the computer's default, Allow
(Set-NetFirewallProfile docs, -DefaultOutboundAction). So on a hardened host whose profile
says Block, DNS goes out only where an enabled allow rule matches it and no block rule does.
A profile that is off (Enabled False) filters nothing.

The host's network is its domain network (an Exchange server is domain-joined), so a rule
applies when its Profile is Any or includes Domain, and the Domain profile's default decides.

DNS goes over UDP first; TCP only for a truncated answer or with -TcpOnly (RFC 1035 4.2, RFC
7766), so a host whose UDP 53 is blocked times out even where TCP 53 is open.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from agent.model.document import each, key, text

DNS_PORT = 53
PROFILES = ("Any", "Domain", "Private", "Public")
HOST_PROFILE = "Domain"

Direction = Literal["Inbound", "Outbound"]
Action = Literal["Allow", "Block"]
DefaultAction = Literal["NotConfigured", "Allow", "Block"]
ProfileName = Literal["Domain", "Private", "Public"]
Protocol = Literal["UDP", "TCP", "Any"]
_CHOICE = key(ignore_case=True)
_TEXT = text(limit=None, printable=False)


def _profiles(value: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for item in value:
        found = next((p for p in PROFILES if p.lower() == item.strip().lower()), None)
        if found is None:
            raise ValueError(f"{item!r} is not a firewall profile ({', '.join(PROFILES)})")
        out.append(found)
    return tuple(dict.fromkeys(out)) or ("Any",)


def _port(item: str) -> str:
    value = item.strip()
    if value.lower() == "any":
        return "Any"
    low, sep, high = value.partition("-")
    try:
        numbers = [int(low)] + ([int(high)] if sep else [])
    except ValueError:
        raise ValueError(f"not a port, a range like 50-60, or Any: {item!r}") from None
    if not all(0 <= n <= 65535 for n in numbers) or (sep and numbers[0] > numbers[1]):
        raise ValueError(f"not a port, a range like 50-60, or Any: {item!r}")
    return value


def _remote_address(item: str) -> str:
    value = item.strip()
    if value.lower() in ("any", "dns"):
        return value.capitalize() if value.lower() == "any" else "DNS"
    low, sep, high = value.partition("-")
    try:
        if sep:
            ipaddress.ip_address(low)
            ipaddress.ip_address(high)
        else:
            ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"not an address, subnet, range, Any or DNS: {item!r}") from None
    return value


@dataclass(frozen=True, slots=True)
class FirewallRuleSpec:
    """One rule at load; also the shape of a ``firewall_rules`` entry. Names and values as
    Get-NetFirewallRule (Name, DisplayName, Direction, Action, Enabled, Profile) and its
    Get-NetFirewallPortFilter (Protocol, RemotePort) / Get-NetFirewallAddressFilter
    (RemoteAddress) show them."""

    name: str = field(metadata=key(check=_TEXT))
    display_name: str = field(default="", metadata=key(check=_TEXT))
    direction: Direction = field(default="Outbound", metadata=_CHOICE)
    action: Action = field(default="Block", metadata=_CHOICE)
    enabled: bool = True
    profile: tuple[str, ...] = field(default=("Any",), metadata=key(check=_profiles))
    protocol: Protocol = field(default="UDP", metadata=_CHOICE)
    remote_port: tuple[str, ...] = field(default=("53",), metadata=key(check=each(_port)))
    remote_address: tuple[str, ...] = field(default=("Any",), metadata=key(check=each(_remote_address)))
    # The GPO the rule comes from (PolicyStoreSourceType GroupPolicy); None: a local rule.
    group_policy: str | None = field(default=None, metadata=key(check=_TEXT))


@dataclass(frozen=True, slots=True)
class FirewallProfileSpec:
    """One ``firewall_profiles`` entry: a profile as Get-NetFirewallProfile shows it. A
    profile the scenario does not list is on, with DefaultOutboundAction NotConfigured."""

    name: ProfileName = field(metadata=_CHOICE)
    default_outbound_action: DefaultAction = field(default="NotConfigured", metadata=_CHOICE)
    enabled: bool = True
    # AllowLocalFirewallRules: false (a GPO's setting) ignores every rule not from group policy.
    allow_local_firewall_rules: bool = True


@dataclass
class FirewallProfile:
    """A profile as the host has it now."""

    name: str
    enabled: bool = True
    default_outbound_action: str = "NotConfigured"
    allow_local_rules: bool = True

    @property
    def blocks_by_default(self) -> bool:
        # NotConfigured is the computer's default, Allow (module docstring).
        return self.enabled and self.default_outbound_action == "Block"


def profiles(specs: Iterable[FirewallProfileSpec]) -> list[FirewallProfile]:
    """Every profile, in Get-NetFirewallProfile's order, as the scenario sets them."""
    given: dict[str, FirewallProfileSpec] = {s.name: s for s in specs}
    out = []
    for name in PROFILES[1:]:
        spec = given.get(name)
        out.append(
            FirewallProfile(name)
            if spec is None
            else FirewallProfile(
                name, spec.enabled, spec.default_outbound_action, spec.allow_local_firewall_rules
            )
        )
    return out


@dataclass
class FirewallRule:
    """A rule as the host has it now (New-/Enable-/Disable-/Remove-NetFirewallRule change them)."""

    name: str
    display_name: str
    direction: str
    action: str
    enabled: bool
    profile: tuple[str, ...]
    protocol: str
    remote_port: tuple[str, ...]
    remote_address: tuple[str, ...]
    group_policy: str | None = None

    @classmethod
    def from_spec(cls, spec: FirewallRuleSpec) -> FirewallRule:
        return cls(
            spec.name,
            spec.display_name or spec.name,
            spec.direction,
            spec.action,
            spec.enabled,
            spec.profile,
            spec.protocol,
            spec.remote_port,
            spec.remote_address,
            spec.group_policy,
        )

    def applies(self, protocol: str, port: int, address: str, dns_servers: Sequence[str]) -> bool:
        """Whether this rule matches an outbound packet to ``address``:``port`` over ``protocol``."""
        if not self.enabled or self.direction != "Outbound":
            return False
        if "Any" not in self.profile and HOST_PROFILE not in self.profile:
            return False
        if self.protocol != "Any" and self.protocol.upper() != protocol.upper():
            return False
        if not any(_port_matches(p, port) for p in self.remote_port):
            return False
        return any(_address_matches(a, address, dns_servers) for a in self.remote_address)


def _port_matches(spec: str, port: int) -> bool:
    if spec == "Any":
        return True
    low, sep, high = spec.partition("-")
    return int(low) <= port <= int(high) if sep else int(low) == port


def _address_matches(spec: str, address: str, dns_servers: Sequence[str]) -> bool:
    if spec == "Any":
        return True
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if spec == "DNS":  # the keyword: the DNS servers the host's adapters are configured with
        return any(_same(ip, server) for server in dns_servers)
    low, sep, high = spec.partition("-")
    try:
        if sep:
            first, last = ipaddress.ip_address(low), ipaddress.ip_address(high)
            return ip.version == first.version and first <= ip <= last  # type: ignore[operator]
        network = ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False
    return ip.version == network.version and ip in network


def _same(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, other: str) -> bool:
    try:
        return ip == ipaddress.ip_address(other.strip())
    except ValueError:
        return False


def verdict(
    rules: Iterable[FirewallRule],
    protocol: str,
    address: str,
    dns_servers: Sequence[str],
    port: int = DNS_PORT,
    profile: FirewallProfile | None = None,
) -> tuple[bool, tuple[FirewallRule, ...]]:
    """(allowed, the block rules that match). With the host's ``profile`` off, nothing is
    filtered. A matching block rule wins over any allow rule (module docstring, MS-FASP
    2.2.34); with no block rule matching, a matching allow rule lets the packet out, and with
    neither the profile's default outbound action decides (None: the default, Allow)."""
    if profile is not None and not profile.enabled:
        return True, ()
    rules = tuple(rules)
    if profile is not None and not profile.allow_local_rules:
        # "The firewall rules defined by the local administrator are ignored, and only firewall
        # rules from GPOs are applied" (Set-NetFirewallProfile docs, -AllowLocalFirewallRules).
        rules = tuple(r for r in rules if r.group_policy)
    blocking = tuple(
        r for r in rules if r.action == "Block" and r.applies(protocol, port, address, dns_servers)
    )
    if blocking:
        return False, blocking
    if profile is None or not profile.blocks_by_default:
        return True, ()
    allowed = any(r.action == "Allow" and r.applies(protocol, port, address, dns_servers) for r in rules)
    return allowed, ()


def dns_blocked(
    rules: Iterable[FirewallRule],
    server: str,
    dns_servers: Sequence[str],
    *,
    tcp_only: bool = False,
    profile: FirewallProfile | None = None,
) -> bool:
    """Whether the host's DNS query to ``server`` is dropped: UDP is the first (for -TcpOnly,
    the only) transport, so a blocked UDP 53 loses the query (module docstring)."""
    allowed, _ = verdict(tuple(rules), "TCP" if tcp_only else "UDP", server, dns_servers, profile=profile)
    return not allowed
