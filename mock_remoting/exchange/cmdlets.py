"""The emulated cmdlets: parameters, validation, state changes and output.

Each cmdlet is a function of (context, bound parameters, pipeline input) registered in one
explicit table, :data:`CMDLETS`, with its parameter list and the endpoint that serves it.
Errors are the real records (``records.py``): non-terminating ones go to ``ctx.error``; a
terminating one is raised as :class:`Terminating`.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from psrpcore.types import ErrorCategory, ErrorRecord, PSCustomObject, PSNoteProperty, PSObject

from mock_remoting.backend import Endpoint
from mock_remoting.dns.world import NO_REPLY
from mock_remoting.exchange import dnsclient, edgeconfig, objects, records
from mock_remoting.exchange.binding import (
    COMMON,
    SHOULD_PROCESS,
    Kind,
    MvpEdit,
    P,
    apply_mvp,
    ip_values,
    plain,
)
from mock_remoting.exchange.mailflow import exchange_time, restart_transport, run_attempt
from mock_remoting.exchange.scenario import (
    AUTH_MECHANISMS,
    PROTOCOL_OPTIONS,
    format_address_space,
    parse_address_space,
)
from mock_remoting.exchange.state import HostState, Nic, Organization, Queue, SendConnector, stable_guid

if TYPE_CHECKING:
    from mock_remoting.exchange.host import EmulatedHost


class Terminating(Exception):
    """A terminating error: the pipeline (or, in a script, the statement) stops with ``record``."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(records.message_of(record))
        self.record = record


@dataclass
class Context:
    emu: EmulatedHost
    endpoint: Endpoint
    cancel: threading.Event
    cmdlet: str = ""
    output: list[Any] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)

    @property
    def host(self) -> HostState:
        return self.emu.state

    @property
    def org(self) -> Organization:
        return self.emu.org

    def emit(self, value: Any) -> None:
        self.output.append(value)

    def error(self, record: ErrorRecord) -> None:
        self.errors.append(record)

    def fail(self, record: ErrorRecord) -> NoReturn:
        raise Terminating(record)

    @property
    def exchange(self) -> records.ExchangeErrors:
        now = self.org.clock()
        return records.ExchangeErrors(
            self.host.name, self.host.spec.major >= 15, exchange_time(now), str(uuid.uuid4())
        )

    @property
    def dc(self) -> str:
        return str(self.org.scenario.organization["domain_controllers"][0]["name"]).lower()


Runner = Callable[[Context, dict[str, Any], Sequence[Any]], None]


@dataclass(frozen=True)
class CmdletDef:
    name: str
    endpoint: Endpoint
    params: tuple[P, ...]
    run: Runner
    versions: tuple[int, ...] = (14, 15)
    input_param: str | None = None  # bound from pipeline input (by value or by property name)
    locks: bool = True  # False for cmdlets that block (Start-Sleep) or do network I/O

    @property
    def all_params(self) -> tuple[P, ...]:
        return self.params + COMMON


def _identity_matches(pattern: str, *names: str) -> bool:
    pattern = pattern.strip().lower()
    for name in names:
        if "*" in pattern or "?" in pattern:
            if fnmatch.fnmatchcase(name.lower(), pattern):
                return True
        elif name.lower() == pattern:
            return True
    return False


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _find_host(ctx: Context, identity: str) -> HostState | None:
    for host in ctx.org.hosts.values():
        if _identity_matches(identity, host.name, host.fqdn, str(stable_guid("server", host.name))):
            return host
    return None


# --- Exchange: servers and transport ---------------------------------------------------------


