"""The OS endpoint's cmdlet output: the CIM instances of the NIC cmdlets (MSFT_DNSClient,
MSFT_DNSClientServerAddress, NetIPConfiguration and its parts), ServiceController, the
Exchange Setup registry key and Resolve-DnsName's DnsRecord objects.

CIM instances keep the CIM types of their numeric fields (AddressFamily is a UInt16: 2 or 23),
and the OS enums go as real enums (type names, ToString and value).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psrpcore.types import (
    PSByte,
    PSCustomObject,
    PSEnumBase,
    PSInt,
    PSList,
    PSObject,
    PSType,
    PSUInt,
    PSUInt16,
    PSUInt64,
)

from mock_remoting.dns.world import DnsRecord
from mock_remoting.exchange.objects.dotnet import dotnet, string_array, typed_list
from mock_remoting.exchange.state import CACHE_TYPE, CachedAnswer, HostState, Nic

# --- psrpcore enums for the OS objects (serialized as real enums: TN + ToString + value) -----


@PSType(["System.ServiceProcess.ServiceControllerStatus"], rehydrate=False)
class ServiceControllerStatus(PSEnumBase):
    Stopped = 1
    StartPending = 2
    StopPending = 3
    Running = 4


@PSType(["System.ServiceProcess.ServiceStartMode"], rehydrate=False)
class ServiceStartMode(PSEnumBase):
    Automatic = 2
    Manual = 3
    Disabled = 4


@PSType(["Microsoft.DnsClient.Commands.RecordType"], rehydrate=False)
class RecordType(PSEnumBase, base_type=PSUInt16):
    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    MX = 15
    TXT = 16
    AAAA = 28
    SRV = 33


@PSType(["Microsoft.DnsClient.Commands.DNSCharset"], rehydrate=False)
class DnsCharset(PSEnumBase):
    Unicode = 0
    Utf8 = 1
    Ansi = 2


@PSType(["Microsoft.DnsClient.Commands.DnsSection"], rehydrate=False)
class DnsSection(PSEnumBase):
    Question = 0
    Answer = 1
    Authority = 2
    Additional = 3


def cim_array(values: Iterable[Any]) -> PSList:
    return typed_list(
        ["Microsoft.Management.Infrastructure.CimInstance[]", "System.Array", "System.Object"], values
    )


# --- OS: CIM instances -----------------------------------------------------------------------


def _cim_types(path_namespace: str, chain: Sequence[str]) -> list[str]:
    """CIM type names as PowerShell builds them: the class (namespace as the class reports it),
    its ancestors under ROOT/StandardCimv2, then the same chain without namespace."""
    first, *rest = chain
    names = [f"Microsoft.Management.Infrastructure.CimInstance#{path_namespace}/{first}"]
    names += [f"Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/{c}" for c in rest]
    names += [f"Microsoft.Management.Infrastructure.CimInstance#{c}" for c in chain]
    names += ["Microsoft.Management.Infrastructure.CimInstance", "System.Object"]
    return names


# Ancestor chains of the CIM classes, as the type names of the real captures list them.
_LOGICAL_ELEMENT = (
    "CIM_EnabledLogicalElement",
    "CIM_LogicalElement",
    "CIM_ManagedSystemElement",
    "CIM_ManagedElement",
)
_SERVICE_ACCESS_POINT = ("CIM_ServiceAccessPoint", *_LOGICAL_ELEMENT)
_IP_PROTOCOL_ENDPOINT = ("CIM_IPProtocolEndpoint", "CIM_ProtocolEndpoint", *_SERVICE_ACCESS_POINT)

DNS_CLIENT_TYPES = _cim_types(
    "ROOT/StandardCimv2",
    ["MSFT_DNSClient", "CIM_DNSProtocolEndpoint", "CIM_ProtocolEndpoint", *_SERVICE_ACCESS_POINT],
)
DNS_SERVER_ADDRESS_TYPES = _cim_types(
    "root/StandardCimv2",
    ["MSFT_DNSClientServerAddress", "CIM_RemoteServiceAccessPoint", *_SERVICE_ACCESS_POINT],
)
NET_ADAPTER_TYPES = _cim_types(
    "root/StandardCimv2",
    ["MSFT_NetAdapter", "CIM_NetworkPort", "CIM_LogicalPort", "CIM_LogicalDevice", *_LOGICAL_ELEMENT],
)
DNS_CLIENT_CACHE_TYPES = _cim_types("ROOT/StandardCimv2", ["MSFT_DNSClientCache", "CIM_ManagedElement"])
NET_IP_INTERFACE_TYPES = _cim_types("root/StandardCimv2", ["MSFT_NetIPInterface", *_IP_PROTOCOL_ENDPOINT])
NET_IP_ADDRESS_TYPES = _cim_types("root/StandardCimv2", ["MSFT_NetIPAddress", *_IP_PROTOCOL_ENDPOINT])
NET_ROUTE_TYPES = _cim_types(
    "root/StandardCimv2", ["MSFT_NetRoute", "CIM_NextHopRoute", "CIM_ManagedElement"]
)
NET_PROFILE_TYPES = _cim_types(
    "root/StandardCimv2",
    ["MSFT_NetConnectionProfile", "MSFT_NetSettingData", "CIM_SettingData", "CIM_ManagedElement"],
)


# CIM_EnabledLogicalElement's constants (EnabledDefault 2 = Enabled, RequestedState and
# TransitioningToState 12 = Not Applicable): one instance each, shared by every answer (psrpcore
# primitives are written by value, and each construction copies the type's metadata).
_ENABLED = PSUInt16(2)
_NOT_APPLICABLE = PSUInt16(12)


def _managed_element(name: str | None, element_name: str | None = None) -> list[tuple[str, Any]]:
    return [
        ("Caption", None),
        ("Description", None),
        ("ElementName", element_name),
        ("InstanceID", None),
        ("CommunicationStatus", None),
        ("DetailedStatus", None),
        ("HealthState", None),
        ("InstallDate", None),
        ("Name", name),
        ("OperatingStatus", None),
        ("OperationalStatus", None),
        ("PrimaryStatus", None),
        ("Status", None),
        ("StatusDescriptions", None),
        ("AvailableRequestedStates", None),
        ("EnabledDefault", _ENABLED),
        ("EnabledState", None),
        ("OtherEnabledState", None),
        ("RequestedState", _NOT_APPLICABLE),
        ("TimeOfLastStateChange", None),
        ("TransitioningToState", _NOT_APPLICABLE),
        ("CreationClassName", ""),
        ("SystemCreationClassName", ""),
        ("SystemName", ""),
    ]


def dns_client(host: HostState, nic: Nic) -> PSObject:
    props = _managed_element(str(nic.index), "")
    props += [
        ("NameFormat", None),
        ("OtherTypeDescription", None),
        ("ProtocolIFType", None),
        ("ProtocolType", None),
        ("DHCPOptionsToUse", None),
        ("Hostname", host.name),
        ("ConnectionSpecificSuffix", nic.suffix),
        ("ConnectionSpecificSuffixSearchList", string_array([])),
        ("InterfaceAlias", nic.alias),
        ("InterfaceIndex", PSUInt(nic.index)),
        ("RegisterThisConnectionsAddress", nic.register),
        ("UseSuffixWhenRegistering", nic.use_suffix),
        ("PSComputerName", None),
    ]
    return dotnet(
        DNS_CLIENT_TYPES,
        props,
        to_string=f'MSFT_DNSClient (Name = "{nic.index}", CreationClassName '
        '= "", SystemCreationClassName = "", SystemName = "")',
    )


def dns_server_address(nic: Nic, family: int) -> PSObject:
    servers = nic.dns_servers if family == 2 else nic.shown_ipv6_dns_servers
    props = _managed_element(str(nic.index), nic.alias)
    props = [
        (k, PSUInt16(5) if k == "EnabledState" else (str(family) if k == "SystemName" else v))
        for k, v in props
    ]
    props += [
        ("AccessContext", PSUInt16(0)),
        ("AccessInfo", None),
        ("InfoFormat", None),
        ("OtherAccessContext", None),
        ("OtherInfoFormatDescription", None),
        ("AddressFamily", PSUInt16(family)),
        ("InterfaceAlias", nic.alias),
        ("InterfaceIndex", PSUInt(nic.index)),
        ("ServerAddresses", string_array(servers)),
        ("PSComputerName", None),
    ]
    return dotnet(
        DNS_SERVER_ADDRESS_TYPES,
        props,
        to_string=f'MSFT_DNSClientServerAddress (Name = "{nic.index}", CreationClassName = "", '
        f'SystemCreationClassName = "", SystemName = "{family}")',
    )


def _device_id(nic: Nic) -> str:
    return "{" + str(nic.guid).upper() + "}"


def _net_adapter(host: HostState, nic: Nic) -> PSObject:
    mac = nic.mac.replace("-", "")
    props = [
        ("InstanceID", _device_id(nic)),
        ("Name", nic.alias),
        ("EnabledDefault", PSUInt16(2)),
        ("EnabledState", PSUInt16(5)),
        ("CreationClassName", "MSFT_NetAdapter"),
        ("DeviceID", _device_id(nic)),
        ("SystemCreationClassName", "CIM_NetworkPort"),
        ("SystemName", host.fqdn),
        ("Speed", PSUInt64(10_000_000_000)),
        ("ActiveMaximumTransmissionUnit", PSUInt64(1500)),
        ("NetworkAddresses", string_array([mac])),
        ("PermanentAddress", mac),
        ("DriverDescription", nic.description),
        ("InterfaceIndex", PSUInt(nic.index)),
        ("InterfaceAlias", nic.alias),
        ("InterfaceDescription", nic.description),
        ("InterfaceGuid", _device_id(nic)),
        ("MacAddress", nic.mac),
        ("Status", "Up"),
        ("MediaConnectionState", PSUInt(1)),
        ("ifIndex", PSUInt(nic.index)),
    ]
    return dotnet(
        NET_ADAPTER_TYPES,
        props,
        to_string=f'MSFT_NetAdapter (CreationClassName = "MSFT_NetAdapter", DeviceID = '
        f'"{_device_id(nic)}", SystemCreationClassName = "CIM_NetworkPort", '
        f'SystemName = "{host.fqdn}")',
    )


def _ip_address(nic: Nic) -> PSObject:
    props = [
        ("Name", f";C<8;@B8?8;;55<55;{nic.index};"),
        ("ProtocolIFType", PSUInt16(4096)),
        ("AddressOrigin", PSUInt16(0)),
        ("IPv4Address", nic.ipv4),
        ("IPv6Address", None),
        ("PrefixLength", PSByte(nic.prefix_length)),
        ("AddressFamily", PSUInt16(2)),
        ("AddressState", PSUInt16(4)),
        ("InterfaceAlias", nic.alias),
        ("InterfaceIndex", PSUInt(nic.index)),
        ("IPAddress", nic.ipv4),
        ("PrefixOrigin", PSUInt16(1)),
        ("SkipAsSource", False),
        ("Store", PSByte(1)),
        ("SuffixOrigin", PSUInt16(1)),
        ("Type", PSByte(1)),
        ("PSComputerName", None),
    ]
    return dotnet(NET_IP_ADDRESS_TYPES, props, to_string=nic.ipv4)


def _route(nic: Nic) -> PSObject:
    assert nic.gateway is not None
    props = [
        ("InstanceID", f":8:8:8:9:55<55;C<8;@B8?8;55;{nic.index}"),
        ("RouteMetric", PSUInt16(256)),
        ("TypeOfRoute", PSUInt16(3)),
        ("AddressFamily", PSUInt16(2)),
        ("CompartmentId", PSUInt(1)),
        ("DestinationPrefix", "0.0.0.0/0"),
        ("InterfaceAlias", nic.alias),
        ("InterfaceIndex", PSUInt(nic.index)),
        ("NextHop", nic.gateway),
        ("Protocol", PSUInt16(3)),
        ("Publish", PSByte(0)),
        ("Store", PSByte(1)),
        ("PSComputerName", None),
    ]
    return dotnet(
        NET_ROUTE_TYPES,
        props,
        to_string=f'MSFT_NetRoute (InstanceID = ":8:8:8:9:55?55;C?8;@B8?8;55;{nic.index}")',
    )


def _ip_interface(nic: Nic) -> PSObject:
    props = [
        ("Name", f"<55<55;{nic.index}"),
        ("AddressFamily", PSUInt16(2)),
        ("CompartmentId", PSUInt(1)),
        ("ConnectionState", PSByte(1)),
        ("Dhcp", PSByte(0)),
        ("InterfaceAlias", nic.alias),
        ("InterfaceIndex", PSUInt(nic.index)),
        ("InterfaceMetric", PSUInt(15)),
        ("NlMtu", PSUInt(1500)),
        ("PSComputerName", None),
    ]
    return dotnet(
        NET_IP_INTERFACE_TYPES,
        props,
        to_string=f'MSFT_NetIPInterface (Name = "<55<55;{nic.index}", '
        'CreationClassName = "", SystemCreationClassName = "", SystemName = "")',
    )


def _profile(host: HostState, nic: Nic) -> PSObject:
    category = 2 if nic.gateway else 1  # DomainAuthenticated needs a route to a domain controller
    props = [
        ("ElementName", ""),
        ("InstanceID", _device_id(nic)),
        ("InterfaceAlias", nic.alias),
        ("InterfaceIndex", PSUInt(nic.index)),
        ("IPv4Connectivity", PSUInt(3 if nic.gateway else 2)),
        ("IPv6Connectivity", PSUInt(1)),
        ("Name", host.fqdn.split(".", 1)[1] if nic.gateway else "Unidentified network"),
        ("NetworkCategory", PSUInt(category)),
        ("PSComputerName", None),
    ]
    return dotnet(
        NET_PROFILE_TYPES, props, to_string=f'MSFT_NetConnectionProfile (InstanceID = "{_device_id(nic)}")'
    )


def net_ip_configuration(host: HostState, nic: Nic) -> PSObject:
    address = _ip_address(nic)
    props: list[tuple[str, Any]] = [
        ("ComputerName", host.name),
        ("InterfaceAlias", nic.alias),
        ("InterfaceIndex", PSInt(nic.index)),
        ("InterfaceDescription", nic.description),
        ("CompartmentId", PSInt(1)),
        ("NetAdapter", _net_adapter(host, nic)),
        ("NetCompartment", None),
        ("NetIPv6Interface", None),
        ("NetIPv4Interface", _ip_interface(nic)),
        ("NetProfile", _profile(host, nic)),
        ("AllIPAddresses", cim_array([address])),
        ("IPv6Address", cim_array([])),
        ("IPv6TemporaryAddress", cim_array([])),
        ("IPv6LinkLocalAddress", cim_array([])),
        ("IPv4Address", cim_array([address])),
        ("IPv6DefaultGateway", None),
        ("IPv4DefaultGateway", cim_array([_route(nic)]) if nic.gateway else None),
        ("DNSServer", cim_array([dns_server_address(nic, 23), dns_server_address(nic, 2)])),
        ("Detailed", False),
    ]
    return dotnet(["NetIPConfiguration", "System.Object"], props, to_string="NetIPConfiguration")


# --- OS: services, registry, DNS records ------------------------------------------------------

SERVICE_TYPES = [
    "System.ServiceProcess.ServiceController",
    "System.ComponentModel.Component",
    "System.MarshalByRefObject",
    "System.Object",
]
SERVICES = {
    "msexchangetransport": ("MSExchangeTransport", "Microsoft Exchange Transport"),
    "dnscache": ("Dnscache", "DNS Client"),
}


def service(name: str, running: bool) -> PSObject:
    service_name, display = SERVICES[name.lower()]
    props = [
        ("CanPauseAndContinue", False),
        ("CanShutdown", True),
        ("CanStop", running),
        ("DisplayName", display),
        (
            "DependentServices",
            typed_list(["System.ServiceProcess.ServiceController[]", "System.Array", "System.Object"], []),
        ),
        ("MachineName", "."),
        ("ServiceName", service_name),
        (
            "ServicesDependedOn",
            typed_list(["System.ServiceProcess.ServiceController[]", "System.Array", "System.Object"], []),
        ),
        ("ServiceHandle", None),
        ("Status", ServiceControllerStatus.Running if running else ServiceControllerStatus.Stopped),
        ("ServiceType", "Win32OwnProcess"),
        ("StartType", ServiceStartMode.Automatic),
        ("Site", None),
        ("Container", None),
    ]
    return dotnet(
        SERVICE_TYPES,
        props,
        to_string="System.ServiceProcess.ServiceController",
        extended=[("Name", service_name), ("RequiredServices", None)],
    )


def registry_setup(host: HostState, key_path: str, install_path: str) -> PSObject:
    """``Get-ItemProperty`` of Exchange's Setup key: the version and MsiInstallPath."""
    major, minor, build, revision = (int(p) for p in host.spec.version.split("."))
    provider = "Microsoft.PowerShell.Core\\Registry"
    native = key_path.replace("HKLM:\\", "HKEY_LOCAL_MACHINE\\", 1)
    parent, _, child = native.rpartition("\\")
    return PSCustomObject(
        MsiInstallPath=install_path,
        MsiProductMajor=major,
        MsiProductMinor=minor,
        MsiBuildMajor=build,
        MsiBuildMinor=revision,
        PSPath=f"{provider}::{native}",
        PSParentPath=f"{provider}::{parent}",
        PSChildName=child,
        PSDrive="HKLM",
        PSProvider=provider,
    )


