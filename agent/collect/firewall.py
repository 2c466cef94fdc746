"""The host's outbound Windows Firewall rules that can touch DNS, and its profiles (the
``firewall`` area).

Three reads of the NetSecurity module for the rules, joined by InstanceID (a filter carries its
rule's), and one for the profiles:

- ``Get-NetFirewallRule -Direction Outbound -Enabled True``: Name, DisplayName, Direction,
  Action, Enabled, Profile;
- ``Get-NetFirewallPortFilter -All``: Protocol, RemotePort;
- ``Get-NetFirewallAddressFilter -All``: RemoteAddress;
- ``Get-NetFirewallProfile -All``: Name, Enabled, DefaultOutboundAction, which decides the
  outbound traffic no rule matches (a hardened server has Block there, and then only what an
  allow rule matches goes out), and AllowLocalFirewallRules (False: local rules are ignored).

(Get-NetFirewallRule, Get-NetFirewallPortFilter and Get-NetFirewallAddressFilter docs,
learn.microsoft.com/powershell/module/netsecurity.) Reading the filters with -All instead of
piping each rule keeps this to three calls on a host with thousands of rules.

``-PolicyStore ActiveStore`` reads the rules in force, group policy's included (the default,
PersistentStore, holds only the local ones: Get-NetFirewallRule docs, -PolicyStore); each
rule's PolicyStoreSourceType says where it comes from.

Only rules whose remote port can be 53 are kept: the rest cannot decide DNS. Direction,
Action, Enabled and Profile are the module's generated enums: over remoting they come as their
names ("Outbound", "Block", "True", "Domain, Private"), in some captures as the CIM numbers
(Direction 1 Inbound / 2 Outbound; Action 2 Allow / 3 AllowBypass / 4 Block; Enabled 1 True /
2 False; Profile flags 1 Domain, 2 Private, 4 Public, 0 Any: MSFT_NetFirewallRule class docs).
A profile's Enabled is a GpoBoolean (0 False, 1 True, 2 NotConfigured) and its
DefaultOutboundAction the same Action enum, 0 NotConfigured; NotConfigured keeps the
computer's default (Set-NetFirewallProfile docs: Enabled True, DefaultOutboundAction Allow),
which is what the model reads it as (agent/model/facts.py FirewallProfileFacts).
"""

from __future__ import annotations

from typing import Any

from agent.collect import _values as v
from agent.model.command import SWITCH, CmdletCall, Endpoint
from agent.model.facts import DNS_PORT, FirewallFacts, FirewallProfileFacts, FirewallRuleFacts
from agent.model.remote import RemoteObject

_DIRECTIONS = {1: "Inbound", 2: "Outbound"}
_ACTIONS = {0: "NotConfigured", 2: "Allow", 3: "AllowBypass", 4: "Block"}
_PROFILE_FLAGS = ((1, "Domain"), (2, "Private"), (4, "Public"))
_PROTOCOLS = {"6": "TCP", "17": "UDP"}


_ACTIVE = ("PolicyStore", "ActiveStore")


def calls() -> tuple[CmdletCall, ...]:
    return (
        CmdletCall(
            Endpoint.OS, "Get-NetFirewallRule", (("Direction", "Outbound"), ("Enabled", "True"), _ACTIVE)
        ),
        CmdletCall(Endpoint.OS, "Get-NetFirewallPortFilter", (("All", SWITCH), _ACTIVE)),
        CmdletCall(Endpoint.OS, "Get-NetFirewallAddressFilter", (("All", SWITCH), _ACTIVE)),
        CmdletCall(Endpoint.OS, "Get-NetFirewallProfile", (("All", SWITCH), _ACTIVE)),
    )


def _named(value: Any, names: dict[int, str]) -> str:
    number = v.integer(value)
    if number is not None:
        return names.get(number, str(number))
    return v.text(value).strip()


def _enabled(value: Any) -> bool:
    number = v.integer(value)
    if number is not None and not isinstance(value, bool):
        return number == 1  # GpoBoolean: 1 True, 2 False
    return v.boolean(value, False) is True


_GPO_BOOLEANS = {0: False, 1: True}  # 2 NotConfigured: the default