def get_exchange_server(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    identity = args.get("Identity")
    hosts = sorted(ctx.org.hosts.values(), key=lambda h: h.name.lower())
    found = [h for h in hosts if identity is None or _identity_matches(identity, h.name, h.fqdn)]
    if identity is not None and not found:
        ctx.error(ctx.exchange.not_found(ctx.cmdlet, identity, ctx.dc))
    for host in found:
        ctx.emit(objects.exchange_server(ctx.org, host))


def _transport_hosts(ctx: Context) -> list[HostState]:
    modern = ctx.cmdlet.endswith("Service")
    return sorted(
        (h for h in ctx.org.hosts.values() if (h.spec.major >= 15) == modern), key=lambda h: h.name.lower()
    )


def get_transport_service(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    identity = args.get("Identity")
    hosts = [
        h for h in _transport_hosts(ctx) if identity is None or _identity_matches(identity, h.name, h.fqdn)
    ]
    if identity is not None and not hosts:
        ctx.error(ctx.exchange.not_found(ctx.cmdlet, identity, ctx.dc))
    for host in hosts:
        ctx.emit(objects.transport_server(ctx.org, host))


def _ip_list_or_fail(ctx: Context, name: str, value: tuple[str, ...] | MvpEdit) -> None:
    try:
        ip_values(value)
    except ValueError:
        shown = ",".join(value.add + value.remove) if isinstance(value, MvpEdit) else ",".join(value)
        ctx.fail(
            records.argument_transformation(
                ctx.cmdlet, name, shown, "Microsoft.Exchange.Data.MultiValuedProperty`1[System.Net.IPAddress]"
            )
        )


def set_transport_service(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    identity = args["Identity"]
    host = next((h for h in _transport_hosts(ctx) if _identity_matches(identity, h.name, h.fqdn)), None)
    if host is None:
        ctx.fail(ctx.exchange.not_found(ctx.cmdlet, identity, ctx.dc))
    for name in ("ExternalDNSServers", "InternalDNSServers"):
        if name in args:
            _ip_list_or_fail(ctx, name, args[name])
    for name in ("ExternalDNSAdapterGuid", "InternalDNSAdapterGuid"):
        if name in args:
            try:
                uuid.UUID(args[name])
            except ValueError:
                ctx.fail(records.argument_transformation(ctx.cmdlet, name, args[name], "System.Guid"))
    if args.get("WhatIf"):
        return
    t = host.transport
    if "ExternalDNSServers" in args:
        t.external_dns_servers = [
            str(ipaddress.ip_address(v))
            for v in apply_mvp(t.external_dns_servers, args["ExternalDNSServers"])
        ]
    if "InternalDNSServers" in args:
        t.internal_dns_servers = [
            str(ipaddress.ip_address(v))
            for v in apply_mvp(t.internal_dns_servers, args["InternalDNSServers"])
        ]
    if "ExternalDNSAdapterEnabled" in args:
        t.external_dns_adapter_enabled = args["ExternalDNSAdapterEnabled"]
    if "InternalDNSAdapterEnabled" in args:
        t.internal_dns_adapter_enabled = args["InternalDNSAdapterEnabled"]
    if "ExternalDNSProtocolOption" in args:
        t.external_dns_protocol_option = args["ExternalDNSProtocolOption"]
    if "InternalDNSProtocolOption" in args:
        t.internal_dns_protocol_option = args["InternalDNSProtocolOption"]
    # Nothing else happens now: transport reads these at start (restart MSExchangeTransport).


# --- Exchange: send connectors -------------------------------------------------------------


def get_send_connector(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    identity = args.get("Identity")
    found = [
        c for c in ctx.org.connectors if identity is None or _identity_matches(identity, c.name, str(c.guid))
    ]
    if identity is not None and not found:
        ctx.error(ctx.exchange.not_found(ctx.cmdlet, identity, ctx.dc))
    for connector in found:
        ctx.emit(objects.send_connector(ctx.org, connector, ctx.host.spec.major))


SMART_HOSTS_NEED_NO_DNS = (
    "The SmartHosts parameter can only be used when DNS routing is disabled: set DNSRoutingEnabled to $false "
    "in the same command that sets SmartHosts."
)
NO_DNS_NEEDS_SMART_HOSTS = (
    "When DNSRoutingEnabled is set to $false, you must specify at least one smart host in the SmartHosts "
    "parameter."
)


def _connector_changes(ctx: Context, args: dict[str, Any], connector: SendConnector | None) -> dict[str, Any]:
    """Validate the connector parameters of New-/Set-SendConnector; returns attribute changes."""
    changes: dict[str, Any] = {}
    if "SmartHosts" in args:
        smart_hosts = (
            list(args["SmartHosts"])
            if not isinstance(args["SmartHosts"], MvpEdit)
            else apply_mvp(connector.smart_hosts if connector else [], args["SmartHosts"])
        )
        if smart_hosts and args.get("DNSRoutingEnabled") is not False:
            # Exchange insists on both in one call (EXCHANGE_FACTS: "setting SmartHosts requires
            # DNSRoutingEnabled $false in the same call").
            ctx.fail(
                ctx.exchange.data_validation(
                    ctx.cmdlet, SMART_HOSTS_NEED_NO_DNS, target=",".join(smart_hosts)
                )
            )
        for host in smart_hosts:
            if not re.match(r"^\[?[A-Za-z0-9_.:-]+\]?$", host):
                ctx.fail(
                    ctx.exchange.invalid_argument(
                        ctx.cmdlet,
                        f"The smart host '{host}' isn't a valid host name or IP address.",
                        target=host,
                    )
                )
        changes["smart_hosts"] = smart_hosts
    if "DNSRoutingEnabled" in args:
        changes["dns_routing_enabled"] = args["DNSRoutingEnabled"]
    dns_routing = changes.get("dns_routing_enabled", connector.dns_routing_enabled if connector else True)
    smart = changes.get("smart_hosts", connector.smart_hosts if connector else [])
    if not dns_routing and not smart:
        ctx.fail(ctx.exchange.data_validation(ctx.cmdlet, NO_DNS_NEEDS_SMART_HOSTS))
    if dns_routing and smart:
        ctx.fail(ctx.exchange.data_validation(ctx.cmdlet, SMART_HOSTS_NEED_NO_DNS, target=",".join(smart)))
    if "AddressSpaces" in args:
        texts = apply_mvp(
            [format_address_space(s) for s in connector.address_spaces] if connector else [],
            args["AddressSpaces"],
        )
        spaces = []
        for text in texts:
            space = parse_address_space(text)
            if space is None:
                ctx.fail(
                    ctx.exchange.invalid_argument(
                        ctx.cmdlet,
                        f"The address space '{text}' isn't valid. Use the form SMTP:contoso.com;1.",
                        target=text,
                    )
                )
            spaces.append(space)
        if not spaces:
            ctx.fail(ctx.exchange.data_validation(ctx.cmdlet, "The AddressSpaces property can't be empty."))
        changes["address_spaces"] = spaces
    if "SourceTransportServers" in args:
        names = apply_mvp(
            connector.source_transport_servers if connector else [], args["SourceTransportServers"]
        )
        resolved = []
        for name in names:
            host = _find_host(ctx, name)
            if host is None:
                ctx.fail(ctx.exchange.not_found(ctx.cmdlet, name, ctx.dc))
            resolved.append(host.name)
        changes["source_transport_servers"] = resolved
    simple = {
        "UseExternalDNSServersEnabled": "use_external_dns_servers_enabled",
        "Enabled": "enabled",
        "Port": "port",
        "Comment": "comment",
        "SmartHostAuthMechanism": "smart_host_auth_mechanism",
    }
    for param, attribute in simple.items():
        if param in args:
            changes[attribute] = args[param]
    if "Port" in args and not 1 <= args["Port"] <= 65535:
        ctx.fail(
            ctx.exchange.data_validation(
                ctx.cmdlet,
                f"The value {args['Port']} for Port is out of range (1-65535).",
                target=args["Port"],
            )
        )
    return changes


def new_send_connector(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    name = args["Name"]
    usages = [u for u in ("Custom", "Internal", "Internet", "Partner") if args.get(u)]
    if len(usages) + (1 if "Usage" in args else 0) > 1:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    if not name.strip():
        ctx.fail(ctx.exchange.data_validation(ctx.cmdlet, "The Name property can't be empty."))
    if ctx.org.connector(name) is not None:
        ctx.fail(ctx.exchange.already_exists(ctx.cmdlet, f"CN={name},CN=Connections", ctx.dc))
    changes = _connector_changes(ctx, args, None)
    if args.get("WhatIf"):
        return
    now = ctx.org.clock()
    connector = SendConnector(
        name=name,
        guid=uuid.uuid4(),
        address_spaces=changes["address_spaces"],
        source_transport_servers=changes.get("source_transport_servers", [ctx.host.name]),
        dns_routing_enabled=changes.get("dns_routing_enabled", True),
        smart_hosts=changes.get("smart_hosts", []),
        use_external_dns_servers_enabled=changes.get("use_external_dns_servers_enabled", False),
        smart_host_auth_mechanism=changes.get("smart_host_auth_mechanism", "None"),
        enabled=changes.get("enabled", True),
        port=changes.get("port", 25),
        comment=changes.get("comment", ""),
        usage=args.get("Usage") or (usages[0] if usages else None),
        created=now,
        changed=now,
    )
    ctx.org.connectors.append(connector)
    ctx.emit(objects.send_connector(ctx.org, connector, ctx.host.spec.major))


def _connector_or_fail(ctx: Context, identity: str) -> SendConnector:
    connector = ctx.org.connector(identity)
    if connector is None:
        ctx.fail(ctx.exchange.not_found(ctx.cmdlet, identity, ctx.dc))
    return connector


def set_send_connector(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    connector = _connector_or_fail(ctx, args["Identity"])
    changes = _connector_changes(ctx, args, connector)
    if "Name" in args:
        other = ctx.org.connector(args["Name"])
        if other is not None and other is not connector:
            ctx.fail(ctx.exchange.already_exists(ctx.cmdlet, f"CN={args['Name']},CN=Connections", ctx.dc))
        changes["name"] = args["Name"]
    if args.get("WhatIf"):
        return
    for attribute, value in changes.items():
        setattr(connector, attribute, value)
    connector.changed = ctx.org.clock()


def remove_send_connector(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    connector = _connector_or_fail(ctx, args["Identity"])
    if args.get("WhatIf"):
        return
    ctx.org.connectors.remove(connector)


# --- Exchange: queues ------------------------------------------------------------------------


def _queue_filter(ctx: Context, text: str) -> Callable[[HostState, Queue], bool]:
    """OPATH filters of the form ``Prop -op value [-and ...]`` (what admins pass to Get-Queue)."""
    clauses = re.split(r"\s+-and\s+", text.strip().strip("{}").strip(), flags=re.IGNORECASE)
    tests: list[Callable[[HostState, Queue], bool]] = []
    for clause in clauses:
        match = re.match(
            r"^\s*(\w+)\s+-(eq|ne|gt|ge|lt|le|like|notlike)\s+(?:'([^']*)'|\"([^\"]*)\"|(\S+))\s*$",
            clause,
            re.IGNORECASE,
        )
        if not match:
            ctx.fail(
                ctx.exchange.invalid_argument(ctx.cmdlet, f"Invalid filter syntax: '{text}'.", target=text)
            )
        prop, op = match.group(1), match.group(2).lower()
        wanted = next(g for g in match.group(3, 4, 5) if g is not None)

        def test(host: HostState, queue: Queue, prop: str = prop, op: str = op, wanted: str = wanted) -> bool:
            obj = objects.queue_object(host, queue)
            value = _property(obj, prop)
            if isinstance(value, int) and not isinstance(value, bool) and re.match(r"^-?\d+$", wanted):
                left: Any = int(value)
                right: Any = int(wanted)
            else:
                left, right = str(value if value is not None else "").lower(), wanted.lower()
            if op == "like":
                return fnmatch.fnmatchcase(str(left), str(right))
            if op == "notlike":
                return not fnmatch.fnmatchcase(str(left), str(right))
            compare: dict[str, bool] = {
                "eq": left == right,
                "ne": left != right,
                "gt": left > right,
                "ge": left >= right,
                "lt": left < right,
                "le": left <= right,
            }
            return compare[op]

        tests.append(test)
    return lambda host, queue: all(t(host, queue) for t in tests)


def _resolve_queues(ctx: Context, identity: str) -> list[tuple[HostState, Queue]]:
    server, sep, rest = identity.rpartition("\\")
    host = ctx.host if not sep else _find_host(ctx, server)
    if host is None:
        return []
    key = rest.strip().lower()
    return [(host, q) for q in host.queues if str(q.number) == key or q.next_hop.lower() == key]


def get_queue(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if "Identity" in args and "Server" in args:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    if "Identity" in args:
        found = _resolve_queues(ctx, args["Identity"])
        if not found:
            ctx.error(ctx.exchange.not_found(ctx.cmdlet, args["Identity"], ctx.host.fqdn))
    else:
        host = ctx.host if "Server" not in args else _find_host(ctx, args["Server"])
        if host is None:
            ctx.fail(ctx.exchange.not_found(ctx.cmdlet, args["Server"], ctx.dc))
        found = [(host, q) for q in host.queues]
        if "Filter" in args:
            keep = _queue_filter(ctx, args["Filter"])
            found = [(h, q) for h, q in found if keep(h, q)]
    limit = args.get("ResultSize")
    for host, queue in found[: limit if isinstance(limit, int) and limit > 0 else 1000]:
        ctx.emit(objects.queue_object(host, queue))


def retry_queue(ctx: Context, args: dict[str, Any], inputs: Sequence[Any]) -> None:
    if "Identity" not in args and "Filter" not in args:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Identity"]))
    if "Identity" in args and "Filter" in args:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    if "Identity" in args:
        found = _resolve_queues(ctx, args["Identity"])
        if not found:
            ctx.error(ctx.exchange.not_found(ctx.cmdlet, args["Identity"], ctx.host.fqdn))
            return
    else:
        host = ctx.host if "Server" not in args else _find_host(ctx, args["Server"])
        if host is None:
            ctx.fail(ctx.exchange.not_found(ctx.cmdlet, args["Server"], ctx.dc))
        keep = _queue_filter(ctx, args["Filter"])
        found = [(host, q) for q in host.queues if keep(host, q)]
    if args.get("WhatIf"):
        return
    for host, queue in found:
        run_attempt(ctx.org, host, queue)


# --- OS: DNS client --------------------------------------------------------------------------


def _nics(ctx: Context, args: dict[str, Any], cim_class: str, require: bool) -> list[Nic]:
    """Interfaces chosen by InterfaceAlias / InterfaceIndex / InputObject. Set-* need exactly
    one selector; Get-* default to every interface."""
    selectors = [name for name in ("InterfaceAlias", "InterfaceIndex", "InputObject") if name in args]
    if require and not selectors:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["InterfaceAlias"]))
    if len(selectors) > 1:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    nics = ctx.host.nics
    if not selectors:
        return list(nics)
    chosen: list[Nic] = []
    if "InterfaceAlias" in args:
        for alias in args["InterfaceAlias"]:
            hits = [n for n in nics if _identity_matches(alias, n.alias)]
            if not hits:
                ctx.error(_cim_not_found(ctx.cmdlet, cim_class, "InterfaceAlias", alias))
            chosen += [n for n in hits if n not in chosen]
    elif "InterfaceIndex" in args:
        for index in args["InterfaceIndex"]:
            nic = ctx.host.nic_by_index(index)
            if nic is None:
                ctx.error(_cim_not_found(ctx.cmdlet, cim_class, "InterfaceIndex", str(index)))
            elif nic not in chosen:
                chosen.append(nic)
    else:
        for item in _as_list(args["InputObject"]):
            index = _property(item, "InterfaceIndex")
            nic = ctx.host.nic_by_index(int(index)) if isinstance(index, int) else None
            if nic is None:
                ctx.fail(
                    records.argument_transformation(
                        ctx.cmdlet, "InputObject", item, "Microsoft.Management.Infrastructure.CimInstance[]"
                    )
                )
            if nic not in chosen:
                chosen.append(nic)
    return chosen


def _cim_not_found(cmdlet: str, cim_class: str, prop: str, value: str) -> ErrorRecord:
    return records.error_record(
        f"No {cim_class} objects found with property '{prop}' equal to '{value}'.  Verify the value of the "
        "property and retry.",
        f"CmdletizationQuery_NotFound_{prop},{cmdlet}",
        ErrorCategory.ObjectNotFound,
        exception_type="Microsoft.Management.Infrastructure.CimException",
        activity=cmdlet,
        target=value,
    )


def get_dns_client(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    for nic in _nics(ctx, args, "MSFT_DNSClient", require=False):
        if (
            "RegisterThisConnectionsAddress" in args
            and nic.register != args["RegisterThisConnectionsAddress"]
        ):
            continue
        ctx.emit(objects.dns_client(ctx.host, nic))


def set_dns_client(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if args.get("ResetConnectionSpecificSuffix") and "ConnectionSpecificSuffix" in args:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    nics = _nics(ctx, args, "MSFT_DNSClient", require=True)
    if args.get("WhatIf"):
        return
    for nic in nics:
        if "RegisterThisConnectionsAddress" in args:
            nic.register = args["RegisterThisConnectionsAddress"]
        if "UseSuffixWhenRegistering" in args:
            nic.use_suffix = args["UseSuffixWhenRegistering"]
        if "ConnectionSpecificSuffix" in args:
            nic.suffix = args["ConnectionSpecificSuffix"]
        if args.get("ResetConnectionSpecificSuffix"):
            nic.suffix = ""
        if args.get("PassThru"):
            ctx.emit(objects.dns_client(ctx.host, nic))


FAMILIES = {"ipv4": 2, "ipv6": 23, "2": 2, "23": 23}


def get_dns_client_server_address(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    families: tuple[int, ...] = (2, 23)
    if "AddressFamily" in args:
        family = FAMILIES.get(str(args["AddressFamily"]).lower())
        if family is None:
            ctx.fail(
                records.enum_mismatch(
                    ctx.cmdlet, "AddressFamily", args["AddressFamily"], "AddressFamily", ["IPv4", "IPv6"]
                )
            )
        families = (family,)
    for nic in _nics(ctx, args, "MSFT_DNSClientServerAddress", require=False):
        for family in families:
            ctx.emit(objects.dns_server_address(nic, family))


def set_dns_client_server_address(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if args.get("ResetServerAddresses") and "ServerAddresses" in args:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    nics = _nics(ctx, args, "MSFT_DNSClientServerAddress", require=True)
    v4: list[str] = []
    v6: list[str] = []
    for text in args.get("ServerAddresses", ()):
        try:
            ip = ipaddress.ip_address(text.strip())
        except ValueError:
            ctx.fail(
                records.error_record(
                    f'The parameter ServerAddresses has an invalid value "{text}": '
                    "it is not a valid IP address.",
                    f"Windows System Error 87,{ctx.cmdlet}",
                    ErrorCategory.InvalidArgument,
                    exception_type="Microsoft.Management.Infrastructure.CimException",
                    activity=ctx.cmdlet,
                    target=text,
                )
            )
        (v4 if ip.version == 4 else v6).append(str(ip))
    if args.get("Validate"):
        for server in v4 + v6:
            if ctx.org.world.answer(server, ctx.org.world.ad_domain, "SOA").rcode == NO_REPLY:
                ctx.error(
                    records.error_record(
                        f"The DNS server {server} did not respond to validation; "
                        "the server addresses were not changed.",
                        f"Windows System Error 1460,{ctx.cmdlet}",
                        ErrorCategory.OperationTimeout,
                        exception_type="Microsoft.Management.Infrastructure.CimException",
                        activity=ctx.cmdlet,
                        target=server,
                    )
                )
                return
    if args.get("WhatIf"):
        return
    for nic in nics:
        if args.get("ResetServerAddresses"):
            nic.dns_servers = list(nic.dhcp_dns_servers)
            nic.ipv6_dns_servers = []
        elif "ServerAddresses" in args:
            nic.dns_servers = v4
            nic.ipv6_dns_servers = v6
        if args.get("PassThru"):
            ctx.emit(objects.dns_server_address(nic, 2))
    # The transport service keeps the servers it read at start (seed 000: restart after this).


def get_net_ip_configuration(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    for nic in _nics(ctx, args, "MSFT_NetIPInterface", require=False):
        ctx.emit(objects.net_ip_configuration(ctx.host, nic))


def register_dns_client(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    # Dynamic update of the host's A record with every NIC that registers itself; a NIC with
    # "Register this connection's addresses in DNS" off contributes nothing (KB3007623).
    if args.get("WhatIf"):
        return
    addresses = [n.ipv4 for n in ctx.host.nics if n.register]
    if addresses:
        ctx.org.world.register(ctx.host.fqdn, addresses)


def clear_dns_client_cache(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if not args.get("WhatIf"):
        ctx.host.dns_cache_clears += 1


RESOLVE_TYPES = ("A", "AAAA", "A_AAAA", "MX", "NS", "SOA", "SRV", "TXT", "CNAME", "PTR", "ANY")


def resolve_dns_name(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    name = args["Name"]
    rtype = args.get("Type", "A_AAAA")
    with ctx.org.lock:
        servers = list(args.get("Server") or ctx.host.mapi_nic.dns_servers)
    address_map = ctx.emu.dns_address_map
    wanted = ("A", "AAAA") if rtype == "A_AAAA" else (rtype,)
    found: list[Any] = []
    failure: str | None = None
    for qtype in wanted:
        answer = dnsclient.ClientAnswer("TIMEOUT")
        for server in servers:  # the Windows resolver moves on only when a server is silent
            if ctx.cancel.is_set():
                return
            answer = dnsclient.query(
                address_map,
                server,
                name,
                "ANY" if qtype == "ANY" else qtype,
                timeout=1.0 if args.get("QuickTimeout") else dnsclient.QUERY_TIMEOUT,
            )
            if answer.status != "TIMEOUT":
                break
        if answer.status == "NOERROR":
            found += [r for r in answer.records]
        elif failure is None:
            failure = answer.status
    if failure is not None and not found:
        ctx.error(_resolve_error(name, failure))
    for record in found:
        obj = objects.dns_record(record)
        if obj is not None:
            ctx.emit(obj)


def _resolve_error(name: str, status: str) -> ErrorRecord:
    message, code, category = {
        "NXDOMAIN": (
            "DNS name does not exist",
            "DNS_ERROR_RCODE_NAME_ERROR",
            ErrorCategory.ResourceUnavailable,
        ),
        "SERVFAIL": (
            "DNS server failure",
            "DNS_ERROR_RCODE_SERVER_FAILURE",
            ErrorCategory.ResourceUnavailable,
        ),
        "REFUSED": ("DNS request refused", "DNS_ERROR_RCODE_REFUSED", ErrorCategory.ResourceUnavailable),
        "TIMEOUT": (
            "This operation returned because the timeout period expired",
            "ERROR_TIMEOUT",
            ErrorCategory.OperationTimeout,
        ),
    }.get(status, ("DNS server failure", "DNS_ERROR_RCODE_SERVER_FAILURE", ErrorCategory.ResourceUnavailable))
    return records.error_record(
        f"{name} : {message}",
        f"{code},{records.cmdlet_type('Resolve-DnsName')}",
        category,
        exception_type="System.ComponentModel.Win32Exception",
        activity="Resolve-DnsName",
        target=name,
    )


# --- OS: services, registry, files, sleep ----------------------------------------------------


def _service_names(ctx: Context, names: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for pattern in names:
        hits = [
            key
            for key, (service, display) in objects.SERVICES.items()
            if _identity_matches(pattern, service, display)
        ]
        if not hits and "*" not in pattern:
            ctx.error(
                records.error_record(
                    f"Cannot find any service with service name '{pattern}'.",
                    f"NoServiceFoundForGivenName,{records.cmdlet_type(ctx.cmdlet)}",
                    ErrorCategory.ObjectNotFound,
                    exception_type="Microsoft.PowerShell.Commands.ServiceCommandException",
                    activity=ctx.cmdlet,
                    target=pattern,
                )
            )
        chosen += [h for h in hits if h not in chosen]
    return chosen


def _running(ctx: Context, key: str) -> bool:
    return ctx.host.transport_running if key == "msexchangetransport" else True


def get_service(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    keys = _service_names(ctx, args.get("Name") or ("*",))
    for key in keys:
        ctx.emit(objects.service(key, _running(ctx, key)))


def restart_service(ctx: Context, args: dict[str, Any], inputs: Sequence[Any]) -> None:
    names = list(args.get("Name", ()))
    for item in _as_list(args.get("InputObject")):
        names.append(str(_property(item, "ServiceName") or _property(item, "Name") or item))
    if not names:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Name"]))
    keys = _service_names(ctx, names)
    if args.get("WhatIf"):
        return
    for key in keys:
        if key == "msexchangetransport":
            restart_transport(ctx.org, ctx.host)
        else:
            ctx.host.dns_cache_clears += 1
        if args.get("PassThru"):
            ctx.emit(objects.service(key, True))


def _registry_key(host: HostState) -> str:
    return f"HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v{host.spec.major}\\Setup"


def _normalize_path(path: str) -> str:
    text = path.strip().replace("/", "\\")
    text = re.sub(
        r"^(Microsoft\.PowerShell\.Core\\)?Registry::HKEY_LOCAL_MACHINE\\",
        "HKLM:\\\\",
        text,
        flags=re.IGNORECASE,
    )
    text = re.sub(r"^(Microsoft\.PowerShell\.Core\\)?FileSystem::", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\\{2,}", r"\\", text)
    return text.rstrip("\\").lower()


def get_item_property(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    paths = args.get("Path") or args.get("LiteralPath")
    if not paths:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Path"]))
    key = _registry_key(ctx.host)
    for path in paths:
        if _normalize_path(path) != _normalize_path(key):
            ctx.error(
                records.error_record(
                    f"Cannot find path '{path}' because it does not exist.",
                    f"PathNotFound,{records.cmdlet_type(ctx.cmdlet)}",
                    ErrorCategory.ObjectNotFound,
                    exception_type="System.Management.Automation.ItemNotFoundException",
                    activity=ctx.cmdlet,
                    target=path,
                )
            )
            continue
        full = objects.registry_setup(ctx.host, key)
        wanted = args.get("Name")
        if not wanted:
            ctx.emit(full)
            continue
        keep = []
        for name in wanted:
            hits = [
                p.name
                for p in full.PSObject.extended_properties
                if not p.name.startswith("PS") and _identity_matches(name, p.name)
            ]
            if not hits:
                native = key.replace("HKLM:\\", "HKEY_LOCAL_MACHINE\\", 1)
                ctx.error(
                    records.error_record(
                        f"Property {name} does not exist at path {native}.",
                        f"System.Management.Automation.PSArgumentException,{records.cmdlet_type(ctx.cmdlet)}",
                        ErrorCategory.InvalidArgument,
                        exception_type="System.Management.Automation.PSArgumentException",
                        activity=ctx.cmdlet,
                        target=name,
                    )
                )
            keep += hits
        if keep:
            selected = PSCustomObject()
            for prop in full.PSObject.extended_properties:
                if prop.name in keep or prop.name.startswith("PS"):
                    selected.PSObject.extended_properties.append(
                        PSNoteProperty(prop.name, prop.get_value(full))
                    )
            ctx.emit(selected)


def config_path(host: HostState) -> str:
    return objects.install_path(host) + "Bin\\EdgeTransport.exe.config"


def get_content(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    paths = args.get("Path") or args.get("LiteralPath")
    if not paths:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Path"]))
    for path in paths:
        if _normalize_path(path) != _normalize_path(config_path(ctx.host)):
            ctx.error(
                records.error_record(
                    f"Cannot find path '{path}' because it does not exist.",
                    f"PathNotFound,{records.cmdlet_type(ctx.cmdlet)}",
                    ErrorCategory.ObjectNotFound,
                    exception_type="System.Management.Automation.ItemNotFoundException",
                    activity=ctx.cmdlet,
                    target=path,
                )
            )
            continue
        text = edgeconfig.render(
            ctx.host.spec.major, objects.install_path(ctx.host), ctx.host.dns_fault_tolerance
        )
        if args.get("Raw"):
            ctx.emit(text)
        else:
            for line in text.splitlines():
                ctx.emit(line)


def start_sleep(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    if "Seconds" in args and "Milliseconds" in args:
        ctx.fail(records.ambiguous_parameter_set(ctx.cmdlet))
    seconds = args["Seconds"] if "Seconds" in args else args.get("Milliseconds", 0) / 1000.0
    if "Seconds" not in args and "Milliseconds" not in args:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Seconds"]))
    ctx.cancel.wait(max(0.0, float(seconds)))


# --- Select-Object ---------------------------------------------------------------------------


def _all_properties(obj: Any) -> list[tuple[str, Any]]:
    if not isinstance(obj, PSObject) or isinstance(obj, (str, int, float)):
        return []
    ps = obj.PSObject
    seen: dict[str, Any] = {}
    for prop in list(ps.adapted_properties) + list(ps.extended_properties):
        if prop.name not in seen:
            seen[prop.name] = prop.get_value(obj)
    return list(seen.items())


def _property(obj: Any, name: str) -> Any:
    for key, value in _all_properties(obj):
        if key.lower() == name.lower():
            return plain(value) if isinstance(value, (str, int, float)) else value
    return None


def _has_property(obj: Any, name: str) -> bool:
    return any(key.lower() == name.lower() for key, _ in _all_properties(obj))


def select_object(ctx: Context, args: dict[str, Any], inputs: Sequence[Any]) -> None:
    items = _as_list(args.get("InputObject")) or list(inputs)
    if "First" in args:
        items = items[: max(0, args["First"])]
    expand = args.get("ExpandProperty")
    wanted = args.get("Property")
    for item in items:
        if expand is not None:
            if not _has_property(item, expand):
                ctx.error(
                    records.error_record(
                        f'Property "{expand}" cannot be found.',
                        f"ExpandPropertyNotFound,{records.cmdlet_type(ctx.cmdlet)}",
                        ErrorCategory.InvalidArgument,
                        exception_type="System.Management.Automation.PSArgumentException",
                        activity=ctx.cmdlet,
                        target=item.PSObject.to_string if isinstance(item, PSObject) else str(item),
                    )
                )
                continue
            value = _property(item, expand)
            if isinstance(value, list):
                for element in value:
                    ctx.emit(element)
            elif value is not None:
                ctx.emit(value)
            continue
        if not wanted:
            ctx.emit(item)
            continue
        props = _all_properties(item)
        selected = PSCustomObject()
        original = item.PSObject.type_names if isinstance(item, PSObject) else ["System.Object"]
        selected.PSObject.type_names = [
            f"Selected.{original[0]}",
            "System.Management.Automation.PSCustomObject",
            "System.Object",
        ]
        for pattern in wanted:
            hits = [(k, v) for k, v in props if _identity_matches(pattern, k)] or (
                [] if "*" in pattern else [(pattern, None)]
            )
            for key, value in hits:
                if not any(p.name == key for p in selected.PSObject.extended_properties):
                    selected.PSObject.extended_properties.append(PSNoteProperty(key, value))
        ctx.emit(selected)


# --- the table -----------------------------------------------------------------------------

EX = Endpoint.EXCHANGE
OS = Endpoint.OS
_DC = P("DomainController", Kind.STRING)
_PROTOCOL = dict(kind=Kind.ENUM, choices=PROTOCOL_OPTIONS, type_name="Microsoft.Exchange.Data.ProtocolOption")
_IP_MVP = "Microsoft.Exchange.Data.MultiValuedProperty`1[System.Net.IPAddress]"


def _transport_params() -> tuple[P, ...]:
    return (
        P("Identity", Kind.STRING, position=0),
        _DC,
        P("ExternalDNSAdapterEnabled", Kind.BOOL),
        P("ExternalDNSAdapterGuid", Kind.STRING),
        P("ExternalDNSProtocolOption", **_PROTOCOL),  # type: ignore[arg-type]
        P("ExternalDNSServers", Kind.MVP, type_name=_IP_MVP),
        P("InternalDNSAdapterEnabled", Kind.BOOL),
        P("InternalDNSAdapterGuid", Kind.STRING),
        P("InternalDNSProtocolOption", **_PROTOCOL),  # type: ignore[arg-type]
        P("InternalDNSServers", Kind.MVP, type_name=_IP_MVP),
        *SHOULD_PROCESS,
    )


def _connector_params(new: bool) -> tuple[P, ...]:
    params: list[P] = [
        P("AddressSpaces", Kind.MVP, type_name="Microsoft.Exchange.Data.MultiValuedProperty`1[AddressSpace]"),
        P("SmartHosts", Kind.MVP, type_name="Microsoft.Exchange.Data.MultiValuedProperty`1[SmartHost]"),
        P("DNSRoutingEnabled", Kind.BOOL),
        P("UseExternalDNSServersEnabled", Kind.BOOL),
        P(
            "SmartHostAuthMechanism",
            Kind.ENUM,
            choices=AUTH_MECHANISMS,
            type_name="Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig+AuthMechanisms",
        ),
        P(
            "SourceTransportServers",
            Kind.MVP,
            type_name="Microsoft.Exchange.Data.MultiValuedProperty`1[ServerIdParameter]",
        ),
        P("Enabled", Kind.BOOL),
        P("Port", Kind.INT),
        P("Comment", Kind.STRING),
        P("Force", Kind.SWITCH),
        _DC,
        *SHOULD_PROCESS,
    ]
    if new:
        params += [
            P("Name", Kind.STRING, position=0),
            P(
                "Usage",
                Kind.ENUM,
                choices=("Custom", "Internal", "Internet", "Partner"),
                type_name="Microsoft.Exchange.Management.SystemConfigurationTasks.NewSendConnector+UsageType",
            ),
            P("Custom", Kind.SWITCH),
            P("Internal", Kind.SWITCH),
            P("Internet", Kind.SWITCH),
            P("Partner", Kind.SWITCH),
        ]
    else:
        params += [P("Identity", Kind.STRING, position=0), P("Name", Kind.STRING)]
    return tuple(params)


_NIC_SELECT = (
    P("InterfaceAlias", Kind.STRINGS, position=0, aliases=("ifAlias",)),
    P("InterfaceIndex", Kind.UINTS, aliases=("ifIndex",)),
    P("InputObject", Kind.ANY),
    P("CimSession", Kind.ANY, aliases=("Session",)),
    P("ThrottleLimit", Kind.INT),
    P("AsJob", Kind.SWITCH),
)

CMDLET_LIST: tuple[CmdletDef, ...] = (
    CmdletDef(
        "Get-ExchangeServer",
        EX,
        (P("Identity", Kind.STRING, position=0), _DC, P("Status", Kind.SWITCH)),
        get_exchange_server,
    ),
    CmdletDef(
        "Get-Queue",
        EX,
        (
            P("Identity", Kind.STRING, position=0),
            P("Server", Kind.STRING),
            P("Filter", Kind.STRING),
            P("ResultSize", Kind.INT),
        ),
        get_queue,
    ),
    CmdletDef(
        "Retry-Queue",
        EX,
        (
            P("Identity", Kind.STRING, position=0),
            P("Server", Kind.STRING),
            P("Filter", Kind.STRING),
            P("Resubmit", Kind.BOOL),
            *SHOULD_PROCESS,
        ),
        retry_queue,
        input_param="Identity",
    ),
    CmdletDef(
        "Get-TransportService",
        EX,
        (P("Identity", Kind.STRING, position=0), _DC),
        get_transport_service,
        versions=(15,),
    ),
    CmdletDef("Set-TransportService", EX, _transport_params(), set_transport_service, versions=(15,)),
    CmdletDef(
        "Get-TransportServer",
        EX,
        (P("Identity", Kind.STRING, position=0), _DC),
        get_transport_service,
        versions=(14,),
    ),
    CmdletDef("Set-TransportServer", EX, _transport_params(), set_transport_service, versions=(14,)),
    CmdletDef("Get-SendConnector", EX, (P("Identity", Kind.STRING, position=0), _DC), get_send_connector),
    CmdletDef("New-SendConnector", EX, _connector_params(True), new_send_connector),
    CmdletDef("Set-SendConnector", EX, _connector_params(False), set_send_connector, input_param="Identity"),
    CmdletDef(
        "Remove-SendConnector",
        EX,
        (P("Identity", Kind.STRING, position=0), _DC, *SHOULD_PROCESS),
        remove_send_connector,
        input_param="Identity",
    ),
    CmdletDef(
        "Get-DnsClient",
        OS,
        (
            *_NIC_SELECT,
            P("ConnectionSpecificSuffix", Kind.STRINGS),
            P("RegisterThisConnectionsAddress", Kind.BOOL),
            P("UseSuffixWhenRegistering", Kind.BOOL),
        ),
        get_dns_client,
    ),
    CmdletDef(
        "Set-DnsClient",
        OS,
        (
            *_NIC_SELECT,
            P("ConnectionSpecificSuffix", Kind.STRING, aliases=("Suffix",)),
            P("RegisterThisConnectionsAddress", Kind.BOOL),
            P("UseSuffixWhenRegistering", Kind.BOOL),
            P("ResetConnectionSpecificSuffix", Kind.SWITCH, aliases=("ResetSuffix",)),
            P("PassThru", Kind.SWITCH),
            *SHOULD_PROCESS,
        ),
        set_dns_client,
        input_param="InputObject",
    ),
    CmdletDef(
        "Get-DnsClientServerAddress",
        OS,
        (*_NIC_SELECT, P("AddressFamily", Kind.STRING, aliases=("Family",))),
        get_dns_client_server_address,
    ),
    CmdletDef(
        "Set-DnsClientServerAddress",
        OS,
        (
            *_NIC_SELECT,
            P("ServerAddresses", Kind.STRINGS, aliases=("Addresses",)),
            P("ResetServerAddresses", Kind.SWITCH, aliases=("ResetAddresses",)),
            P("Validate", Kind.SWITCH),
            P("PassThru", Kind.SWITCH),
            *SHOULD_PROCESS,
        ),
        set_dns_client_server_address,
        input_param="InputObject",
    ),
    CmdletDef(
        "Get-NetIPConfiguration",
        OS,
        (*_NIC_SELECT, P("All", Kind.SWITCH), P("Detailed", Kind.SWITCH), P("AllCompartments", Kind.SWITCH)),
        get_net_ip_configuration,
    ),
    CmdletDef(
        "Register-DnsClient",
        OS,
        (P("CimSession", Kind.ANY), P("ThrottleLimit", Kind.INT), P("AsJob", Kind.SWITCH), *SHOULD_PROCESS),
        register_dns_client,
    ),
    CmdletDef(
        "Clear-DnsClientCache",
        OS,
        (P("CimSession", Kind.ANY), P("ThrottleLimit", Kind.INT), P("AsJob", Kind.SWITCH), *SHOULD_PROCESS),
        clear_dns_client_cache,
    ),
    CmdletDef(
        "Resolve-DnsName",
        OS,
        (
            P("Name", Kind.STRING, position=0),
            P(
                "Type",
                Kind.ENUM,
                position=1,
                choices=RESOLVE_TYPES,
                type_name="Microsoft.DnsClient.Commands.RecordType",
            ),
            P("Server", Kind.STRINGS),
            P("DnsOnly", Kind.SWITCH),
            P("QuickTimeout", Kind.SWITCH),
            P("NoHostsFile", Kind.SWITCH),
            P("NoRecursion", Kind.SWITCH),
            P("CacheOnly", Kind.SWITCH),
            P("TcpOnly", Kind.SWITCH),
            P("NoIdn", Kind.SWITCH),
            P("LlmnrNetbiosOnly", Kind.SWITCH),
            P("LlmnrFallback", Kind.SWITCH),
            P("LlmnrOnly", Kind.SWITCH),
            P("DnssecOk", Kind.SWITCH),
            P("DnssecCd", Kind.SWITCH),
        ),
        resolve_dns_name,
        locks=False,
    ),
    CmdletDef(
        "Get-Service",
        OS,
        (
            P("Name", Kind.STRINGS, position=0, aliases=("ServiceName",)),
            P("DisplayName", Kind.STRINGS),
            P("ComputerName", Kind.STRINGS),
        ),
        get_service,
    ),
    CmdletDef(
        "Restart-Service",
        OS,
        (
            P("Name", Kind.STRINGS, position=0, aliases=("ServiceName",)),
            P("InputObject", Kind.ANY),
            P("Force", Kind.SWITCH),
            P("PassThru", Kind.SWITCH),
            P("DisplayName", Kind.STRINGS),
            *SHOULD_PROCESS,
        ),
        restart_service,
        input_param="InputObject",
    ),
    CmdletDef(
        "Get-ItemProperty",
        OS,
        (
            P("Path", Kind.STRINGS, position=0),
            P("Name", Kind.STRINGS, position=1),
            P("LiteralPath", Kind.STRINGS, aliases=("PSPath", "LP")),
        ),
        get_item_property,
    ),
    CmdletDef(
        "Get-Content",
        OS,
        (
            P("Path", Kind.STRINGS, position=0),
            P("LiteralPath", Kind.STRINGS, aliases=("PSPath", "LP")),
            P("Raw", Kind.SWITCH),
            P("Encoding", Kind.STRING),
            P("ReadCount", Kind.INT),
        ),
        get_content,
    ),
    CmdletDef(
        "Start-Sleep",
        OS,
        (P("Seconds", Kind.DOUBLE, position=0), P("Milliseconds", Kind.INT)),
        start_sleep,
        locks=False,
    ),
)

# Select-Object is in both runspaces: Exchange's restricted session exposes it too.
SELECT_OBJECT = CmdletDef(
    "Select-Object",
    OS,
    (
        P("Property", Kind.STRINGS, position=0),
        P("ExpandProperty", Kind.STRING),
        P("First", Kind.INT),
        P("InputObject", Kind.ANY),
    ),
    select_object,
    input_param="InputObject",
)

CMDLETS: dict[str, CmdletDef] = {c.name.lower(): c for c in (*CMDLET_LIST, SELECT_OBJECT)}
