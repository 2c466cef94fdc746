"""The NetSecurity module's output: MSFT_NetFirewallRule and its port and address filters, and
MSFT_NetFirewallProfile.

The rule's Direction, Action, Enabled and Profile go as the enums the module's cmdletization
types give them (Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetSecurity.*: type name,
ToString and value), as `Get-NetFirewallRule | Export-Clixml` writes them; Enabled as its text. A filter's
InstanceID is its rule's: that is how Get-NetFirewallPortFilter -All rows are joined to the
rules (Get-NetFirewallPortFilter docs, -AssociatedNetFirewallRule).
"""

from __future__ import annotations

from typing import Any

from psrpcore.types import PSEnumBase, PSFlagBase, PSObject, PSType, PSUInt16

from mock_remoting.exchange.firewall import FirewallProfile, FirewallRule
from mock_remoting.exchange.objects.dotnet import dotnet, string_array

_GENERATED = "Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetSecurity"


@PSType([f"{_GENERATED}.Direction"], rehydrate=False)
class Direction(PSEnumBase, base_type=PSUInt16):
    Inbound = 1
    Outbound = 2


@PSType([f"{_GENERATED}.Action"], rehydrate=False)
class Action(PSEnumBase, base_type=PSUInt16):
    NotConfigured = 0
    Allow = 2
    Block = 4


@PSType([f"{_GENERATED}.Profile"], rehydrate=False)
class Profile(PSFlagBase, base_type=PSUInt16):
    Any = 0
    Domain = 1
    Private = 2
    Public = 4


def _cim(cls: str) -> list[str]:
    return [
        f"Microsoft.Management.Infrastructure.CimInstance#root/standardcimv2/{cls}",
        f"Microsoft.Management.Infrastructure.CimInstance#{cls}",
        "Microsoft.Management.Infrastructure.CimInstance",
        "System.Object",
    ]


RULE_TYPES = _cim("MSFT_NetFirewallRule")
PORT_FILTER_TYPES = _cim("MSFT_NetProtocolPortFilter")
ADDRESS_FILTER_TYPES = _cim("MSFT_NetAddressFilter")
PROFILE_TYPES = _cim("MSFT_NetFirewallProfile")


def _profile(names: tuple[str, ...]) -> Any:
    if "Any" in names:
        return Profile.Any
    value = Profile.Any
    for name in names:
        value |= getattr(Profile, name)
    return value


def firewall_rule(rule: FirewallRule) -> PSObject:
    props = [
        ("Name", rule.name),
        ("ID", rule.name),
        ("InstanceID", rule.name),
        ("ElementName", rule.display_name),
        ("DisplayName", rule.display_name),
        ("Description", ""),
        ("Group", None),
        ("DisplayGroup", None),
        # GpoBoolean's members are True and False, names no Python enum can have: the lab sends
        # the text the enum shows, which is also how -OutputFormat XML captures carry it.
        ("Enabled", "True" if rule.enabled else "False"),
        ("Profile", _profile(rule.profile)),
        ("Platform", string_array([])),
        ("Direction", getattr(Direction, rule.direction)),
        ("Action", getattr(Action, rule.action)),
        ("EdgeTraversalPolicy", "Block"),
        ("LooseSourceMapping", False),
        ("LocalOnlyMapping", False),
        ("Owner", None),
        ("PrimaryStatus", "OK"),
        ("Status", "The rule was parsed successfully from the store. (65536)"),
        ("EnforcementStatus", "NotApplicable"),
        ("PolicyStoreSource", rule.group_policy or "PersistentStore"),
        ("PolicyStoreSourceType", "GroupPolicy" if rule.group_policy else "Local"),
    ]
    return dotnet(RULE_TYPES, props, to_string=f'MSFT_NetFirewallRule (Name = "{rule.name}")')


def port_filter(rule: FirewallRule) -> PSObject:
    props = [
        ("InstanceID", rule.name),
        ("Protocol", rule.protocol),
        ("LocalPort", "Any"),
        ("RemotePort", rule.remote_port[0] if len(rule.remote_port) == 1 else string_array(rule.remote_port)),
        ("IcmpType", "Any"),
        ("DynamicTarget", "Any"),
    ]
    return dotnet(PORT_FILTER_TYPES, props, to_string="MSFT_NetProtocolPortFilter")


def address_filter(rule: FirewallRule) -> PSObject:
    remote = rule.remote_address
    props = [
        ("InstanceID", rule.name),
        ("LocalAddress", "Any"),
        ("RemoteAddress", remote[0] if len(remote) == 1 else string_array(remote)),
    ]
    return dotnet(ADDRESS_FILTER_TYPES, props, to_string="MSFT_NetAddressFilter")


def firewall_profile(profile: FirewallProfile) -> PSObject:
    """A profile as Get-NetFirewallProfile shows it for the computer's own store: the values an
    administrator did not set are NotConfigured (GpoBoolean and Action sent as their text and
    enum, like the rule's)."""
    props = [
        ("Name", profile.name),
        ("InstanceID", f"MSFT|FW|FirewallProfile|{profile.name}"),
        ("Profile", getattr(Profile, profile.name)),
        ("Enabled", "True" if profile.enabled else "False"),
        ("DefaultInboundAction", Action.NotConfigured),
        ("DefaultOutboundAction", getattr(Action, profile.default_outbound_action)),
        ("AllowInboundRules", "NotConfigured"),
        ("AllowLocalFirewallRules", "NotConfigured" if profile.allow_local_rules else "False"),
        ("AllowLocalIPsecRules", "NotConfigured"),
        ("AllowUserApps", "NotConfigured"),
        ("AllowUserPorts", "NotConfigured"),
        ("AllowUnicastResponseToMulticast", "NotConfigured"),
        ("NotifyOnListen", "False"),
        ("LogFileName", "%systemroot%\\system32\\LogFiles\\Firewall\\pfirewall.log"),
        ("LogMaxSizeKilobytes", 4096),
        ("LogAllowed", "False"),
        ("LogBlocked", "False"),
        ("LogIgnored", "NotConfigured"),
        ("DisabledInterfaceAliases", string_array(["NotConfigured"])),
    ]
    return dotnet(PROFILE_TYPES, props, to_string=f'MSFT_NetFirewallProfile (Name = "{profile.name}")')