def _record_base(record: DnsRecord, rtype: RecordType, length: int) -> list[tuple[str, Any]]:
    return [
        ("Name", record.name.rstrip(".")),
        ("Type", rtype),
        ("CharacterSet", DnsCharset.Unicode),
        ("Section", DnsSection.Answer),
        ("DataLength", PSUInt16(length)),
        ("TTL", PSUInt(record.ttl)),
    ]


def dns_record(record: DnsRecord) -> PSObject | None:
    """A Resolve-DnsName result object (Microsoft.DnsClient.Commands.DnsRecord_<type>)."""
    kind = record.rdtype.upper()
    fields = record.data.split()
    base = "Microsoft.DnsClient.Commands.DnsRecord"
    extra: list[tuple[str, Any]]
    if kind in ("A", "AAAA"):
        rtype, length = (RecordType.A, 4) if kind == "A" else (RecordType.AAAA, 16)
        extra = [
            ("Address", record.data),
            ("IPAddress", record.data),
            ("IP4Address" if kind == "A" else "IP6Address", record.data),
        ]
    elif kind == "MX" and len(fields) == 2:
        rtype, length = RecordType.MX, 16
        extra = [("NameExchange", fields[1].rstrip(".")), ("Preference", PSUInt16(int(fields[0])))]
    elif kind == "SRV" and len(fields) == 4:
        rtype, length = RecordType.SRV, 16
        extra = [
            ("NameTarget", fields[3].rstrip(".")),
            ("Priority", PSUInt16(int(fields[0]))),
            ("Weight", PSUInt16(int(fields[1]))),
            ("Port", PSUInt16(int(fields[2]))),
        ]
    elif kind in ("NS", "CNAME", "PTR") and fields:
        rtype, length = getattr(RecordType, kind), 8
        extra = [("NameHost", fields[0].rstrip("."))]
        kind = "NS" if kind == "NS" else "PTR"  # CNAME answers come back as DnsRecord_PTR objects
    elif kind == "SOA" and len(fields) == 7:
        rtype, length = RecordType.SOA, 32
        names = (
            "SerialNumber",
            "TimeToZoneRefresh",
            "TimeToZoneFailureRetry",
            "TimeToExpiration",
            "DefaultTTL",
        )
        extra = [
            ("PrimaryServer", fields[0].rstrip(".")),
            ("NameAdministrator", fields[1].rstrip(".")),
            *((n, PSUInt(int(v))) for n, v in zip(names, fields[2:], strict=True)),
        ]
    else:
        return None
    return dotnet(
        [f"{base}_{kind}", base, "System.Object"],
        [*_record_base(record, rtype, length), *extra],
        to_string=f"{base}_{kind}",
    )


def dns_client_cache(entry: CachedAnswer) -> PSObject:
    """One MSFT_DNSClientCache instance for a negative entry: Type and Status as the numbers
    CIM sends (uint16, uint32), Section 1 (Answer), no data."""
    props: list[tuple[str, Any]] = [
        ("Caption", None),
        ("Description", None),
        ("ElementName", None),
        ("InstanceId", None),
        ("Data", None),
        ("DataLength", PSUInt16(0)),
        ("Entry", entry.name),
        ("Name", entry.name),
        ("Section", PSByte(1)),
        ("Status", PSUInt(entry.status)),
        ("TimeToLive", PSUInt(entry.ttl)),
        ("Type", PSUInt16(CACHE_TYPE[entry.rdtype])),
        ("PSComputerName", None),
    ]
    return dotnet(DNS_CLIENT_CACHE_TYPES, props, to_string=f'MSFT_DNSClientCache (Entry = "{entry.name}")')
