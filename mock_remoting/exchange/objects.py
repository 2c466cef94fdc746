"""Cmdlet output as psrpcore PSObjects with the real type names and property names.

.NET objects carry their properties as *adapted* properties (``<Props>``), as real servers
send them; the type names follow the real captures in ``shared/fixtures/real-clixml``. Over
Exchange remote PowerShell, Exchange's own value types (enums, ByteQuantifiedSize,
EnhancedTimeSpan, ADObjectId, SmartHost, AddressSpace, ServerVersion) arrive as strings, and
MultiValuedProperty arrives as a typed list of those strings; the emulation sends them so.
The OS cmdlets return CIM instances whose numeric fields keep their CIM types (AddressFamily
is a UInt16: 2 or 23).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from psrpcore.types import (
    PSByte,
    PSCustomObject,
    PSEnumBase,
    PSInt,
    PSList,
    PSNoteProperty,
    PSObject,
    PSType,
    PSUInt,
    PSUInt16,
    PSUInt64,
)

from mock_remoting.dns.world import DnsRecord
from mock_remoting.exchange.records import clixml_text
from mock_remoting.exchange.scenario import format_address_space
from mock_remoting.exchange.state import HostState, Nic, Organization, Queue, SendConnector, stable_guid

EPOCH = datetime.datetime(2023, 3, 14, 9, 30, tzinfo=datetime.timezone.utc)


def dotnet(
    type_names: Sequence[str],
    props: Iterable[tuple[str, Any]],
    *,
    to_string: str | None = None,
    extended: Iterable[tuple[str, Any]] = (),
) -> PSObject:
    """A .NET object: ``props`` become adapted properties (<Props>), ``extended`` go to <MS>."""
    obj = PSObject()
    obj.PSObject.type_names = list(type_names)
    for name, value in props:
        obj.PSObject.adapted_properties.append(PSNoteProperty(name, value))
    for name, value in extended:
        obj.PSObject.extended_properties.append(PSNoteProperty(name, value))
    if to_string is not None:
        obj.PSObject.to_string = clixml_text(to_string)
    return obj


def typed_list(type_names: Sequence[str], values: Iterable[Any]) -> PSList:
    result = PSList(list(values))
    result.PSObject.type_names = list(type_names)
    return result


def string_array(values: Iterable[str]) -> PSList:
    return typed_list(["System.String[]", "System.Array", "System.Object"], values)


def uint_array(values: Iterable[int]) -> PSList:
    return typed_list(["System.UInt32[]", "System.Array", "System.Object"], (PSUInt(v) for v in values))


def cim_array(values: Iterable[Any]) -> PSList:
    return typed_list(
        ["Microsoft.Management.Infrastructure.CimInstance[]", "System.Array", "System.Object"], values
    )


def _assembly(major: int) -> str:
    return f"Microsoft.Exchange.Data, Version={major}.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35"


def mvp(
    element: str, values: Iterable[str], major: int, assembly: str | None = None, directory: bool = False
) -> PSList:
    """A MultiValuedProperty of strings (how Exchange remote PowerShell sends it)."""
    asm = assembly or _assembly(major)
    inner = f"[[{element}, {asm}]]"
    names = []
    if directory:
        names.append(f"Microsoft.Exchange.Data.Directory.ADMultiValuedProperty`1{inner}")
    names += [
        f"Microsoft.Exchange.Data.MultiValuedProperty`1{inner}",
        "Microsoft.Exchange.Data.MultiValuedPropertyBase",
        "System.Object",
    ]
    return typed_list(names, values)


def _ip_mvp(values: Iterable[str], major: int) -> PSList:
    return mvp(
        "System.Net.IPAddress",
        values,
        major,
        assembly="System, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
    )


def _adid_mvp(values: Iterable[str], major: int) -> PSList:
    asm = (
        f"Microsoft.Exchange.Data.Directory, Version={major}.0.0.0, Culture=neutral, "
        "PublicKeyToken=31bf3856ad364e35"
    )
    return mvp("Microsoft.Exchange.Data.Directory.ADObjectId", values, major, assembly=asm, directory=True)


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


# --- Exchange ------------------------------------------------------------------------------

_AD_OBJECT = [
    "Microsoft.Exchange.Data.Directory.ADObject",
    "Microsoft.Exchange.Data.Directory.ADRawEntry",
    "Microsoft.Exchange.Data.ConfigurableObject",
    "System.Object",
]
EXCHANGE_SERVER_TYPES = [
    "Microsoft.Exchange.Data.Directory.Management.ExchangeServer",
    "Microsoft.Exchange.Data.Directory.Management.ADPresentationObject",
    *_AD_OBJECT,
]
TRANSPORT_SERVER_TYPES = [
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.TransportServer",
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADLegacyVersionableObject",
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADConfigurationObject",
    *_AD_OBJECT,
]
SEND_CONNECTOR_TYPES = [
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig",
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.MailGateway",
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.SendConnector",
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADLegacyVersionableObject",
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADConfigurationObject",
    *_AD_OBJECT,
]
QUEUE_TYPES_15 = [
    "Microsoft.Exchange.Data.QueueViewer.PropertyBagBasedQueueInfo",
    "Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo",
    "Microsoft.Exchange.Data.QueueViewer.PagedDataObject",
    "Microsoft.Exchange.Data.ConfigurableObject",
    "System.Object",
]
QUEUE_TYPES_14 = [
    "Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo",
    "Microsoft.Exchange.Data.QueueViewer.PagedDataObject",
    "Microsoft.Exchange.Data.ConfigurableObject",
    "System.Object",
]


def admin_display_version(version: str) -> str:
    major, minor, build, revision = version.split(".")
    return f"Version {major}.{minor} (Build {build}.{revision})"


def _org_dn(org: Organization) -> str:
    dcs = ",".join(f"DC={part}" for part in org.scenario.ad_domain.split("."))
    return f"CN={org.scenario.exchange_organization},CN=Microsoft Exchange,CN=Services,CN=Configuration,{dcs}"


def _admin_group_dn(org: Organization) -> str:
    return f"CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,{_org_dn(org)}"


def _server_dn(org: Organization, host: HostState) -> str:
    return f"CN={host.name},CN=Servers,{_admin_group_dn(org)}"


def _dc(org: Organization) -> str:
    return str(org.scenario.organization["domain_controllers"][0]["name"]).lower()


def _ad_tail(
    org: Organization,
    name: str,
    dn: str,
    guid: uuid.UUID,
    category: str,
    classes: Sequence[str],
    major: int,
    when: datetime.datetime,
    exchange_version: str,
) -> list[tuple[str, Any]]:
    return [
        ("AdminDisplayName", ""),
        ("ExchangeVersion", exchange_version),
        ("Name", name),
        ("DistinguishedName", dn),
        ("Identity", name),
        ("Guid", guid),
        ("ObjectCategory", f"{org.scenario.ad_domain}/Configuration/Schema/{category}"),
        (
            "ObjectClass",
            mvp(
                "System.String",
                classes,
                major,
                assembly="mscorlib, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
            ),
        ),
        ("WhenChanged", when),
        ("WhenCreated", EPOCH),
        ("WhenChangedUTC", when),
        ("WhenCreatedUTC", EPOCH),
        ("OrganizationId", ""),
        ("Id", name),
        ("OriginatingServer", _dc(org)),
        ("IsValid", True),
        ("ObjectState", "Unchanged"),
    ]


def exchange_server(org: Organization, host: HostState) -> PSObject:
    major = host.spec.major
    install = install_path(host)
    roles = "Mailbox" if major >= 15 else "Mailbox, ClientAccess, HubTransport"
    site = f"{org.scenario.ad_domain}/Configuration/Sites/{host.spec.site}"
    props: list[tuple[str, Any]] = [
        ("Name", host.name),
        ("DataPath", install + "Mailbox"),
        ("Domain", org.scenario.ad_domain),
        ("Edition", host.spec.edition),
        (
            "ExchangeLegacyDN",
            f"/o={org.scenario.exchange_organization}/ou=Exchange Administrative Group "
            f"(FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn={host.name}",
        ),
        ("ExchangeLegacyServerRole", 0),
        ("Fqdn", host.fqdn),
        ("CustomerFeedbackEnabled", None),
        ("InternetWebProxy", None),
        ("InternetWebProxyBypassList", None),
        ("IsHubTransportServer", True),
        ("IsClientAccessServer", True),
        ("IsExchange2007OrLater", True),
        ("IsEdgeServer", False),
        ("IsMailboxServer", True),
        ("IsE14OrLater", True),
        ("IsE15OrLater", major >= 15),
        ("IsProvisionedServer", False),
        ("IsUnifiedMessagingServer", major < 15),
        ("IsFrontendTransportServer", major >= 15),
        (
            "NetworkAddress",
            mvp(
                "Microsoft.Exchange.Data.NetworkAddress",
                [
                    f"ncacn_vns_spp:{host.name}",
                    f"netbios:{host.name}",
                    f"ncacn_np:{host.name}",
                    f"ncacn_spx:{host.name}",
                    f"ncacn_ip_tcp:{host.fqdn}",
                    f"ncalrpc:{host.name}",
                ],
                major,
            ),
        ),
        ("OrganizationalUnit", f"{org.scenario.ad_domain}/{host.name}"),
        ("AdminDisplayVersion", admin_display_version(host.spec.version)),
        ("Site", site),
        ("ServerRole", roles),
        ("ErrorReportingEnabled", False),
        ("StaticDomainControllers", _adid_mvp([], major)),
        ("StaticGlobalCatalogs", _adid_mvp([], major)),
        ("StaticConfigDomainController", ""),
        ("StaticExcludedDomainControllers", _adid_mvp([], major)),
        ("MonitoringGroup", ""),
        ("CurrentDomainControllers", _adid_mvp([_dc(org)], major)),
        ("CurrentGlobalCatalogs", _adid_mvp([_dc(org)], major)),
        ("CurrentConfigDomainController", _dc(org)),
        ("ProductID", ""),
        ("IsExchangeTrialEdition", False),
        ("IsExpiredExchangeTrialEdition", False),
        ("RemainingTrialPeriod", "00:00:00"),
    ]
    props += _ad_tail(
        org,
        host.name,
        _server_dn(org, host),
        stable_guid("server", host.name),
        "ms-Exch-Exchange-Server",
        ["top", "server", "msExchExchangeServer"],
        major,
        EPOCH,
        "0.1 (8.0.535.0)",
    )
    return dotnet(EXCHANGE_SERVER_TYPES, props, to_string=host.name)


def install_path(host: HostState) -> str:
    return f"C:\\Program Files\\Microsoft\\Exchange Server\\V{host.spec.major}\\"


def transport_server(org: Organization, host: HostState) -> PSObject:
    major = host.spec.major
    t = host.transport
    logs = install_path(host) + "TransportRoles\\Logs\\"
    props: list[tuple[str, Any]] = [
        ("AntispamAgentsEnabled", False),
        ("ConnectivityLogEnabled", True),
        ("ConnectivityLogPath", logs + "Hub\\Connectivity"),
        ("DelayNotificationTimeout", "04:00:00"),
        ("ExternalDNSAdapterEnabled", t.external_dns_adapter_enabled),
        ("ExternalDNSAdapterGuid", uuid.UUID(int=0)),
        ("ExternalDNSProtocolOption", t.external_dns_protocol_option),
        ("ExternalDNSServers", _ip_mvp(t.external_dns_servers, major)),
        ("ExternalIPAddress", None),
        ("InternalDNSAdapterEnabled", t.internal_dns_adapter_enabled),
        ("InternalDNSAdapterGuid", uuid.UUID(int=0)),
        ("InternalDNSProtocolOption", t.internal_dns_protocol_option),
        ("InternalDNSServers", _ip_mvp(t.internal_dns_servers, major)),
        ("MaxConcurrentMailboxDeliveries", 20),
        ("MaxConcurrentMailboxSubmissions", 20),
        ("MaxConnectionRatePerMinute", 1200),
        ("MaxOutboundConnections", "1000"),
        ("MaxPerDomainOutboundConnections", "20"),
        ("MessageExpirationTimeout", "2.00:00:00"),
        ("MessageRetryInterval", "00:15:00"),
        ("MessageTrackingLogEnabled", True),
        ("MessageTrackingLogPath", logs + "MessageTracking"),
        ("OutboundConnectionFailureRetryInterval", "00:10:00"),
        ("PoisonMessageDetectionEnabled", True),
        ("PoisonThreshold", 2),
        ("QueueMaxIdleTime", "00:03:00"),
        ("ReceiveProtocolLogPath", logs + "Hub\\ProtocolLog\\SmtpReceive"),
        ("SendProtocolLogPath", logs + "Hub\\ProtocolLog\\SmtpSend"),
        ("TransientFailureRetryCount", 6),
        ("TransientFailureRetryInterval", "00:05:00"),
        ("UseDowngradedExchangeServerAuth", False),
        ("IntraOrgConnectorProtocolLoggingLevel", "None"),
    ]
    props += _ad_tail(
        org,
        host.name,
        _server_dn(org, host),
        stable_guid("server", host.name),
        "ms-Exch-Exchange-Server",
        ["top", "server", "msExchExchangeServer"],
        major,
        EPOCH,
        "0.1 (8.0.535.0)",
    )
    return dotnet(TRANSPORT_SERVER_TYPES, props, to_string=host.name)


def send_connector(org: Organization, connector: SendConnector, major: int) -> PSObject:
    dn = (
        f"CN={connector.name},CN=Connections,CN=Exchange Routing Group (DWBGZMFD01QNBJR),"
        f"CN=Routing Groups,{_admin_group_dn(org)}"
    )
    props: list[tuple[str, Any]] = [
        ("DNSRoutingEnabled", connector.dns_routing_enabled),
        ("TlsDomain", None),
        ("TlsAuthLevel", None),
        ("ErrorPolicies", "Default"),
        ("SmartHosts", mvp("Microsoft.Exchange.Data.SmartHost", connector.smart_hosts, major)),
        ("Port", connector.port),
        ("ConnectionInactivityTimeOut", "00:10:00"),
        ("ForceHELO", False),
        ("FrontendProxyEnabled", False),
        ("IgnoreSTARTTLS", False),
        ("CloudServicesMailEnabled", False),
        ("Fqdn", None),
        ("TlsCertificateName", None),
        ("RequireTLS", False),
        ("RequireOorg", False),
        ("Enabled", connector.enabled),
        ("ProtocolLoggingLevel", "None"),
        ("SmartHostAuthMechanism", connector.smart_host_auth_mechanism),
        ("AuthenticationCredential", None),
        ("UseExternalDNSServersEnabled", connector.use_external_dns_servers_enabled),
        ("DomainSecureEnabled", False),
        ("SourceIPAddress", "0.0.0.0"),
        ("SmtpMaxMessagesPerConnection", 20),
        ("ConnectorType", "Default"),
        ("SmartHostsString", ",".join(connector.smart_hosts)),
        ("CertificateSubject", None),
        (
            "AddressSpaces",
            mvp(
                "Microsoft.Exchange.Data.AddressSpace",
                (format_address_space(s) for s in connector.address_spaces),
                major,
            ),
        ),
        ("ConnectedDomains", mvp("Microsoft.Exchange.Data.ConnectedDomain", [], major)),
        ("IsScopedConnector", False),
        ("IsSmtpConnector", True),
        ("Comment", connector.comment),
        ("SourceRoutingGroup", "Exchange Routing Group (DWBGZMFD01QNBJR)"),
        ("SourceTransportServers", _adid_mvp(connector.source_transport_servers, major)),
        ("HomeMTA", "Microsoft MTA"),
        (
            "HomeMtaServerId",
            connector.source_transport_servers[0] if connector.source_transport_servers else None,
        ),
        ("MaxMessageSize", "35 MB (36,700,160 bytes)"),
    ]
    props += _ad_tail(
        org,
        connector.name,
        dn,
        connector.guid,
        "ms-Exch-Routing-SMTP-Connector",
        ["top", "mailGateway", "msExchRoutingSMTPConnector"],
        major,
        connector.changed,
        "0.1 (8.0.535.0)",
    )
    return dotnet(SEND_CONNECTOR_TYPES, props, to_string=connector.name)


def queue_object(host: HostState, queue: Queue) -> PSObject:
    identity = f"{host.name}\\{queue.number}"
    category = "External" if queue.external else "Internal"
    props: list[tuple[str, Any]] = [
        ("DeliveryType", queue.delivery_type),
        ("NextHopDomain", queue.next_hop),
        ("TlsDomain", ""),
        ("NextHopConnector", queue.connector_guid or uuid.UUID(int=0)),
        ("Status", queue.status),
        ("MessageCount", queue.queued),
        ("LastError", queue.last_error),
        ("RetryCount", queue.retry_count),
        ("LastRetryTime", queue.last_retry),
        ("NextRetryTime", queue.next_retry),
    ]
    if host.spec.major >= 15:
        props += [
            ("FirstRetryTime", queue.first_retry),
            ("DeferredMessageCount", 0),
            ("LockedMessageCount", 0),
            (
                "MessageCountsPerPriority",
                typed_list(["System.Int32[]", "System.Array", "System.Object"], [0, queue.queued, 0, 0]),
            ),
            (
                "DeferredMessageCountsPerPriority",
                typed_list(["System.Int32[]", "System.Array", "System.Object"], [0, 0, 0, 0]),
            ),
            ("RiskLevel", "Normal"),
            ("OutboundIPPool", 0),
        ]
    props += [
        ("NextHopCategory", category),
        ("IncomingRate", 0.0),
        ("OutgoingRate", 0.0),
        ("Velocity", 0.0),
        ("QueueIdentity", identity),
        ("PriorityDescriptions", string_array(["High", "Normal", "Low", "None"])),
        ("Identity", identity),
        ("IsValid", True),
        ("ObjectState", "New"),
    ]
    return dotnet(QUEUE_TYPES_15 if host.spec.major >= 15 else QUEUE_TYPES_14, props, to_string=identity)


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


DNS_CLIENT_TYPES = _cim_types(
    "ROOT/StandardCimv2",
    [
        "MSFT_DNSClient",
        "CIM_DNSProtocolEndpoint",
        "CIM_ProtocolEndpoint",
        "CIM_ServiceAccessPoint",
        "CIM_EnabledLogicalElement",
        "CIM_LogicalElement",
        "CIM_ManagedSystemElement",
        "CIM_ManagedElement",
    ],
)
DNS_SERVER_ADDRESS_TYPES = _cim_types(
    "root/StandardCimv2",
    [
        "MSFT_DNSClientServerAddress",
        "CIM_RemoteServiceAccessPoint",
        "CIM_ServiceAccessPoint",
        "CIM_EnabledLogicalElement",
        "CIM_LogicalElement",
        "CIM_ManagedSystemElement",
        "CIM_ManagedElement",
    ],
)
NET_ADAPTER_TYPES = _cim_types(
    "root/StandardCimv2",
    [
        "MSFT_NetAdapter",
        "CIM_NetworkPort",
        "CIM_LogicalPort",
        "CIM_LogicalDevice",
        "CIM_EnabledLogicalElement",
        "CIM_LogicalElement",
        "CIM_ManagedSystemElement",
        "CIM_ManagedElement",
    ],
)
NET_IP_INTERFACE_TYPES = _cim_types(
    "root/StandardCimv2",
    [
        "MSFT_NetIPInterface",
        "CIM_IPProtocolEndpoint",
        "CIM_ProtocolEndpoint",
        "CIM_ServiceAccessPoint",
        "CIM_EnabledLogicalElement",
        "CIM_LogicalElement",
        "CIM_ManagedSystemElement",
        "CIM_ManagedElement",
    ],
)
NET_IP_ADDRESS_TYPES = _cim_types(
    "root/StandardCimv2",
    [
        "MSFT_NetIPAddress",
        "CIM_IPProtocolEndpoint",
        "CIM_ProtocolEndpoint",
        "CIM_ServiceAccessPoint",
        "CIM_EnabledLogicalElement",
        "CIM_LogicalElement",
        "CIM_ManagedSystemElement",
        "CIM_ManagedElement",
    ],
)
NET_ROUTE_TYPES = _cim_types(
    "root/StandardCimv2", ["MSFT_NetRoute", "CIM_NextHopRoute", "CIM_ManagedElement"]
)
NET_PROFILE_TYPES = _cim_types(
    "root/StandardCimv2",
    ["MSFT_NetConnectionProfile", "MSFT_NetSettingData", "CIM_SettingData", "CIM_ManagedElement"],
)


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
        ("EnabledDefault", PSUInt16(2)),
        ("EnabledState", None),
        ("OtherEnabledState", None),
        ("RequestedState", PSUInt16(12)),
        ("TimeOfLastStateChange", None),
        ("TransitioningToState", PSUInt16(12)),
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
    servers = nic.dns_servers if family == 2 else nic.ipv6_dns_servers
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


def registry_setup(host: HostState, key_path: str) -> PSObject:
    major, minor, build, revision = (int(p) for p in host.spec.version.split("."))
    provider = "Microsoft.PowerShell.Core\\Registry"
    native = key_path.replace("HKLM:\\", "HKEY_LOCAL_MACHINE\\", 1)
    parent, _, child = native.rpartition("\\")
    return PSCustomObject(
        MsiInstallPath=install_path(host),
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
