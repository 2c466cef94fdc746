"""The planner of each fix id: an explicit table, checked against the rules' fix table."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from agent.model.plan import ActionKind
from agent.planning import (
    dns_fault_tolerance,
    nic_dns_servers,
    nic_registration,
    smart_host_connector,
    transport_dns,
)
from agent.planning._draft import Planner
from agent.rules.metadata import FIXES

PLANNERS: Mapping[str, Planner] = MappingProxyType(
    {
        nic_dns_servers.FIX_ID: nic_dns_servers.plan,
        nic_registration.FIX_ID: nic_registration.plan,
        transport_dns.EXTERNAL_FIX_ID: transport_dns.plan_external,
        transport_dns.INTERNAL_FIX_ID: transport_dns.plan_internal,
        smart_host_connector.FIX_ID: smart_host_connector.plan,
        dns_fault_tolerance.FIX_ID: dns_fault_tolerance.plan,
    }
)

# The order fixes run in on one host. The NIC's DNS servers come before registration, so
# Register-DnsClient registers with the servers that hold the AD zone; transport settings
# next; the connector last (it needs no restart).
FIX_ORDER: tuple[str, ...] = tuple(PLANNERS)

# The template that renders each kind of action (ps_templates/<name>.ps1.j2).
TEMPLATE_FOR_KIND: Mapping[ActionKind, str] = MappingProxyType(
    {
        ActionKind.SET_NIC_DNS_SERVERS: nic_dns_servers.FIX_ID,
        ActionKind.ENABLE_NIC_DNS_REGISTRATION: nic_registration.FIX_ID,
        ActionKind.REGISTER_DNS_CLIENT: nic_registration.FIX_ID,
        ActionKind.SET_TRANSPORT_EXTERNAL_DNS: transport_dns.EXTERNAL_FIX_ID,
        ActionKind.USE_EXTERNAL_DNS_ON_CONNECTOR: transport_dns.EXTERNAL_FIX_ID,
        ActionKind.SET_TRANSPORT_INTERNAL_DNS_SERVERS: transport_dns.INTERNAL_FIX_ID,
        ActionKind.ENABLE_TRANSPORT_INTERNAL_DNS_ADAPTER: transport_dns.INTERNAL_FIX_ID,
        ActionKind.NEW_SMART_HOST_CONNECTOR: smart_host_connector.FIX_ID,
        ActionKind.BACKUP_EDGE_CONFIG: dns_fault_tolerance.FIX_ID,
        ActionKind.SET_DNS_FAULT_TOLERANCE: dns_fault_tolerance.FIX_ID,
        ActionKind.RESTART_TRANSPORT: "_restart-transport",
    }
)

_missing = sorted(set(FIXES) - set(PLANNERS))
_unknown = sorted(set(PLANNERS) - set(FIXES))
if _missing or _unknown or set(TEMPLATE_FOR_KIND) != set(ActionKind):  # pragma: no cover - a bug
    raise RuntimeError(f"planner table out of step: missing {_missing}, unknown {_unknown}")
