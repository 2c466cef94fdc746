"""Exchange's cmdlet output: ExchangeServer, TransportServer, SmtpSendConnectorConfig and the
queue objects, with the real type names and property names.

Over Exchange remote PowerShell, Exchange's own value types (enums, ByteQuantifiedSize,
EnhancedTimeSpan, ADObjectId, SmartHost, AddressSpace, ServerVersion) arrive as strings, and
MultiValuedProperty arrives as a typed list of those strings; the emulation sends them so.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from psrpcore.types import PSList, PSObject

from mock_remoting.exchange.objects.dotnet import dotnet, string_array, typed_list
from mock_remoting.exchange.scenario import format_address_space
from mock_remoting.exchange.state import HostState, Organization, Queue, SendConnector, stable_guid

EPOCH = datetime.datetime(2023, 3, 14, 9, 30, tzinfo=datetime.timezone.utc)


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
MAILBOX_SERVER_TYPES = [
    "Microsoft.Exchange.Data.Directory.Management.MailboxServer",
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


def domain_controller(org: Organization) -> str:
    """The domain controller Exchange reports as the one it read from (the first listed)."""
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
        ("OriginatingServer", domain_controller(org)),
        ("IsValid", True),
        ("ObjectState", "Unchanged"),
    ]


def _server_ad_tail(org: Organization, host: HostState) -> list[tuple[str, Any]]:
    """ExchangeServer and TransportServer are two views of one AD object: the server's."""
    return _ad_tail(
        org,
        host.name,
        _server_dn(org, host),
        stable_guid("server", host.name),
        "ms-Exch-Exchange-Server",
        ["top", "server", "msExchExchangeServer"],
        host.spec.major,
        EPOCH,
        "0.1 (8.0.535.0)",
    )


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
        ("CurrentDomainControllers", _adid_mvp([domain_controller(org)], major)),
        ("CurrentGlobalCatalogs", _adid_mvp([domain_controller(org)], major)),
        ("CurrentConfigDomainController", domain_controller(org)),
        ("ProductID", ""),
        ("IsExchangeTrialEdition", False),
        ("IsExpiredExchangeTrialEdition", False),
        ("RemainingTrialPeriod", "00:00:00"),
    ]
    props += _server_ad_tail(org, host)
    return dotnet(EXCHANGE_SERVER_TYPES, props, to_string=host.name)


def mailbox_server(org: Organization, host: HostState) -> PSObject:
    """Get-MailboxServer: the Mailbox role's settings; the lab shows the properties that say
    where the server stands in a database availability group (an ADObjectId, sent as its name:
    module docstring), beside the identity ones."""
    props: list[tuple[str, Any]] = [
        ("Name", host.name),
        ("DatabaseAvailabilityGroup", host.spec.dag),
        ("DatabaseCopyAutoActivationPolicy", "Unrestricted"),
        ("DatabaseCopyActivationDisabledAndMoveNow", False),
        ("AdminDisplayVersion", admin_display_version(host.spec.version)),
        ("Fqdn", host.fqdn),
    ]
    props += _server_ad_tail(org, host)
    return dotnet(MAILBOX_SERVER_TYPES, props, to_string=host.name)


def install_path(host: HostState) -> str:
    """MsiInstallPath: where Exchange is installed (with a trailing backslash)."""
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
    props += _server_ad_tail(org, host)
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
        ("FrontendProxyEnabled", connector.frontend_proxy_enabled),
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
        ("IncomingRate", queue.incoming_rate),
        ("OutgoingRate", queue.outgoing_rate),
        ("Velocity", queue.velocity),
        ("QueueIdentity", identity),
        ("PriorityDescriptions", string_array(["High", "Normal", "Low", "None"])),
        ("Identity", identity),
        ("IsValid", True),
        ("ObjectState", "New"),
    ]
    return dotnet(QUEUE_TYPES_15 if host.spec.major >= 15 else QUEUE_TYPES_14, props, to_string=identity)