def _profile_enabled(value: Any) -> bool:
    """A profile's GpoBoolean (Enabled, AllowLocalFirewallRules); NotConfigured or unreadable is
    the computer's default for both, True (Set-NetFirewallProfile docs)."""
    number = v.integer(value)
    if number is not None and not isinstance(value, bool):
        return _GPO_BOOLEANS.get(number, True)
    text = v.text(value).strip().lower()
    return text != "false" and value is not False


def parse_profiles(objects: tuple[RemoteObject, ...]) -> tuple[FirewallProfileFacts, ...]:
    """Get-NetFirewallProfile's rows: a profile without a Name is skipped."""
    out: list[FirewallProfileFacts] = []
    for obj in v.objects(objects):
        name = v.text(obj.get("Name")).strip()
        if not name:
            continue
        action = _named(obj.get("DefaultOutboundAction"), _ACTIONS) or "NotConfigured"
        local = _profile_enabled(obj.get("AllowLocalFirewallRules"))
        out.append(FirewallProfileFacts(name, _profile_enabled(obj.get("Enabled")), action, local))
    return tuple(out)


def _profile(value: Any) -> tuple[str, ...]:
    number = v.integer(value)
    if number is not None:
        found = tuple(name for bit, name in _PROFILE_FLAGS if number & bit)
        return found or ("Any",)
    words = tuple(w.strip() for w in v.text(value).split(",") if w.strip())
    return words or ("Any",)


def _port_can_be_dns(ports: tuple[str, ...]) -> bool:
    for port in ports:
        text = port.strip()
        if text.lower() == "any":
            return True
        low, sep, high = text.partition("-")
        try:
            if (int(low) <= DNS_PORT <= int(high)) if sep else int(low) == DNS_PORT:
                return True
        except ValueError:
            continue
    return False


def _by_instance(objects: tuple[RemoteObject, ...]) -> dict[str, RemoteObject]:
    out: dict[str, RemoteObject] = {}
    for obj in v.objects(objects):
        instance = v.text(obj.get("InstanceID")).strip()
        if instance:
            out.setdefault(instance.lower(), obj)
    return out


def parse(
    rules: tuple[RemoteObject, ...],
    port_filters: tuple[RemoteObject, ...],
    address_filters: tuple[RemoteObject, ...],
    profiles: tuple[RemoteObject, ...] | None = None,
) -> FirewallFacts:
    """The enabled outbound rules whose remote port can be 53, and the profiles (None: not
    read). A rule without a port filter matches any port (the filter's defaults are Any), as
    does one without an address filter."""
    ports = _by_instance(port_filters)
    addresses = _by_instance(address_filters)
    out: list[FirewallRuleFacts] = []
    for obj in v.objects(rules):
        name = v.text(obj.get("Name")).strip()
        if not name:
            continue
        instance = (v.text(obj.get("InstanceID")).strip() or name).lower()
        port = ports.get(instance)
        address = addresses.get(instance)
        protocol = v.text(port.get("Protocol")).strip() if port is not None else "Any"
        remote_port = v.texts(port.get("RemotePort"), split=True) if port is not None else ()
        remote_address = v.texts(address.get("RemoteAddress"), split=True) if address is not None else ()
        fact = FirewallRuleFacts(
            name=name,
            display_name=v.text(obj.get("DisplayName")).strip() or name,
            direction=_named(obj.get("Direction"), _DIRECTIONS),
            action=_named(obj.get("Action"), _ACTIONS),
            enabled=_enabled(obj.get("Enabled")),
            profile=_profile(obj.get("Profile")),
            protocol=_PROTOCOLS.get(protocol, protocol or "Any"),
            remote_port=remote_port or ("Any",),
            remote_address=remote_address or ("Any",),
            policy_store_source_type=v.text(obj.get("PolicyStoreSourceType")).strip() or "Local",
            policy_store_source=v.text(obj.get("PolicyStoreSource")).strip(),
        )
        if fact.enabled and fact.direction.lower() == "outbound" and _port_can_be_dns(fact.remote_port):
            out.append(fact)
    return FirewallFacts(tuple(out), None if profiles is None else parse_profiles(profiles))
